"""Returning freed host memory to the OS (``ovseg_models.host_memory``) and the segmenter's use of it."""

import ctypes.util
import platform

import numpy as np
import pytest
import torch
from tiny_models import tiny_catseg, tiny_fcclip

from ovseg_models.host_memory import release_free_memory
from ovseg_models.segmenter import StageTimer

glibc = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc" or not ctypes.util.find_library("c"),
    reason="malloc_trim is glibc's",
)


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


@glibc
def test_release_returns_freed_heap_pages():
    # 3,000 tensors of 64 KiB live on the heap (below glibc's mmap threshold); the last one stays
    # allocated, so the heap cannot shrink from its top by itself when the others are freed
    blocks = [torch.ones(16 * 1024) for _ in range(3000)]
    keep = blocks[-1]
    del blocks
    before = _rss()
    assert release_free_memory() is True
    after = _rss()
    assert before - after > 100 * 2**20, (before, after)
    assert keep.sum() == keep.numel()


def test_stage_timer_calls_after_stage_outside_the_stage_time():
    called = []
    timer = StageTimer(after_stage=called.append)
    with timer("a"):
        pass
    with timer("b"):
        pass
    assert called == ["a", "b"]
    timer = StageTimer(after_stage=lambda name: (called.append(name), __import__("time").sleep(0.05)))
    with timer("c"):
        pass
    assert timer.times["c"] < 0.05


@pytest.mark.parametrize("build", [tiny_fcclip, tiny_catseg], ids=["fcclip", "catseg"])
def test_released_stages_are_stages_of_predict_and_outputs_do_not_change(build):
    seg = build()
    seg.set_vocabulary(["cat", "dog", "wall"])
    image = np.random.default_rng(3).integers(0, 255, (96, 128, 3), dtype=np.uint8)
    released = []
    seg._after_stage = lambda name, orig=seg._after_stage: (released.append(name), orig(name))
    kept = seg.predict(image)
    # a renamed stage would silently stop being released: every named one must occur in predict
    assert set(seg.release_after_stages) <= set(kept.timings), (seg.release_after_stages, kept.timings)
    assert set(released) == {k for k in kept.timings if k != "total"}
    seg.release_memory = False
    released.clear()
    plain = seg.predict(image)
    assert released == []
    assert (plain.semantic == kept.semantic).all()
    assert np.array_equal(plain.score, kept.score)
