"""Fixtures for tests with real rclpy nodes over real DDS.

Each test gets its own rclpy Context on its own ROS domain id, so tests never see each
other's traffic (nor that of other processes on the machine). Child processes started by a
test get the same domain id through the environment (``ros_env``).
"""

from __future__ import annotations

import itertools
import os

import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy is not installed (run tools/setup.sh)")
pytest.importorskip("ovseg.msg", reason="ovseg interfaces are not built (run tools/setup.sh)")

from rclpy.executors import SingleThreadedExecutor  # noqa: E402

# Domain ids 1..100 are safe with FastDDS's default port mapping; spread by pid so parallel
# pytest processes on one machine do not collide.
_domains = itertools.cycle(range(1, 101))
for _ in range(os.getpid() % 100):
    next(_domains)


@pytest.fixture
def ros_domain() -> int:
    return next(_domains)


@pytest.fixture
def ros_context(ros_domain):
    """An initialised rclpy Context on a test-private domain id; shut down afterwards."""
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=ros_domain)
    yield context
    context.try_shutdown()


@pytest.fixture
def ros_env(ros_domain) -> dict:
    """Environment for a child ROS process on the same domain as ``ros_context``."""
    env = dict(os.environ)
    env["ROS_DOMAIN_ID"] = str(ros_domain)
    # Let the child's ROS wheels bootstrapper set up its own library path.
    env.pop("_ROS_WHEELS_BOOTSTRAP_COMPLETE", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture
def executor(ros_context):
    ex = SingleThreadedExecutor(context=ros_context)
    yield ex
    ex.shutdown()
