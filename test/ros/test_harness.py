"""``ovseg_ros.tiny`` reads the tiny model from its params file as ROS does, and ``ovseg_ros.harness``
builds nodes from params files and dicts and reports what ends a spin thread."""

from __future__ import annotations

import pytest
import rclpy

from ovseg_ros import harness, tiny
from ovseg_ros.params import ConfigError, read_params_file


def test_tiny_params_are_what_a_node_given_the_file_reads(ros_context):
    params = tiny.params()
    assert params["resize.max_side"] == 128 and params["fcclip.min_size"] == 64  # nested groups, dotted
    node = harness.create_node(ros_context, params_files=[tiny.params_file()])
    try:
        for name, value in params.items():
            assert node.get_parameter(name).value == value, name
    finally:
        node.destroy_node()


def test_dict_parameters_override_the_params_files(ros_context):
    node = harness.create_node(
        ros_context, {"resize.max_side": 96, "seed": 3}, params_files=[tiny.params_file()], name="other"
    )
    try:
        assert node.get_parameter("resize.max_side").value == 96 and node.get_parameter("seed").value == 3
        assert node.get_parameter("variant").value == "rn50"  # the file's, not the default ''
        assert node.get_fully_qualified_name() == "/segmentation/other"
    finally:
        node.destroy_node()


def test_a_file_without_a_section_for_every_node_is_refused(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("ovseg:\n  ros__parameters:\n    seed: 1\n")
    with pytest.raises(ConfigError, match="no '/\\*\\*: ros__parameters:' section"):
        read_params_file(f)


def test_start_node_says_why_configure_failed(ros_context):
    with pytest.raises(RuntimeError, match="could not configure: .*set 'checkpoint'"):
        harness.start_node(ros_context, tiny.params(allow_random_weights=False))


def test_the_spinner_keeps_the_exception_that_ended_its_spin(ros_context):
    node = rclpy.create_node("failing", context=ros_context)

    def fail():
        raise ValueError("from a callback")

    node.create_timer(0.01, fail)
    spinner = harness.Spinner(ros_context, node)
    try:
        assert harness.wait_until(lambda: spinner.error is not None, 10)
        assert isinstance(spinner.error, ValueError) and not spinner.thread.is_alive()
    finally:
        spinner.close()
        node.destroy_node()
