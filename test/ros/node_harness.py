"""Fixtures for the node tests (no tests here): the tiny real FC-CLIP, a running node, a probe node.

The node runs through ``ovseg_ros.harness`` with the tiny model of ``config/tiny_random.yaml``
(``ovseg_ros.tiny``: the real FC-CLIP code path with an RN50 CLIP, random weights, one decoder
layer, 64 px input); each model is built once per configuration and shared (``cached_create``), so
each test pays only for its node.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import rclpy
import torch
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from ros_test_utils import spin_until
from sensor_msgs.msg import CompressedImage, Image

from ovseg.msg import PanopticSegmentation, Vocabulary, VocabularyClass
from ovseg.srv import GetVocabulary, SetVocabulary
from ovseg_models.segmenter import Segment, SegmentationResult, Segmenter
from ovseg_ros import harness, tiny

REPO = Path(__file__).resolve().parents[2]
TEST_CLASSES = ["wall, walls", "floor, carpet", "person, people", "cup, mug"]

#: the tests' settings over the tiny model's file
TEST_PARAMS = {
    "torch_threads": 1,  # the test machine's few cores are shared by parallel tests
    # below test_node's 96x128 frame, so that its outputs are computed at 48x64 and expanded back
    # to the input size; the 48x64 frames of the other tests are segmented at their own size
    "resize.max_side": 64,
    "diagnostics.period": 0.2,  # tests that read diagnostics wait a few periods
}


def tiny_params(vocab_file: Path, **overrides) -> dict:
    """The tiny model's parameters with the tests' settings, ``vocab_file`` as the default vocabulary."""
    return tiny.params(**{**TEST_PARAMS, "vocabulary.default": str(vocab_file), **overrides})


def write_vocab_file(folder: Path, classes=TEST_CLASSES) -> Path:
    f = folder / "vocab.txt"
    f.write_text("# test vocabulary\n" + "\n".join(classes[:1]) + " [stuff]\n" + "\n".join(classes[1:]) + "\n")
    return f


_CACHE: dict[str, object] = {}
_CACHE_LOCK = threading.Lock()


def cached_create(model, **kwargs):
    """``ovseg_models.create_segmenter`` memoised per arguments (the same real model object)."""
    import ovseg_models

    key = json.dumps([model, {k: repr(v) for k, v in sorted(kwargs.items())}])
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE[key] = ovseg_models.create_segmenter(model, **kwargs)
        return _CACHE[key]


def make_node(ros_context, params: dict, factory=cached_create, name: str = "ovseg"):
    """An unconfigured node (``harness.create_node``) building its model with ``factory``."""
    return harness.create_node(ros_context, params, segmenter_factory=factory, name=name)


def running_node(ros_context, params: dict, *, factory=cached_create, activate: bool = True):
    """``with``: a configured (and activated) node spun on its own thread (``harness.running_node``)."""
    return harness.running_node(ros_context, params, segmenter_factory=factory, activate=activate)


def spun_node(ros_context, params: dict, factory=cached_create) -> harness.RunningNode:
    """A configured and activated node spun on its own thread until ``close()`` (``harness.start_node``);
    its ``error`` says what ended the spin."""
    return harness.start_node(ros_context, params, segmenter_factory=factory)


def rgb_image(seed: int = 0, h: int = 48, w: int = 64) -> np.ndarray:
    """A smooth random colour image (blocks), deterministic per seed."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(max(h // 8, 1), max(w // 8, 1), 3), dtype=np.uint8)
    return np.kron(small, np.ones((8, 8, 1), dtype=np.uint8))[:h, :w].copy()


class Probe:
    """The test's side: publishes images, records every output, calls the services."""

    def __init__(
        self,
        ros_context,
        executor,
        *,
        ns: str = "/segmentation",
        image_topic: str | None = None,
        overlay: bool = True,
        compressed: bool = False,
    ):
        self.node = rclpy.create_node("ovseg_probe", context=ros_context)
        self.executor = executor
        executor.add_node(self.node)
        self.got: dict[str, list] = {"semantic": [], "panoptic": [], "overlay": [], "vocabulary": [], "diagnostics": []}
        q = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        n = self.node
        n.create_subscription(Image, f"{ns}/semantic", self.got["semantic"].append, q)
        n.create_subscription(PanopticSegmentation, f"{ns}/panoptic", self.got["panoptic"].append, q)
        if overlay:
            n.create_subscription(Image, f"{ns}/overlay", self.got["overlay"].append, q)
        latched = QoSProfile(
            depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE
        )
        n.create_subscription(Vocabulary, f"{ns}/vocabulary", self.got["vocabulary"].append, latched)
        n.create_subscription(DiagnosticArray, "/diagnostics", self.got["diagnostics"].append, 10)
        topic = image_topic or (f"{ns}/image/compressed" if compressed else f"{ns}/image")
        self.pub = n.create_publisher(CompressedImage if compressed else Image, topic, 10)
        self.set_client = n.create_client(SetVocabulary, f"{ns}/set_vocabulary")
        self.get_client = n.create_client(GetVocabulary, f"{ns}/get_vocabulary")
        self._stamp = 0

    def wait_connected(self, timeout: float = 10.0) -> None:
        assert spin_until(self.executor, lambda: self.pub.get_subscription_count() > 0, timeout), "node not subscribed"

    def spin(self, seconds: float) -> None:
        spin_until(self.executor, lambda: False, seconds)

    def next_header(self, msg):
        self._stamp += 1
        msg.header.stamp.sec = 1000 + self._stamp
        msg.header.stamp.nanosec = 12345
        msg.header.frame_id = "camera_optical"
        return msg

    def send_and_wait(self, msg, key: str = "semantic", timeout: float = 20.0):
        """Publish ``msg`` (stamped here) until an output with its stamp arrives; that output."""
        self.next_header(msg)
        stamp = (msg.header.stamp.sec, msg.header.stamp.nanosec)
        last = [0.0]

        def step():
            now = time.monotonic()
            if now - last[0] > 1.0:  # the input is best effort: resend now and then
                self.pub.publish(msg)
                last[0] = now
            return any((m.header.stamp.sec, m.header.stamp.nanosec) == stamp for m in self.got[key])

        assert spin_until(self.executor, step, timeout), f"no {key} output for stamp {stamp}"
        return [m for m in self.got[key] if (m.header.stamp.sec, m.header.stamp.nanosec) == stamp][-1]

    def call(self, client, request, timeout: float = 30.0):
        assert spin_until(self.executor, client.service_is_ready, 10), "service not available"
        future = client.call_async(request)
        assert spin_until(self.executor, future.done, timeout), "service call timed out"
        return future.result()

    def set_vocabulary(self, classes, templates=()):
        req = SetVocabulary.Request()
        req.classes = [c if isinstance(c, VocabularyClass) else VocabularyClass(name=c) for c in classes]
        req.prompt_templates = list(templates)
        return self.call(self.set_client, req)

    def get_vocabulary(self):
        return self.call(self.get_client, GetVocabulary.Request()).vocabulary

    def destroy(self):
        self.executor.remove_node(self.node)
        self.node.destroy_node()


def stamp_key(msg) -> tuple[int, int]:
    return msg.header.stamp.sec, msg.header.stamp.nanosec


VOCABULARIES = [
    ["apple", "banana"],
    ["car", "bus", "truck", "bicycle", "road"],
    ["cat", "dog", "bird"],
    ["lamp", "sofa", "table", "chair"],
]


class VocabularyStampingSegmenter(Segmenter):
    """Deterministic: every pixel = index of the vocabulary's last class, one segment named after it.

    It sleeps 25 ms per frame so that switches land while frames are in flight.
    """

    model_key = "stamping"
    templates = ("{}",)

    def __init__(self):
        super().__init__(torch.nn.Identity())

    def _encode_vocabulary(self, vocabulary):
        time.sleep(0.05)  # pretend text encoding takes a while
        return {"n": len(vocabulary)}

    def _predict(self, image, encoded, timer, *, output_size, **options):
        time.sleep(0.025)
        return stamped_result(encoded, output_size)


def stamped_result(encoded, output_size) -> SegmentationResult:
    """Every pixel = index of the vocabulary's last class, one segment named after it (exact checks)."""
    h, w = output_size
    k = encoded.tensors["n"] - 1
    return SegmentationResult(
        semantic=np.full((h, w), k, np.int32),
        score=np.ones((h, w), np.float32),
        panoptic=np.ones((h, w), np.int32),
        segments=[
            Segment(
                id=1,
                category=k,
                label=encoded.vocabulary[k].name,
                score=1.0,
                area=h * w,
                bbox=(0, 0, w, h),
                is_thing=True,
            )
        ],
    )
