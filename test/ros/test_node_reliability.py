"""Reliability and security of the node against careless and hostile peers (issue 12), over real DDS.

Crashes (lifecycle cleanup and Ctrl-C while a vocabulary encodes, shutdown from active), lost
requests and hangs (a flood of set_vocabulary, get during an encoding), superseded encodings
never taking effect, frames lost below the callback made visible, vocabulary files only from
the permitted directories and never echoed, and the per-frame vocabulary version of semantic
images (semantic/info).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
import torch
from node_harness import Probe, rgb_image, spun_node, stamp_key, stamped_result, tiny_params, write_vocab_file
from ros_test_utils import spin_until

from ovseg.msg import SemanticInfo, VocabularyClass
from ovseg.srv import SetVocabulary
from ovseg_models.segmenter import Segmenter
from ovseg_models.vocabulary import VocabularyError
from ovseg_ros import conversions, messages, tiny


@pytest.fixture
def vocab_file(tmp_path):
    return write_vocab_file(tmp_path)


class SlowEncodingSegmenter(Segmenter):
    """Deterministic segmenter whose vocabulary encoding takes ``delay`` seconds (a long prompt set).

    Every pixel holds the vocabulary's last class. Its ``_encode_vocabulary`` takes no ``cancel``
    event, so the encoding always runs to the end (the worst case: a model that cannot stop);
    :class:`CancellableSlowSegmenter` stops early through ``Segmenter.encode_vocabulary(cancel=)``.
    """

    model_key = "slow"
    templates = ("{}",)

    def __init__(self, delay: float = 3.0):
        super().__init__(torch.nn.Identity())
        self.delay = delay
        self.encoded_names: list[tuple[str, ...]] = []  # vocabularies whose encoding ran to the end
        self.cancelled = 0
        self.encoding_now = False  # a slow encoding is running

    def _encode_vocabulary(self, vocabulary):
        return self._slow_encode(vocabulary, None)

    def _slow_encode(self, vocabulary, cancel):
        t_end = time.monotonic() + (self.delay if len(vocabulary) > 0 and vocabulary[0].name != "fast" else 0)
        self.encoding_now = time.monotonic() < t_end
        try:
            while time.monotonic() < t_end:
                if cancel is not None and cancel.is_set():
                    self.cancelled += 1
                    raise RuntimeError("cancelled")
                time.sleep(0.02)
        finally:
            self.encoding_now = False
        self.encoded_names.append(tuple(vocabulary.names))
        return {"n": len(vocabulary)}

    def _predict(self, image, encoded, timer, *, output_size, **options):
        return stamped_result(encoded, output_size)


class CancellableSlowSegmenter(SlowEncodingSegmenter):
    def _encode_vocabulary(self, vocabulary, cancel=None):
        return self._slow_encode(vocabulary, cancel)


def _factory(segmenter):
    return lambda model, **kw: segmenter


def _lifecycle_client(probe):
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState

    change = probe.node.create_client(ChangeState, "/segmentation/ovseg/change_state")

    def transition(tid):
        return probe.call(change, ChangeState.Request(transition=Transition(id=tid))).success

    return transition, Transition


def _set_request(names):
    return SetVocabulary.Request(classes=[VocabularyClass(name=n) for n in names])


from rclpy.qos import QoSProfile as _Q  # noqa: E402
from rclpy.qos import ReliabilityPolicy as _R

Q100 = _Q(depth=100, reliability=_R.RELIABLE)


# -- 1. crashes ------------------------------------------------------------------------------------


def test_cleanup_while_encoding_answers_cancelled_and_the_node_lives(ros_context, executor, vocab_file):
    seg = SlowEncodingSegmenter(delay=3.0)  # cannot cancel: the worst case
    spun = spun_node(ros_context, tiny_params(vocab_file), _factory(seg))
    try:
        probe = Probe(ros_context, executor)
        transition, T = _lifecycle_client(probe)
        assert spin_until(executor, probe.set_client.service_is_ready, 10)
        v0 = probe.get_vocabulary().version
        pending = probe.set_client.call_async(_set_request(["cat", "dog"]))
        assert spin_until(executor, lambda: seg.encoding_now, 10)
        assert transition(T.TRANSITION_DEACTIVATE) and transition(T.TRANSITION_CLEANUP)
        assert spin_until(executor, pending.done, 10), "the pending set_vocabulary was never answered"
        res = pending.result()
        assert not res.success and res.message.startswith("cancelled"), res.message
        probe.spin(4.0)  # the encoding thread ends meanwhile; before the fix its answer killed the executor
        assert spun.spinner.thread.is_alive() and spun.error is None, repr(spun.error)
        assert seg.encoded_names == [("wall", "floor", "person", "cup"), ("cat", "dog")] or seg.encoded_names[-1] == (
            "cat",
            "dog",
        )
        # the node works again after the cycle, and the cancelled vocabulary never became active
        assert transition(T.TRANSITION_CONFIGURE)
        v1 = probe.get_vocabulary().version
        assert v1 > v0  # a new configure names its vocabulary anew
        assert [c.name for c in probe.get_vocabulary().classes] == ["wall", "floor", "person", "cup"]
        res = probe.set_vocabulary(["fast", "lane"])
        assert res.success and res.version > v1, res.message
        probe.destroy()
    finally:
        spun.close()


def _child(ros_env, vocab_file, *extra):
    cmd = tiny.node_command(vocab_file, *extra)
    return subprocess.Popen(cmd, env=ros_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _stop(child):
    if child.poll() is None:
        child.kill()
        child.wait(10)


def test_ctrl_c_while_a_vocabulary_encodes_exits_cleanly(ros_context, executor, ros_env, vocab_file):
    """A real (tiny) CLIP text encoder in C++ when SIGINT arrives: exit status 0, no abort."""
    child = _child(ros_env, vocab_file)
    try:
        probe = Probe(ros_context, executor)
        assert spin_until(
            executor,
            lambda: probe.set_client.service_is_ready() and probe.got["vocabulary"] or child.poll() is not None,
            120,
        )
        assert child.poll() is None, child.stdout.read()
        # thousands of prompts: the text tower runs for many seconds on one thread
        pending = probe.set_client.call_async(_set_request([f"object number {i}" for i in range(3000)]))
        probe.spin(3.0)
        assert not pending.done(), "the encoding finished before the signal: make it longer"
        child.send_signal(signal.SIGINT)
        assert spin_until(executor, lambda: child.poll() is not None, 60), "the node did not exit"
        out = child.stdout.read()
        assert "terminate called" not in out, out[-2000:]
        assert child.returncode == 0, f"exit status {child.returncode}: {out[-2000:]}"
        # and the caller was answered before the node left
        assert spin_until(executor, pending.done, 5), "the pending set_vocabulary was never answered"
        assert pending.result().message.startswith("cancelled"), pending.result().message
        probe.destroy()
    finally:
        _stop(child)


def test_ctrl_c_while_encode_text_runs_answers_the_waiting_and_exits_at_once(
    ros_context, executor, ros_env, vocab_file
):
    """encode_text runs the real (tiny) text tower for many seconds on the text thread when SIGINT
    arrives: the requests still waiting are answered "cancelled", and the process exits at once
    with status 0 (it neither waits for the encoding nor aborts under it)."""
    from ovseg.srv import EncodeText

    child = _child(ros_env, vocab_file)
    try:
        probe = Probe(ros_context, executor)
        encode = probe.node.create_client(EncodeText, "/segmentation/encode_text")
        assert spin_until(executor, lambda: encode.service_is_ready() or child.poll() is not None, 120)
        assert child.poll() is None, child.stdout.read()
        probe.spin(1.0)  # let the response side match too
        texts = [f"a photo of object number {i} on a table" for i in range(256)]
        running = encode.call_async(EncodeText.Request(texts=texts))
        waiting = [encode.call_async(EncodeText.Request(texts=[f"thing {i}"])) for i in range(2)]
        probe.spin(3.0)
        assert not running.done(), "the encoding finished before the signal: make it longer"
        t0 = time.monotonic()
        child.send_signal(signal.SIGINT)
        assert spin_until(executor, lambda: child.poll() is not None, 30), "the node did not exit"
        exit_s = time.monotonic() - t0
        out = child.stdout.read()
        assert "terminate called" not in out, out[-2000:]
        assert child.returncode == 0, f"exit status {child.returncode}: {out[-2000:]}"
        assert spin_until(executor, lambda: all(w.done() for w in waiting), 5), "waiting requests never answered"
        assert all(w.result().message.startswith("cancelled") for w in waiting), [w.result().message for w in waiting]
        assert not all(w.result().success for w in waiting)
        assert exit_s < 10, f"the exit took {exit_s:.1f} s: it waited for the encoding"
        probe.destroy()
    finally:
        _stop(child)


def test_lifecycle_shutdown_from_active_ends_the_process(ros_context, executor, ros_env, vocab_file):
    from lifecycle_msgs.msg import State

    child = _child(ros_env, vocab_file)
    try:
        probe = Probe(ros_context, executor)
        transition, T = _lifecycle_client(probe)
        assert spin_until(executor, lambda: probe.pub.get_subscription_count() > 0 or child.poll() is not None, 120)
        assert child.poll() is None, child.stdout.read()
        assert transition(T.TRANSITION_ACTIVE_SHUTDOWN)
        rc = child.wait(30)  # before the fix: "finalized", and the process ran on until a signal
        assert rc == 0, child.stdout.read()[-2000:]
        assert State.PRIMARY_STATE_FINALIZED  # the transition was answered (success above)
        probe.destroy()
    finally:
        _stop(child)


# -- 2. lost requests and hangs ----------------------------------------------------------------------


def test_a_flood_of_set_vocabulary_is_answered_and_get_never_waits(ros_context, executor, vocab_file):
    seg = SlowEncodingSegmenter(delay=1.5)
    spun = spun_node(ros_context, tiny_params(vocab_file), _factory(seg))
    try:
        probe = Probe(ros_context, executor)
        # 30 callers and one that sends 20 without waiting. Every client's reader sees every response
        # of the service (rmw_fastrtps filters on take), so callers in a burst need a history for
        # the burst: the default service QoS keeps 10 and then loses answers the node did send.
        clients = [
            probe.node.create_client(SetVocabulary, "/segmentation/set_vocabulary", qos_profile=Q100) for _ in range(30)
        ]
        eager = probe.node.create_client(SetVocabulary, "/segmentation/set_vocabulary", qos_profile=Q100)
        assert spin_until(executor, lambda: all(c.service_is_ready() for c in clients + [eager]), 20)
        probe.spin(2.0)  # ready means the request side matched; let the response side match too
        v0 = probe.get_vocabulary().version
        futures = [(i, clients[i].call_async(_set_request([f"class {i}", "other"]))) for i in range(30)]
        futures += [(i, eager.call_async(_set_request([f"class {i}", "other"]))) for i in range(30, 50)]
        # while the last one encodes, get_vocabulary answers at once with the active vocabulary
        assert spin_until(executor, lambda: seg.encoding_now, 10)
        get = probe.get_client.call_async(__import__("ovseg.srv", fromlist=["GetVocabulary"]).GetVocabulary.Request())
        assert spin_until(executor, get.done, 10), "get_vocabulary waited behind an encoding"
        assert seg.encoding_now, "get must be answered during the encoding, not after it"
        assert get.result().vocabulary.version == v0
        assert spin_until(executor, lambda: all(f.done() for _, f in futures), 30), (
            f"{sum(f.done() for _, f in futures)} of 50 requests answered, "
            f"not {[i for i, f in futures if not f.done()]}"
        )
        results = [(i, f.result()) for i, f in futures]
        ok = [(i, r) for i, r in results if r.success]
        assert len(ok) == 1, [r.message for _, r in results]
        assert all(r.message.startswith("superseded") for _, r in results if not r.success), [
            r.message for _, r in results
        ]
        winner, res = ok[0]
        probe.spin(0.5)
        # superseded requests never became a published vocabulary: one new version in all
        assert res.version > v0 and {m.version for m in probe.got["vocabulary"]} - {v0} == {res.version}
        assert [c.name for c in probe.get_vocabulary().classes] == [f"class {winner}", "other"]
        assert spun.error is None
        probe.destroy()
    finally:
        spun.close()


def test_invalid_requests_during_an_encoding_are_refused_without_superseding(ros_context, executor, vocab_file):
    seg = SlowEncodingSegmenter(delay=1.5)
    spun = spun_node(ros_context, tiny_params(vocab_file), _factory(seg))
    try:
        probe = Probe(ros_context, executor)
        assert spin_until(executor, probe.set_client.service_is_ready, 10)
        v0 = probe.get_vocabulary().version
        good = probe.set_client.call_async(_set_request(["tree", "bush"]))
        assert spin_until(executor, lambda: seg.encoding_now, 10)
        bad = [probe.set_vocabulary([]), probe.set_vocabulary(["a", "A"]), probe.set_vocabulary(["x"], ["no slot"])]
        assert all(not r.success and r.message.startswith("refused") and r.version == v0 for r in bad), [
            r.message for r in bad
        ]
        assert spin_until(executor, good.done, 20)
        assert good.result().success and good.result().version > v0
        probe.destroy()
    finally:
        spun.close()


# -- 3. supersede / cancel (node level) --------------------------------------------------------------


@pytest.mark.parametrize("cancellable", [False, True])
def test_a_newer_request_supersedes_a_running_encoding_at_once(ros_context, executor, vocab_file, cancellable):
    seg = (CancellableSlowSegmenter if cancellable else SlowEncodingSegmenter)(delay=3.0)
    spun = spun_node(ros_context, tiny_params(vocab_file), _factory(seg))
    try:
        probe = Probe(ros_context, executor)
        assert spin_until(executor, probe.set_client.service_is_ready, 10)
        v0 = probe.get_vocabulary().version
        old = probe.set_client.call_async(_set_request(["old", "stale"]))
        assert spin_until(executor, lambda: seg.encoding_now, 10)
        new = probe.set_client.call_async(_set_request(["fast", "new"]))
        # answered when the newer request arrives, not when the old encoding would have ended
        assert spin_until(executor, old.done, 2.5) and not new.done() or cancellable
        assert spin_until(executor, old.done, 10)
        assert not old.result().success and old.result().message.startswith("superseded")
        assert spin_until(executor, new.done, 15)
        assert new.result().success and new.result().version > v0, new.result().message
        probe.spin(3.5 if not cancellable else 0.5)  # the old encoding ends (or was cancelled) meanwhile
        v = probe.get_vocabulary()
        assert v.version == new.result().version and [c.name for c in v.classes] == ["fast", "new"]
        # the stale result never published
        assert {m.version for m in probe.got["vocabulary"]} <= {v0, v.version}
        if cancellable:
            assert seg.cancelled == 1 and ("old", "stale") not in seg.encoded_names
        probe.destroy()
    finally:
        spun.close()


# -- 5. frames lost below the callback ----------------------------------------------------------------

_PUBLISHER = """
import sys, time, rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
h, w, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
rclpy.init()
node = rclpy.create_node("big_camera")
pub = node.create_publisher(Image, "/segmentation/image", QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT))
msg = Image(height=h, width=w, encoding="rgb8", step=3 * w, data=bytes(3 * h * w))
t0 = time.monotonic()
while time.monotonic() - t0 < seconds:
    pub.publish(msg)
    time.sleep(0.1)
"""


def _diag_values(probe):
    if not probe.got["diagnostics"]:
        return {}
    st = probe.got["diagnostics"][-1].status[0]
    return {kv.key: kv.value for kv in st.values} | {"_message": st.message, "_level": st.level}


def test_frames_lost_below_the_callback_are_counted_with_a_fix(ros_context, executor, ros_env, vocab_file):
    seg = SlowEncodingSegmenter(delay=0.0)
    spun = spun_node(ros_context, tiny_params(vocab_file), _factory(seg))
    child = subprocess.Popen(
        [sys.executable, "-c", _PUBLISHER, "2160", "3840", "40"],
        env=ros_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        probe = Probe(ros_context, executor)
        assert spin_until(executor, lambda: int(_diag_values(probe).get("lost_frames", "0")) > 0, 40), _diag_values(
            probe
        )
        values = _diag_values(probe)
        assert "lost below the callback" in values["_message"]
        warning = next(w for w in spun.node.recent_warnings if "lost below the callback" in w)
        assert "input.qos.reliability: reliable" in warning and "fastdds_shm.xml" in warning
        probe.destroy()
    finally:
        child.kill()
        child.wait(10)
        spun.close()


def test_a_publisher_with_incompatible_qos_is_reported(ros_context, executor, vocab_file):
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    seg = SlowEncodingSegmenter(delay=0.0)
    spun = spun_node(ros_context, tiny_params(vocab_file, **{"input.qos.reliability": "reliable"}), _factory(seg))
    try:
        probe = Probe(ros_context, executor)
        probe.node.create_publisher(
            Image, "/segmentation/image", QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT)
        )
        assert spin_until(executor, lambda: int(_diag_values(probe).get("incompatible_qos_events", "0")) > 0, 15)
        warning = next(w for w in spun.node.recent_warnings if "incompatible" in w or "cannot accept" in w)
        assert "RELIABILITY" in warning.upper() and "input.qos.reliability: best_effort" in warning
        probe.destroy()
    finally:
        spun.close()


# -- 9. the file-read oracle ----------------------------------------------------------------------------

SECRET = "root:x:0:0:secret-token-1234"


def _secret_files(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.txt"
    secret.write_text(SECRET + "\n")
    allowed = tmp_path / "vocabularies"
    allowed.mkdir()
    (allowed / "ok.txt").write_text("cat\ndog\n")
    (allowed / "link.txt").symlink_to(secret)
    (allowed / "passwd").write_text(SECRET + "\n")  # no vocabulary suffix
    (allowed / "binary.txt").write_bytes(b"cat\n\x00\x01" + SECRET.encode())
    (allowed / "huge.txt").write_text("cat\n" * (messages.MAX_VOCABULARY_FILE_BYTES // 4 + 1))
    (allowed / "broken.yaml").write_text(f"- [{SECRET}\n")
    (allowed / "dup.txt").write_text(f"{SECRET}\n{SECRET}\n")
    return allowed, secret


def test_vocabulary_files_only_from_the_permitted_directories(tmp_path):
    allowed, secret = _secret_files(tmp_path)
    v = messages.load_vocabulary("ok.txt", directories=[allowed])
    assert list(v.names) == ["cat", "dog"]
    assert list(messages.load_vocabulary(str(allowed / "ok.txt"), directories=[allowed]).names) == ["cat", "dog"]
    assert messages.load_vocabulary("coco_panoptic", directories=[]).names[0] == "person"
    assert list(messages.load_vocabulary(str(secret), directories=[allowed], files=[secret]).names) == [SECRET]
    refused = {
        "outside": str(secret),
        "traversal": "../outside/secret.txt",
        "link out": "link.txt",
        "no suffix": str(allowed / "passwd"),
        "device": "/dev/zero",
        "proc": "/proc/self/environ",
        "binary": "binary.txt",
        "huge": "huge.txt",
        "broken yaml": "broken.yaml",
        "duplicates": "dup.txt",
    }
    for case, spec in refused.items():
        with pytest.raises(VocabularyError) as e:
            messages.load_vocabulary(spec, directories=[allowed])
        assert "secret-token" not in str(e.value) and "root:x" not in str(e.value), (case, str(e.value))
    with pytest.raises(VocabularyError, match="vocabulary.directories"):
        messages.load_vocabulary(str(secret), directories=[allowed])


def test_a_peer_cannot_make_the_node_read_and_publish_a_file(ros_context, executor, tmp_path):
    from rcl_interfaces.msg import Parameter as ParameterMsg
    from rcl_interfaces.msg import ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters

    allowed, secret = _secret_files(tmp_path)
    seg = SlowEncodingSegmenter(delay=0.0)
    spun = spun_node(
        ros_context, tiny_params(allowed / "ok.txt", **{"vocabulary.directories": [str(allowed)]}), _factory(seg)
    )
    try:
        probe = Probe(ros_context, executor)
        transition, T = _lifecycle_client(probe)
        setp = probe.node.create_client(SetParameters, "/segmentation/ovseg/set_parameters")

        def set_param(name, value):
            pv = (
                ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=value)
                if isinstance(value, str)
                else ParameterValue(type=ParameterType.PARAMETER_STRING_ARRAY, string_array_value=value)
            )
            return probe.call(setp, SetParameters.Request(parameters=[ParameterMsg(name=name, value=pv)])).results[0]

        # the directories are fixed at start-up
        r = set_param("vocabulary.directories", [str(secret.parent)])
        assert not r.successful
        for spec in (str(secret), "link.txt", "../outside/secret.txt", str(allowed / "passwd"), "dup.txt"):
            assert transition(T.TRANSITION_DEACTIVATE) and transition(T.TRANSITION_CLEANUP)
            # unconfigured, the parameter is kept for configure (or refused at once): either way the
            # configure that would read the file fails and says nothing of its content
            r = set_param("vocabulary.default", spec)
            assert "secret-token" not in r.reason, r.reason
            if r.successful:
                assert not transition(T.TRANSITION_CONFIGURE), spec
                assert "secret-token" not in spun.node.configure_error, spun.node.configure_error
            assert set_param("vocabulary.default", "ok.txt").successful
            assert transition(T.TRANSITION_CONFIGURE) and transition(T.TRANSITION_ACTIVATE)
        probe.spin(0.5)
        assert probe.got["vocabulary"]
        assert all("secret" not in c.name for m in probe.got["vocabulary"] for c in m.classes)
        assert all("secret-token" not in w for w in spun.node.recent_warnings)
        probe.destroy()
    finally:
        spun.close()


# -- 11. semantic images tied to their vocabulary ------------------------------------------------------


def test_every_semantic_image_has_its_vocabulary_version_on_semantic_info(ros_context, executor, vocab_file):
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    seg = SlowEncodingSegmenter(delay=0.0)
    spun = spun_node(ros_context, tiny_params(vocab_file), _factory(seg))
    try:
        probe = Probe(ros_context, executor)
        infos: list = []
        probe.node.create_subscription(
            SemanticInfo,
            "/segmentation/semantic/info",
            infos.append,
            QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE),
        )
        probe.wait_connected()
        img = conversions.numpy_to_image(rgb_image(0), "rgb8")
        v1 = probe.get_vocabulary().version
        sem1 = probe.send_and_wait(img)
        res = probe.set_vocabulary(["fast", "b", "c"])
        assert res.success
        v2 = res.version
        sem2 = probe.send_and_wait(conversions.numpy_to_image(rgb_image(1), "rgb8"))
        assert spin_until(executor, lambda: len({stamp_key(i) for i in infos}) >= 2, 10)
        by_stamp = {stamp_key(i): i for i in infos}
        for sem, version, n in ((sem1, v1, 4), (sem2, v2, 3)):
            info = by_stamp[stamp_key(sem)]
            assert info.header == sem.header and info.vocabulary_version == version and info.num_classes == n
            labels = conversions.image_to_numpy(sem)
            assert int(labels.max()) == n - 1  # the label indices are this vocabulary's
        # every semantic image the probe received has exactly one info with its stamp and version
        assert {stamp_key(m) for m in probe.got["semantic"]} <= set(by_stamp)
        # a repeated stamp after a vocabulary switch would make the pairing ambiguous: never published
        assert probe.set_vocabulary(["fast", "x"]).success
        repeat = conversions.numpy_to_image(rgb_image(2), "rgb8")
        repeat.header = sem2.header
        n_before = len(probe.got["semantic"])
        for _ in range(5):
            probe.pub.publish(repeat)
            probe.spin(0.3)
        assert all(stamp_key(m) != stamp_key(sem2) for m in probe.got["semantic"][n_before:])
        assert spun.node.stats.ambiguous >= 1
        assert [i.vocabulary_version for i in infos if stamp_key(i) == stamp_key(sem2)] == [v2]
        probe.destroy()
    finally:
        spun.close()


# -- max_rate takes effect at once -------------------------------------------------------------------


def test_max_rate_back_to_unlimited_takes_effect_at_once(ros_context, executor, vocab_file):
    from rclpy.parameter import Parameter

    seg = SlowEncodingSegmenter(delay=0.0)
    spun = spun_node(ros_context, tiny_params(vocab_file, max_rate=0.05), _factory(seg))  # one frame per 20 s
    try:
        probe = Probe(ros_context, executor)
        probe.wait_connected()
        probe.send_and_wait(conversions.numpy_to_image(rgb_image(0), "rgb8"))  # starts the 20 s interval
        # the frame is done (counted after its last output): the worker now waits out the interval
        assert spin_until(executor, lambda: spun.node.stats.processed >= 1, 10)
        probe.spin(0.3)
        n = len(probe.got["semantic"])
        spun.node.set_parameters([Parameter("max_rate", value=0.0)])
        img = conversions.numpy_to_image(rgb_image(1), "rgb8")

        def step():
            probe.pub.publish(probe.next_header(img))
            return len(probe.got["semantic"]) > n

        # before the fix the worker slept out the old 20 s interval
        assert spin_until(executor, lambda: step() or probe.spin(0.1), 8), "max_rate 0 did not take effect"
        probe.destroy()
    finally:
        spun.close()


_DYING_CALLER = """
import os, sys, time, rclpy
from ovseg.msg import VocabularyClass
from ovseg.srv import SetVocabulary
rclpy.init()
node = rclpy.create_node("dying_caller")
client = node.create_client(SetVocabulary, "/segmentation/set_vocabulary")
assert client.wait_for_service(timeout_sec=30)
client.call_async(SetVocabulary.Request(classes=[VocabularyClass(name="ghost"), VocabularyClass(name="town")]))
end = time.monotonic() + 1.0
while time.monotonic() < end:
    rclpy.spin_once(node, timeout_sec=0.05)
print("sent", flush=True)
os.kill(os.getpid(), 9)  # killed while its request encodes
"""


def test_a_caller_killed_while_its_request_encodes_does_not_hurt_the_node(ros_context, executor, ros_env, vocab_file):
    seg = SlowEncodingSegmenter(delay=2.0)
    spun = spun_node(ros_context, tiny_params(vocab_file), _factory(seg))
    try:
        child = subprocess.run(
            [sys.executable, "-c", _DYING_CALLER], env=ros_env, capture_output=True, text=True, timeout=90
        )
        assert "sent" in child.stdout, child.stdout + child.stderr
        probe = Probe(ros_context, executor)
        probe.spin(2.5)  # the encoding ends and the node answers a caller that is gone
        assert spun.spinner.thread.is_alive() and spun.error is None, repr(spun.error)
        ghost = probe.get_vocabulary()
        assert [c.name for c in ghost.classes] == ["ghost", "town"]
        res = probe.set_vocabulary(["fast", "after"])
        assert res.success and res.version > ghost.version, res.message
        probe.destroy()
    finally:
        spun.close()
