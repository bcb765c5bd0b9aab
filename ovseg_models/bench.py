"""Latency benchmark: ``python -m ovseg_models.bench --model fcclip [...]``.

Prints per-stage latency (the stages each segmenter reports through its ``StageTimer``:
preprocess, backbone, pixel_decoder, transformer_decoder, classifiers, postprocess, ...), text
encoding time (cold vocabulary and a vocabulary switch), end-to-end latency and peak memory, for
each input resolution and vocabulary size, on CPU or GPU.

Models plug in through :data:`BENCH_TARGETS`: ``name -> "module:function"``; the function takes the
parsed arguments and returns a :class:`BenchTarget` (a ready segmenter plus, for ``--case``, the
case's image and vocabulary). Adding a model = one entry here + one function in its package.

    python -m ovseg_models.bench --model fcclip --variant rn50 --resolutions 480,640,800 --vocab-sizes 10,50
    python -m ovseg_models.bench --model fcclip --case ../shared/reference/cases/fcclip_rn50_case0.npz
    python -m ovseg_models.bench --table [--rows fcclip_case0,catseg_case0_resize] [--repeat 3]

``--table`` runs the settings of the side-by-side comparison with the official code (FC-CLIP RN50
and CAT-Seg ViT-B/16 on the reference cases' weights; see :data:`OFFICIAL_TABLE`) and prints, per
setting, per-stage steady-state medians, the cold call (text encoding included), the process's
peak resident memory, and the official figures beside them with the ratio. ``--side-by-side`` also
times each row's default formulations against the official order of operations
(:func:`use_fast_formulations`), calls alternated in one process.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import platform
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

__all__ = [
    "BenchTarget",
    "OFFICIAL_MACHINE",
    "OFFICIAL_TABLE",
    "main",
    "run_benchmark",
    "run_official_table",
    "use_fast_formulations",
]


def _bench_targets() -> dict[str, str]:
    """model name -> "module:function(args) -> BenchTarget", from each family's descriptor."""
    from .families import get_family, list_families

    return {m: t for m in list_families() if (t := get_family(m).bench_target)}


def __getattr__(name: str):
    if name == "BENCH_TARGETS":
        return _bench_targets()
    raise AttributeError(name)


#: Where the official figures of :data:`OFFICIAL_TABLE` come from (the official code is not part of
#: this project, so its timings are reference constants, not measured here).
OFFICIAL_MACHINE = (
    "official FC-CLIP / CAT-Seg code rebuilt (detectron2 from source, the repos' PyTorch "
    "deformable-attention fallback), timed 2026-12 on a 2-core x86_64 CPU, fp32, 2 threads, "
    "the reference cases' weights, two warm workers with calls alternated"
)

#: The side-by-side settings: name -> model, case, options (variant, sliding, vocabulary; joined_synonyms:
#: the official code reads each synonym list as one name), official steady-state min / median
#: seconds and peak RSS (GB), and ovseg's figures measured in the same runs (2026-12, for reference).
OFFICIAL_TABLE: dict[str, dict] = {
    "fcclip_case0": dict(
        model="fcclip",
        case="fcclip_rn50_case0.npz",
        label="FC-CLIP RN50 case0 (300x451 -> 800x1216), 8 classes",
        official_s=(11.88, 12.61),
        official_rss_gb=3.66,
        ovseg_then_s=(7.71, 8.24),
        cold_ratio_then=1.78,
    ),
    "fcclip_640x480": dict(
        model="fcclip",
        case="fcclip_rn50_case0.npz",
        image_hw=(480, 640),
        label="FC-CLIP RN50 640x480 input, 8 classes",
        official_s=(12.61, 12.75),
        official_rss_gb=4.39,
        ovseg_then_s=(8.24, 8.42),
        cold_ratio_then=2.12,
    ),
    "fcclip_ade150": dict(
        model="fcclip",
        case="fcclip_rn50_case0.npz",
        vocabulary="ade20k_150",
        label="FC-CLIP RN50 ADE-150 (official: 403 synonyms)",
        official_s=(12.58, 13.14),
        official_rss_gb=3.93,
        ovseg_then_s=(8.46, 8.73),
        cold_ratio_then=6.1,
    ),
    "catseg_case0_sliding": dict(
        model="catseg",
        case="catseg_vitb16_case0.npz",
        sliding=True,
        variant="vitb16_384",
        label="CAT-Seg ViT-B/16 case0, sliding window",
        official_s=(27.54, 27.95),
        official_rss_gb=6.96,
        ovseg_then_s=(5.30, 5.32),
        cold_ratio_then=5.25,
    ),
    "catseg_case0_resize": dict(
        model="catseg",
        case="catseg_vitb16_case0.npz",
        sliding=False,
        variant="vitb16_384:resize",
        label="CAT-Seg ViT-B/16 case0, no sliding",
        official_s=(2.00, 2.07),
        official_rss_gb=3.17,
        ovseg_then_s=(0.94, 0.95),
        cold_ratio_then=2.39,
    ),
    "catseg_ade150_resize": dict(
        model="catseg",
        case="catseg_vitb16_case0.npz",
        sliding=False,
        variant="vitb16_384:resize",
        vocabulary="ade20k_150",
        joined_synonyms=True,
        label="CAT-Seg ViT-B/16 ADE-150, no sliding",
        official_s=(8.30, 8.99),
        official_rss_gb=4.07,
        ovseg_then_s=(6.48, 6.67),
        cold_ratio_then=2.14,
    ),
    "catseg_ade150_sliding": dict(
        model="catseg",
        case="catseg_vitb16_case0.npz",
        sliding=True,
        variant="vitb16_384",
        vocabulary="ade20k_150",
        joined_synonyms=True,
        label="CAT-Seg ViT-B/16 ADE-150, sliding window",
        official_s=(88.9, 88.9),
        official_rss_gb=8.38,
        ovseg_then_s=(48.0, 48.0),
        cold_ratio_then=1.70,
    ),
}


@dataclass
class BenchTarget:
    segmenter: Any
    #: set the input resolution policy (shortest edge in pixels, or None for the model default)
    set_resolution: Callable[[int | None], None]
    image: np.ndarray | None = None  #: the case's image (``--case``)
    vocabulary: Any = None  #: the case's vocabulary (``--case``)
    reference: dict = field(default_factory=dict)  #: e.g. official timings of the case


class PeakRSS:
    """Peak resident memory of this process while active (sampled), in bytes; CUDA: max allocated."""

    def __init__(self, device: torch.device, interval: float = 0.002):
        self.device, self.interval = device, interval
        self.peak = 0
        self._stop = threading.Event()

    @staticmethod
    def rss() -> int:
        try:
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:  # pragma: no cover - non-Linux
            import resource

            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            time.sleep(self.interval)

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        self.base = self.rss()
        self.peak = self.base
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, self.rss())
        if self.device.type == "cuda":
            self.cuda_peak = torch.cuda.max_memory_allocated(self.device)


def _coco_vocabulary(n: int, offset: int = 0):
    from .data.class_names import get_categories
    from .vocabulary import Vocabulary, VocabularyClass

    cats = list(get_categories("coco_panoptic"))
    picked = [cats[(offset + i) % len(cats)] for i in range(n)]
    if n > len(cats):  # larger vocabularies: suffix repeated names so they stay distinct
        picked = [c for c in picked]
        classes = [
            VocabularyClass(
                tuple(f"{s} {i // len(cats)}" if i >= len(cats) else s for s in c.synonyms), is_thing=c.is_thing
            )
            for i, c in enumerate(picked)
        ]
    else:
        classes = [VocabularyClass(tuple(c.synonyms), is_thing=c.is_thing) for c in picked]
    return Vocabulary.create(classes)


def _test_image(short: int, long: int) -> np.ndarray:
    try:
        import skimage.data  # type: ignore
        from PIL import Image

        img = skimage.data.chelsea()
    except Exception:
        g = np.random.default_rng(0)
        img = (g.random((300, 451, 3)) * 255).astype(np.uint8)
    from PIL import Image

    return np.array(Image.fromarray(img).resize((long, short), Image.Resampling.BILINEAR))


def fcclip_target(args) -> BenchTarget:
    from .fcclip import build_model, get_config
    from .fcclip.segmenter import FCCLIPSegmenter

    if args.case:
        from .parity.fcclip import build_reference_model
        from .vocabulary import Vocabulary, VocabularyClass

        case = np.load(args.case, allow_pickle=False)
        manifest = args.manifest
        if manifest is None:
            from .parity import default_manifest

            manifest = default_manifest(__import__("pathlib").Path(args.case))
        model, cfg = build_reference_model(manifest)
        model = model.to(args.device)
        synonyms = json.loads(str(case["class_synonyms_json"]))
        vocab = Vocabulary.create(
            [VocabularyClass(tuple(s), is_thing=bool(t)) for s, t in zip(synonyms, case["is_thing"], strict=False)]
        )
        meta = json.loads(str(case["meta_json"]))
        ref = {"official_forward_s": meta.get("forward_seconds"), "official_text_s": meta.get("text_encoding_seconds")}
        image = case["image"]
    else:
        import warnings

        cfg = get_config(args.variant)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = build_model(config=cfg, pretrained=False, device=args.device)
        vocab, image, ref = None, None, {}
    seg = FCCLIPSegmenter(
        model, config=cfg, device=args.device, precision=args.precision, outputs=tuple(args.outputs.split(","))
    )

    def set_resolution(short: int | None):
        if short is None:
            seg.min_size, seg.max_size = cfg.min_size_test, cfg.max_size_test
        else:
            seg.min_size, seg.max_size = short, int(round(short * cfg.max_size_test / cfg.min_size_test))

    return BenchTarget(seg, set_resolution, image, vocab, ref)


def _load_target(name: str, args) -> BenchTarget:
    targets = _bench_targets()
    if name not in targets:
        raise SystemExit(f"unknown model {name!r}; benchmarks exist for {sorted(targets)}")
    module, func = targets[name].split(":")
    try:
        target = getattr(importlib.import_module(module), func)(args)
    except ModuleNotFoundError as e:
        raise SystemExit(f"benchmark for {name!r} is not available ({e})") from e
    use_fast_formulations(target.segmenter, not getattr(args, "reference_heads", False))
    if getattr(args, "compile", False):
        target.segmenter.compile(backend=args.compile_backend, mode=args.compile_mode)
    return target


def _fmt(x: float) -> str:
    return f"{x * 1000:8.1f}"


def run_benchmark(args) -> list[dict]:
    device = torch.device(args.device)
    target = _load_target(args.model, args)
    seg = target.segmenter
    rows = []
    resolutions: Sequence[int | None] = [None] if args.case else [int(r) for r in args.resolutions.split(",")]
    vocab_sizes = [None] if args.case else [int(v) for v in args.vocab_sizes.split(",")]
    batch = max(1, int(getattr(args, "batch", 1)))
    for res in resolutions:
        target.set_resolution(res)
        image = target.image if target.image is not None else _test_image(res or 800, int((res or 800) * 4 / 3))
        for vs in vocab_sizes:
            if target.vocabulary is not None:
                vocab = target.vocabulary
            else:
                assert vs is not None  # sizes are given unless a case supplies the vocabulary
                vocab = _coco_vocabulary(vs)
            cache = getattr(seg, "text_cache", None)
            if cache is not None:
                cache.clear()
            t0 = time.perf_counter()
            encoded = seg.set_vocabulary(vocab)
            text_cold = time.perf_counter() - t0
            text_switch = float("nan")
            if vs is not None and target.vocabulary is None:  # switch: half of the names new
                other = _coco_vocabulary(vs, offset=max(1, vs // 2))
                t0 = time.perf_counter()
                seg.encode_vocabulary(other)
                text_switch = time.perf_counter() - t0
            seg.set_vocabulary(encoded)
            first = float("nan")  # the first call at this size (compiles with --compile)
            for i in range(args.warmup):
                t0 = time.perf_counter()
                _call(seg, image, batch)
                if i == 0:
                    first = time.perf_counter() - t0
            runs = []
            with PeakRSS(device) as mem:
                for _ in range(args.repeat):
                    runs.append(_call(seg, image, batch))
            stages = sorted({k for r in runs for k in r if k != "batch_size"})
            med = {k: statistics.median(r.get(k, 0.0) for r in runs) for k in stages}
            best = min(r["total"] for r in runs)
            row = {
                "resolution": res or "default",
                "input_hw": list(image.shape[:2]),
                "vocab": len(vocab),
                "batch": batch,
                "text_cold_s": text_cold,
                "text_switch_s": text_switch,
                "first_call_s": first,
                "median_s": med,
                "best_total_s": best,
                "frames_per_s": batch / med["total"],
                "peak_rss_mb": (mem.peak - mem.base) / 2**20,
                "rss_mb": mem.peak / 2**20,
            }
            if device.type == "cuda":
                row["cuda_peak_mb"] = mem.cuda_peak / 2**20
            rows.append(row)
            _print_row(row, target.reference)
    return rows


def _call(seg, image: np.ndarray, batch: int) -> dict[str, float]:
    """One timed call: ``predict``, or ``predict_batch`` of ``batch`` copies (cameras of one size)."""
    results = seg.predict_batch([image] * batch) if batch > 1 else [seg.predict(image)]
    return results[0].timings


def _print_row(row: dict, reference: dict) -> None:
    med = row["median_s"]
    order = ["preprocess", "backbone", "pixel_decoder", "transformer_decoder", "classifiers", "postprocess"]
    stages = [k for k in order if k in med] + [k for k in med if k not in order and k != "total"]
    batch = row.get("batch", 1)
    print(
        f"\n== resolution {row['resolution']} (input {row['input_hw'][0]}x{row['input_hw'][1]}), "
        f"vocabulary {row['vocab']} classes" + (f", batches of {batch} images (predict_batch)" if batch > 1 else "")
    )
    print(
        f"  text encoding: cold {row['text_cold_s']:.3f} s"
        + ("" if row["text_switch_s"] != row["text_switch_s"] else f", switch (half new) {row['text_switch_s']:.3f} s")
    )
    for k in stages:
        print(f"  {k:<20s} {_fmt(med[k])} ms (median)")
    per = f" per call of {batch}" if batch > 1 else ""
    print(f"  {'end-to-end':<20s} {_fmt(med['total'])} ms (median){per}, best {_fmt(row['best_total_s'])} ms")
    print(f"  {'frames/s':<20s} {row['frames_per_s']:8.2f} (median)")
    if not math.isnan(row["first_call_s"]):  # NaN: no warm-up call
        print(f"  {'first call':<20s} {_fmt(row['first_call_s'])} ms (warm-up at this size; compiles with --compile)")
    mem = f"  peak memory: +{row['peak_rss_mb']:.0f} MiB over baseline (RSS peak {row['rss_mb']:.0f} MiB)"
    if "cuda_peak_mb" in row:
        mem += f", CUDA max allocated {row['cuda_peak_mb']:.0f} MiB"
    print(mem)
    if reference.get("official_forward_s"):
        print(
            f"  official (reference run, incl. text encoding): forward {reference['official_forward_s']} s, "
            f"text {reference['official_text_s']} s"
        )


def _table_vocabulary(dataset: str, *, joined_synonyms: bool = False):
    """The benchmark's classes as the official code of a row reads them: one class per synonym
    list, or (``joined_synonyms``, CAT-Seg) each list joined into one name."""
    from .data.class_names import get_categories
    from .vocabulary import Vocabulary, VocabularyClass

    if not joined_synonyms:
        # a published list, taken as given (ADE-150 repeats names across classes: 'screen')
        return Vocabulary.from_dataset(dataset)
    # one text per class, commas and all ("screen door, screen"), as CAT-Seg's class files are read
    joined = [VocabularyClass((", ".join(c.synonyms),), is_thing=c.is_thing) for c in get_categories(dataset)]
    return Vocabulary.create(joined, trusted=True)


def _clear_text_cache(seg) -> None:
    cache = getattr(seg, "text_cache", None)
    if cache is not None:
        cache.clear()
    encoder = getattr(seg, "text_encoder", None)
    if encoder is not None and hasattr(encoder, "clear_cache"):
        encoder.clear_cache()


def run_official_table(args) -> list[dict]:
    """Time the :data:`OFFICIAL_TABLE` settings (``args.rows``: names, default all) and print each
    beside the official figures. Steady state: vocabulary encoded beforehand, ``args.warmup`` calls
    discarded, min / median of ``args.repeat``; cold: one call right after clearing the text cache
    (text encoding included); peak: the process's resident set size while the setting ran."""
    from pathlib import Path

    names = list(OFFICIAL_TABLE) if not args.rows else args.rows.split(",")
    unknown = [n for n in names if n not in OFFICIAL_TABLE]
    if unknown:
        raise SystemExit(f"unknown table rows {unknown}; choose from {sorted(OFFICIAL_TABLE)}")
    shared = Path(os.environ.get("OVSEG_SHARED") or Path(__file__).resolve().parents[1].parent / "shared")
    cases = Path(args.cases) if args.cases else shared / "reference" / "cases"
    print(f"# reference: {OFFICIAL_MACHINE}")
    if hasattr(os, "getloadavg") and os.getloadavg()[0] > (os.cpu_count() or 1):
        print(
            f"# note: load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; ratios against the "
            "reference constants only mean something on a machine as quiet as the reference run's"
        )
    device = torch.device(args.device)
    targets: dict[tuple, BenchTarget] = {}
    rows = []
    for name in names:
        spec = OFFICIAL_TABLE[name]
        key = (spec["model"], spec["case"], spec.get("sliding"))
        if key not in targets:
            targets.clear()  # one model in memory at a time: the peak is that of one setting's model
            targs = argparse.Namespace(
                **{
                    **vars(args),
                    "case": str(cases / spec["case"]),
                    "manifest": None,
                    "variant": spec.get("variant"),
                }
            )
            targets[key] = _load_target(spec["model"], targs)
        target = targets[key]
        seg = target.segmenter
        image = target.image
        assert image is not None  # table rows are reference cases, which carry their image
        if spec.get("image_hw"):
            from PIL import Image

            h, w = spec["image_hw"]
            image = np.array(Image.fromarray(image).resize((w, h), Image.Resampling.BILINEAR))
        vocab = (
            _table_vocabulary(spec["vocabulary"], joined_synonyms=spec.get("joined_synonyms", False))
            if spec.get("vocabulary")
            else target.vocabulary
        )
        with PeakRSS(device) as mem:
            _clear_text_cache(seg)
            t0 = time.perf_counter()
            encoded = seg.set_vocabulary(vocab)
            cold_result = seg.predict(image)
            cold = time.perf_counter() - t0
            seg.set_vocabulary(encoded)
            for _ in range(args.warmup):
                seg.predict(image)
            runs = [seg.predict(image).timings for _ in range(args.repeat)]
        stages = [k for k in runs[0] if k != "total"]
        totals = [r["total"] for r in runs]
        row = {
            "name": name,
            "label": spec["label"],
            "input_hw": list(image.shape[:2]),
            "classes": len(vocab),
            "stages_median_s": {k: statistics.median(r[k] for r in runs) for k in stages},
            "stages_cold_s": {k: cold_result.timings[k] for k in stages},
            "steady_min_s": min(totals),
            "steady_median_s": statistics.median(totals),
            "cold_s": cold,
            "peak_rss_gb": mem.peak / 2**30,
            "official_s": spec["official_s"],
            "official_rss_gb": spec["official_rss_gb"],
            "ovseg_then_s": spec["ovseg_then_s"],
            "cold_ratio_then": spec["cold_ratio_then"],
        }
        if args.side_by_side:
            row["formulations"] = _formulations_side_by_side(seg, image, args.repeat, after=not args.reference_heads)
        rows.append(row)
        _print_table_row(row)
    return rows


def machine_line() -> str:
    """The CPU's model name and its fp32 GEMM rate on torch's threads (2048^3, best of 5): machines
    of one kind differ (the same rows took 1.3x longer on one than on another), so figures against
    the reference constants are only comparable beside this line."""
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            name = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), name)
    except OSError:  # pragma: no cover - non-Linux
        pass
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    a @ b
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return f"{name}, {os.cpu_count()} CPUs, fp32 GEMM {2 * 2048**3 / best / 1e9:.0f} GFLOP/s on {torch.get_num_threads()} threads"


def use_fast_formulations(seg, enabled: bool) -> None:
    """The faster CPU formulations of a segmenter (its model's ``use_fast_formulations`` and, for
    FC-CLIP, the separable mask resize) or the official order of operations."""
    fast = getattr(getattr(seg, "model", None), "use_fast_formulations", None)
    if fast is not None:
        fast(enabled)
    if hasattr(seg, "separable_resize"):
        seg.separable_resize = enabled


def _formulations_side_by_side(seg, image, repeat: int, *, after: bool = True) -> dict:
    """Per-stage medians of the default formulations and of the official order of operations,
    calls alternated in this process after a warm-up call of each (like with like); ``after``:
    the formulations left selected."""
    runs: dict[str, list[dict]] = {"default": [], "official_order": []}
    try:
        for _ in range(repeat + 1):
            for name, enabled in (("default", True), ("official_order", False)):
                use_fast_formulations(seg, enabled)
                runs[name].append(seg.predict(image).timings)
    finally:
        use_fast_formulations(seg, after)
    return {name: {k: statistics.median(r[k] for r in rs[1:]) for k in rs[0]} for name, rs in runs.items()}


def _print_table_row(row: dict) -> None:
    off_min, off_med = row["official_s"]
    print(
        f"\n== {row['label']} [{row['name']}] (input {row['input_hw'][0]}x{row['input_hw'][1]}, "
        f"{row['classes']} classes)"
    )
    print(f"  {'stage':<20s} {'steady median':>14s} {'cold':>10s}")
    for k, v in row["stages_median_s"].items():
        print(f"  {k:<20s} {v:12.3f} s {row['stages_cold_s'][k]:8.3f} s")
    print(
        f"  {'end-to-end':<20s} steady min / median {row['steady_min_s']:.2f} / {row['steady_median_s']:.2f} s, "
        f"cold (text encoding included) {row['cold_s']:.2f} s"
    )
    print(
        f"  official (reference, steady) min / median {off_min:.2f} / {off_med:.2f} s -> ratio "
        f"{off_min / row['steady_min_s']:.2f}x (min) / {off_med / row['steady_median_s']:.2f}x (median); "
        f"cold ratio at the reference run {row['cold_ratio_then']}x (official cold time not a constant here)"
    )
    print(
        f"  peak RSS {row['peak_rss_gb']:.2f} GB vs official {row['official_rss_gb']:.2f} GB "
        f"({row['peak_rss_gb'] / row['official_rss_gb']:.2f} of it; target <= 0.5)"
    )
    print(f"  ovseg at the reference run: {row['ovseg_then_s'][0]:.2f} / {row['ovseg_then_s'][1]:.2f} s")
    if "formulations" in row:
        fast, ref = row["formulations"]["default"], row["formulations"]["official_order"]
        print("  formulations side by side (medians, calls alternated): default / official order")
        for k in fast:
            print(f"    {k:<18s} {fast[k]:8.3f} / {ref[k]:8.3f} s  ({ref[k] / max(fast[k], 1e-9):.2f}x)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m ovseg_models.bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--model", default="fcclip", help="a model family with a benchmark target")
    p.add_argument("--variant", default=None, help="model variant (random weights unless --case)")
    p.add_argument("--case", help="time a reference case's image and vocabulary (official weights rule)")
    p.add_argument("--manifest", help="manifest for --case (default: beside the case)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "bf16"])
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the segmenter's stages (Segmenter.compile); the first warm-up call at each size compiles",
    )
    p.add_argument("--compile-backend", default="inductor", help="with --compile: the torch.compile backend")
    p.add_argument("--compile-mode", default=None, help="with --compile: e.g. max-autotune, reduce-overhead")
    p.add_argument(
        "--batch",
        type=int,
        default=1,
        help="images per call: N > 1 times predict_batch of N copies (one camera per image; frames/s counts all)",
    )
    p.add_argument("--resolutions", default="480,640,800", help="shortest edges (ignored with --case)")
    p.add_argument("--vocab-sizes", default="10,50", help="vocabulary sizes (ignored with --case)")
    p.add_argument("--outputs", default="semantic,panoptic", help="post-processing outputs")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--json", help="also write the rows to this JSON file")
    p.add_argument(
        "--reference-heads",
        action="store_true",
        help="the official order of operations instead of the faster formulations "
        "(use_fast_formulations(segmenter, False))",
    )
    p.add_argument(
        "--table",
        action="store_true",
        help="the settings of the side-by-side comparison with the official code, beside its figures",
    )
    p.add_argument("--rows", help=f"with --table: comma-separated subset of {','.join(OFFICIAL_TABLE)}")
    p.add_argument(
        "--side-by-side",
        action="store_true",
        help="with --table: also time each row's default formulations against the official order "
        "of operations (use_fast_formulations(False)), calls alternated",
    )
    p.add_argument(
        "--cases",
        help="with --table: folder of the reference cases (default: "
        "$OVSEG_SHARED/reference/cases, OVSEG_SHARED defaulting to ../shared beside the checkout)",
    )
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"# {'official-comparison table' if args.table else args.model} on {args.device} ({args.precision}), "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
        + (", official order of operations (reference heads)" if args.reference_heads else "")
        + (
            f", torch.compile ({args.compile_backend}{', ' + args.compile_mode if args.compile_mode else ''})"
            if args.compile
            else ""
        )
    )
    if args.table and (args.compile or args.batch > 1):
        raise SystemExit("--compile and --batch apply to the per-model benchmark, not --table")
    if args.device == "cpu":
        print(f"# this machine: {machine_line()}")
    elif args.device.startswith("cuda"):
        dev = torch.device(args.device)
        props = torch.cuda.get_device_properties(dev)
        print(f"# this device: {props.name}, {props.total_memory / 2**30:.0f} GiB, {props.multi_processor_count} SMs")
    rows = run_official_table(args) if args.table else run_benchmark(args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
