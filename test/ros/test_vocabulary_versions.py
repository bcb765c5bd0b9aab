"""A vocabulary version never names two different vocabularies: across cleanup -> configure with
other classes, across a restart of the node, with the state file lost (the clock then keeps
versions apart) and with the clock stepped back (the state file then does)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from node_harness import make_node, tiny_params, write_vocab_file
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter

from ovseg_ros.versions import EPOCH, VersionCounter


@pytest.fixture(autouse=True)
def ros_home(tmp_path, monkeypatch):
    home = tmp_path / "ros_home"
    monkeypatch.setenv("ROS_HOME", str(home))
    return home


def _configure(node) -> int:
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS, node.configure_error
    return node.vocabulary.version


def test_cleanup_then_configure_with_other_classes_gives_a_new_version(ros_context, tmp_path):
    node = make_node(ros_context, tiny_params(write_vocab_file(tmp_path)))
    try:
        v1 = _configure(node)
        names1 = list(node.vocabulary.names)
        assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
        assert node.set_parameters([Parameter("vocabulary.default", value="cityscapes")])[0].successful
        v2 = _configure(node)
        assert node.vocabulary.names[:3] == ("road", "sidewalk", "building") and list(node.vocabulary.names) != names1
        assert v2 > v1  # before: 1 again, naming another vocabulary
    finally:
        node.destroy_node()


def test_a_restarted_node_never_reuses_a_version(ros_context, tmp_path, ros_home):
    vocab = write_vocab_file(tmp_path)
    issued = []
    for _ in range(2):  # two runs of the node, one after the other, as after a restart
        node = make_node(ros_context, tiny_params(vocab))
        try:
            issued.append(_configure(node))
        finally:
            node.destroy_node()
    assert issued[1] > issued[0]
    assert int((ros_home / "ovseg" / "vocabulary_version").read_text()) == issued[1]


def test_versions_from_separate_processes_are_distinct(tmp_path, ros_home):
    code = (
        "import json; from ovseg_ros.versions import VersionCounter; c = VersionCounter();"
        "print(json.dumps([c.next() for _ in range(50)]))"
    )
    env = dict(os.environ, ROS_HOME=str(ros_home))
    procs = [
        subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True) for _ in range(3)
    ]
    runs = [json.loads(p.communicate(timeout=60)[0]) for p in procs]
    everything = [v for run in runs for v in run]
    assert len(set(everything)) == len(everything) == 150
    for run in runs:
        assert run == sorted(run)


def test_the_clock_keeps_versions_apart_when_the_state_file_is_lost(tmp_path):
    now = [EPOCH + 1000.0]
    a = VersionCounter(tmp_path / "a" / "state", clock=lambda: now[0])
    first = [a.next(), a.next()]
    assert first == [1000, 1001]
    now[0] += 5  # restarted 5 s later, the state file gone
    b = VersionCounter(tmp_path / "b" / "state", clock=lambda: now[0])
    assert b.next() == 1005 > max(first)


def test_the_state_file_keeps_versions_apart_when_the_clock_steps_back(tmp_path):
    state = tmp_path / "state"
    now = [EPOCH + 5000.0]
    a = VersionCounter(state, clock=lambda: now[0])
    assert a.next() == 5000
    now[0] -= 3600  # the robot's clock was set back an hour before the restart
    b = VersionCounter(state, clock=lambda: now[0])
    assert b.next() == 5001


def test_an_unwritable_state_file_falls_back_to_the_clock_and_says_so(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    c = VersionCounter(blocker / "sub" / "state", clock=lambda: EPOCH + 42.0)
    assert c.next() == 42 and c.next() == 43
    assert "set ROS_HOME" in c.warning
