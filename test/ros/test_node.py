"""The segmentation node over real DDS with the real (tiny, random-weight) FC-CLIP.

Each topic and service end to end, every input encoding, compressed input, bad vocabulary
requests, malformed images, a model exception on one frame, latest-frame-wins and the rate
limit, lifecycle transitions (also through the lifecycle services), configure failures with
their messages, and the ``ovseg_node`` executable in a child process with the YAML parameter files.
"""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest
import rclpy
from node_harness import (
    TEST_CLASSES,
    Probe,
    cached_create,
    make_node,
    rgb_image,
    running_node,
    stamp_key,
    tiny_params,
    write_vocab_file,
)
from rclpy.lifecycle import TransitionCallbackReturn
from ros_test_utils import spin_until, stop_child
from sensor_msgs.msg import CompressedImage, Image

from ovseg.msg import VocabularyClass
from ovseg_ros import conversions, tiny


@pytest.fixture
def vocab_file(tmp_path):
    return write_vocab_file(tmp_path)


def _check_panoptic(pan, source_header, n_classes, version):
    assert pan.header == source_header
    assert pan.id_image.header == source_header
    assert pan.id_image.encoding == "mono16" and pan.id_image.step == 2 * pan.id_image.width
    ids = conversions.image_to_numpy(pan.id_image)
    seg_ids = [s.id for s in pan.segments]
    assert len(set(seg_ids)) == len(seg_ids) and 0 not in seg_ids
    assert set(np.unique(ids).tolist()) <= set(seg_ids) | {0}
    for s in pan.segments:
        ys, xs = np.nonzero(ids == s.id)
        assert s.area == len(ys) > 0
        assert (s.bbox.x_offset, s.bbox.y_offset, s.bbox.width, s.bbox.height) == (
            xs.min(),
            ys.min(),
            xs.max() - xs.min() + 1,
            ys.max() - ys.min() + 1,
        )
        assert 0 <= s.category < n_classes and 0.0 <= s.score <= 1.0
    assert pan.vocabulary_version == version


def test_topics_and_services_end_to_end(ros_context, executor, vocab_file):
    with running_node(ros_context, tiny_params(vocab_file)):
        probe = Probe(ros_context, executor)
        probe.wait_connected()
        # vocabulary: latched topic and get service
        assert spin_until(executor, lambda: probe.got["vocabulary"], 10)
        v = probe.got["vocabulary"][-1]
        v1 = v.version
        assert v1 > 0 and v.model == "fcclip" and [c.name for c in v.classes] == ["wall", "floor", "person", "cup"]
        assert v.classes[0].synonyms == ["walls"] and v.classes[0].thing == VocabularyClass.STUFF
        # untagged lines of the file are THING_AUTO, as in a request: floor is COCO stuff
        assert [c.thing for c in v.classes[1:]] == [VocabularyClass.STUFF, VocabularyClass.THING, VocabularyClass.THING]
        assert all(c.seen in (VocabularyClass.SEEN, VocabularyClass.UNSEEN) for c in v.classes)
        assert v.classes[0].seen == VocabularyClass.SEEN  # "wall" is a COCO-panoptic class name
        assert v.prompt_templates == ["a photo of a {}."]
        assert probe.get_vocabulary() == v

        img = rgb_image(1, 96, 128)  # larger than resize.max_side: outputs come back at input size
        msg = conversions.numpy_to_image(img, "rgb8")
        sem = probe.send_and_wait(msg, "semantic")
        assert spin_until(
            executor,
            lambda: (
                any(stamp_key(m) == stamp_key(msg) for m in probe.got["panoptic"])
                and any(stamp_key(m) == stamp_key(msg) for m in probe.got["overlay"])
            ),
            10,
        )
        assert sem.header == msg.header and sem.encoding == "mono16" and (sem.height, sem.width) == (96, 128)
        labels = conversions.image_to_numpy(sem)
        assert set(np.unique(labels).tolist()) <= set(range(4)) | {65535}
        pan = [m for m in probe.got["panoptic"] if stamp_key(m) == stamp_key(msg)][0]
        _check_panoptic(pan, msg.header, 4, v1)
        assert pan.segments, "the tiny model with overlap_threshold 0 yields segments"
        ov = [m for m in probe.got["overlay"] if stamp_key(m) == stamp_key(msg)][0]
        assert ov.encoding == "rgb8" and (ov.height, ov.width) == (96, 128) and ov.header == msg.header
        assert not np.array_equal(conversions.image_to_numpy(ov), img)

        # set a new vocabulary: a newer version everywhere
        res = probe.set_vocabulary(
            [
                VocabularyClass(name="mug", synonyms=["cup"], thing=VocabularyClass.THING),
                VocabularyClass(name="table", seen=VocabularyClass.UNSEEN),
                VocabularyClass(name="sky", thing=VocabularyClass.STUFF),
            ],
            ["a photo of a {}.", "a {}."],
        )
        assert res.success and res.version > v1 and res.message == ""
        assert spin_until(executor, lambda: probe.got["vocabulary"][-1].version == res.version, 10)
        v2 = probe.get_vocabulary()
        assert v2.version == res.version and [c.name for c in v2.classes] == ["mug", "table", "sky"]
        assert v2.classes[1].seen == VocabularyClass.UNSEEN and v2.prompt_templates == ["a photo of a {}.", "a {}."]
        msg2 = conversions.numpy_to_image(img, "rgb8")
        probe.send_and_wait(msg2, "panoptic")
        pan2 = [m for m in probe.got["panoptic"] if stamp_key(m) == stamp_key(msg2)][0]
        _check_panoptic(pan2, msg2.header, 3, v2.version)
        assert all(s.label == ["mug", "table", "sky"][s.category] for s in pan2.segments)

        # diagnostics
        assert spin_until(
            executor,
            lambda: any(
                dict((kv.key, kv.value) for kv in st.values).get("processed_frames", "0") != "0"
                for d in probe.got["diagnostics"]
                for st in d.status
            ),
            10,
        )
        st = probe.got["diagnostics"][-1].status[0]
        values = {kv.key: kv.value for kv in st.values}
        for key in (
            "input_rate_hz",
            "processed_rate_hz",
            "dropped_frames",
            "model_latency_ms_p50",
            "end_to_end_latency_ms_p50",
            "device",
        ):
            assert key in values
        assert (
            values["device"] == "cpu"
            and values["precision"] == "fp32"
            and values["backend"] == "torch"
            and st.hardware_id == "cpu"
            and "RANDOM WEIGHTS" in st.message
        )
        assert float(values["model_latency_ms_p50"]) > 0
        probe.destroy()


def _all_encodings(rgb):
    grey = rgb[:, :, 1]
    grey16 = grey.astype(np.uint16) * 257
    rgb16 = rgb.astype(np.uint16) * 257
    alpha = np.full(rgb.shape[:2] + (1,), 200, np.uint8)
    return {
        # name: (array, encoding, step, big-endian, reference RGB the node must see)
        "rgb8": (rgb, "rgb8", None, False, rgb),
        "rgb8_padded": (rgb, "rgb8", rgb.shape[1] * 3 + 7, False, rgb),
        "bgr8": (rgb[:, :, ::-1], "bgr8", None, False, rgb),
        "rgba8": (np.concatenate([rgb, alpha], 2), "rgba8", None, False, rgb),
        "bgra8": (np.concatenate([rgb[:, :, ::-1], alpha], 2), "bgra8", rgb.shape[1] * 4 + 4, False, rgb),
        "mono8": (grey, "mono8", None, False, np.repeat(grey[:, :, None], 3, 2)),
        "mono16": (grey16, "mono16", None, False, np.repeat(grey[:, :, None], 3, 2)),
        "mono16_bigendian_padded": (grey16, "mono16", rgb.shape[1] * 2 + 2, True, np.repeat(grey[:, :, None], 3, 2)),
        "rgb16": (rgb16, "rgb16", None, True, rgb),
        "bgr8_as_8UC3": (rgb[:, :, ::-1], "8UC3", None, False, rgb),
    }


def test_every_encoding_reaches_the_model_as_the_same_rgb(ros_context, executor, vocab_file):
    rgb = rgb_image(5, 48, 64)
    with running_node(ros_context, tiny_params(vocab_file, **{"publish.panoptic": False})) as node:
        probe = Probe(ros_context, executor, overlay=False)
        probe.wait_connected()
        reference = {}
        for name, (arr, enc, step, big, ref_rgb) in _all_encodings(rgb).items():
            key = ref_rgb.tobytes()
            if key not in reference:  # the node's answer to the plain rgb8 image of that content
                out = probe.send_and_wait(conversions.numpy_to_image(ref_rgb, "rgb8"))
                reference[key] = conversions.image_to_numpy(out).copy()
            msg = conversions.numpy_to_image(arr, enc, step=step, is_bigendian=big)
            out = probe.send_and_wait(msg)
            assert (out.height, out.width) == rgb.shape[:2]
            assert np.array_equal(conversions.image_to_numpy(out), reference[key]), name
        # the model itself agrees with what the node published for the rgb8 image
        seg = node.segmenter
        direct = seg.predict(rgb, vocabulary=node.vocabulary.encoded).semantic
        assert np.array_equal(reference[rgb.tobytes()], direct.astype(np.uint16))
        assert node.stats.invalid == 0 and node.stats.errors == 0
        probe.destroy()


def test_compressed_input(ros_context, executor, vocab_file):
    rgb = rgb_image(7, 48, 64)
    with running_node(ros_context, tiny_params(vocab_file, **{"input.transport": "compressed"})) as node:
        assert node.input_subscriptions[0].topic_name == "/segmentation/image/compressed"
        probe = Probe(ros_context, executor, compressed=True)
        probe.wait_connected()
        png = conversions.rgb8_to_compressed(rgb, "png")
        out_png = probe.send_and_wait(png)
        jpeg = conversions.rgb8_to_compressed(rgb, "jpeg", quality=95)
        jpeg.format = "bgr8; jpeg compressed bgr8"  # as image_transport writes it
        out_jpeg = probe.send_and_wait(jpeg)
        for out in (out_png, out_jpeg):
            assert out.encoding == "mono16" and (out.height, out.width) == (48, 64)
        direct = node.segmenter.predict(rgb, vocabulary=node.vocabulary.encoded).semantic
        assert np.array_equal(conversions.image_to_numpy(out_png), direct.astype(np.uint16))  # lossless
        # a corrupt payload is refused with a warning, and the node goes on
        bad = CompressedImage(format="jpeg", data=b"\xff\xd8 not a jpeg at all")
        probe.next_header(bad)
        probe.pub.publish(bad)
        assert spin_until(executor, lambda: node.stats.invalid >= 1, 10)
        assert "could not be decoded" in node.recent_warnings[-1]
        probe.send_and_wait(conversions.rgb8_to_compressed(rgb, "png"))
        probe.destroy()


BAD_VOCABULARIES = {
    "empty list": ([], (), "empty"),
    "empty name": ([VocabularyClass(name="")], (), "empty name"),
    "blank name": ([VocabularyClass(name="cup"), VocabularyClass(name="  \t ")], (), "empty name"),
    "empty synonym": ([VocabularyClass(name="cup", synonyms=["mug", " "])], (), "synonym 2 is empty"),
    "duplicate": ([VocabularyClass(name="Coffee  Cup"), VocabularyClass(name=" coffee cup ")], (), "duplicate"),
    "too many classes": ([VocabularyClass(name=f"c{i}") for i in range(65536)], (), "65535"),
    "absurdly long name": ([VocabularyClass(name="x" * 100_000)], (), "exceeds 200"),
    "absurdly long synonym": ([VocabularyClass(name="cup", synonyms=["y" * 5000])], (), "exceeds 200"),
    "bad template": ([VocabularyClass(name="cup")], ("a photo of a cup",), "{}"),
    "bad seen value": ([VocabularyClass(name="cup", seen=7)], (), "seen"),
    "bad thing value": ([VocabularyClass(name="cup", thing=3)], (), "thing must be"),
}


def test_bad_vocabulary_requests_are_refused_and_change_nothing(ros_context, executor, vocab_file):
    with running_node(ros_context, tiny_params(vocab_file)) as node:
        probe = Probe(ros_context, executor)
        probe.wait_connected()
        before = probe.get_vocabulary()
        v1 = before.version
        for name, (classes, templates, reason) in BAD_VOCABULARIES.items():
            res = probe.set_vocabulary(classes, templates)
            assert not res.success, name
            assert reason in res.message and res.message.startswith("refused"), (name, res.message)
            assert res.version == v1, name
            assert node.recent_warnings[-1].endswith(res.message), name
        assert probe.get_vocabulary() == before
        assert node.vocabulary.version == v1
        assert [m.version for m in probe.got["vocabulary"]] == [v1]
        out = probe.send_and_wait(conversions.numpy_to_image(rgb_image(2), "rgb8"), "panoptic")
        assert out.vocabulary_version == v1
        probe.destroy()


def test_malformed_images_are_refused_with_a_warning_and_the_node_goes_on(ros_context, executor, vocab_file):
    with running_node(ros_context, tiny_params(vocab_file)) as node:
        probe = Probe(ros_context, executor)
        probe.wait_connected()
        good = conversions.numpy_to_image(rgb_image(3), "rgb8")
        short = conversions.numpy_to_image(rgb_image(3), "rgb8")
        short.data = short.data[: len(short.data) - 10]
        zero_width = Image(height=48, width=0, encoding="rgb8", step=0)
        unsupported = conversions.numpy_to_image(rgb_image(3), "rgb8")
        unsupported.encoding = "bayer_rggb8"
        small_step = conversions.numpy_to_image(rgb_image(3), "rgb8")
        small_step.step = 10
        odd = conversions.numpy_to_image(rgb_image(3), "rgb8")
        odd.encoding = "32FC1"
        cases = [
            (short, "less than step x height"),
            (zero_width, "empty image"),
            (unsupported, "unsupported encoding"),
            (small_step, "smaller than a row"),
            (odd, "unsupported encoding"),
        ]
        for i, (msg, reason) in enumerate(cases, 1):
            probe.next_header(msg)
            probe.pub.publish(msg)
            assert spin_until(executor, lambda i=i: node.stats.invalid >= i, 10), reason
            assert reason in node.recent_warnings[-1]
        out = probe.send_and_wait(good)  # still alive and well
        assert out.width == 64
        assert node.stats.errors == 0
        probe.destroy()


class FlakySegmenter:
    """The real tiny model, raising on its ``fail_on``-th prediction (fault injection)."""

    def __init__(self, inner, fail_on: int = 2):
        self.inner, self.fail_on, self.calls = inner, fail_on, 0
        self.model_key = inner.model_key
        self.templates = inner.templates

    def encode_vocabulary(self, vocabulary):
        return self.inner.encode_vocabulary(vocabulary)

    def predict(self, image, **kwargs):
        self.calls += 1
        if self.calls == self.fail_on:
            raise RuntimeError("injected failure")
        return self.inner.predict(image, **kwargs)


def test_a_model_exception_on_one_frame_does_not_stop_the_node(ros_context, executor, vocab_file):
    flaky = {}

    def factory(model, **kw):
        flaky["seg"] = FlakySegmenter(cached_create(model, **kw))
        return flaky["seg"]

    with running_node(ros_context, tiny_params(vocab_file), factory=factory) as node:
        probe = Probe(ros_context, executor)
        probe.wait_connected()
        probe.send_and_wait(conversions.numpy_to_image(rgb_image(1), "rgb8"))
        bad = conversions.numpy_to_image(rgb_image(2), "rgb8")
        probe.next_header(bad)
        probe.pub.publish(bad)
        assert spin_until(executor, lambda: node.stats.errors == 1, 10)
        assert "injected failure" in node.stats.last_error
        for seed in (3, 4):
            probe.send_and_wait(conversions.numpy_to_image(rgb_image(seed), "rgb8"))
        assert node.stats.errors == 1 and flaky["seg"].calls >= 4
        assert spin_until(
            executor,
            lambda: any(
                dict((kv.key, kv.value) for kv in st.values).get("failed_frames") == "1"
                for d in probe.got["diagnostics"]
                for st in d.status
            ),
            10,
        )
        probe.destroy()


def test_latest_frame_wins_drops_and_max_rate(ros_context, executor, vocab_file):
    with running_node(ros_context, tiny_params(vocab_file, **{"publish.overlay": False})) as node:
        probe = Probe(ros_context, executor, overlay=False)
        probe.wait_connected()
        msgs = [probe.next_header(conversions.numpy_to_image(rgb_image(i), "rgb8")) for i in range(40)]
        for m in msgs:  # a burst far faster than the model
            probe.pub.publish(m)
            probe.spin(0.002)
        assert spin_until(
            executor,
            lambda: node.stats.received == 40 and not node.busy and node.stats.processed + node.stats.dropped == 40,
            20,
        )
        s = node.stats
        assert s.dropped > 0 and s.processed < 40 and s.errors == 0
        # the last frame is never dropped: the newest one wins
        assert spin_until(executor, lambda: any(stamp_key(m) == stamp_key(msgs[-1]) for m in probe.got["semantic"]), 10)
        # max_rate, set at run time
        node.set_parameters([rclpy.parameter.Parameter("max_rate", value=2.0)])
        start = s.processed
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2.5:
            probe.pub.publish(probe.next_header(conversions.numpy_to_image(rgb_image(0), "rgb8")))
            probe.spin(1 / 30)
        assert node.stats.processed - start <= 7
        assert node.stats.processed - start >= 2
        probe.destroy()


def test_overlay_is_computed_only_while_someone_subscribes(ros_context, executor, vocab_file):
    with running_node(ros_context, tiny_params(vocab_file)) as node:
        probe = Probe(ros_context, executor, overlay=False)
        probe.wait_connected()
        for i in range(3):
            probe.send_and_wait(conversions.numpy_to_image(rgb_image(i), "rgb8"))
        assert node.stats.overlays == 0
        sub = probe.node.create_subscription(Image, "/segmentation/overlay", probe.got["overlay"].append, 10)
        assert spin_until(executor, lambda: node.subscriber_count("overlay") > 0, 10)
        probe.send_and_wait(conversions.numpy_to_image(rgb_image(9), "rgb8"), "overlay")
        assert node.stats.overlays >= 1
        probe.node.destroy_subscription(sub)
        probe.destroy()


def test_lifecycle_transitions(ros_context, executor, vocab_file):
    from lifecycle_msgs.msg import State, Transition
    from lifecycle_msgs.srv import ChangeState, GetState
    from rclpy.executors import MultiThreadedExecutor

    from ovseg_ros.harness import Spinner

    node = make_node(ros_context, tiny_params(vocab_file, **{"publish.diagnostics": False}))
    spinner = Spinner(ros_context, node, MultiThreadedExecutor(num_threads=3, context=ros_context))
    try:
        probe = Probe(ros_context, executor)
        change = probe.node.create_client(ChangeState, "/segmentation/ovseg/change_state")
        get = probe.node.create_client(GetState, "/segmentation/ovseg/get_state")

        def transition(tid):
            return probe.call(change, ChangeState.Request(transition=Transition(id=tid))).success

        def state():
            return probe.call(get, GetState.Request()).current_state.id

        assert state() == State.PRIMARY_STATE_UNCONFIGURED
        res = probe.set_vocabulary(["cup"])  # the services live as long as the node
        assert not res.success and "not configured" in res.message and res.version == 0
        assert probe.get_vocabulary().version == 0
        assert transition(Transition.TRANSITION_CONFIGURE)
        assert state() == State.PRIMARY_STATE_INACTIVE
        assert probe.get_vocabulary().version > 0  # services work while inactive
        assert spin_until(executor, lambda: probe.got["vocabulary"], 10)
        assert not node.input_subscriptions and not node.busy  # nothing processed while inactive
        assert transition(Transition.TRANSITION_ACTIVATE)
        probe.wait_connected()
        probe.send_and_wait(conversions.numpy_to_image(rgb_image(1), "rgb8"))
        assert transition(Transition.TRANSITION_DEACTIVATE)
        assert spin_until(executor, lambda: probe.pub.get_subscription_count() == 0, 10)
        n = len(probe.got["semantic"])
        probe.pub.publish(probe.next_header(conversions.numpy_to_image(rgb_image(2), "rgb8")))
        probe.spin(0.5)
        assert len(probe.got["semantic"]) == n
        assert transition(Transition.TRANSITION_CLEANUP)
        assert state() == State.PRIMARY_STATE_UNCONFIGURED and node.segmenter is None
        res = probe.set_vocabulary(["cup"])
        assert not res.success and "not configured" in res.message
        # and up again
        assert transition(Transition.TRANSITION_CONFIGURE) and transition(Transition.TRANSITION_ACTIVATE)
        probe.wait_connected()
        probe.send_and_wait(conversions.numpy_to_image(rgb_image(3), "rgb8"))
        assert transition(Transition.TRANSITION_DEACTIVATE) and transition(Transition.TRANSITION_CLEANUP)
        assert transition(Transition.TRANSITION_UNCONFIGURED_SHUTDOWN)
        assert state() == State.PRIMARY_STATE_FINALIZED
        probe.destroy()
    finally:
        spinner.close()
        node.destroy_node()


CONFIGURE_FAILURES = {
    "unknown model": ({"model": "segformer"}, "set parameter 'model' to one of ['catseg', 'fcclip']"),
    "unknown variant": ({"variant": "rn18"}, "set 'variant' to one of"),
    "missing checkpoint": ({"checkpoint": "/nonexistent/fcclip_cocopan.pth"}, "does not exist"),
    "no checkpoint": ({"allow_random_weights": False}, "set 'checkpoint'"),
    "cuda without cuda": ({"device": "cuda"}, "set 'device' to 'cpu'"),
    "fp16 on cpu": ({"precision": "fp16"}, "needs a CUDA device"),
    "bad vocabulary": ({"vocabulary.default": "/nonexistent/vocab.txt"}, "neither a built-in"),
    "bad model_options": ({"model_options": "{num_queries: 3"}, "not valid JSON"),
    "unknown model option": ({"model_options": '{"no_such_option": 1}'}, "no_such_option"),
    "bad template": ({"prompt_templates": ["a photo"]}, "exactly once"),
    "bad transport": ({"input.transport": "theora"}, "'raw' or 'compressed'"),
    "bad threshold": ({"fcclip.alpha": 1.5}, "within [0, 1]"),
}


@pytest.mark.parametrize("case", sorted(CONFIGURE_FAILURES))
def test_configure_fails_with_a_message_that_says_what_to_do(ros_context, vocab_file, case):
    import torch

    if case == "cuda without cuda" and torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    overrides, expected = CONFIGURE_FAILURES[case]
    node = make_node(ros_context, tiny_params(vocab_file, **overrides))
    try:
        assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
        assert expected in node.configure_error, node.configure_error
        assert node.segmenter is None and not node.outputs
        assert node._state_machine.current_state[1] == "unconfigured"
    finally:
        node.destroy_node()


def test_input_qos_and_topic_parameters(ros_context, vocab_file):
    from rclpy.qos import ReliabilityPolicy

    node = make_node(
        ros_context,
        tiny_params(
            vocab_file,
            **{
                "input.qos.reliability": "reliable",
                "input.qos.depth": 3,
                "publish.overlay": False,
                "publish.semantic": False,
                "publish.label_info": False,
            },
        ),
    )
    try:
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        qos = node.input_subscriptions[0].qos_profile
        assert qos.reliability == ReliabilityPolicy.RELIABLE and qos.depth == 3
        assert node.outputs == {"panoptic", "vocabulary", "diagnostics"}
        node.trigger_deactivate()
        node.trigger_cleanup()
    finally:
        node.destroy_node()
    node = make_node(ros_context, tiny_params(vocab_file))
    try:
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        node.trigger_activate()
        assert (
            node.input_subscriptions[0].qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT
        )  # sensor data by default
        assert node.input_subscriptions[0].topic_name == "/segmentation/image"
    finally:
        node.destroy_node()


def test_ovseg_node_executable_with_yaml_and_remapping(ros_context, executor, ros_env, vocab_file):
    cmd = tiny.node_command(vocab_file, "-r", "image:=/camera/image_raw")
    child = subprocess.Popen(cmd, env=ros_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        probe = Probe(ros_context, executor, image_topic="/camera/image_raw")
        assert spin_until(executor, lambda: probe.pub.get_subscription_count() > 0 or child.poll() is not None, 90)
        assert child.poll() is None, child.stdout.read()
        pan = probe.send_and_wait(conversions.numpy_to_image(rgb_image(4), "rgb8"), "panoptic", timeout=30)
        assert spin_until(executor, lambda: probe.got["vocabulary"], 10)
        assert pan.vocabulary_version == probe.got["vocabulary"][-1].version and pan.id_image.width == 64
        assert [c.name for c in probe.got["vocabulary"][-1].classes] == [c.split(",")[0] for c in TEST_CLASSES]
        probe.destroy()
    finally:
        stop_child(child)


def test_ovseg_node_executable_fails_loudly_on_a_bad_configuration(ros_env):
    cmd = [
        sys.executable,
        "-m",
        "ovseg_ros.node",
        "--ros-args",
        "-p",
        "model:=fcclip",
        "-p",
        "checkpoint:=/nonexistent/fcclip_cocopan.pth",
    ]
    res = subprocess.run(cmd, env=ros_env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 1
    assert "does not exist" in res.stderr + res.stdout and "checkpoint" in res.stderr + res.stdout
