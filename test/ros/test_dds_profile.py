"""config/fastdds_shm.xml: the Fast DDS profile for camera-sized messages (README, "Node latency
and DDS transports").

A child process started with ``FASTDDS_DEFAULT_PROFILES_FILE`` pointing at the profile must
really use it (its shared-memory segment is the profile's 16 MB, not Fast DDS's 512 KB default)
and must still exchange 640x480 images, bit-exact, with a process on Fast DDS defaults (this
test's own context): the profile keeps UDP, so robots can adopt it one process at a time.
"""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
from ros_test_utils import image_probe, spin_until, stop_child

from ovseg_ros import conversions

REPO = Path(__file__).resolve().parents[2]
PROFILE = REPO / "config" / "fastdds_shm.xml"

ECHO = """
import sys, rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
rclpy.init()
node = rclpy.create_node("profile_echo")
q = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
pub = node.create_publisher(Image, "pong", q)
node.create_subscription(Image, "ping", pub.publish, q)
print("ready", flush=True)
try:
    rclpy.spin(node)
except BaseException:
    pass
"""


def test_profile_is_valid_fastdds_xml():
    root = ET.parse(PROFILE).getroot()
    ns = {"d": "http://www.eprosima.com"}
    shm = [t for t in root.iterfind(".//d:transport_descriptor", ns) if t.findtext("d:type", namespaces=ns) == "SHM"]
    assert len(shm) == 1 and int(shm[0].findtext("d:segment_size", namespaces=ns)) >= 4 * 640 * 480 * 3
    participant = root.find(".//d:participant", ns)
    assert participant.get("is_default_profile") == "true"
    kinds = {t.findtext("d:type", namespaces=ns) for t in root.iterfind(".//d:transport_descriptor", ns)}
    assert kinds == {"SHM", "UDPv4"}  # UDP stays: discovery and peers without the profile


def _segments() -> dict[str, int]:
    shm = Path("/dev/shm")
    return {p.name: p.stat().st_size for p in shm.glob("fastdds_*") if p.is_file()} if shm.is_dir() else {}


def test_a_process_with_the_profile_uses_it_and_talks_to_default_processes(ros_context, executor, ros_env):
    before = _segments()
    env = dict(ros_env, FASTDDS_DEFAULT_PROFILES_FILE=str(PROFILE))
    env.pop("FASTDDS_BUILTIN_TRANSPORTS", None)
    child = subprocess.Popen([sys.executable, "-c", ECHO], env=env, stdout=subprocess.PIPE, text=True)
    node = None
    try:
        assert child.stdout.readline().strip() == "ready"
        if Path("/dev/shm").is_dir():
            new = {k: v for k, v in _segments().items() if k not in before}
            assert any(v >= 16 * 2**20 for v in new.values()), f"no 16 MB shared-memory segment appeared: {new}"
        node, pub, got = image_probe(ros_context, executor, "profile_probe", publish_to="ping", listen_to="pong")
        assert spin_until(executor, lambda: pub.get_subscription_count() > 0 and node.count_publishers("pong") > 0, 20)
        rng = np.random.default_rng(0)
        frames = [rng.integers(0, 256, (480, 640, 3), dtype=np.uint8) for _ in range(3)]
        for i, f in enumerate(frames):
            msg = conversions.numpy_to_image(f, "rgb8")
            msg.header.stamp.sec = i
            pub.publish(msg)
            assert spin_until(executor, lambda i=i: len(got) > i, 10), f"frame {i} did not come back"
        for f, m in zip(frames, got, strict=False):
            assert np.array_equal(conversions.image_to_numpy(m), f)
    finally:
        stop_child(child)
        if node is not None:
            executor.remove_node(node)
            node.destroy_node()
