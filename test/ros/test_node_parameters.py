"""Parameters set on a running node over DDS (the set_parameters service, as `ros2 param set` does).

Every value is checked when it is set: bad ones are refused with a reason saying what to do; the
run-time ones take effect at once (max_rate also ends a wait for the old rate's next slot); the
configure-time ones are refused on a configured node unless unchanged, and kept for configure on
an unconfigured one. A value of the wrong type on the command line gives one line naming the
parameter and the type, not a traceback.
"""

from __future__ import annotations

import math
import subprocess
import sys
import threading
import time

import pytest
import torch
from node_harness import Probe, make_node, running_node, tiny_params, write_vocab_file
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.parameter_client import AsyncParameterClient
from ros_test_utils import spin_until

from ovseg_ros.worker import FrameWorker, LatestSlot

NODE = "/segmentation/ovseg"

# (name, value, words the refusal's reason must contain)
BAD_VALUES = [
    ("model", "nope", "set parameter 'model' to one of ['catseg', 'fcclip']"),
    ("resize.max_side", 5, "use 0 (off) or >= 32"),
    ("diagnostics.period", 0.0, "must be a finite number of seconds > 0"),
    ("max_rate", math.nan, "must be a finite number >= 0"),
    ("max_rate", math.inf, "must be a finite number >= 0"),
    ("max_rate", -1.0, "must be a finite number >= 0"),
    ("semantic_score_threshold", 1.5, "within [0, 1]"),
    ("overlay.alpha", math.nan, "within [0, 1]"),
    ("variant", "rn5000", "unknown variant 'rn5000'"),
    ("checkpoint", "/nonexistent/fcclip.pth", "does not exist"),
    ("precision", "fp8", "use one of"),
    ("input.transport", "h264", "use one of"),
    ("output.qos.depth", 0, ">= 1"),
    ("model_options", "{not json", "not valid JSON"),
    ("prompt_templates", ["a photo of a {}.", "no placeholder"], "exactly once"),
    ("device", "cuda:7", "cuda:7"),
    ("device", "tpu", "is not 'auto', 'cpu', 'cuda' or 'cuda:N'"),
]


def _set(probe, client, name, value):
    future = client.set_parameters([Parameter(name, value=value)])
    assert spin_until(probe.executor, future.done, 20), f"set {name} timed out"
    return future.result().results[0]


def test_bad_values_are_refused_with_a_reason_and_nothing_changes(ros_context, executor, tmp_path):
    with running_node(ros_context, tiny_params(write_vocab_file(tmp_path))) as node:
        probe = Probe(ros_context, executor)
        client = AsyncParameterClient(probe.node, NODE)
        assert client.wait_for_services(10)
        for name, value, reason in BAD_VALUES:
            before = node.get_parameter(name).value
            res = _set(probe, client, name, value)
            assert not res.successful, (name, value)
            assert reason in res.reason, (name, value, res.reason)
            assert node.get_parameter(name).value == before, (name, value)
        assert node.cfg.max_rate == 0.0 and node._worker.max_rate == 0.0
        probe.destroy()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_cuda_without_cuda_is_refused_with_what_to_do(ros_context, executor, tmp_path):
    with running_node(ros_context, tiny_params(write_vocab_file(tmp_path)), activate=False):
        probe = Probe(ros_context, executor)
        client = AsyncParameterClient(probe.node, NODE)
        assert client.wait_for_services(10)
        res = _set(probe, client, "device", "cuda")
        assert not res.successful and "CUDA is not available" in res.reason and "set 'device' to 'cpu'" in res.reason
        probe.destroy()


def test_runtime_values_apply_at_once_and_configure_ones_are_refused_while_configured(ros_context, executor, tmp_path):
    with running_node(ros_context, tiny_params(write_vocab_file(tmp_path))) as node:
        probe = Probe(ros_context, executor)
        client = AsyncParameterClient(probe.node, NODE)
        assert client.wait_for_services(10)
        assert _set(probe, client, "max_rate", 2.5).successful
        assert node.cfg.max_rate == 2.5 and node._worker.max_rate == 2.5
        assert _set(probe, client, "overlay.alpha", 0.25).successful and node.cfg.overlay_alpha == 0.25
        timer = node._diag_timer
        assert _set(probe, client, "diagnostics.period", 0.7).successful
        assert node._diag_timer is not timer and node._diag_timer.timer_period_ns == 700_000_000
        # configure-time: refused while active, with what to do; the same value is fine
        res = _set(probe, client, "model", "catseg")
        assert not res.successful
        assert "takes effect at configure" in res.reason and "cleanup" in res.reason, res.reason
        assert node.get_parameter("model").value == "fcclip"
        assert _set(probe, client, "model", "fcclip").successful
        probe.destroy()


def test_configure_time_values_are_kept_for_configure_on_an_unconfigured_node(ros_context, tmp_path):
    node = make_node(ros_context, tiny_params(write_vocab_file(tmp_path)))
    try:
        results = node.set_parameters([Parameter("resize.max_side", value=96), Parameter("device", value="cpu")])
        assert all(r.successful for r in results), [r.reason for r in results]
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS, node.configure_error
        assert node.cfg.max_side == 96
    finally:
        node.destroy_node()


def test_max_rate_back_to_zero_takes_effect_at_once():
    """After 0.1 Hz the worker waits 10 s for its next slot; max_rate 0 must end that wait."""
    slot: LatestSlot = LatestSlot()
    done: list[float] = []
    processed = threading.Event()

    def process(item):
        done.append(time.monotonic())
        processed.set()

    worker = FrameWorker(slot, process, max_rate=0.1)
    worker.start()
    try:
        slot.put(1)
        assert processed.wait(5)
        processed.clear()
        time.sleep(0.3)  # the worker is now waiting for the 0.1 Hz slot (10 s after the first frame)
        slot.put(2)
        worker.max_rate = 0.0
        assert processed.wait(3), "the frame waited for the old rate's slot"
        assert len(done) == 2
    finally:
        assert worker.stop(timeout=5)


def test_an_integer_for_a_double_on_the_command_line_is_one_clear_line(ros_env):
    proc = subprocess.run(
        [sys.executable, "-m", "ovseg_ros.node", "--ros-args", "-p", "max_rate:=5"],
        env=ros_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "Traceback" not in out and "AttributeError" not in out, out
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1, out
    assert "parameter 'max_rate' must be a double" in lines[0] and "write 5.0" in lines[0], lines[0]


def test_a_cuda_index_beyond_the_machines_devices_is_refused(monkeypatch):
    """The branch a machine with CUDA takes (here its device count is patched: this one may have none)."""
    from ovseg_ros.params import ConfigError, resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1") == "cuda:1" and resolve_device("auto") == "cuda"
    with pytest.raises(ConfigError, match=r"device 'cuda:7': this machine has 2 CUDA device\(s\) \(cuda:0 to cuda:1\)"):
        resolve_device("cuda:7")


def test_compile_with_the_onnxruntime_backend_is_refused_at_configure(tmp_path):
    from ovseg_ros.params import ConfigError, config_from_dict

    onnx = tmp_path / "fcclip.onnx"
    onnx.write_bytes(b"")
    params = {"allow_random_weights": True, "backend": "onnxruntime", "onnx": str(onnx)}
    assert not config_from_dict(params).compile
    with pytest.raises(ConfigError, match="compile true applies to backend 'torch'"):
        config_from_dict({**params, "compile": True})
    assert config_from_dict({"allow_random_weights": True, "compile": True}).compile


def test_bf16_on_the_cpu_is_accepted_where_the_cpu_has_native_bf16_and_refused_elsewhere():
    from ovseg_models.segmenter import cpu_has_bf16
    from ovseg_ros.params import ConfigError, config_from_dict

    params = {"allow_random_weights": True, "device": "cpu", "precision": "bf16"}
    if cpu_has_bf16():
        assert config_from_dict(params).precision == "bf16"
    else:
        with pytest.raises(ConfigError, match="no native bf16 instructions"):
            config_from_dict(params)
    with pytest.raises(ConfigError, match="precision 'fp16' needs a CUDA device"):
        config_from_dict({**params, "precision": "fp16"})
