"""CAT-Seg CPU benchmark: per-stage latency, end-to-end time and peak memory versus vocabulary size.

    python -m ovseg_models.catseg.bench [--classes 20 150 847] [--mode both|sliding|resize]
                                        [--case CASE.npz] [--repeats 2] [--threads 2] [--json OUT]

Stages (seconds, best of ``repeats``): ``text`` (text encoder, cold cache), ``preprocess``,
``clip_image`` (CLIP image encoder, all views), ``cost_volume``, ``aggregation`` (spatial +
class blocks), ``decoder`` (upsampling decoder and head), ``postprocess`` (score maps at input
size), ``total`` (``predict`` end to end, text cached). ``peak_mb``: peak resident memory
above the process's level before the call, ``peak_rss_mb``: absolute peak of the process
(``model_rss_mb``: after building the model), sampled every 2 ms. Weights are random: timings do
not depend on their values. For comparison, the official code on this machine kind
(``../shared/reference/README.md``): 33-38 s per ViT-B case with the sliding window, ~2 s
without, 8-11 classes.

``bench_catseg(...)`` returns the rows; ``ovseg_models.bench`` can register it as the
``catseg`` benchmark.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from ..bench import BenchTarget

__all__ = ["PeakMemory", "bench_catseg", "bench_target", "benchmark_names", "main"]

OFFICIAL_REFERENCE = {"sliding_s": (33.0, 38.0), "resize_s": (1.7, 2.2), "classes": (8, 11)}


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # not Linux
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class PeakMemory:
    """Samples the resident set size in a thread; ``peak_mb`` is the peak above the start level."""

    def __init__(self, interval: float = 0.002):
        self.interval = interval
        self.start = self.peak = 0
        self._stop = threading.Event()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_bytes())
            time.sleep(self.interval)

    def __enter__(self) -> PeakMemory:
        self.start = self.peak = _rss_bytes()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())

    @property
    def peak_mb(self) -> float:
        """Peak above the level at entry (memory the allocator kept from earlier calls is not counted)."""
        return (self.peak - self.start) / 2**20

    @property
    def peak_rss_mb(self) -> float:
        """Absolute peak resident set size of the process (weights included)."""
        return self.peak / 2**20


def benchmark_names(n: int) -> list[str]:
    """``n`` distinct class names: benchmark vocabularies (VOC-20, ADE-150, ADE-847) when available."""
    names: list[str] = []
    try:
        from ovseg_models.data.class_names import get_class_names

        for key in ("pascal_voc_20", "ade20k_150", "ade20k_847"):
            for name in get_class_names(key):
                name = str(name).split(",")[0].strip()
                if name and name.lower() not in {x.lower() for x in names}:
                    names.append(name)
                if len(names) >= n:
                    return names[:n]
    except Exception:
        pass
    i = 0
    while len(names) < n:
        names.append(f"object {i}")
        i += 1
    return names[:n]


def _default_image() -> np.ndarray:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, size=(60, 80, 3), dtype=np.uint8)
    return np.kron(base, np.ones((8, 8, 1), dtype=np.uint8))  # 480x640, blocky "scene"


@contextmanager
def _threads(n: int | None) -> Iterator[None]:
    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def bench_catseg(
    *,
    variant: str = "vitb16_384",
    classes: Sequence[int] = (20, 150, 847),
    modes: Sequence[str] = ("sliding", "resize"),
    case: str | None = None,
    repeats: int = 2,
    threads: int | None = 2,
    image: np.ndarray | None = None,
    verbose: bool = True,
) -> list[dict]:
    """Benchmark rows (one per vocabulary size and inference mode)."""
    from . import CATSeg, CATSegSegmenter, get_config

    with _threads(threads):
        torch.manual_seed(0)
        model = CATSeg(get_config(variant)).eval()
        seg = CATSegSegmenter(model, class_scores=False)
        model_rss = _rss_bytes() / 2**20
        vocabularies: list[tuple[str, list[str]]] = []
        if case:
            data = np.load(case)
            image = data["image"]
            vocabularies.append((os.path.basename(case), [str(n) for n in data["class_names"]]))
        else:
            image = _default_image() if image is None else image
        vocabularies += [(f"{n} classes", benchmark_names(n)) for n in classes]
        warm = seg.encode_vocabulary(benchmark_names(4))  # first calls pay one-off kernel set-up
        for mode in modes:
            seg.predict(image, vocabulary=warm, sliding_window=(mode == "sliding"))
        rows = []
        for label, names in vocabularies:
            seg.text_encoder.clear_cache()
            t0 = time.perf_counter()
            encoded = seg.encode_vocabulary(names)
            text_s = time.perf_counter() - t0
            for mode in modes:
                best: dict | None = None
                peak = rss = 0.0
                for _ in range(max(1, repeats)):
                    with PeakMemory() as mem:
                        result = seg.predict(image, vocabulary=encoded, sliding_window=(mode == "sliding"))
                    peak, rss = max(peak, mem.peak_mb), max(rss, mem.peak_rss_mb)
                    if best is None or result.timings["total"] < best["total"]:
                        best = dict(result.timings)
                assert best is not None  # at least one repeat ran
                row = {
                    "variant": variant,
                    "vocabulary": label,
                    "classes": len(names),
                    "mode": mode,
                    "image": list(image.shape[:2]),
                    "threads": torch.get_num_threads(),
                    "text": text_s,
                    **{k: round(v, 4) for k, v in best.items()},
                    "peak_mb": round(peak, 1),
                    "peak_rss_mb": round(rss, 1),
                    "model_rss_mb": round(model_rss, 1),
                }
                rows.append(row)
                if verbose:
                    print(_format_row(row), flush=True)
        return rows


def bench_target(args: argparse.Namespace) -> BenchTarget:
    """Target for the shared ``python -m ovseg_models.bench --model catseg`` (``BENCH_TARGETS``).

    ``--variant NAME[:resize]``: ``:resize`` selects plain resize instead of the sliding window.
    ``--case``: the reference weights (manifest rule) and the case's image and vocabulary.
    """
    import warnings

    from ..bench import BenchTarget
    from . import CATSeg, CATSegSegmenter, get_config

    variant, _, mode = (args.variant or "vitb16_384").partition(":")
    reference: dict = {}
    image = vocabulary = None
    if args.case:
        from pathlib import Path

        from ..parity import default_manifest
        from ..parity.catseg import build_reference_model
        from ..parity.weights import load_manifest

        manifest = args.manifest or default_manifest(Path(args.case))
        if manifest is None:
            raise ValueError(f"no reference manifest is known for {args.case}; pass --manifest")
        model = build_reference_model(load_manifest(manifest))
        data = np.load(args.case)
        image = data["image"]
        vocabulary = [str(n) for n in data["class_names"]]
        meta = json.loads(str(data["meta_json"]))
        key = "nosliding" if mode == "resize" else "sliding"
        reference = {
            "official_forward_s": meta.get(key, {}).get("forward_seconds"),
            "official_text_s": meta.get("sliding", {}).get("text_seconds"),
        }
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = CATSeg(get_config(variant)).eval()
    seg = CATSegSegmenter(
        model.to(args.device),
        device=args.device,
        precision=args.precision,
        sliding_window=(mode != "resize"),
        class_scores=False,
    )

    def set_resolution(short: int | None) -> None:
        seg.defaults["min_size"] = short
        seg.defaults["max_size"] = None if short is None else int(round(short * 4))

    return BenchTarget(seg, set_resolution, image, vocabulary, reference)


_STAGES = ("text", "preprocess", "clip_image", "cost_volume", "aggregation", "decoder", "postprocess", "total")


def _format_row(row: dict) -> str:
    stages = " ".join(f"{k}={row.get(k, 0.0):.3f}" for k in _STAGES)
    return (
        f"{row['variant']} {row['mode']:7s} {row['vocabulary']:>24s} (T={row['classes']}): {stages} "
        f"peak_mb={row['peak_mb']:.0f} peak_rss_mb={row['peak_rss_mb']:.0f}"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m ovseg_models.catseg.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--variant", default="vitb16_384")
    p.add_argument("--classes", type=int, nargs="*", default=[20, 150, 847])
    p.add_argument("--mode", choices=("both", "sliding", "resize"), default="both")
    p.add_argument("--case", help="time a reference case's image and vocabulary too")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", help="write the rows to this file")
    args = p.parse_args(argv)
    modes = ("sliding", "resize") if args.mode == "both" else (args.mode,)
    print(f"official reference (this machine kind, 2 threads): {OFFICIAL_REFERENCE}")
    rows = bench_catseg(
        variant=args.variant,
        classes=args.classes,
        modes=modes,
        case=args.case,
        repeats=args.repeats,
        threads=args.threads,
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
