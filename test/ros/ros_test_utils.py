"""Helpers shared by the ROS tests (imported as a plain module: pytest puts this folder on sys.path)."""

from __future__ import annotations

import subprocess
import time


def spin_until(executor, predicate, timeout: float = 10.0) -> bool:
    """Spin ``executor`` until ``predicate()`` is true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        executor.spin_once(timeout_sec=0.05)
    return predicate()


def image_probe(context, executor, name: str, *, publish_to: str, listen_to: str, depth: int = 10):
    """A node spun by ``executor`` that publishes ``sensor_msgs/Image`` on ``publish_to`` and records
    those arriving on ``listen_to`` (reliable QoS): ``(node, publisher, received list)``."""
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    node = rclpy.create_node(name, context=context)
    executor.add_node(node)
    got: list = []
    q = QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE)
    node.create_subscription(Image, listen_to, got.append, q)
    return node, node.create_publisher(Image, publish_to, q), got


def stop_child(child: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM a child ROS process, then SIGKILL it if it has not exited within ``timeout`` seconds
    (rclpy's signal handling can swallow SIGTERM mid-spin, and a loaded machine is slow to shut down)."""
    child.terminate()
    try:
        child.wait(timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait(timeout)
