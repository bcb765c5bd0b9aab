"""Benchmark: ONNX Runtime against eager PyTorch, side by side in one run (prints a table).

    python -m ovseg_models.export.bench [--models fcclip,catseg] [--classes 20,150] [--repeats 3]

For each model (FC-CLIP RN50 at a 640x480 frame; CAT-Seg ViT-B/16 without the sliding window, one
384x384 view of the frame) it exports the image network (export time, file size), then runs
``predict`` on the same 640x480 photo with each vocabulary size, the two backends alternated call by
call after one warm-up each: median latency, and the peak resident memory above the level before
the call (sampled at 200 Hz). Random weights (no download): the speed and memory do not depend on
them. Steady state: the vocabulary is encoded before timing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class _Peak:
    """Peak RSS above the level at entry, sampled on a thread."""

    def __enter__(self):
        self.base = self.peak = _rss()
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self):
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss())

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, _rss())
        self.above = self.peak - self.base


def _photo(h=480, w=640) -> np.ndarray:
    from PIL import Image
    from skimage import data

    return np.asarray(Image.fromarray(data.astronaut()).resize((w, h), Image.Resampling.BILINEAR))


def _vocabulary(n: int):
    from ovseg_models.vocabulary import Vocabulary

    names = [c.name for c in Vocabulary.from_dataset("ade20k_150")]
    return names[:n]


def bench_model(model: str, classes: list[int], repeats: int, folder: Path) -> list[dict]:
    import torch

    from ovseg_models import create_segmenter
    from ovseg_models.export import export_onnx, use_onnxruntime, use_pytorch

    if model == "fcclip":
        seg = create_segmenter("fcclip", variant="rn50", pretrained=False)
        kwargs: dict = {"image_size": (480, 640)}
        predict_opts: dict = {}
        name = "FC-CLIP RN50"
    else:
        seg = create_segmenter("catseg", variant="vitb16_384", pretrained=False, sliding_window=False)
        kwargs = {}
        predict_opts = {}
        name = "CAT-Seg ViT-B/16 (no sliding window)"
    path = folder / f"{model}.onnx"
    t0 = time.perf_counter()
    export_onnx(seg, path, **kwargs)
    export_s = time.perf_counter() - t0
    size_mb = path.stat().st_size / 2**20
    image = _photo()
    rows = []
    torch_net = seg.network
    use_onnxruntime(seg, path)
    onnx_net = seg.network
    for k in classes:
        seg.set_vocabulary(_vocabulary(k))
        times: dict[str, list[float]] = {"torch": [], "onnxruntime": []}
        peaks: dict[str, list[int]] = {"torch": [], "onnxruntime": []}
        for i in range(repeats + 1):
            for backend, net in (("torch", torch_net), ("onnxruntime", onnx_net)):
                seg.network = net
                with _Peak() as p:
                    t = time.perf_counter()
                    seg.predict(image, **predict_opts)
                    dt = time.perf_counter() - t
                if i:  # the first round warms both up
                    times[backend].append(dt)
                    peaks[backend].append(p.above)
        use_pytorch(seg)
        row: dict = {
            "model": name,
            "classes": k,
            "torch_s": statistics.median(times["torch"]),
            "onnxruntime_s": statistics.median(times["onnxruntime"]),
            "torch_peak_mb": max(peaks["torch"]) / 2**20,
            "onnxruntime_peak_mb": max(peaks["onnxruntime"]) / 2**20,
            "export_s": export_s,
            "file_mb": size_mb,
            "threads": torch.get_num_threads(),
        }
        row["speedup"] = row["torch_s"] / row["onnxruntime_s"]
        rows.append(row)
        print(_line(row), flush=True)
    return rows


def _line(r: dict) -> str:
    return (
        f"| {r['model']} | {r['classes']} | {r['torch_s']:.2f} s | {r['onnxruntime_s']:.2f} s | "
        f"{r['speedup']:.2f}x | {r['torch_peak_mb']:.0f} / {r['onnxruntime_peak_mb']:.0f} MiB | "
        f"{r['export_s']:.0f} s | {r['file_mb']:.0f} MiB |"
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ovseg_models.export.bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="fcclip,catseg")
    ap.add_argument("--classes", default="20,150")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    classes = [int(c) for c in args.classes.split(",")]
    print(
        "| model | classes | eager PyTorch | ONNX Runtime | speed-up | peak RSS above start (torch / ORT) "
        "| export | file |\n|---|---|---|---|---|---|---|---|",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        for m in args.models.split(","):
            bench_model(m.strip(), classes, args.repeats, Path(tmp))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
