"""The ovseg interfaces (msg/, srv/) over real DDS and through real bags.

- every custom message published and received between two nodes in one process, and between
  two processes (a child Python process echoes what it receives back on another topic);
- the Vocabulary topic's transient-local durability reaching a late subscriber;
- SetVocabulary / GetVocabulary called on a small real server node;
- custom messages written to rosbag2 bags (sqlite3 and MCAP) with ``rosbags`` and read back
  bit-identical, deserialised again by rclpy.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rclpy
from builtin_interfaces.msg import Time
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message, serialize_message
from ros_test_utils import spin_until, stop_child
from sensor_msgs.msg import Image, RegionOfInterest

from ovseg.msg import PanopticSegmentation, Segment, Vocabulary, VocabularyClass
from ovseg.srv import GetVocabulary, SetVocabulary

REPO = Path(__file__).resolve().parents[2]


def make_vocabulary(version: int = 3) -> Vocabulary:
    return Vocabulary(
        stamp=Time(sec=12, nanosec=34),
        version=version,
        model="fcclip",
        classes=[
            VocabularyClass(
                name="wall", synonyms=["walls", "brick wall"], thing=VocabularyClass.STUFF, seen=VocabularyClass.SEEN
            ),
            VocabularyClass(name="mug", synonyms=[], thing=VocabularyClass.THING, seen=VocabularyClass.UNSEEN),
        ],
        prompt_templates=["a photo of a {}.", "There is a {} in the scene"],
    )


def make_panoptic(seed: int = 0) -> PanopticSegmentation:
    rng = np.random.default_rng(seed)
    h, w = 48, 64
    ids = rng.integers(0, 4, size=(h, w), dtype=np.uint16)
    msg = PanopticSegmentation()
    msg.header.stamp = Time(sec=100 + seed, nanosec=5)
    msg.header.frame_id = "camera_optical"
    msg.id_image = Image(
        header=msg.header,
        height=h,
        width=w,
        encoding="mono16",
        is_bigendian=0,
        step=2 * w,
        data=ids.astype("<u2").tobytes(),
    )
    for sid in range(1, 4):
        ys, xs = np.nonzero(ids == sid)
        msg.segments.append(
            Segment(
                id=sid,
                category=sid % 2,
                label=["wall", "mug"][sid % 2],
                score=0.5 + 0.125 * sid,  # exact in float32
                area=len(ys),
                is_thing=bool(sid % 2),
                bbox=RegionOfInterest(
                    x_offset=int(xs.min()),
                    y_offset=int(ys.min()),
                    width=int(xs.max() - xs.min() + 1),
                    height=int(ys.max() - ys.min() + 1),
                ),
            )
        )
    msg.vocabulary_version = 7
    return msg


MESSAGES = {
    "segment": (Segment, lambda: make_panoptic().segments[1]),
    "vocabulary_class": (VocabularyClass, lambda: make_vocabulary().classes[0]),
    "vocabulary": (Vocabulary, make_vocabulary),
    "panoptic": (PanopticSegmentation, make_panoptic),
}


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_message_between_two_nodes_in_one_process(ros_context, executor, name):
    msg_type, factory = MESSAGES[name]
    sent = factory()
    pub_node = rclpy.create_node("ovseg_test_pub", context=ros_context)
    sub_node = rclpy.create_node("ovseg_test_sub", context=ros_context)
    received = []
    sub_node.create_subscription(msg_type, "/ovseg_test/" + name, received.append, 10)
    pub = pub_node.create_publisher(msg_type, "/ovseg_test/" + name, 10)
    executor.add_node(pub_node)
    executor.add_node(sub_node)
    assert spin_until(executor, lambda: pub.get_subscription_count() > 0, 10)

    def publish_until_received():
        if not received:
            pub.publish(sent)
        return bool(received)

    assert spin_until(executor, publish_until_received, 10), f"{name} never arrived"
    assert received[0] == sent
    pub_node.destroy_node()
    sub_node.destroy_node()


ECHO_CHILD = r"""
import sys, rclpy
from ovseg.msg import PanopticSegmentation, Vocabulary
from rclpy.qos import QoSProfile, DurabilityPolicy, ReliabilityPolicy
rclpy.init()
node = rclpy.create_node("ovseg_test_echo")
pubs = {}
pubs["panoptic"] = node.create_publisher(PanopticSegmentation, "/ovseg_test/panoptic_back", 10)
pubs["vocabulary"] = node.create_publisher(Vocabulary, "/ovseg_test/vocabulary_back", 10)
node.create_subscription(PanopticSegmentation, "/ovseg_test/panoptic_out", pubs["panoptic"].publish, 10)
node.create_subscription(Vocabulary, "/ovseg_test/vocabulary_out", pubs["vocabulary"].publish, 10)
print("ready", flush=True)
try:
    rclpy.spin(node)
except Exception:
    pass
"""


def test_messages_across_two_processes(ros_context, executor, ros_env):
    child = subprocess.Popen(
        [sys.executable, "-c", ECHO_CHILD], env=ros_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout.readline().strip() == "ready", child.stderr.read()
        node = rclpy.create_node("ovseg_test_parent", context=ros_context)
        executor.add_node(node)
        sent = {"panoptic": make_panoptic(seed=3), "vocabulary": make_vocabulary(version=11)}
        types = {"panoptic": PanopticSegmentation, "vocabulary": Vocabulary}
        got: dict[str, list] = {k: [] for k in sent}
        pubs = {}
        for k, t in types.items():
            node.create_subscription(t, f"/ovseg_test/{k}_back", got[k].append, 10)
            pubs[k] = node.create_publisher(t, f"/ovseg_test/{k}_out", 10)

        def step():
            for k in sent:
                if not got[k]:
                    pubs[k].publish(sent[k])
            return all(got.values())

        assert spin_until(executor, step, 20), {k: len(v) for k, v in got.items()}
        for k in sent:
            assert got[k][0] == sent[k]
        node.destroy_node()
    finally:
        stop_child(child)


def test_vocabulary_topic_is_latched_for_late_subscribers(ros_context, executor):
    qos = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)
    pub_node = rclpy.create_node("ovseg_test_vocab_pub", context=ros_context)
    pub = pub_node.create_publisher(Vocabulary, "/ovseg_test/vocabulary", qos)
    pub.publish(make_vocabulary(version=1))
    pub.publish(make_vocabulary(version=2))  # depth 1: only the newest is kept
    executor.add_node(pub_node)
    executor.spin_once(timeout_sec=0.1)
    late = rclpy.create_node("ovseg_test_vocab_late", context=ros_context)
    received = []
    late.create_subscription(Vocabulary, "/ovseg_test/vocabulary", received.append, qos)
    executor.add_node(late)
    assert spin_until(executor, lambda: bool(received), 10)
    spin_until(executor, lambda: False, 0.3)
    assert [m.version for m in received] == [2]


def test_vocabulary_services_on_a_server_node(ros_context, executor):
    server = rclpy.create_node("ovseg_test_vocab_server", context=ros_context)
    state = {"vocabulary": make_vocabulary(version=1)}

    def set_cb(request, response):
        names = [c.name.strip().lower() for c in request.classes]
        if not names or len(set(names)) != len(names) or not all(names):
            response.success = False
            response.message = "empty or duplicate class names"
        else:
            v = state["vocabulary"]
            state["vocabulary"] = Vocabulary(
                stamp=v.stamp,
                version=v.version + 1,
                model=v.model,
                classes=list(request.classes),
                prompt_templates=list(request.prompt_templates),
            )
            response.success = True
        response.version = state["vocabulary"].version
        return response

    def get_cb(request, response):
        response.vocabulary = state["vocabulary"]
        return response

    server.create_service(SetVocabulary, "/ovseg_test/set_vocabulary", set_cb)
    server.create_service(GetVocabulary, "/ovseg_test/get_vocabulary", get_cb)
    client_node = rclpy.create_node("ovseg_test_vocab_client", context=ros_context)
    set_client = client_node.create_client(SetVocabulary, "/ovseg_test/set_vocabulary")
    get_client = client_node.create_client(GetVocabulary, "/ovseg_test/get_vocabulary")
    executor.add_node(server)
    executor.add_node(client_node)
    assert spin_until(executor, lambda: set_client.service_is_ready() and get_client.service_is_ready(), 10)

    def call(client, request):
        future = client.call_async(request)
        assert spin_until(executor, future.done, 10)
        return future.result()

    ok = call(
        set_client,
        SetVocabulary.Request(
            classes=[VocabularyClass(name="cup", synonyms=["mug"], thing=VocabularyClass.THING)],
            prompt_templates=["a photo of a {}."],
        ),
    )
    assert ok.success and ok.version == 2 and ok.message == ""
    bad = call(set_client, SetVocabulary.Request(classes=[VocabularyClass(name="a"), VocabularyClass(name="A ")]))
    assert not bad.success and "duplicate" in bad.message and bad.version == 2
    got = call(get_client, GetVocabulary.Request()).vocabulary
    assert got.version == 2 and [c.name for c in got.classes] == ["cup"] and got.classes[0].synonyms == ["mug"]


# --- bags ------------------------------------------------------------------------------------


def _typestore_with_ovseg():
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.ROS2_KILTED)
    types = {}
    for folder in ("msg", "srv"):
        for path in sorted((REPO / folder).glob("*.msg")):
            types.update(get_types_from_msg(path.read_text(), f"ovseg/msg/{path.stem}"))
    store.register(types)
    return store


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_custom_messages_round_trip_through_a_bag(tmp_path, storage):
    from rosbags.rosbag2 import Reader, StoragePlugin, Writer

    store = _typestore_with_ovseg()
    sent = {
        "/segmentation/panoptic": [make_panoptic(seed=s) for s in range(3)],
        "/segmentation/vocabulary": [make_vocabulary(version=v) for v in (1, 2)],
    }
    types = {
        "/segmentation/panoptic": "ovseg/msg/PanopticSegmentation",
        "/segmentation/vocabulary": "ovseg/msg/Vocabulary",
    }
    plugin = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}[storage]
    bag = tmp_path / "bag"
    with Writer(bag, version=9, storage_plugin=plugin) as writer:
        for topic, msgs in sent.items():
            conn = writer.add_connection(topic, types[topic], typestore=store)
            for i, m in enumerate(msgs):
                writer.write(conn, 1_000_000_000 + i, serialize_message(m))
    received: dict[str, list] = {t: [] for t in sent}
    with Reader(bag) as reader:
        assert {c.msgtype for c in reader.connections} == set(types.values())
        for conn, _stamp, raw in reader.messages():
            py_type = PanopticSegmentation if conn.msgtype.endswith("PanopticSegmentation") else Vocabulary
            received[conn.topic].append(deserialize_message(bytes(raw), py_type))
            # rosbags' own deserialiser understands the definitions it was given
            decoded = store.deserialize_cdr(raw, conn.msgtype)
            if py_type is PanopticSegmentation:
                assert decoded.id_image.encoding == "mono16"
    for topic in sent:
        assert received[topic] == sent[topic]
