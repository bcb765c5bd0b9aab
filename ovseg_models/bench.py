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
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch

__all__ = ["BENCH_TARGETS", "BenchTarget", "main", "run_benchmark"]

#: model name -> "module:function(args) -> BenchTarget"
BENCH_TARGETS: dict[str, str] = {
    "fcclip": "ovseg_models.bench:fcclip_target",
    "catseg": "ovseg_models.catseg.bench:bench_target",
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
        classes = [VocabularyClass(tuple(f"{s} {i // len(cats)}" if i >= len(cats) else s for s in c.synonyms),
                                   is_thing=c.is_thing) for i, c in enumerate(picked)]
    else:
        classes = [VocabularyClass(tuple(c.synonyms), is_thing=c.is_thing) for c in picked]
    return Vocabulary.create(classes)


def _test_image(short: int, long: int) -> np.ndarray:
    try:
        from PIL import Image
        import skimage.data  # type: ignore
        img = skimage.data.chelsea()
    except Exception:
        g = np.random.default_rng(0)
        img = (g.random((300, 451, 3)) * 255).astype(np.uint8)
    from PIL import Image
    return np.array(Image.fromarray(img).resize((long, short), Image.BILINEAR))


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
        vocab = Vocabulary.create([VocabularyClass(tuple(s), is_thing=bool(t))
                                   for s, t in zip(synonyms, case["is_thing"])])
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
    seg = FCCLIPSegmenter(model, config=cfg, device=args.device, precision=args.precision,
                          outputs=tuple(args.outputs.split(",")))

    def set_resolution(short: int | None):
        if short is None:
            seg.min_size, seg.max_size = cfg.min_size_test, cfg.max_size_test
        else:
            seg.min_size, seg.max_size = short, int(round(short * cfg.max_size_test / cfg.min_size_test))

    return BenchTarget(seg, set_resolution, image, vocab, ref)


def _load_target(name: str, args) -> BenchTarget:
    if name not in BENCH_TARGETS:
        raise SystemExit(f"unknown model {name!r}; benchmarks exist for {sorted(BENCH_TARGETS)}")
    module, func = BENCH_TARGETS[name].split(":")
    try:
        return getattr(importlib.import_module(module), func)(args)
    except ModuleNotFoundError as e:
        raise SystemExit(f"benchmark for {name!r} is not available ({e})") from e


def _fmt(x: float) -> str:
    return f"{x * 1000:8.1f}"


def run_benchmark(args) -> list[dict]:
    device = torch.device(args.device)
    target = _load_target(args.model, args)
    seg = target.segmenter
    rows = []
    resolutions: Sequence[int | None] = [None] if args.case else [int(r) for r in args.resolutions.split(",")]
    vocab_sizes = [None] if args.case else [int(v) for v in args.vocab_sizes.split(",")]
    for res in resolutions:
        target.set_resolution(res)
        image = target.image if target.image is not None else _test_image(res or 800, int((res or 800) * 4 / 3))
        for vs in vocab_sizes:
            vocab = target.vocabulary if target.vocabulary is not None else _coco_vocabulary(vs)
            cache = getattr(seg, "text_cache", None)
            if cache is not None:
                cache.clear()
            t0 = time.perf_counter()
            encoded = seg.set_vocabulary(vocab)
            text_cold = time.perf_counter() - t0
            text_switch = float("nan")
            if target.vocabulary is None:  # switch: half of the names new
                other = _coco_vocabulary(vs, offset=max(1, vs // 2))
                t0 = time.perf_counter()
                seg.encode_vocabulary(other)
                text_switch = time.perf_counter() - t0
            seg.set_vocabulary(encoded)
            for _ in range(args.warmup):
                seg.predict(image)
            runs = []
            with PeakRSS(device) as mem:
                for _ in range(args.repeat):
                    runs.append(seg.predict(image).timings)
            stages = sorted({k for r in runs for k in r})
            med = {k: statistics.median(r.get(k, 0.0) for r in runs) for k in stages}
            best = min(r["total"] for r in runs)
            row = {"resolution": res or "default", "input_hw": list(image.shape[:2]), "vocab": len(vocab),
                   "text_cold_s": text_cold, "text_switch_s": text_switch, "median_s": med, "best_total_s": best,
                   "peak_rss_mb": (mem.peak - mem.base) / 2**20, "rss_mb": mem.peak / 2**20}
            if device.type == "cuda":
                row["cuda_peak_mb"] = mem.cuda_peak / 2**20
            rows.append(row)
            _print_row(row, target.reference)
    return rows


def _print_row(row: dict, reference: dict) -> None:
    med = row["median_s"]
    order = ["preprocess", "backbone", "pixel_decoder", "transformer_decoder", "classifiers", "postprocess"]
    stages = [k for k in order if k in med] + [k for k in med if k not in order and k != "total"]
    print(f"\n== resolution {row['resolution']} (input {row['input_hw'][0]}x{row['input_hw'][1]}), "
          f"vocabulary {row['vocab']} classes")
    print(f"  text encoding: cold {row['text_cold_s']:.3f} s" +
          ("" if row["text_switch_s"] != row["text_switch_s"] else f", switch (half new) {row['text_switch_s']:.3f} s"))
    for k in stages:
        print(f"  {k:<20s} {_fmt(med[k])} ms (median)")
    print(f"  {'end-to-end':<20s} {_fmt(med['total'])} ms (median), best {_fmt(row['best_total_s'])} ms")
    mem = f"  peak memory: +{row['peak_rss_mb']:.0f} MiB over baseline (RSS peak {row['rss_mb']:.0f} MiB)"
    if "cuda_peak_mb" in row:
        mem += f", CUDA max allocated {row['cuda_peak_mb']:.0f} MiB"
    print(mem)
    if reference.get("official_forward_s"):
        print(f"  official (reference run, incl. text encoding): forward {reference['official_forward_s']} s, "
              f"text {reference['official_text_s']} s")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ovseg_models.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="fcclip", help=f"one of {sorted(BENCH_TARGETS)}")
    p.add_argument("--variant", default=None, help="model variant (random weights unless --case)")
    p.add_argument("--case", help="time a reference case's image and vocabulary (official weights rule)")
    p.add_argument("--manifest", help="manifest for --case (default: beside the case)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "bf16"])
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--resolutions", default="480,640,800", help="shortest edges (ignored with --case)")
    p.add_argument("--vocab-sizes", default="10,50", help="vocabulary sizes (ignored with --case)")
    p.add_argument("--outputs", default="semantic,panoptic", help="post-processing outputs")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--json", help="also write the rows to this JSON file")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"# {args.model} on {args.device} ({args.precision}), torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    rows = run_benchmark(args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
