"""Depth through the node over real DDS: colour + depth + camera_info paired, segments_3d and points.

The tiny real FC-CLIP segments the colour frame; the node's 3D outputs must equal
``ovseg_ros.geometry3d`` applied offline to the panoptic id image it published and the depth it was
sent (the geometry itself is checked on a ray-cast scene in test_geometry3d.py). Bad depth,
camera_info and pairing give no 3D output, a counted reason, and the 2D outputs go on.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from node_harness import Probe, rgb_image, running_node, stamp_key, tiny_params, write_vocab_file
from rclpy.qos import QoSProfile, ReliabilityPolicy
from ros_test_utils import spin_until
from sensor_msgs.msg import CameraInfo, Image, PointCloud2

from ovseg.msg import Segments3D
from ovseg_ros import conversions
from ovseg_ros import geometry3d as g3
from ovseg_ros.params import COMMON_PARAMETERS

H, W = 48, 64
STRIDE = COMMON_PARAMETERS["depth.stride"][0]  # the grid the node uses by default
FX = FY = 50.0


@pytest.fixture
def vocab_file(tmp_path):
    return write_vocab_file(tmp_path)


def depth_mm(h=H, w=W) -> np.ndarray:
    """A floor-like ramp (1.5 m at the top row to 3 m at the bottom) with a box at 1 m and holes."""
    d = np.repeat(np.linspace(1500, 3000, h)[:, None], w, axis=1).astype(np.uint16)
    d[h // 4 : h // 2, w // 4 : w // 2] = 1000
    d[::7, ::5] = 0  # holes
    return d


def camera_info(h=H, w=W, k=None) -> CameraInfo:
    info = CameraInfo(height=h, width=w)
    info.k = k if k is not None else [FX * w / W, 0.0, (w - 1) / 2, 0.0, FY * h / H, (h - 1) / 2, 0.0, 0.0, 1.0]
    info.header.frame_id = "camera_optical"
    return info


class DepthProbe(Probe):
    def __init__(self, ros_context, executor, ns="/segmentation"):
        super().__init__(ros_context, executor, ns=ns, overlay=False)
        q = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        self.got["segments_3d"], self.got["points"] = [], []
        self.node.create_subscription(Segments3D, f"{ns}/segments_3d", self.got["segments_3d"].append, q)
        self.node.create_subscription(PointCloud2, f"{ns}/points", self.got["points"].append, q)
        self.depth_pub = self.node.create_publisher(Image, f"{ns}/depth/image", 10)
        self.info_pub = self.node.create_publisher(CameraInfo, f"{ns}/depth/camera_info", 10)

    def send_rgbd(
        self,
        depth: np.ndarray,
        info: CameraInfo,
        *,
        key="segments_3d",
        depth_offset=0.0,
        info_offset=0.0,
        depth_frame="camera_optical",
        encoding="16UC1",
        timeout=20.0,
    ):
        """Publish colour, depth and camera_info with (offset) stamps until ``key`` has the colour's stamp."""
        img = conversions.numpy_to_image(rgb_image(3, H, W), "rgb8")
        self.next_header(img)
        dmsg = conversions.numpy_to_image(depth, encoding)
        dmsg.header.frame_id = depth_frame
        base = img.header.stamp.sec + img.header.stamp.nanosec * 1e-9
        for msg, off in ((dmsg, depth_offset), (info, info_offset)):
            t = base + off
            msg.header.stamp.sec, msg.header.stamp.nanosec = int(t), int(round((t - int(t)) * 1e9))
        last = [0.0]

        def step():
            now = time.monotonic()
            if now - last[0] > 1.0:
                self.depth_pub.publish(dmsg)
                self.info_pub.publish(info)
                self.pub.publish(img)
                last[0] = now
            return any(stamp_key(m) == stamp_key(img) for m in self.got[key])

        assert spin_until(self.executor, step, timeout), f"no {key} for stamp {stamp_key(img)}"
        return img.header

    def of(self, key, header):
        return next(m for m in self.got[key] if stamp_key(m) == (header.stamp.sec, header.stamp.nanosec))


def _offline(pan, depth: np.ndarray, info: CameraInfo):
    ids = conversions.image_to_numpy(pan.id_image)
    if ids.shape != depth.shape:
        ys = np.minimum((np.arange(depth.shape[0]) * ids.shape[0] / depth.shape[0]).astype(int), ids.shape[0] - 1)
        xs = np.minimum((np.arange(depth.shape[1]) * ids.shape[1] / depth.shape[1]).astype(int), ids.shape[1] - 1)
        ids = ids[np.ix_(ys, xs)]
    d = g3.depth_to_metres(depth, "16UC1")
    intr = g3.Intrinsics.from_camera_info(info).scaled_to(depth.shape[1], depth.shape[0])
    # the node's default grid (depth.stride)
    return ids, d, g3.segment_geometry(d, ids, [s.id for s in pan.segments], intr, stride=STRIDE)


@pytest.mark.parametrize("synchroniser", ["message_filters", "own"])
def test_paired_depth_gives_segment_geometry_and_a_labelled_cloud(
    ros_context, executor, vocab_file, synchroniser, monkeypatch
):
    """With message_filters (a robot) and without it (ovseg_ros.sync.ApproximateSync)."""
    import ovseg_ros.sync

    if synchroniser == "message_filters":
        pytest.importorskip("message_filters", reason="message_filters is not installed (../shared/ros2-client)")
    else:
        monkeypatch.setattr(ovseg_ros.sync, "message_filters_available", lambda: False)
    params = tiny_params(vocab_file, **{"depth.enabled": True, "depth.slop": 0.02, "depth.min_points": 1})
    with running_node(ros_context, params) as node:
        probe = DepthProbe(ros_context, executor)
        probe.wait_connected()
        depth, info = depth_mm(), camera_info()
        header = probe.send_rgbd(depth, info, depth_offset=0.005, info_offset=-0.003)  # jitter within the slop
        assert spin_until(
            executor,
            lambda: any(stamp_key(m) == stamp_key(probe.of("segments_3d", header)) for m in probe.got["points"]),
            10,
        )
        pan = next(m for m in probe.got["panoptic"] if stamp_key(m) == stamp_key(probe.of("segments_3d", header)))
        s3 = probe.of("segments_3d", header)
        assert s3.header == pan.header and s3.vocabulary_version == pan.vocabulary_version
        assert [g.id for g in s3.segments] == [s.id for s in pan.segments] and pan.segments
        ids, d, geo = _offline(pan, depth, info)
        for i, g in enumerate(s3.segments):
            assert g.point_count == geo.counts[i] and g.inlier_count == geo.inliers[i]
            np.testing.assert_allclose([g.centroid.x, g.centroid.y, g.centroid.z], geo.centroids[i], atol=1e-6)
            np.testing.assert_allclose([g.extent.x, g.extent.y, g.extent.z], geo.extents[i], atol=1e-6)
        cloud = probe.of("points", header)
        assert cloud.header == pan.header
        # every valid, non-void pixel of the grid
        assert cloud.width == int((np.isfinite(d) & (ids != 0))[::STRIDE, ::STRIDE].sum())
        assert [f.name for f in cloud.fields] == ["x", "y", "z", "label", "segment_id", "score"]
        raw = np.frombuffer(bytes(cloud.data), g3.CLOUD_DTYPE)
        assert set(np.unique(raw["segment_id"]).tolist()) <= {s.id for s in pan.segments}
        scores = {s.id: s.score for s in pan.segments}
        np.testing.assert_allclose(raw["score"], [scores[i] for i in raw["segment_id"]], atol=1e-6)
        assert node.stats.depth_pairs >= 1 and node.stats.depth_invalid == 0

        # depth at half the colour resolution, with its own camera_info: the labels are sampled at its pixels
        half, half_info = depth_mm(H // 2, W // 2), camera_info(H // 2, W // 2)
        header = probe.send_rgbd(half, half_info)
        s3 = probe.of("segments_3d", header)
        pan = next(m for m in probe.got["panoptic"] if stamp_key(m) == stamp_key(s3))
        _, _, geo = _offline(pan, half, half_info)
        assert [g.point_count for g in s3.segments] == geo.counts.tolist()


def test_bad_depth_and_pairing_are_counted_and_the_2d_outputs_go_on(ros_context, executor, vocab_file):
    params = tiny_params(vocab_file, **{"depth.enabled": True, "depth.slop": 0.02})
    with running_node(ros_context, params) as node:
        probe = DepthProbe(ros_context, executor)
        probe.wait_connected()
        depth = depth_mm()
        cases = [
            (dict(info=camera_info(k=[0.0] * 9)), "not calibrated"),
            (dict(info=camera_info(), depth_frame="other_frame"), "frame_id"),
            (dict(info=camera_info(), encoding="mono16"), "encoding"),
            (dict(info=camera_info(), depth=depth_mm(H // 2, W)), "aspect ratio"),
        ]
        for i, (kw, why) in enumerate(cases, start=1):
            args = {"depth": depth, **kw}
            probe.send_rgbd(args.pop("depth"), args.pop("info"), key="panoptic", **args)
            assert spin_until(executor, lambda n=i: node.stats.depth_invalid >= n, 10), why
            assert why in node.recent_warnings[-1], node.recent_warnings[-1]
        assert not probe.got["segments_3d"]
        # a depth stream 0.5 s off never pairs: no frame at all is processed, and the offset is reported
        before = node.stats.processed
        img = conversions.numpy_to_image(rgb_image(4, H, W), "rgb8")
        probe.next_header(img)
        dmsg = conversions.numpy_to_image(depth, "16UC1")
        dmsg.header.frame_id = "camera_optical"
        dmsg.header.stamp.sec, dmsg.header.stamp.nanosec = img.header.stamp.sec, img.header.stamp.nanosec + 500_000_000
        info = camera_info()
        info.header.stamp = img.header.stamp
        probe.depth_pub.publish(dmsg)
        probe.info_pub.publish(info)
        probe.pub.publish(img)
        assert spin_until(executor, lambda: (node._depth_sync_stats(node.cameras) or {}).get("unpaired", 0) > 0, 10)
        assert abs(abs(node._depth_sync_stats(node.cameras)["last_offset_s"]) - 0.5) < 1e-6
        probe.spin(1.0)
        assert node.stats.processed == before
        values = {kv.key: kv.value for kv in node.diagnostics().values}
        assert int(values["depth_unpaired"]) > 0 and values["depth_last_unpaired_offset_s"] != "nan"
        assert int(values["depth_invalid_frames"]) == len(cases)
