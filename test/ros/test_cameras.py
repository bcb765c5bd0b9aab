"""Several cameras on one node (``cameras`` parameter), over real DDS.

Four cameras on one model: ``front`` and ``left`` stream at 30 Hz, ``right`` sends garbage,
``rear`` sends nothing. Checked: both live cameras are served fairly, every output carries its
own camera's header, the garbage and the dead camera hold nothing up, the vocabulary switches
mid-stream with zero outputs mixing two vocabularies (per camera), and the diagnostics have a
status per camera. A second run with the real tiny FC-CLIP shows the frames going through
``predict_batch`` together.
"""

from __future__ import annotations

import time

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from node_harness import (
    VOCABULARIES,
    VocabularyStampingSegmenter,
    cached_create,
    rgb_image,
    running_node,
    stamp_key,
    tiny_params,
    write_vocab_file,
)
from rclpy.qos import QoSProfile, ReliabilityPolicy
from ros_test_utils import spin_until
from sensor_msgs.msg import Image

from ovseg.msg import PanopticSegmentation, SemanticInfo, VocabularyClass
from ovseg.srv import SetVocabulary
from ovseg_ros import conversions

NS = "/segmentation"
CAMERAS = ["front", "left", "right", "rear"]
LIVE = ["front", "left"]


class CameraProbe:
    """Publishes each camera's frames and records each camera's outputs."""

    def __init__(self, ros_context, executor, cameras):
        self.node = rclpy.create_node("ovseg_camera_probe", context=ros_context)
        self.executor = executor
        executor.add_node(self.node)
        q = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        self.got = {c: {"semantic": [], "info": [], "panoptic": []} for c in cameras}
        self.pubs, self.sent = {}, {c: {} for c in cameras}
        for c in cameras:
            self.node.create_subscription(Image, f"{NS}/{c}/semantic", self.got[c]["semantic"].append, q)
            self.node.create_subscription(SemanticInfo, f"{NS}/{c}/semantic/info", self.got[c]["info"].append, q)
            self.node.create_subscription(PanopticSegmentation, f"{NS}/{c}/panoptic", self.got[c]["panoptic"].append, q)
            self.pubs[c] = self.node.create_publisher(Image, f"{NS}/{c}/image", 10)
        self.diagnostics: list = []
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self.diagnostics.append, 10)
        self.set_client = self.node.create_client(SetVocabulary, f"{NS}/set_vocabulary")
        self._n = 0

    def send(self, camera: str, img: np.ndarray) -> None:
        self._n += 1
        msg = conversions.numpy_to_image(img, "rgb8")
        msg.header.stamp.sec, msg.header.stamp.nanosec = 2000 + self._n, 7
        msg.header.frame_id = f"{camera}_optical"
        self.sent[camera][stamp_key(msg)] = msg.header.frame_id
        self.pubs[camera].publish(msg)

    def send_garbage(self, camera: str) -> None:
        msg = conversions.numpy_to_image(rgb_image(0), "rgb8")
        msg.data = msg.data[:-7]  # shorter than height * step
        self.pubs[camera].publish(msg)

    def destroy(self):
        self.executor.remove_node(self.node)
        self.node.destroy_node()


def _stream(probe, seconds: float, *, switch_every: float | None = None, min_switches: int = 0):
    """30 Hz on the live cameras, garbage on 'right' at 10 Hz, switches while streaming."""
    versions = {}
    t0 = time.monotonic()
    next_frame = next_garbage = t0
    next_switch = t0 + (switch_every or 1e9)
    pending, i = None, 0
    while time.monotonic() - t0 < seconds or (len(versions) < min_switches and time.monotonic() - t0 < 60):
        now = time.monotonic()
        if now >= next_frame:
            for k, c in enumerate(LIVE):
                probe.send(c, rgb_image(k))
            next_frame += 1 / 30
        if now >= next_garbage:
            probe.send_garbage("right")
            next_garbage += 0.1
        if switch_every and pending is None and now >= next_switch:
            names = VOCABULARIES[i % len(VOCABULARIES)]
            i += 1
            req = SetVocabulary.Request(classes=[VocabularyClass(name=n) for n in names])
            pending = (names, probe.set_client.call_async(req))
        if pending is not None and pending[1].done():
            res = pending[1].result()
            assert res.success, res.message
            versions[res.version] = pending[0]
            pending, next_switch = None, time.monotonic() + (switch_every or 1e9)
        probe.executor.spin_once(timeout_sec=0.002)
    if pending is not None:
        assert spin_until(probe.executor, pending[1].done, 20)
        versions[pending[1].result().version] = pending[0]
    spin_until(probe.executor, lambda: False, 1.0)
    return versions


def _check_camera_outputs(probe, names_by_version, *, exact: bool) -> dict[str, int]:
    counts = {}
    for c in CAMERAS:
        got = probe.got[c]
        if c not in LIVE:
            assert not got["semantic"] and not got["panoptic"], f"camera {c} sent no valid frame"
            continue
        infos = {stamp_key(m): m.vocabulary_version for m in got["info"]}
        pans = {stamp_key(m): m for m in got["panoptic"]}
        last_version = 0
        for sem in got["semantic"]:
            key = stamp_key(sem)
            assert probe.sent[c].get(key) == sem.header.frame_id == f"{c}_optical", "another camera's header"
            version = infos[key]
            assert pans[key].vocabulary_version == version and pans[key].header.frame_id == sem.header.frame_id
            assert version >= last_version, "a camera's outputs went back to an older vocabulary"
            last_version = version
            names = names_by_version[version]
            labels = conversions.image_to_numpy(sem)
            valid = labels[labels != 65535]
            assert valid.size == 0 or valid.max() < len(names)
            for s in pans[key].segments:
                assert s.label == names[s.category]
            if exact:
                assert np.all(labels == len(names) - 1), "an output mixes two vocabularies"
        counts[c] = len(got["semantic"])
    return counts


def test_four_cameras_one_node_fair_isolated_and_never_mixed(ros_context, executor, tmp_path):
    params = tiny_params(write_vocab_file(tmp_path), cameras=CAMERAS, **{"cameras.rear.max_rate": 5.0})
    with running_node(ros_context, params, factory=lambda *a, **k: VocabularyStampingSegmenter()) as node:
        assert [c.name for c in node.cameras] == CAMERAS
        assert sorted(s.topic_name for s in node.input_subscriptions) == sorted(f"{NS}/{c}/image" for c in CAMERAS)
        assert {f"{c}/semantic" for c in CAMERAS} <= node.outputs and "semantic" not in node.outputs
        probe = CameraProbe(ros_context, executor, CAMERAS)
        assert spin_until(executor, lambda: all(p.get_subscription_count() for p in probe.pubs.values()), 10)
        default = node.vocabulary
        versions = _stream(probe, 6.0, switch_every=0.5, min_switches=5)
        names_by_version = {default.version: list(default.names), **versions}
        counts = _check_camera_outputs(probe, names_by_version, exact=True)
        assert len(versions) >= 5
        assert min(counts.values()) >= 10 and max(counts.values()) <= 2 * min(counts.values()), counts
        seen = {pan.vocabulary_version for c in LIVE for pan in probe.got[c]["panoptic"]}
        assert len(seen) >= 3, "outputs of several vocabularies expected"
        cams = {c.name: c for c in node.cameras}
        assert cams["right"].stats.invalid > 0 and cams["right"].stats.processed == 0
        assert cams["rear"].stats.received == 0
        assert node.stats.errors == 0 and node.stats.invalid == cams["right"].stats.invalid
        assert spin_until(executor, lambda: len(probe.diagnostics) > 0, 5)
        names = {s.name for s in probe.diagnostics[-1].status}
        assert {f"{NS}/ovseg/{c}: segmentation" for c in CAMERAS} <= names
        probe.destroy()


def test_cameras_share_one_forward_pass_of_the_real_model(ros_context, executor, tmp_path):
    calls = []

    def factory(*args, **kwargs):
        seg = cached_create(*args, **kwargs)
        if not hasattr(seg, "_counted"):
            original = seg.predict_batch

            def predict_batch(images, **kw):
                calls.append(len(images))
                return original(images, **kw)

            seg.predict_batch, seg._counted = predict_batch, True
        return seg

    params = tiny_params(write_vocab_file(tmp_path), cameras=CAMERAS)
    with running_node(ros_context, params, factory=factory) as node:
        probe = CameraProbe(ros_context, executor, CAMERAS)
        assert spin_until(executor, lambda: all(p.get_subscription_count() for p in probe.pubs.values()), 10)
        default = node.vocabulary
        _stream(probe, 4.0)
        counts = _check_camera_outputs(probe, {default.version: list(default.names)}, exact=False)
        assert min(counts.values()) >= 3, counts
        assert calls and max(calls) == 2  # the two live cameras' frames, one batch
        probe.destroy()


def test_camera_slots_serve_every_waiting_camera_and_keep_each_ones_rate():
    from ovseg_ros.worker import CameraSlots

    slots = CameraSlots()
    slots.set_cameras(["a", "b", "c"], {"c": 2.0})
    assert slots.put("b", 1) is None and slots.put("b", 2) == 1  # the newest frame wins
    slots.put("a", 3)
    slots.put("c", 4)
    assert slots.take(0.1) == [("a", 3), ("b", 2), ("c", 4)]  # camera order, all at once
    slots.put("c", 5)
    slots.put("a", 6)
    assert slots.take(0.1) == [("a", 6)]  # c is due 0.5 s after its last frame was taken
    t0 = time.monotonic()
    assert slots.take(2.0) == [("c", 5)] and 0.3 < time.monotonic() - t0 < 1.0
    assert slots.take(0.05) is None
    slots.close()
    assert slots.take(1.0) is None


def test_camera_parameters_are_checked():
    import pytest

    from ovseg_ros.cameras import cameras_from_parameters
    from ovseg_ros.params import ConfigError, NodeConfig

    cfg = NodeConfig()
    [single] = cameras_from_parameters([], {}, cfg)
    assert single.name == "" and single.topic == "image" and single.prefix == ""
    cams = cameras_from_parameters(["front", "wrist"], {"cameras.wrist.transport": "compressed"}, cfg)
    assert [(c.topic, c.transport, c.prefix) for c in cams] == [
        ("front/image", "raw", "front/"),
        ("wrist/image", "compressed", "wrist/"),
    ]
    for names, values, match in [
        (["front", "front"], {}, "more than once"),
        (["1st"], {}, "not a camera name"),
        (["a/b"], {}, "not a camera name"),
        (["front"], {"cameras.front.transport": "h264"}, "transport"),
        (["front"], {"cameras.front.max_rate": -1.0}, "max_rate"),
        (["a", "b"], {"cameras.b.topic": "a/image"}, "same topic"),
    ]:
        with pytest.raises(ConfigError, match=match):
            cameras_from_parameters(names, values, cfg)
