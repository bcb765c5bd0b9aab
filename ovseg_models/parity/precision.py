"""Reduced precision and compiled graphs against fp32 on the reference cases.

    python -m ovseg_models.parity.precision CASE.npz [CASE.npz ...] --device cuda [--precisions fp32,bf16,fp16] [--compile] [--repeat N]

For each case the case's segmenter (the reference weights, the case's image and vocabulary; the
settings of ``python -m ovseg_models.bench --case``) runs once on the CPU at fp32, the path the
parity tool checks against the official code, and then on ``--device`` at each precision (autocast;
TF32 off for fp32) and, with ``--compile``, at each precision compiled. Each run is compared with
the CPU's: the semantic labels that differ (decision flips), those of them where the CPU's top-two
class scores are further apart than ``--margin`` (flips that are not near-ties), the largest
difference of the winning class score, and the panoptic segments (count, labels).

A flip where fp32's margin is below ``--margin`` is float rounding deciding a near-tie; the others are
what a precision changes. The figures this prints are the tolerance a precision holds on that model.
``--repeat N`` also times the device's settings side by side (N calls of each, alternated).
``--device cpu --precisions fp32,bf16`` compares bf16 on a CPU with native bf16 (AVX512-BF16, AMX).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from argparse import Namespace
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

__all__ = ["PrecisionRow", "compare_results", "main", "run_precisions"]

#: the predict option that keeps the per-class scores, by family
_CLASS_SCORES = {"fcclip": {"return_class_scores": True}, "catseg": {"class_scores": True}}


@dataclass
class PrecisionRow:
    case: str
    setting: str  # "cuda bf16", "cuda bf16 compiled", ...
    pixels: int
    flips: int  # pixels whose label differs from the CPU fp32 run's
    clear_flips: int  # of those, where CPU fp32's top-two margin exceeds the margin
    score_max_abs: float  # largest difference of the winning class score
    segments: tuple[int, int] | None  # panoptic segments (this run, CPU fp32); None: no panoptic output
    segment_labels_equal: bool
    seconds: tuple[float, float] | None = None  # min, median of the side-by-side timing (``repeat``)

    def __str__(self) -> str:
        seg = "" if self.segments is None else f", panoptic segments {self.segments[0]} vs {self.segments[1]}"
        same = "" if self.segment_labels_equal else " (labels differ)"
        return (
            f"{self.case:<28s} {self.setting:<24s} flips {self.flips}/{self.pixels} "
            f"({100 * self.flips / max(1, self.pixels):.3f}%), not near-ties {self.clear_flips}, "
            f"score max |diff| {self.score_max_abs:.2e}{seg}{same}"
        )


def compare_results(reference, other, *, margin: float = 1e-3) -> dict:
    """Decision flips and score differences of ``other`` against ``reference`` (two
    :class:`~ovseg_models.segmenter.SegmentationResult` of one image; ``reference.class_scores``
    [K, H, W] tells near-ties, where the top-two scores are within ``margin``, from the rest)."""
    if reference.semantic.shape != other.semantic.shape:
        raise ValueError(f"semantic maps of {reference.semantic.shape} and {other.semantic.shape}")
    differ = reference.semantic != other.semantic
    clear = np.ones_like(differ)
    if reference.class_scores is not None:
        top2 = torch.topk(reference.class_scores.float(), 2, dim=0).values.numpy()
        clear = (top2[0] - top2[1]) > margin
    ref_segments = [s.label for s in (reference.segments or [])]
    segments = [s.label for s in (other.segments or [])]
    return {
        "pixels": int(differ.size),
        "flips": int(differ.sum()),
        "clear_flips": int((differ & clear).sum()),
        "score_max_abs": float(np.abs(reference.score.astype(np.float64) - other.score).max()),
        "segments": None if reference.panoptic is None else (len(segments), len(ref_segments)),
        "segment_labels_equal": sorted(segments) == sorted(ref_segments),
    }


def _family(case: Path) -> str:
    for family in _CLASS_SCORES:
        if case.name.startswith(family + "_"):
            return family
    raise SystemExit(f"{case}: not a model case (fcclip_*.npz or catseg_*.npz)")


def _segmenter(case: Path, family: str, device: str, precision: str, *, sliding: bool):
    from ..bench import _load_target

    args = Namespace(
        case=str(case),
        manifest=None,
        device=device,
        precision=precision,
        outputs="semantic,panoptic",
        variant=None if family == "fcclip" or sliding else "vitb16_384:resize",
        reference_heads=False,
        compile=False,
    )
    return _load_target(family, args)


def run_precisions(
    cases: Sequence[str | Path],
    *,
    device: str,
    precisions: Sequence[str] = ("fp32", "bf16", "fp16"),
    compile: bool = False,
    margin: float = 1e-3,
    sliding: bool = False,
    repeat: int = 0,
) -> list[PrecisionRow]:
    """Compare each case's runs on ``device`` with its CPU fp32 run (see the module docstring).

    ``repeat`` > 0: then also time the settings of a case side by side, one call of each in turn
    after a warm-up, ``repeat`` rounds (``PrecisionRow.seconds``: min, median)."""
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32 (cuDNN's default is TF32)
    torch.backends.cudnn.allow_tf32 = False
    rows = []
    for case in map(Path, cases):
        family = _family(case)
        options = _CLASS_SCORES[family]
        target = _segmenter(case, family, "cpu", "fp32", sliding=sliding)
        target.segmenter.set_vocabulary(target.vocabulary)
        reference = target.segmenter.predict(target.image, **options)
        del target
        settings = [(p, False) for p in precisions] + ([(p, True) for p in precisions] if compile else [])
        kept = []
        for precision, compiled in settings:
            target = _segmenter(case, family, device, precision, sliding=sliding)
            if compiled:
                target.segmenter.compile()
            target.segmenter.set_vocabulary(target.vocabulary)
            result = target.segmenter.predict(target.image, **options)
            setting = f"{device} {precision}" + (" compiled" if compiled else "")
            rows.append(PrecisionRow(case.stem, setting, **compare_results(reference, result, margin=margin)))
            print(rows[-1], flush=True)
            if repeat > 0:
                kept.append((rows[-1], target.segmenter, target.image))
            del target, result
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        if kept:
            _time_side_by_side(kept, repeat)
    return rows


def _time_side_by_side(kept: list, repeat: int) -> None:
    for _, seg, image in kept:  # warm-up (and compilation)
        seg.predict(image)
    times: list[list[float]] = [[] for _ in kept]
    for _ in range(repeat):
        for i, (_, seg, image) in enumerate(kept):
            times[i].append(seg.predict(image).timings["total"])
    first = statistics.median(times[0])
    for (row, _, _), t in zip(kept, times, strict=True):
        row.seconds = (min(t), statistics.median(t))
        print(
            f"  {row.setting:<24s} min / median {row.seconds[0]:.3f} / {row.seconds[1]:.3f} s "
            f"({first / row.seconds[1]:.2f}x {kept[0][0].setting}'s speed; {repeat} calls each, alternated)",
            flush=True,
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m ovseg_models.parity.precision",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("cases", nargs="+", help="reference cases (fcclip_*.npz, catseg_*.npz)")
    p.add_argument("--device", default="cuda")
    p.add_argument("--precisions", default="fp32,bf16,fp16")
    p.add_argument("--compile", action="store_true", help="also run each precision compiled (Segmenter.compile)")
    p.add_argument("--margin", type=float, default=1e-3, help="top-two score margin below which a flip is a near-tie")
    p.add_argument("--sliding", action="store_true", help="CAT-Seg: the sliding-window protocol (default: resize)")
    p.add_argument(
        "--repeat",
        type=int,
        default=0,
        help="also time the settings side by side: this many calls of each, alternated, after a warm-up",
    )
    args = p.parse_args(argv)
    precisions = [x for x in args.precisions.split(",") if x]
    print(f"# each run against the CPU fp32 run of its case (torch {torch.__version__})")
    run_precisions(
        args.cases,
        device=args.device,
        precisions=precisions,
        compile=args.compile,
        margin=args.margin,
        sliding=args.sliding,
        repeat=args.repeat,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
