"""``ovseg-bag-eval``: replay a rosbag2 bag through the segmentation node and evaluate it.

    ovseg-bag-eval BAG [--output OUT_BAG] [--image-topic T] [--fast | --rate R]
                   [--gt-topic T | --gt-dir DIR] [--gt-panoptic-topic T]
                   [--depth-topic T [--depth-info-topic T] | --no-depth]
                   [--params-file config/ovseg.yaml ...] [-p name:=value ...] [--report report.json]

The bag (sqlite3 or MCAP, read with ``rosbags``, no rosbag2 needed) is replayed over real DDS:
its images are published to the node's input at the bag's timing (``--rate`` scales it) or, with
``--fast``, each as soon as the previous one's outputs arrived (as fast as possible, nothing
dropped). The node runs in this process (``SegmentationNode`` with the given parameters) unless
``--external`` says one is already running. Every output (semantic, panoptic, overlay,
vocabulary, diagnostics) is recorded and written, together with the input images, to a new bag
whose timestamps are the original ones (an output gets the bag time of its source image).

Ground truth, optional: a label topic in the bag (mono8/mono16 label images, ``--ignore-label``),
or a folder of label PNGs named by stamp (``<sec>_<nanosec>.png``, ``<sec>.<fraction>.png`` or
``<nanoseconds>.png``), matched to the image stamps within ``--gt-tolerance-ms``; gives mIoU and
per-class IoU (``ovseg_models.evaluation``). A panoptic ground-truth topic
(``ovseg/msg/PanopticSegmentation``, categories indexing the node's vocabulary) adds PQ/SQ/RQ.
The report (printed, and as JSON with ``--report``) also holds latency percentiles (end to end
from publishing to receiving the outputs, and model time) and the drop count.

Depth: a bag with a depth image topic (``16UC1`` / ``32FC1``, aligned to the colour camera) and
its ``camera_info`` is replayed with ``depth.enabled``: found by encoding (or ``--depth-topic``;
``--no-depth`` ignores it), the camera_info beside it (``<depth ns>/camera_info``, or
``--depth-info-topic``). Each depth and camera_info message goes out, in bag order, just before
the colour frame it can pair with (header stamp up to ``depth.slop`` after the frame's), so the
node's synchroniser pairs them as on the robot. ``segments_3d`` and ``points`` are recorded into
the output bag and the report's ``depth`` section counts the frames with 3D outputs, the paired and
refused frames, segments with a centroid, points per cloud, the centroids' depth and the 3D latency.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .params import parse_param
from .resources import share_file

__all__ = ["EvalOptions", "evaluate_bag", "main", "ovseg_typestore", "read_label_png"]

OUTPUT_TOPICS = {
    "semantic": "sensor_msgs/msg/Image",
    "panoptic": "ovseg/msg/PanopticSegmentation",
    "overlay": "sensor_msgs/msg/Image",
    "segments_3d": "ovseg/msg/Segments3D",
    "points": "sensor_msgs/msg/PointCloud2",
    "vocabulary": "ovseg/msg/Vocabulary",
}
#: outputs tied to one frame (written at its bag time); the first three also time the frame
FRAME_OUTPUTS = ("semantic", "panoptic", "overlay", "segments_3d", "points")
IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")
DEPTH_ENCODINGS = ("16UC1", "32FC1")
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"


@dataclass
class EvalOptions:
    bag: Path
    output: Path | None = None
    image_topic: str | None = None
    gt_topic: str | None = None
    gt_dir: Path | None = None
    gt_panoptic_topic: str | None = None
    gt_tolerance_ms: float = 1.0
    ignore_label: int | None = None
    fast: bool = False
    rate: float = 1.0
    params_files: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    external: bool = False
    namespace: str = "/segmentation"
    record_overlay: bool = True
    overlay_dir: Path | None = None
    copy_input: bool = True
    storage: str | None = None
    report: Path | None = None
    frame_timeout: float = 60.0
    progress: bool = True
    max_frames: int = 0
    domain_id: int | None = None
    depth: bool = True  #: replay a depth topic when the bag has one (False: ``--no-depth``)
    depth_topic: str | None = None
    depth_info_topic: str | None = None


# -- bag helpers ----------------------------------------------------------------------------------


def _msg_dir() -> Path | None:
    """Folder with ovseg's .msg files: the installed share/ovseg/msg, or the source tree's msg/."""
    f = share_file("msg/PanopticSegmentation.msg")
    return f.parent if f is not None else None


def ovseg_typestore():
    """A rosbags typestore (ROS 2 Kilted) with the ovseg messages registered."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.ROS2_KILTED)
    folder = _msg_dir()
    if folder is None:
        raise RuntimeError("cannot find ovseg's .msg definitions (share/ovseg/msg) to write them into a bag")
    types = {}
    for path in sorted(folder.glob("*.msg")):
        types.update(get_types_from_msg(path.read_text(), f"ovseg/msg/{path.stem}"))
    store.register(types)
    return store


def _py_type(msgtype: str):
    pkg, kind, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{pkg}.{kind}"), name)


def _stamp_ns(header) -> int:
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


_STEM_RE = (re.compile(r"^(\d+)_(\d{1,9})$"), re.compile(r"^(\d+)\.(\d{1,9})$"), re.compile(r"^(\d+)$"))


def _stamp_from_name(stem: str) -> int | None:
    m = _STEM_RE[0].match(stem)
    if m:
        return int(m.group(1)) * 1_000_000_000 + int(m.group(2))
    m = _STEM_RE[1].match(stem)
    if m:
        frac = m.group(2).ljust(9, "0")
        return int(m.group(1)) * 1_000_000_000 + int(frac)
    m = _STEM_RE[2].match(stem)
    if m:
        return int(m.group(1))
    return None


def read_label_png(path: Path) -> np.ndarray:
    from PIL import Image as PILImage

    im = PILImage.open(path)
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        return np.asarray(im).astype(np.int64)
    if im.mode not in ("L", "P"):
        raise ValueError(f"{path}: label PNGs must be single-channel (mode L, P or I;16), got {im.mode}")
    return np.asarray(im).astype(np.int64)


def _percentiles(values) -> dict[str, float] | None:
    v = np.asarray(list(values), dtype=np.float64)
    if not len(v):
        return None
    p = np.percentile(v, [50, 90, 95, 99])
    return {
        "p50": float(p[0]),
        "p90": float(p[1]),
        "p95": float(p[2]),
        "p99": float(p[3]),
        "mean": float(v.mean()),
        "max": float(v.max()),
        "n": int(len(v)),
    }


def _nan_to_none(x):
    if isinstance(x, float) and math.isnan(x):
        return None
    if isinstance(x, dict):
        return {k: _nan_to_none(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_nan_to_none(v) for v in x]
    return x


# -- the evaluation -------------------------------------------------------------------------------


class _Recorder:
    """Subscribes to the node's outputs; publishes the replayed images."""

    def __init__(self, context, ns: str, image_type, image_topic: str, record_overlay: bool, depth: bool = False):
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image

        from ovseg.msg import PanopticSegmentation, Vocabulary

        self.node = rclpy.create_node("ovseg_bag_eval", context=context)
        self.lock = threading.Lock()
        self.records: list[tuple[str, float, Any]] = []  # (key, monotonic receive time, msg)
        self.first_output: dict[int, float] = {}
        self.outputs_by_stamp: dict[int, set] = {}
        self.arrival: dict[tuple[str, int], float] = {}  # (key, stamp) -> receive time, frame outputs
        self.event = threading.Event()
        q = QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE)
        subs = {"semantic": Image, "panoptic": PanopticSegmentation}
        if record_overlay:
            subs["overlay"] = Image
        self.depth_pubs = None
        if depth:
            from sensor_msgs.msg import CameraInfo, PointCloud2

            from ovseg.msg import Segments3D

            subs.update(segments_3d=Segments3D, points=PointCloud2)
            out_q = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
            self.depth_pubs = (
                self.node.create_publisher(Image, f"{ns}/depth/image", out_q),
                self.node.create_publisher(CameraInfo, f"{ns}/depth/camera_info", out_q),
            )
        for key, t in subs.items():
            self.node.create_subscription(t, f"{ns}/{key}", lambda m, k=key: self._on(k, m), q)
        latched = QoSProfile(
            depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE
        )
        self.node.create_subscription(Vocabulary, f"{ns}/vocabulary", lambda m: self._on("vocabulary", m), latched)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", lambda m: self._on("diagnostics", m), 50)
        self.pub = self.node.create_publisher(
            image_type, image_topic, QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        )

    def _on(self, key: str, msg) -> None:
        now = time.monotonic()
        with self.lock:
            self.records.append((key, now, msg))
            if key in FRAME_OUTPUTS:
                s = _stamp_ns(msg.header)
                if key in ("semantic", "panoptic", "overlay"):
                    self.first_output.setdefault(s, now)
                self.outputs_by_stamp.setdefault(s, set()).add(key)
                self.arrival.setdefault((key, s), now)
        self.event.set()


@dataclass
class BagInput:
    """What :func:`read_bag` takes from a bag: the frames to replay and the ground truth."""

    image_topic: str
    image_msgtype: str
    image_type: Any
    frames: list  #: (bag time, message, raw bytes)
    stamps: list[int]  #: the frames' header stamps (unique; the bag times where they were not)
    restamped: bool
    bag_time_of: dict[int, int]
    gt_sem: dict[int, np.ndarray]
    gt_pan: dict[int, Any]
    copy_raw: list  #: (topic, msgtype, bag time, raw) copied to the output bag (``--copy-input``)
    depth_topic: str | None = None
    depth_info_topic: str | None = None
    #: (header stamp, 0 depth image | 1 camera_info, message) in bag order
    depth: list = field(default_factory=list)


@dataclass
class Replay:
    """What :func:`replay` recorded: every output message, when each frame went out and came back."""

    namespace: str
    records: list  #: (key, receive time, message)
    first_output: dict[int, float]
    sent: dict[int, float]
    wall0: float
    node_stats: dict | None
    model_times: dict[int, float]
    arrival: dict = field(default_factory=dict)  #: (output key, stamp) -> receive time


def read_bag(opts: EvalOptions, *, log=print) -> BagInput:
    """The image frames (up to ``max_frames``) and ground truth of ``opts.bag``; stamps made unique."""
    from rclpy.serialization import deserialize_message
    from rosbags.rosbag2 import Reader

    bag = Path(opts.bag)
    with Reader(bag) as reader:
        conns = list(reader.connections)
        depth_topic, info_topic, depth_images = _depth_topics(reader, conns, opts, log)
        # colour candidates: not a depth image (replayed or not), not the ground truth
        images = [c for c in conns if c.msgtype in IMAGE_TYPES and (c.topic not in depth_images or opts.image_topic)]
        if opts.image_topic:
            images = [c for c in images if c.topic == opts.image_topic]
            if not images:
                raise ValueError(
                    f"no image topic {opts.image_topic!r} in {bag}; image topics: "
                    f"{sorted({c.topic for c in conns if c.msgtype in IMAGE_TYPES})}"
                )
        else:
            images = [c for c in images if c.topic != opts.gt_topic]
            topics = sorted({c.topic for c in images})
            if not topics:
                raise ValueError(f"{bag} has no sensor_msgs/Image or CompressedImage topic")
            if len(topics) > 1:
                log(f"several image topics {topics}; using {topics[0]} (choose with --image-topic)")
            images = [c for c in images if c.topic == topics[0]]
        image_topic = images[0].topic
        image_msgtype = images[0].msgtype
        image_type = _py_type(image_msgtype)
        frames: list[tuple[int, Any, bytes]] = []  # (bag time, msg, raw)
        for _conn, t, raw in reader.messages(connections=images):
            frames.append((t, deserialize_message(bytes(raw), image_type), bytes(raw)))
            if opts.max_frames and len(frames) >= opts.max_frames:
                break
        gt_sem: dict[int, np.ndarray] = {}
        gt_pan: dict[int, Any] = {}
        extra_conns = []
        for topic, store in ((opts.gt_topic, "sem"), (opts.gt_panoptic_topic, "pan")):
            if not topic:
                continue
            cs = [c for c in conns if c.topic == topic]
            if not cs:
                raise ValueError(f"no ground-truth topic {topic!r} in {bag}")
            extra_conns += cs
            t = _py_type(cs[0].msgtype)
            from . import conversions

            for _conn, _, raw in reader.messages(connections=cs):
                m = deserialize_message(bytes(raw), t)
                if store == "sem":
                    gt_sem[_stamp_ns(m.header)] = conversions.image_to_numpy(m).astype(np.int64)
                else:
                    gt_pan[_stamp_ns(m.header)] = m
        depth: list[tuple[int, int, Any]] = []
        depth_conns = [c for c in conns if c.topic in (depth_topic, info_topic)] if depth_topic else []
        if depth_conns:
            info_type = _py_type(CAMERA_INFO)
            for conn, t, raw in reader.messages(connections=depth_conns):
                kind = 0 if conn.topic == depth_topic else 1
                m = deserialize_message(bytes(raw), _py_type("sensor_msgs/msg/Image") if kind == 0 else info_type)
                depth.append((t, kind, m))
        copy_raw = []
        if opts.copy_input:
            for conn, t, raw in reader.messages(connections=images + extra_conns + depth_conns):
                copy_raw.append((conn.topic, conn.msgtype, t, bytes(raw)))
    if not frames:
        raise ValueError(f"{bag}: no messages on {image_topic}")
    stamps = [_stamp_ns(m.header) for _, m, _ in frames]
    restamped = len(set(stamps)) != len(stamps) or 0 in stamps
    if restamped:  # outputs are matched by header stamp: make them unique (the bag time)
        log("image header stamps are zero or repeat: using the bag times as stamps")
        for t, m, _ in frames:
            m.header.stamp.sec, m.header.stamp.nanosec = divmod(t, 1_000_000_000)
        stamps = [t for t, _, _ in frames]
        for t, _, m in depth:  # the same for the depth streams, so that they still pair
            m.header.stamp.sec, m.header.stamp.nanosec = divmod(t, 1_000_000_000)
    bag_time_of = dict(zip(stamps, (t for t, _, _ in frames), strict=False))
    if opts.gt_dir:
        files = {}
        for p in sorted(Path(opts.gt_dir).glob("*.png")):
            s = _stamp_from_name(p.stem)
            if s is not None:
                files[s] = p
        if not files:
            raise ValueError(f"{opts.gt_dir}: no label PNGs named by stamp (<sec>_<nanosec>.png ...)")
        keys = np.array(sorted(files), dtype=np.int64)
        tol = int(opts.gt_tolerance_ms * 1e6)
        for s in stamps:
            i = int(np.searchsorted(keys, s))
            best = min((abs(int(keys[j]) - s), int(keys[j])) for j in (i - 1, i) if 0 <= j < len(keys))
            if best[0] <= tol:
                gt_sem[s] = read_label_png(files[best[1]])

    return BagInput(
        image_topic,
        image_msgtype,
        image_type,
        frames,
        stamps,
        restamped,
        bag_time_of,
        gt_sem,
        gt_pan,
        copy_raw,
        depth_topic,
        info_topic,
        [(_stamp_ns(m.header), kind, m) for _, kind, m in depth],
    )


def _depth_topics(reader, conns, opts: EvalOptions, log) -> tuple[str | None, str | None, list[str]]:
    """The depth image topic to replay (``--depth-topic``, else the Image topic whose first message
    is 16UC1 / 32FC1; several: an "aligned" one first), its camera_info topic (``None, None``
    without depth or with ``--no-depth``) and every depth-encoded image topic."""
    from rclpy.serialization import deserialize_message

    image_type = _py_type("sensor_msgs/msg/Image")
    found = []
    for c in conns:
        if c.msgtype != "sensor_msgs/msg/Image" or c.topic in (opts.image_topic, opts.gt_topic) or not c.msgcount:
            continue
        first = next(iter(reader.messages(connections=[c])), None)
        if first is not None and deserialize_message(bytes(first[2]), image_type).encoding in DEPTH_ENCODINGS:
            found.append(c.topic)
    found.sort(key=lambda t: ("aligned" not in t, t))
    if not opts.depth:
        return None, None, found
    by_topic = {c.topic: c for c in conns}
    infos = sorted(c.topic for c in conns if c.msgtype == CAMERA_INFO and c.msgcount)
    topic = opts.depth_topic
    if topic:
        if by_topic.get(topic) is None or by_topic[topic].msgtype != "sensor_msgs/msg/Image":
            images = sorted(c.topic for c in conns if c.msgtype == "sensor_msgs/msg/Image")
            raise ValueError(f"no sensor_msgs/Image topic {topic!r} for --depth-topic in {opts.bag}; images: {images}")
    else:
        if not found:
            return None, None, found
        topic = found[0]
        if len(found) > 1:
            log(f"several depth topics {found}; using {topic} (choose with --depth-topic)")
    info = opts.depth_info_topic or topic.rsplit("/", 1)[0] + "/camera_info"
    if info not in infos:
        raise ValueError(
            f"no camera_info for the depth topic {topic!r} in {opts.bag}: {info!r} is not there "
            f"(CameraInfo topics: {infos}); pass --depth-info-topic, or --no-depth"
        )
    log(f"depth: {topic} with {info}")
    return topic, info, found


def _wait_for_outputs(rec: _Recorder, node, s: int, sent: dict[int, float], timeout: float) -> None:
    """``--fast``: until frame ``s``'s expected outputs arrived, the node finished it without one
    (failed or refused), or ``timeout``."""
    limit = time.monotonic() + timeout
    two_d = None  # when the 2D outputs were in
    while time.monotonic() < limit:
        with rec.lock:
            got = rec.outputs_by_stamp.get(s, set())
        expected = _expected(node)
        if got and all(k in got for k in ("panoptic", "semantic") if k in expected):
            # the 3D outputs follow the 2D ones from the same frame's work, unless its depth was
            # refused (counted) or never paired: then give up once the node is idle
            if "segments_3d" not in expected or "segments_3d" in got:
                break
            two_d = two_d or time.monotonic()
            if (node is None or not node.busy) and time.monotonic() - two_d > 0.5:
                break
        if (
            node is not None
            and node.stats.processed + node.stats.errors + node.stats.invalid + node.stats.stale + node.stats.dropped
            >= len(sent)
            and not node.busy
            and not got
        ):
            # the node finished this frame without an output (failed or refused)
            if time.monotonic() - sent[s] > 0.5:
                break
        if node is not None and "segments_3d" in expected and not got and not node.busy:
            # a colour frame waits in the synchroniser until its depth pairs: none came (counted
            # in the node's depth_unpaired), so the node never took it
            if time.monotonic() - sent[s] > 2.0:
                break
        rec.event.wait(0.01)
        rec.event.clear()


def replay(opts: EvalOptions, data: BagInput, *, log=print) -> Replay:
    """Start the node (unless ``opts.external``) and a recorder, publish the frames (bag timing or
    one by one with ``opts.fast``), wait for the last outputs; everything recorded."""
    import rclpy

    from .harness import Spinner, create_node

    frames, stamps, image_msgtype, image_type = data.frames, data.stamps, data.image_msgtype, data.image_type
    context = rclpy.Context()
    init_kwargs = {"context": context}
    if opts.domain_id is not None:
        init_kwargs["domain_id"] = opts.domain_id
    rclpy.init(**init_kwargs)
    spinners, node = [], None
    try:
        ns = opts.namespace.rstrip("/")
        compressed = image_msgtype.endswith("CompressedImage")
        input_topic = f"{ns}/image/compressed" if compressed else f"{ns}/image"
        if not opts.external:
            from .node import bring_up

            params = dict(opts.params)
            if compressed:
                params["input.transport"] = "compressed"
            if data.depth_topic:
                params["depth.enabled"] = True
            if opts.fast:
                params.setdefault("input.qos.reliability", "reliable")
                params.setdefault("input.qos.depth", 10)
            node = create_node(context, params, params_files=opts.params_files, namespace=ns or "/")
            bring_up(node)
            spinners.append(Spinner(context, node))  # its own executor and thread, as ovseg_node
        rec = _Recorder(
            context,
            ns,
            image_type,
            input_topic,
            opts.record_overlay or opts.overlay_dir is not None,
            depth=bool(data.depth_topic),
        )
        spinners.append(Spinner(context, rec.node))
        deadline = time.monotonic() + 30
        for pub in (rec.pub, *(rec.depth_pubs or ())):
            while pub.get_subscription_count() == 0:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"nothing subscribes to {pub.topic_name}: is the node running (with depth)?")
                time.sleep(0.01)
        t_overlay = time.monotonic() + 5
        if opts.record_overlay or opts.overlay_dir is not None:
            while (
                node is not None
                and "overlay" in node.outputs
                and node.subscriber_count("overlay") == 0
                and time.monotonic() < t_overlay
            ):
                time.sleep(0.01)
        time.sleep(0.3)  # let discovery settle (late-joiner: the first frames must not vanish)

        # -- replay ---------------------------------------------------------------------------------
        sent: dict[int, float] = {}
        wall0 = time.monotonic()
        bag0 = frames[0][0]
        progress = None
        if opts.progress:
            try:
                from tqdm import tqdm

                progress = tqdm(
                    total=len(frames), unit="frame", desc="replay", file=sys.stderr, disable=len(frames) < 2
                )
            except ImportError:  # pragma: no cover
                progress = None
        # depth and camera_info go out before the colour frame they can pair with
        slop_ns = int(float(opts.params.get("depth.slop", 0.05)) * 1e9)
        pending, next_aux = data.depth, 0
        for (t, msg, _), s in zip(frames, stamps, strict=False):
            if opts.fast:
                pass
            else:
                target = wall0 + (t - bag0) / 1e9 / max(opts.rate, 1e-9)
                delay = target - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            while next_aux < len(pending) and pending[next_aux][0] <= s + slop_ns:
                _, kind, aux = pending[next_aux]
                rec.depth_pubs[kind].publish(aux)
                next_aux += 1
            sent[s] = time.monotonic()
            rec.pub.publish(msg)
            if opts.fast:
                _wait_for_outputs(rec, node, s, sent, opts.frame_timeout)
            if progress is not None:
                progress.update(1)
        if progress is not None:
            progress.close()
        # drain: wait for the last outputs
        drain_until = time.monotonic() + (opts.frame_timeout if not opts.fast else 2.0)
        while time.monotonic() < drain_until:
            with rec.lock:
                done = stamps[-1] in rec.outputs_by_stamp
            idle = node is None or not node.busy
            if done and idle:
                break
            if node is not None and idle and time.monotonic() - sent[stamps[-1]] > 3.0:
                break
            time.sleep(0.02)
        time.sleep(0.3)
        node_stats = node.stats.snapshot() if node is not None else None
        model_times = {r.stamp_ns: r.model for r in node.stats.records} if node is not None else {}
        with rec.lock:
            records = list(rec.records)
            first_output = dict(rec.first_output)
            arrival = dict(rec.arrival)
    finally:
        for spinner in spinners:
            spinner.close()
        if node is not None:
            try:
                node.trigger_deactivate()
            except Exception:  # noqa: BLE001
                pass
            node.destroy_node()
        context.try_shutdown()

    return Replay(ns, records, first_output, sent, wall0, node_stats, model_times, arrival)


def write_output_bag(opts: EvalOptions, data: BagInput, run: Replay, out_bag: Path) -> None:
    """The outputs (and ``--copy-input``'s inputs) at the bag times of their frames."""
    from rclpy.serialization import serialize_message
    from rosbags.rosbag2 import StoragePlugin, Writer

    bag, frames, bag_time_of = Path(opts.bag), data.frames, data.bag_time_of
    records, sent, wall0, ns = run.records, run.sent, run.wall0, run.namespace
    bag0 = frames[0][0]
    store = ovseg_typestore()
    last_bag_t = frames[-1][0]
    writes: list[tuple[str, str, int, bytes]] = list(data.copy_raw)
    for key, t_recv, msg in records:
        if key in FRAME_OUTPUTS:
            t_bag = bag_time_of.get(_stamp_ns(msg.header))
            if t_bag is None:
                continue
            topic, msgtype = f"{ns}/{key}", OUTPUT_TOPICS[key]
        else:
            # not tied to a frame: the bag time corresponding to when it was received
            if opts.fast:
                earlier = [sent_s for sent_s, sent_t in sent.items() if sent_t <= t_recv]
                t_bag = bag_time_of[max(earlier, key=lambda x: sent[x])] if earlier else bag0
            else:
                t_bag = bag0 + int(max(t_recv - wall0, 0) * opts.rate * 1e9)
            t_bag = min(max(t_bag, bag0), last_bag_t)
            topic, msgtype = (
                (f"{ns}/vocabulary", OUTPUT_TOPICS["vocabulary"])
                if key == "vocabulary"
                else ("/diagnostics", "diagnostic_msgs/msg/DiagnosticArray")
            )
        writes.append((topic, msgtype, int(t_bag), serialize_message(msg)))
    writes.sort(key=lambda w: w[2])
    storage = opts.storage or ("mcap" if any(Path(bag).glob("*.mcap")) else "sqlite3")
    plugin = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}[storage]
    with Writer(out_bag, version=9, storage_plugin=plugin) as writer:
        connections = {}
        for topic, msgtype, t, raw in writes:
            if topic not in connections:
                connections[topic] = writer.add_connection(topic, msgtype, typestore=store)
            writer.write(connections[topic], t, raw)


def save_overlays(opts: EvalOptions, data: BagInput, run: Replay) -> None:
    """The recorded overlays as PNGs in ``opts.overlay_dir``, named by frame index and stamp."""
    stamps, bag_time_of, records = data.stamps, data.bag_time_of, run.records
    if opts.overlay_dir is not None:
        from PIL import Image as PILImage

        from . import conversions

        Path(opts.overlay_dir).mkdir(parents=True, exist_ok=True)
        for key, _, msg in records:
            if key == "overlay":
                s = _stamp_ns(msg.header)
                idx = stamps.index(s) if s in bag_time_of else -1
                name = f"{idx:05d}_{s // 1_000_000_000}_{s % 1_000_000_000:09d}.png"
                PILImage.fromarray(conversions.image_to_numpy(msg)).save(Path(opts.overlay_dir) / name)


def build_report(opts: EvalOptions, data: BagInput, run: Replay, out_bag: Path, *, log=print) -> dict:
    """Frames, latency, the vocabulary, semantic / panoptic metrics against the ground truth."""
    bag, frames, stamps, restamped = Path(opts.bag), data.frames, data.stamps, data.restamped
    image_topic, gt_sem, gt_pan = data.image_topic, data.gt_sem, data.gt_pan
    records, first_output, sent = run.records, run.first_output, run.sent
    node_stats, model_times = run.node_stats, run.model_times
    vocab_msgs = [m for k, _, m in records if k == "vocabulary"]
    vocabularies = {m.version: m for m in vocab_msgs}
    sem_out = {_stamp_ns(m.header): m for k, _, m in records if k == "semantic"}
    pan_out = {_stamp_ns(m.header): m for k, _, m in records if k == "panoptic"}
    processed = [s for s in stamps if s in first_output]
    latency = [(first_output[s] - sent[s]) * 1e3 for s in processed]
    report: dict[str, Any] = {
        "bag": str(bag),
        "output_bag": str(out_bag),
        "image_topic": image_topic,
        "mode": "fast" if opts.fast else f"bag timing x{opts.rate:g}",
        "restamped": restamped,
        "frames": len(frames),
        "processed": len(processed),
        "dropped": len(frames) - len(processed),
        "latency_ms": {
            "end_to_end": _percentiles(latency),
            "model": _percentiles(v * 1e3 for s, v in model_times.items() if s in sent),
        },
        "vocabulary": None,
        "semantic": None,
        "panoptic": None,
        "node": node_stats,
    }
    final_vocab = vocab_msgs[-1] if vocab_msgs else None
    if final_vocab is not None:
        report["vocabulary"] = {
            "version": final_vocab.version,
            "model": final_vocab.model,
            "classes": [c.name for c in final_vocab.classes],
        }
    if gt_sem:
        report["semantic"] = _semantic_metrics(gt_sem, sem_out, pan_out, vocabularies, final_vocab, opts, log)
    if gt_pan:
        report["panoptic"] = _panoptic_metrics(gt_pan, pan_out, vocabularies, final_vocab)
    # class labels found
    counts: dict[str, int] = {}
    for m in pan_out.values():
        for seg in m.segments:
            counts[seg.label] = counts.get(seg.label, 0) + 1
    report["segments_per_label"] = dict(sorted(counts.items(), key=lambda kv: -kv[1]))
    if data.depth_topic:
        report["depth"] = _depth_report(data, run)
    return _nan_to_none(report)


def _depth_report(data: BagInput, run: Replay) -> dict:
    """What the 3D outputs of the replayed frames hold (there is no 3D ground truth to score)."""
    frames = set(data.stamps)
    s3 = {_stamp_ns(m.header): m for k, _, m in run.records if k == "segments_3d"}
    clouds = {_stamp_ns(m.header): m for k, _, m in run.records if k == "points"}
    s3 = {s: m for s, m in s3.items() if s in frames}
    segs = [g for m in s3.values() for g in m.segments]
    centroids = [g for g in segs if math.isfinite(g.centroid.z)]
    stats = run.node_stats or {}
    return {
        "topic": data.depth_topic,
        "camera_info_topic": data.depth_info_topic,
        "depth_messages": sum(1 for _, kind, _ in data.depth if kind == 0),
        "camera_info_messages": sum(1 for _, kind, _ in data.depth if kind == 1),
        "frames_with_3d": len(s3),
        "frames_with_cloud": sum(1 for s in clouds if s in frames),
        "paired": stats.get("depth_pairs"),
        "refused": stats.get("depth_invalid"),
        "segments": len(segs),
        "segments_with_centroid": len(centroids),
        "points_per_cloud": _percentiles(m.width for s, m in clouds.items() if s in frames),
        "centroid_depth_m": _percentiles(g.centroid.z for g in centroids),
        "latency_ms": _percentiles(
            (run.arrival[("segments_3d", s)] - run.sent[s]) * 1e3 for s in s3 if ("segments_3d", s) in run.arrival
        ),
    }


def evaluate_bag(opts: EvalOptions, *, log=print) -> dict:
    """Replay, record, write the output bag and compute the report (returned as a dict):
    :func:`read_bag` -> :func:`replay` -> :func:`write_output_bag`, :func:`save_overlays` ->
    :func:`build_report`."""
    bag = Path(opts.bag)
    out_bag = Path(opts.output) if opts.output else bag.with_name(bag.name.rstrip("/") + "_ovseg")
    if out_bag.exists():
        raise FileExistsError(f"output bag {out_bag} exists; remove it or pass --output")
    data = read_bag(opts, log=log)
    run = replay(opts, data, log=log)
    write_output_bag(opts, data, run, out_bag)
    if opts.overlay_dir is not None:
        save_overlays(opts, data, run)
    report = build_report(opts, data, run, out_bag, log=log)
    if opts.report:
        Path(opts.report).parent.mkdir(parents=True, exist_ok=True)
        Path(opts.report).write_text(json.dumps(report, indent=2))
    return report


def _expected(node) -> set:
    if node is None or node.cfg is None:
        return {"semantic"}
    return {k for k in ("semantic", "panoptic", "segments_3d") if k in node.outputs}


def _semantic_metrics(gt_sem, sem_out, pan_out, vocabularies, final_vocab, opts, log) -> dict:
    from ovseg_models.evaluation import metrics_from_confusion_matrix
    from ovseg_models.evaluation.semantic import confusion_matrix

    from . import conversions

    if final_vocab is None:
        raise RuntimeError("no vocabulary received from the node")
    k = len(final_vocab.classes)
    cm = None
    evaluated = missing = out_of_range = 0
    for s, gt in gt_sem.items():
        out = sem_out.get(s)
        if out is None:
            missing += 1
            continue
        pan = pan_out.get(s)
        if pan is not None and pan.vocabulary_version != final_vocab.version:
            continue  # produced with another vocabulary than the one evaluated
        pred = conversions.image_to_numpy(out).astype(np.int64)
        if pred.shape != gt.shape:
            raise ValueError(f"ground truth of stamp {s} is {gt.shape}, the prediction {pred.shape}")
        pred = np.where(pred >= k, k, pred)  # unlabeled -> an extra "nothing" class
        ignore = opts.ignore_label
        if ignore is None:
            ignore = 65535 if gt.max(initial=0) > 255 else 255
        t = gt.copy()
        bad = (t != ignore) & ((t < 0) | (t >= k))
        out_of_range += int(bad.sum())
        t[bad] = ignore
        c = confusion_matrix(prediction=pred, target=t, num_classes=k + 1, ignore_index=ignore)
        cm = c if cm is None else cm + c
        evaluated += 1
    if cm is None:
        return {"evaluated_frames": 0, "frames_without_output": missing}
    if out_of_range:
        log(f"warning: {out_of_range} ground-truth pixels had labels outside the vocabulary ({k} classes): ignored")
    m = metrics_from_confusion_matrix(cm)
    iou = list(m.iou[:k])
    names = [c.name for c in final_vocab.classes]
    return {
        "evaluated_frames": evaluated,
        "frames_without_output": missing,
        # the same mIoU as ovseg-eval (mean over the classes with ground-truth pixels; the extra "nothing"
        # class k never has any, so it only lowers the IoU of the classes it was predicted on)
        "mIoU": m.miou * 100,
        "pixel_accuracy": m.pixel_accuracy * 100,
        "per_class_iou": {
            n: v * 100
            for n, v, gt_px in zip(names, iou, cm.sum(1)[:k].tolist(), strict=False)
            if gt_px > 0 or not math.isnan(v)
        },
    }


def _panoptic_metrics(gt_pan, pan_out, vocabularies, final_vocab) -> dict:
    from ovseg_models.evaluation import PanopticQualityMetric

    from . import conversions

    if final_vocab is None:
        raise RuntimeError("no vocabulary received from the node")
    cats = {i: c.thing == c.THING for i, c in enumerate(final_vocab.classes)}  # published: THING or STUFF
    metric = PanopticQualityMetric(categories=cats)
    evaluated = 0
    for s, gt in gt_pan.items():
        pred = pan_out.get(s)
        if pred is None or pred.vocabulary_version != final_vocab.version:
            continue
        gt_ids = conversions.image_to_numpy(gt.id_image).astype(np.int64)
        pred_ids = conversions.image_to_numpy(pred.id_image).astype(np.int64)
        metric.update(
            gt_ids=gt_ids,
            gt_segments=[{"id": g.id, "category_id": g.category} for g in gt.segments],
            pred_ids=pred_ids,
            pred_segments=[{"id": p.id, "category_id": p.category} for p in pred.segments],
        )
        evaluated += 1
    res = metric.compute()
    names = [c.name for c in final_vocab.classes]
    out = {
        name: {k: (v * 100 if k in ("pq", "sq", "rq") else v) for k, v in res[name].items()}
        for name in ("All", "Things", "Stuff")
    }
    out["per_class"] = {
        names[int(c)]: {k: v * 100 for k, v in d.items() if k in ("pq", "sq", "rq")}
        for c, d in res["per_class"].items()
    }
    out["evaluated_frames"] = evaluated
    return out


# -- command line ---------------------------------------------------------------------------------


def format_report(report: dict) -> str:
    lines = [
        f"bag {report['bag']} ({report['image_topic']}, {report['mode']}): {report['frames']} frames, "
        f"{report['processed']} processed, {report['dropped']} dropped",
        f"output bag: {report['output_bag']}",
    ]
    for name, lat in report["latency_ms"].items():
        if lat:
            lines.append(
                f"latency {name:>10}: p50 {lat['p50']:.1f} ms  p90 {lat['p90']:.1f} ms  "
                f"p99 {lat['p99']:.1f} ms  (n={lat['n']})"
            )
    sem = report.get("semantic")
    if sem and sem.get("evaluated_frames"):
        lines.append(
            f"semantic: mIoU {sem['mIoU']:.2f}  pixel accuracy {sem['pixel_accuracy']:.2f}  "
            f"({sem['evaluated_frames']} frames)"
        )
        for n, v in sorted(sem["per_class_iou"].items(), key=lambda kv: -(kv[1] or 0)):
            lines.append(f"  IoU {n:<30} {'nan' if v is None else f'{v:6.2f}'}")
    pan = report.get("panoptic")
    if pan:
        for part in ("All", "Things", "Stuff"):
            p = pan[part]
            if p.get("n"):
                lines.append(f"panoptic {part:<6}: PQ {p['pq']:.2f}  SQ {p['sq']:.2f}  RQ {p['rq']:.2f}  (n={p['n']})")
    d = report.get("depth")
    if d:
        lines.append(
            f"depth {d['topic']} + {d['camera_info_topic']}: 3D outputs for {d['frames_with_3d']} frames "
            f"(paired {d['paired']}, refused {d['refused']}), {d['segments_with_centroid']}/{d['segments']} "
            "segments with a centroid"
        )
        for name, unit in (("points_per_cloud", ""), ("centroid_depth_m", " m"), ("latency_ms", " ms")):
            v = d.get(name)
            if v:
                lines.append(f"  {name}: p50 {v['p50']:.4g}{unit}  p90 {v['p90']:.4g}{unit}  max {v['max']:.4g}{unit}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ovseg-bag-eval",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("bag", type=Path, help="input rosbag2 folder (sqlite3 or MCAP)")
    p.add_argument("--output", "-o", type=Path, help="output bag (default: <bag>_ovseg)")
    p.add_argument("--image-topic", help="image topic to replay (default: the bag's only/first image topic)")
    p.add_argument("--fast", action="store_true", help="as fast as possible: each frame when the previous is done")
    p.add_argument("--rate", type=float, default=1.0, help="bag timing speed factor (default 1)")
    p.add_argument("--gt-topic", help="semantic ground-truth topic (mono8/mono16 label images) in the bag")
    p.add_argument("--gt-dir", type=Path, help="folder of ground-truth label PNGs named by stamp")
    p.add_argument("--gt-panoptic-topic", help="panoptic ground truth (ovseg/msg/PanopticSegmentation) in the bag")
    p.add_argument("--gt-tolerance-ms", type=float, default=1.0, help="stamp matching tolerance for --gt-dir")
    p.add_argument("--ignore-label", type=int, help="ignored ground-truth label (default 255, or 65535 for 16-bit)")
    p.add_argument("--params-file", action="append", default=[], help="node parameter YAML (repeatable)")
    p.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        type=parse_param,
        metavar="NAME:=VALUE",
        help="node parameter (repeatable), e.g. -p model:=catseg",
    )
    p.add_argument("--external", action="store_true", help="use an already running node instead of starting one")
    p.add_argument("--namespace", default="/segmentation", help="the node's namespace (default /segmentation)")
    p.add_argument("--no-overlay", action="store_true", help="do not record the overlay topic")
    p.add_argument("--overlay-dir", type=Path, help="also write the overlays as PNGs into this folder")
    p.add_argument("--no-copy-input", action="store_true", help="write only the outputs to the new bag")
    p.add_argument("--storage", choices=("sqlite3", "mcap"), help="output storage (default: as the input)")
    p.add_argument("--report", type=Path, help="write the report as JSON here")
    p.add_argument("--frame-timeout", type=float, default=60.0, help="seconds to wait for one frame (--fast)")
    p.add_argument("--max-frames", type=int, default=0, help="replay at most this many frames")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--depth-topic", help="depth image topic (default: the bag's 16UC1/32FC1 image topic)")
    p.add_argument("--depth-info-topic", help="its camera_info (default: <depth topic's namespace>/camera_info)")
    p.add_argument("--no-depth", action="store_true", help="do not replay a depth topic (no 3D outputs)")
    return p


def options_from_args(args) -> EvalOptions:
    return EvalOptions(
        bag=args.bag,
        output=args.output,
        image_topic=args.image_topic,
        gt_topic=args.gt_topic,
        gt_dir=args.gt_dir,
        gt_panoptic_topic=args.gt_panoptic_topic,
        gt_tolerance_ms=args.gt_tolerance_ms,
        ignore_label=args.ignore_label,
        fast=args.fast,
        rate=args.rate,
        params_files=args.params_file,
        params=dict(args.param),
        external=args.external,
        namespace=args.namespace,
        record_overlay=not args.no_overlay,
        overlay_dir=args.overlay_dir,
        copy_input=not args.no_copy_input,
        storage=args.storage,
        report=args.report,
        frame_timeout=args.frame_timeout,
        progress=not args.no_progress,
        max_frames=args.max_frames,
        depth=not args.no_depth,
        depth_topic=args.depth_topic,
        depth_info_topic=args.depth_info_topic,
    )


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        report = evaluate_bag(options_from_args(args), log=lambda s: print(s, file=sys.stderr))
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # noqa: BLE001 - one line for the user, not a traceback
        print(f"ovseg-bag-eval: error: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    print(format_report(report))
    if args.report:
        print(f"report: {args.report}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
