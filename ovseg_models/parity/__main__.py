"""Command line: ``python -m ovseg_models.parity CASE.npz [--manifest M] [--backend onnxruntime]``."""

from __future__ import annotations

import argparse
import sys

import torch

from . import run_case


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ovseg_models.parity", description=__doc__)
    p.add_argument("case", help="reference case (.npz) from ../shared/reference/cases")
    p.add_argument("--manifest", help="state_dict manifest (default: manifests/ beside the case's folder)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument(
        "--backend",
        choices=("torch", "onnxruntime"),
        default="torch",
        help="onnxruntime: also export the network to ONNX and compare ONNX Runtime's outputs (FC-CLIP cases)",
    )
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    comparisons = run_case(args.case, args.manifest, backend=args.backend)
    for c in comparisons:
        print(c)
    failed = [c.name for c in comparisons if not c.ok]
    if failed:
        print(f"parity FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    print(f"parity ok: {len(comparisons)} comparisons within tolerance")
    return 0


if __name__ == "__main__":
    sys.exit(main())
