"""ovseg-bag-eval on real bags (sqlite3 and MCAP) with the tiny real model over DDS: outputs
recorded into a new bag with the original timestamps, mIoU/per-class IoU from a label topic or a
folder of PNGs, PQ from a panoptic ground-truth topic, latency percentiles, drops, JSON report."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from node_harness import REPO, rgb_image, tiny_params, write_vocab_file
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import Image, RegionOfInterest

from ovseg.msg import PanopticSegmentation, Segment
from ovseg_ros import conversions
from ovseg_ros.bag_eval import EvalOptions, evaluate_bag, ovseg_typestore

N = 8
T0 = 1_700_000_000_000_000_000


def _gt_labels(i):
    lab = np.zeros((48, 64), np.uint8)
    lab[:, 32:] = 1 + i % 3
    lab[:4] = 255  # ignored
    return lab


def make_bag(path, storage="sqlite3", *, compressed=False, period_ns=100_000_000):
    from rosbags.rosbag2 import StoragePlugin, Writer

    store = ovseg_typestore()
    plugin = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}[storage]
    with Writer(path, version=9, storage_plugin=plugin) as w:
        itype = "sensor_msgs/msg/CompressedImage" if compressed else "sensor_msgs/msg/Image"
        ci = w.add_connection("/camera/image_raw" + ("/compressed" if compressed else ""), itype, typestore=store)
        cg = w.add_connection("/camera/labels", "sensor_msgs/msg/Image", typestore=store)
        cp = w.add_connection("/camera/panoptic_gt", "ovseg/msg/PanopticSegmentation", typestore=store)
        for i in range(N):
            t = T0 + i * period_ns
            rgb = rgb_image(i)
            img = conversions.rgb8_to_compressed(rgb, "png") if compressed else conversions.numpy_to_image(rgb, "rgb8")
            img.header.stamp.sec, img.header.stamp.nanosec = divmod(t - 5_000_000, 1_000_000_000)
            img.header.frame_id = "cam"
            w.write(ci, t, serialize_message(img))
            lab = _gt_labels(i)
            gt = conversions.numpy_to_image(lab, "mono8", header=img.header)
            w.write(cg, t, serialize_message(gt))
            pan = PanopticSegmentation(header=img.header, vocabulary_version=1)
            ids = np.where(lab == 255, 0, lab.astype(np.uint16) + 1).astype(np.uint16)
            conversions.labels_to_image(ids, header=img.header, msg=pan.id_image)
            for sid in np.unique(ids[ids > 0]).tolist():
                ys, xs = np.nonzero(ids == sid)
                pan.segments.append(
                    Segment(
                        id=sid,
                        category=sid - 1,
                        label="x",
                        score=1.0,
                        area=len(ys),
                        bbox=RegionOfInterest(),
                        is_thing=sid - 1 != 0,
                    )
                )
            w.write(cp, t, serialize_message(pan))


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_bag_eval_fast_with_ground_truth_topics(tmp_path, ros_domain, storage):
    from rosbags.rosbag2 import Reader

    bag = tmp_path / "in"
    make_bag(bag, storage)
    params = tiny_params(write_vocab_file(tmp_path))
    report = evaluate_bag(
        EvalOptions(
            bag=bag,
            output=tmp_path / "out",
            fast=True,
            gt_topic="/camera/labels",
            gt_panoptic_topic="/camera/panoptic_gt",
            params=params,
            report=tmp_path / "r.json",
            domain_id=ros_domain,
            progress=False,
        )
    )
    assert report["frames"] == N and report["processed"] == N and report["dropped"] == 0
    assert report["image_topic"] == "/camera/image_raw" and not report["restamped"]
    lat = report["latency_ms"]
    assert lat["end_to_end"]["n"] == N and lat["model"]["n"] == N
    assert lat["end_to_end"]["p50"] >= lat["model"]["p50"] > 0
    sem = report["semantic"]
    assert sem["evaluated_frames"] == N and 0 <= sem["mIoU"] <= 100
    assert set(sem["per_class_iou"]) <= {"wall", "floor", "person", "cup"} and "wall" in sem["per_class_iou"]
    pan = report["panoptic"]
    assert pan["evaluated_frames"] == N and pan["All"]["n"] >= 1
    assert json.loads((tmp_path / "r.json").read_text())["frames"] == N
    # the output bag: outputs at their source image's bag time, inputs copied
    with Reader(tmp_path / "out") as r:
        topics = {c.topic: c.msgtype for c in r.connections}
        assert topics["/segmentation/semantic"] == "sensor_msgs/msg/Image"
        assert topics["/segmentation/panoptic"] == "ovseg/msg/PanopticSegmentation"
        assert topics["/segmentation/vocabulary"] == "ovseg/msg/Vocabulary"
        assert "/segmentation/overlay" in topics and "/camera/image_raw" in topics
        times = {}
        for conn, t, raw in r.messages():
            if conn.topic in ("/segmentation/semantic", "/segmentation/panoptic", "/camera/image_raw"):
                typ = PanopticSegmentation if conn.topic.endswith("panoptic") else Image
                m = deserialize_message(bytes(raw), typ)
                times.setdefault(conn.topic, []).append((t, m.header.stamp.sec * 10**9 + m.header.stamp.nanosec))
    expected = [(T0 + i * 100_000_000, T0 + i * 100_000_000 - 5_000_000) for i in range(N)]
    for topic in ("/segmentation/semantic", "/segmentation/panoptic", "/camera/image_raw"):
        assert sorted(times[topic]) == expected, topic


def test_bag_eval_at_bag_timing_with_png_ground_truth_cli(tmp_path, ros_env):
    bag = tmp_path / "in"
    make_bag(bag, "sqlite3", compressed=True, period_ns=250_000_000)
    gt_dir = tmp_path / "gt"
    gt_dir.mkdir()
    from PIL import Image as PILImage

    for i in range(N):
        s = T0 + i * 250_000_000 - 5_000_000
        PILImage.fromarray(_gt_labels(i)).save(gt_dir / f"{s // 10**9}_{s % 10**9:09d}.png")
    vocab = write_vocab_file(tmp_path)
    cmd = [
        sys.executable,
        "-m",
        "ovseg_ros.bag_eval",
        str(bag),
        "-o",
        str(tmp_path / "out"),
        "--gt-dir",
        str(gt_dir),
        "--params-file",
        str(REPO / "config" / "ovseg.yaml"),
        "--params-file",
        str(REPO / "config" / "tiny_random.yaml"),
        "-p",
        f"vocabulary.default:={vocab}",
        "-p",
        "torch_threads:=1",
        "--report",
        str(tmp_path / "r.json"),
        "--overlay-dir",
        str(tmp_path / "overlays"),
    ]
    res = subprocess.run(cmd, env=ros_env, capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "mIoU" in res.stdout and "latency end_to_end" in res.stdout and "dropped" in res.stdout
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["mode"] == "bag timing x1" and report["frames"] == N
    assert report["processed"] + report["dropped"] == N and report["processed"] >= N - 2
    assert report["semantic"]["evaluated_frames"] == report["processed"]
    assert len(list((tmp_path / "overlays").glob("*.png"))) == report["processed"]


def test_bag_eval_reports_bad_input(tmp_path, ros_env):
    res = subprocess.run(
        [sys.executable, "-m", "ovseg_ros.bag_eval", str(tmp_path / "nope")],
        env=ros_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode != 0


def make_rgbd_bag(path, *, with_info=True):
    """A RealSense-like bag: colour, depth aligned to it (16UC1, stamps 3 ms late), camera_info (2 ms
    early), each on its own topic; the depth topic sorts before the colour one."""
    from rosbags.rosbag2 import Writer
    from test_node_depth import H as DH
    from test_node_depth import W as DW
    from test_node_depth import camera_info, depth_mm

    store = ovseg_typestore()
    with Writer(path, version=9) as w:
        cc = w.add_connection("/camera/color/image_raw", "sensor_msgs/msg/Image", typestore=store)
        cd = w.add_connection("/camera/aligned_depth_to_color/image_raw", "sensor_msgs/msg/Image", typestore=store)
        ck = w.add_connection(
            "/camera/aligned_depth_to_color/camera_info", "sensor_msgs/msg/CameraInfo", typestore=store
        )
        for i in range(N):
            t = T0 + i * 100_000_000
            img = conversions.numpy_to_image(rgb_image(i, DH, DW), "rgb8")
            img.header.stamp.sec, img.header.stamp.nanosec = divmod(t, 1_000_000_000)
            img.header.frame_id = "camera_optical"
            w.write(cc, t, serialize_message(img))
            d = conversions.numpy_to_image(np.roll(depth_mm(), i, axis=1), "16UC1")
            d.header.frame_id = "camera_optical"
            d.header.stamp.sec, d.header.stamp.nanosec = divmod(t + 3_000_000, 1_000_000_000)
            w.write(cd, t + 3_000_000, serialize_message(d))
            if with_info:
                info = camera_info()
                info.header.stamp.sec, info.header.stamp.nanosec = divmod(t - 2_000_000, 1_000_000_000)
                w.write(ck, t - 2_000_000, serialize_message(info))


def test_bag_eval_replays_depth_and_reports_the_3d_outputs(tmp_path, ros_domain):
    from rosbags.rosbag2 import Reader
    from sensor_msgs.msg import CameraInfo, PointCloud2
    from test_node_depth import STRIDE

    from ovseg.msg import Segments3D
    from ovseg_ros import geometry3d as g3

    bag = tmp_path / "rgbd"
    make_rgbd_bag(bag)
    logs = []
    opts = EvalOptions(
        bag=bag,
        output=tmp_path / "out",
        fast=True,
        params=tiny_params(write_vocab_file(tmp_path), **{"depth.min_points": 1}),
        domain_id=ros_domain,
        progress=False,
    )
    report = evaluate_bag(opts, log=logs.append)
    assert report["image_topic"] == "/camera/color/image_raw" and report["processed"] == N  # not the depth
    d = report["depth"]
    assert d["topic"] == "/camera/aligned_depth_to_color/image_raw"
    assert d["camera_info_topic"] == "/camera/aligned_depth_to_color/camera_info"
    assert d["depth_messages"] == d["camera_info_messages"] == N
    assert d["frames_with_3d"] == d["frames_with_cloud"] == d["paired"] == N and d["refused"] == 0
    assert d["segments"] >= N and d["segments_with_centroid"] == d["segments"]
    assert 1.0 <= d["centroid_depth_m"]["p50"] <= 3.0 and d["latency_ms"]["n"] == N
    # the output bag: 3D outputs at their colour frame's bag time, equal to the geometry of the
    # recorded panoptic id image over the bag's depth; the depth streams copied
    got = {}
    with Reader(tmp_path / "out") as r:
        topics = {c.topic: c.msgtype for c in r.connections}
        assert topics["/segmentation/segments_3d"] == "ovseg/msg/Segments3D"
        assert topics["/segmentation/points"] == "sensor_msgs/msg/PointCloud2"
        assert "/camera/aligned_depth_to_color/image_raw" in topics
        types = {
            "/segmentation/segments_3d": Segments3D,
            "/segmentation/points": PointCloud2,
            "/segmentation/panoptic": PanopticSegmentation,
            "/camera/aligned_depth_to_color/image_raw": Image,
            "/camera/aligned_depth_to_color/camera_info": CameraInfo,
        }
        for conn, t, raw in r.messages():
            if conn.topic in types:
                got.setdefault(conn.topic, []).append((t, deserialize_message(bytes(raw), types[conn.topic])))
    assert [t for t, _ in got["/segmentation/segments_3d"]] == [T0 + i * 100_000_000 for i in range(N)]
    for (_, s3), (_, pan), (_, dmsg), (_, info), (_, cloud) in zip(
        got["/segmentation/segments_3d"],
        got["/segmentation/panoptic"],
        got["/camera/aligned_depth_to_color/image_raw"],
        got["/camera/aligned_depth_to_color/camera_info"],
        got["/segmentation/points"],
        strict=True,
    ):
        assert s3.header == pan.header == cloud.header
        ids = conversions.image_to_numpy(pan.id_image)
        geo = g3.segment_geometry(
            g3.depth_to_metres(dmsg),
            ids,
            [s.id for s in pan.segments],
            g3.Intrinsics.from_camera_info(info),
            stride=STRIDE,
            min_points=1,
        )
        assert [g.point_count for g in s3.segments] == geo.counts.tolist()
        np.testing.assert_allclose([[g.centroid.x, g.centroid.y, g.centroid.z] for g in s3.segments], geo.centroids)
        assert cloud.width == geo.counts.sum()


def test_bag_eval_depth_options_and_bad_depth_input(tmp_path, ros_domain):
    bag = tmp_path / "rgbd"
    make_rgbd_bag(bag)
    base = dict(fast=True, params=tiny_params(write_vocab_file(tmp_path)), domain_id=ros_domain, progress=False)
    with pytest.raises(ValueError, match="no sensor_msgs/Image topic '/nope' for --depth-topic"):
        evaluate_bag(EvalOptions(bag=bag, output=tmp_path / "o1", depth_topic="/nope", **base))
    with pytest.raises(ValueError, match="no camera_info for the depth topic.*--depth-info-topic"):
        evaluate_bag(EvalOptions(bag=bag, output=tmp_path / "o2", depth_info_topic="/camera/info", **base))
    no_info = tmp_path / "no_info"
    make_rgbd_bag(no_info, with_info=False)
    with pytest.raises(ValueError, match="aligned_depth_to_color/camera_info' is not there"):
        evaluate_bag(EvalOptions(bag=no_info, output=tmp_path / "o3", **base))
    # --no-depth: the 2D evaluation of the colour topic, no depth section
    report = evaluate_bag(EvalOptions(bag=no_info, output=tmp_path / "o4", depth=False, max_frames=2, **base))
    assert report["image_topic"] == "/camera/color/image_raw" and report["processed"] == 2
    assert "depth" not in report
