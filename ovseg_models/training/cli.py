"""``ovseg-train``: train FC-CLIP or CAT-Seg from a YAML config (one per paper table row).

    ovseg-train --list
    ovseg-train fcclip_convnext_large --print-config
    torchrun --nproc_per_node=8 -m ovseg_models.training.cli fcclip_convnext_large \\
        train.output_dir=runs/fcclip_l task.data.root=$DETECTRON2_DATASETS

Positional ``key.sub=value`` arguments override config entries. Runs resume automatically from
``train.output_dir/last_checkpoint`` (``train.resume=false`` starts over, ``train.resume=PATH``
resumes from a given checkpoint).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from .config import dump_config, get, list_configs, load_config, resolve_config_path

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ovseg-train", description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("config", nargs="?", help="config file or shipped config name (see --list)")
    p.add_argument("overrides", nargs="*", help="key.sub=value overrides (YAML values)")
    p.add_argument("--list", action="store_true", help="list the shipped configs with expected results and cost")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    p.add_argument("--output-dir", help="shortcut for train.output_dir=...")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def _list() -> int:
    for name in list_configs():
        cfg = load_config(name)
        md = cfg.get("metadata", {})
        gpu = md.get("gpu_hours", {})
        print(f"{name:34s} {md.get('title', '')}")
        if gpu:
            print(f"{'':34s} ~{gpu.get('estimate', '?')} GPU-hours ({gpu.get('hardware', '')})")
        exp = md.get("expected") or {}
        if exp:
            print(f"{'':34s} expected: {json.dumps(exp)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_intermixed_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s: %(message)s",
    )
    if args.list:
        return _list()
    if not args.config:
        build_parser().print_usage(sys.stderr)
        print("ovseg-train: error: a config is required (see --list)", file=sys.stderr)
        return 2
    overrides = list(args.overrides)
    if args.output_dir:
        overrides.append(f"train.output_dir={args.output_dir}")
    resolve_config_path(args.config)
    cfg = load_config(args.config, overrides)
    if args.print_config:
        print(dump_config(cfg))
        return 0
    if get(cfg, "train.max_steps") is None:
        print("ovseg-train: error: train.max_steps is not set", file=sys.stderr)
        return 2
    from .engine import train

    summary = train(cfg)
    import os

    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps(summary, indent=2, default=float))
    return 0


if __name__ == "__main__":  # python -m ovseg_models.training.cli (what torchrun launches)
    sys.exit(main())
