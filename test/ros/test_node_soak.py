"""Soak: 2,000 frames through the node with the tiny real model; resident memory must stay flat.

Frames (rgb8 at 64x48, every tenth bgr8 with row padding, every 250th malformed) are published at
about 40 Hz with all outputs subscribed, and the vocabulary changes every 500 frames. The
resident set size of this process (node, model, probe) is sampled after a 300-frame warm-up and
every 100 frames afterwards; it may grow by at most ``RSS_GROWTH_LIMIT_MB`` (measured on the
development machine, 2 cores: 2.4 MB after warm-up over 1,700 frames; the limit leaves room for allocator noise).
"""

from __future__ import annotations

import os
import time

import pytest
from node_harness import Probe, rgb_image, running_node, tiny_params, write_vocab_file
from ros_test_utils import spin_until

from ovseg_ros import conversions

FRAMES = 2000
RSS_GROWTH_LIMIT_MB = 20.0


def rss_mb() -> float:
    with open(f"/proc/{os.getpid()}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.slow
def test_soak_2000_frames_memory_stable(ros_context, executor, tmp_path):
    vocab_file = write_vocab_file(tmp_path)
    with running_node(ros_context, tiny_params(vocab_file, **{"diagnostics.period": 0.5})) as node:
        counts = {k: 0 for k in ("semantic", "panoptic", "overlay", "vocabulary", "diagnostics")}
        probe = _CountingProbe(ros_context, executor, counts)
        probe.wait_connected()
        frames = []
        for i in range(8):
            rgb = rgb_image(i)
            frames.append(conversions.numpy_to_image(rgb, "rgb8"))
            frames.append(conversions.numpy_to_image(rgb[:, :, ::-1].copy(), "bgr8", step=64 * 3 + 8))
        bad = conversions.numpy_to_image(rgb_image(0), "rgb8")
        bad.data = bad.data[:100]
        samples = []
        t0 = time.monotonic()
        for i in range(FRAMES):
            msg = bad if i % 250 == 249 else frames[i % len(frames)]
            probe.pub.publish(probe.next_header(msg))
            if i % 500 == 499:
                probe.set_vocabulary([f"thing {i}", "wall", "floor"])
            deadline = t0 + (i + 1) / 40
            while time.monotonic() < deadline:
                executor.spin_once(timeout_sec=max(0.0, deadline - time.monotonic()))
            if i >= 300 and i % 100 == 0:
                samples.append(rss_mb())
        spin_until(executor, lambda: node.stats.received >= FRAMES - 5 and not node.busy, 20)
        probe.spin(1.0)
        samples.append(rss_mb())
        s = node.stats.snapshot()
        growth = max(samples) - samples[0]
        print(
            f"\nsoak: {FRAMES} frames in {time.monotonic() - t0:.0f} s; received {s['received']}, processed "
            f"{s['processed']}, dropped {s['dropped']}, invalid {s['invalid']}, errors {s['errors']}; "
            f"RSS after warm-up {samples[0]:.1f} MB, max {max(samples):.1f} MB, end {samples[-1]:.1f} MB, "
            f"growth {growth:.1f} MB"
        )
        assert s["errors"] == 0
        lost = FRAMES - s["received"]  # best-effort input: a lost frame may be a malformed one
        assert FRAMES // 250 - lost <= s["invalid"] <= FRAMES // 250
        # best-effort input (sensor-data QoS, depth 5): while the model holds both cores the
        # executor falls behind and DDS drops frames before the node sees them; most still arrive
        assert s["received"] >= FRAMES // 2
        assert s["processed"] >= 300 and counts["panoptic"] >= 300 and counts["overlay"] >= 300
        assert s["processed"] + s["dropped"] + s["invalid"] + s["stale"] == s["received"]
        assert growth < RSS_GROWTH_LIMIT_MB, samples
        probe.destroy()


class _CountingProbe(Probe):
    """A probe whose subscriptions count messages instead of keeping them (vocabulary kept)."""

    def __init__(self, ros_context, executor, counts):
        self._counts = counts
        super().__init__(ros_context, executor)

    def __setattr__(self, name, value):
        if name == "got":
            value = _CountingDict(value, self._counts)
        super().__setattr__(name, value)


class _CountingDict(dict):
    def __init__(self, d, counts):
        super().__init__()
        for k in d:
            self[k] = _CountingList(k, counts)


class _CountingList(list):
    def __init__(self, key, counts):
        super().__init__()
        self.key, self.counts = key, counts

    def append(self, msg):
        self.counts[self.key] += 1
        if self.key == "vocabulary":
            super().append(msg)
