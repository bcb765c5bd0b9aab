"""Vocabulary switches under a 30 Hz camera stream: zero outputs mixing two vocabularies.

Two runs: the real tiny FC-CLIP (every output's categories and labels must belong to the
vocabulary whose version it carries; semantic images must only hold indices of the vocabulary
current when they were published), and a deterministic segmenter whose every pixel and segment
encodes the vocabulary it was given, which makes the check exact.
"""

from __future__ import annotations

import time

import numpy as np
from node_harness import (
    VOCABULARIES,
    Probe,
    VocabularyStampingSegmenter,
    rgb_image,
    running_node,
    stamp_key,
    tiny_params,
    write_vocab_file,
)
from ros_test_utils import spin_until

from ovseg_ros import conversions


def _stream_with_switches(
    probe, executor, seconds: float = 6.0, switch_every: float = 0.4, min_switches: int = 6, max_seconds: float = 60.0
):
    """Publish at 30 Hz while switching vocabularies; {version: class names} of the accepted ones.

    Streams for ``seconds``, longer (up to ``max_seconds``) until ``min_switches`` were accepted:
    on a loaded machine text encoding is slower, and the test is about mixing, not speed.
    """
    from ovseg.msg import VocabularyClass
    from ovseg.srv import SetVocabulary

    versions = {}
    t0 = time.monotonic()
    next_frame, next_switch, i, pending = t0, t0 + switch_every, 0, None
    img = conversions.numpy_to_image(rgb_image(0), "rgb8")
    while time.monotonic() - t0 < seconds or (len(versions) < min_switches and time.monotonic() - t0 < max_seconds):
        now = time.monotonic()
        if now >= next_frame:
            probe.pub.publish(probe.next_header(img))
            next_frame += 1 / 30
        if pending is None and now >= next_switch:
            names = VOCABULARIES[i % len(VOCABULARIES)]
            i += 1
            req = SetVocabulary.Request(classes=[VocabularyClass(name=n) for n in names])
            pending = (names, probe.set_client.call_async(req))
        if pending is not None and pending[1].done():
            res = pending[1].result()
            assert res.success, res.message
            versions[res.version] = pending[0]
            pending, next_switch = None, time.monotonic() + switch_every
        executor.spin_once(timeout_sec=0.002)
    if pending is not None:
        assert spin_until(executor, pending[1].done, 20)
        versions[pending[1].result().version] = pending[0]
    probe.spin(1.0)
    return versions


def _check_no_mixing(probe, versions, default, exact: bool):
    names_by_version = {default.version: [c.name for c in default.classes], **versions}
    assert len(versions) >= 5, "too few switches happened"
    pans = {stamp_key(m): m for m in probe.got["panoptic"]}
    assert len(pans) >= 10
    seen_versions = set()
    for pan in pans.values():
        names = names_by_version[pan.vocabulary_version]
        seen_versions.add(pan.vocabulary_version)
        for s in pan.segments:
            assert s.category < len(names) and s.label == names[s.category]
        if exact:
            assert [s.category for s in pan.segments] == [len(names) - 1]
    assert len(seen_versions) >= 3, "outputs of several vocabularies expected"
    matched = 0
    for sem in probe.got["semantic"]:
        labels = conversions.image_to_numpy(sem)
        pan = pans.get(stamp_key(sem))
        assert pan is not None, "every semantic image has its panoptic twin"
        names = names_by_version[pan.vocabulary_version]
        valid = labels[labels != 65535]
        assert valid.size == 0 or valid.max() < len(names)
        if exact:
            assert np.all(labels == len(names) - 1)
        matched += 1
    assert matched >= 10


def test_vocabulary_switch_under_30hz_stream_exact(ros_context, executor, tmp_path):
    vocab_file = write_vocab_file(tmp_path)
    seg = VocabularyStampingSegmenter()
    with running_node(ros_context, tiny_params(vocab_file), factory=lambda model, **kw: seg) as node:
        probe = Probe(ros_context, executor)
        probe.wait_connected()
        default = probe.get_vocabulary()
        versions = _stream_with_switches(probe, executor)
        _check_no_mixing(probe, versions, default, exact=True)
        assert node.stats.errors == 0
        order = list(versions)  # in the order the changes were accepted: each newer than all before
        assert order == sorted(order) and len(order) == len(set(order)) and order[0] > default.version
        probe.destroy()


def test_vocabulary_switch_under_30hz_stream_real_model(ros_context, executor, tmp_path):
    vocab_file = write_vocab_file(tmp_path)
    with running_node(ros_context, tiny_params(vocab_file)) as node:
        probe = Probe(ros_context, executor)
        probe.wait_connected()
        default = probe.get_vocabulary()
        versions = _stream_with_switches(probe, executor, seconds=7.0)
        _check_no_mixing(probe, versions, default, exact=False)
        s = node.stats
        assert s.errors == 0 and s.dropped > 0  # 30 Hz is faster than the model: latest frame wins
        probe.destroy()


class SlowTextSegmenter(VocabularyStampingSegmenter):
    """Text encoding takes ``seconds`` after the default vocabulary (a large vocabulary on a robot's CPU)."""

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds, self.encodes = seconds, 0

    def _encode_vocabulary(self, vocabulary):
        self.encodes += 1
        if self.encodes > 1:
            time.sleep(self.seconds)
        return {"n": len(vocabulary)}


def test_frames_keep_flowing_while_a_slow_vocabulary_is_encoded(ros_context, executor, tmp_path):
    """The node's single-threaded executor is not blocked by set_vocabulary: encoding runs on a thread."""
    from ovseg.msg import VocabularyClass
    from ovseg.srv import SetVocabulary

    seg = SlowTextSegmenter(seconds=2.0)
    with running_node(ros_context, tiny_params(write_vocab_file(tmp_path)), factory=lambda model, **kw: seg) as node:
        probe = Probe(ros_context, executor)
        probe.wait_connected()
        assert spin_until(executor, probe.set_client.service_is_ready, 10)
        v1 = node.vocabulary.version
        img = conversions.numpy_to_image(rgb_image(0), "rgb8")
        future = probe.set_client.call_async(
            SetVocabulary.Request(classes=[VocabularyClass(name="x"), VocabularyClass(name="y")])
        )
        t0 = time.monotonic()
        while not future.done() and time.monotonic() - t0 < 20:
            probe.pub.publish(probe.next_header(img))
            probe.spin(1 / 30)
        assert future.done() and future.result().success and future.result().version > v1
        v2 = future.result().version
        during = [m for m in probe.got["panoptic"] if m.vocabulary_version == v1]
        assert time.monotonic() - t0 >= 1.9  # the call really took the encoding time
        assert len(during) >= 10, f"only {len(during)} frames were processed during a 2 s encoding"
        assert node.stats.processed >= len(during)
        probe.pub.publish(probe.next_header(img))
        assert spin_until(executor, lambda: any(m.vocabulary_version == v2 for m in probe.got["panoptic"]), 10)
        probe.destroy()
