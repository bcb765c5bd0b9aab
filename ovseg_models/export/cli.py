"""``ovseg-export``: a segmenter's image network to ONNX, checked against PyTorch on a real image.

    ovseg-export fcclip --variant rn50 --checkpoint fcclip_cocopan_r50.pth --image-size 480x640 \\
        -o fcclip_rn50_480x640.onnx
    ovseg-export catseg --weights catseg_vitb16_cocostuff -o catseg_vitb.onnx

After writing the file it loads it with ONNX Runtime (CPU) and runs the PyTorch and the ONNX
network on the same image and vocabulary (``--image``, default scikit-image's astronaut at the
exported size; ``--vocabulary``, default ADE20K-150): it prints the largest difference of the
network outputs, the fraction of pixels whose semantic label differs (decision flips), the export
time and the file size. The exit status is 1 unless every output holds the rule of
:func:`compare_outputs` (``--tolerance`` of its largest magnitude, per query or class row, a few
rows beyond it where one binarised mask pixel moved) and at most ``--max-flips`` of the labels
differ.
``--random-weights`` exports a randomly initialised model (no download, for trying the tool).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

__all__ = ["build_parser", "compare_backends", "compare_outputs", "main"]

#: rows (FC-CLIP queries, CAT-Seg classes) per image that may exceed the tolerance, and by how much
#: at most (a fraction of the output's largest magnitude): the parity tool's per-query rule. A
#: query's outputs depend on its binarised mask and attention masks, so a float-rounding flip of
#: one mask pixel (a logit within ~1e-6 of 0) moves that query alone; a wrong export moves all.
ROW_OUTLIERS = 2
ROW_OUTLIER_CAP = 0.1


def _size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"image size must be HEIGHTxWIDTH, e.g. 480x640, got {text!r}") from None
    if h < 2 or w < 2:
        raise argparse.ArgumentTypeError(f"image size must be at least 2x2, got {text!r}")
    return h, w


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ovseg-export", description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("model", choices=("fcclip", "catseg"))
    p.add_argument("--variant", help="backbone configuration (default: the paper's main model)")
    p.add_argument("--checkpoint", help="official checkpoint or one saved by ovseg-train")
    p.add_argument("--weights", help="an official release by name (ovseg_models.weights)")
    p.add_argument("--random-weights", action="store_true", help="random CLIP and head weights (trying the tool)")
    p.add_argument("--image-size", type=_size, help="camera frames HEIGHTxWIDTH (FC-CLIP: required)")
    p.add_argument("-o", "--output", type=Path, required=True, help="the .onnx file to write")
    p.add_argument("--image", type=Path, help="image for the parity check (default: a sample photo)")
    p.add_argument(
        "--vocabulary",
        default="ade20k_150",
        help="vocabulary of the parity check: a dataset name, a vocabulary file or comma-separated names",
    )
    p.add_argument(
        "--tolerance",
        type=float,
        default=1e-3,
        help="largest accepted difference of an output, as a fraction of its largest magnitude (at least 1)",
    )
    p.add_argument(
        "--max-flips", type=float, default=1e-3, help="largest accepted fraction of semantic labels that differ"
    )
    p.add_argument("--no-check", action="store_true", help="only export")
    p.add_argument("--opset", type=int, default=18)
    return p


def _image(path: Path | None, size: tuple[int, int] | None) -> np.ndarray:
    from PIL import Image

    if path is not None:
        img = Image.open(path).convert("RGB")
    else:
        from skimage import data

        img = Image.fromarray(data.astronaut())
    if size is not None:
        img = img.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    return np.asarray(img)


def _vocabulary(text: str):
    from ..vocabulary import Vocabulary

    if Path(text).is_file():
        return Vocabulary.from_file(text)
    if "," not in text:
        try:
            return Vocabulary.from_dataset(text)
        except (KeyError, ValueError):
            pass
    return Vocabulary.create([t.strip() for t in text.split(",") if t.strip()])


def compare_outputs(reference: dict, other: dict, *, tolerance: float = 1e-3) -> list:
    """One :class:`~ovseg_models.parity.Comparison` per output of ``other`` (ONNX Runtime: the
    outputs post-processing reads) against ``reference`` (PyTorch's network): every row (dimension 1: FC-CLIP's queries, CAT-Seg's
    classes) of every image within ``tolerance`` times the output's largest magnitude (at least
    1), except at most :data:`ROW_OUTLIERS` rows per image, each within :data:`ROW_OUTLIER_CAP`
    times it and reported. Elements infinite in both (log-probabilities of 0) must agree exactly."""
    from ..parity import Comparison
    from ..parity.compare import compare_rows, compare_values

    out = []
    for name, value in other.items():  # what the file outputs: what post-processing reads
        if name not in reference:
            out.append(Comparison(name, float("inf"), tolerance, "not among PyTorch's outputs"))
            continue
        a, b = reference[name].detach().double().cpu(), value.detach().double().cpu()
        if a.shape != b.shape:
            out.append(Comparison(name, float("inf"), tolerance, f"shape {tuple(b.shape)} vs {tuple(a.shape)}"))
            continue
        same = (a == b) & ~torch.isfinite(a)  # -inf == -inf: agree, and out of the differences
        a, b = a.masked_fill(same, 0.0), b.masked_fill(same, 0.0)
        scale = max(1.0, float(a[torch.isfinite(a)].abs().max())) if torch.isfinite(a).any() else 1.0
        note = f"tolerance {tolerance:g} of the largest magnitude {scale:.3g}"
        if a.ndim >= 2:
            c = compare_rows(
                name,
                b.numpy(),
                a.numpy(),
                tolerance=tolerance * scale,
                max_outliers_per_group=ROW_OUTLIERS,
                outlier_cap=ROW_OUTLIER_CAP * scale,
            )
            out.append(Comparison(c.name, c.max_abs_diff, c.tolerance, f"{note}; {c.note}", c.flips, c.flip_epsilon))
        else:
            out.append(compare_values(name, b.numpy(), a.numpy(), tolerance=tolerance * scale, note=note))
    return out


def compare_backends(segmenter, path, image: np.ndarray, *, tolerance: float = 1e-3) -> dict:
    """PyTorch against ONNX Runtime on one image with the segmenter's vocabulary: the largest
    absolute difference of the network outputs, their :func:`compare_outputs` comparisons
    (``tolerance``), the decision flips of the semantic map, the latency of each (one warm run)."""
    from . import read_export_info, use_onnxruntime, use_pytorch

    captured: dict[str, dict] = {}

    def capture(name, network):
        def call(*a, **k):
            out = network(*a, **k)
            captured[name] = out if isinstance(out, dict) else {"logits": out}
            return out

        return call

    use_pytorch(segmenter)
    segmenter.network = capture("torch", segmenter.model)
    segmenter.predict(image)
    t0 = time.perf_counter()
    ref = segmenter.predict(image)
    t_torch = time.perf_counter() - t0
    info = read_export_info(path)
    use_onnxruntime(segmenter, path)
    onnx_net = segmenter.network
    segmenter.network = capture("onnxruntime", onnx_net)
    segmenter.predict(image)
    t0 = time.perf_counter()
    out = segmenter.predict(image)
    t_onnx = time.perf_counter() - t0
    segmenter.network = onnx_net
    diffs = {}
    for k, v in captured["torch"].items():
        if k in captured["onnxruntime"]:
            a, b = v.float(), captured["onnxruntime"][k].float()
            finite = torch.isfinite(a) & torch.isfinite(b)
            diffs[k] = float((a - b)[finite].abs().max()) if finite.any() else 0.0
    return {
        "max_abs_diff": diffs,
        "comparisons": compare_outputs(captured["torch"], captured["onnxruntime"], tolerance=tolerance),
        "semantic_flips": float((ref.semantic != out.semantic).mean()),
        "torch_s": t_torch,
        "onnxruntime_s": t_onnx,
        "providers": list(onnx_net.network.providers),
        "input_shape": list(info.input_shape),
    }


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from .. import create_segmenter
    from ..weights_io import CheckpointError
    from . import ExportError, export_onnx

    if args.model == "fcclip" and args.image_size is None:
        print("ovseg-export: error: FC-CLIP needs --image-size HEIGHTxWIDTH (its network input depends on it)")
        return 2
    kw: dict = {"variant": args.variant, "checkpoint": args.checkpoint, "weights": args.weights}
    if args.random_weights:
        kw["pretrained"] = False
    try:
        seg = create_segmenter(args.model, **{k: v for k, v in kw.items() if v is not None or k == "pretrained"})
        t0 = time.perf_counter()
        info = export_onnx(seg, args.output, image_size=args.image_size, opset=args.opset)
        took = time.perf_counter() - t0
    except (ExportError, CheckpointError, OSError, ValueError) as e:
        print(f"ovseg-export: error: {e}", file=sys.stderr)
        return 2
    size_mb = args.output.stat().st_size / 2**20
    print(
        f"wrote {args.output}: {info.family} {info.variant}, network input {info.input_shape[0]}x{info.input_shape[1]}, "
        f"{size_mb:.1f} MiB, exported in {took:.1f} s"
    )
    if args.no_check:
        return 0
    seg.set_vocabulary(_vocabulary(args.vocabulary))
    res = compare_backends(seg, args.output, _image(args.image, args.image_size), tolerance=args.tolerance)
    print(
        "parity (ONNX Runtime vs PyTorch, one image, vocabulary "
        f"{args.vocabulary}): max |diff| "
        + ", ".join(f"{k} {v:.2e}" for k, v in res["max_abs_diff"].items())
        + f"; semantic decision flips {res['semantic_flips']:.4%}; predict {res['torch_s']:.2f} s torch, "
        f"{res['onnxruntime_s']:.2f} s onnxruntime ({', '.join(res['providers'])})"
    )
    for c in res["comparisons"]:
        print(f"  {c}")
    failed = [c.name for c in res["comparisons"] if not c.ok]
    if res["semantic_flips"] > args.max_flips:
        failed.append(f"semantic flips {res['semantic_flips']:.4%} > {args.max_flips:.4%}")
    if failed:
        print(f"ovseg-export: parity check FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    print("parity ok")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
