"""ovseg_ros.geometry3d on a ray-cast scene (floor, wall, two boxes) with known geometry: centroids
and extents against the exact visible surface, robustness to holes and outliers, 16UC1 vs 32FC1,
the labelled PointCloud2 layout, intrinsics scaling and validation, depth decoding."""

from __future__ import annotations

import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField
from std_msgs.msg import Header

from ovseg_ros import geometry3d as g3

H, W = 480, 640
FX = FY = 525.0
CX, CY = 319.5, 239.5
INTR = g3.Intrinsics(FX, FY, CX, CY, W, H)

# optical frame: x right, y down, z forward; camera 1 m above the floor, wall 5 m ahead
FLOOR, WALL, BOX_A, BOX_B = 1, 2, 3, 4
PLANES = {FLOOR: ((0.0, 1.0, 0.0), 1.0), WALL: ((0.0, 0.0, 1.0), 5.0)}  # n . p = d
BOXES = {
    BOX_A: ((-1.2, 0.4, 2.5), (-0.6, 1.0, 3.0)),  # on the floor, left: front, right side and top visible
    BOX_B: ((0.3, -0.5, 2.0), (0.9, 0.1, 2.4)),  # floating, right: front and left side visible
}
SEGMENTS = [FLOOR, WALL, BOX_A, BOX_B]


def render_scene(planes=PLANES, boxes=BOXES, h=H, w=W, fx=FX, fy=FY, cx=CX, cy=CY):
    """Ray-cast planes and axis-aligned boxes (nearest hit per pixel) in float64.

    Returns depth (metres, inf where nothing is hit), the id map, and the exact hit points (H, W, 3).
    Written independently of the module: its own rays, its own intersections.
    """
    u = (np.arange(w) - cx) / fx
    v = (np.arange(h) - cy) / fy
    r = np.stack([np.broadcast_to(u, (h, w)), np.broadcast_to(v[:, None], (h, w)), np.ones((h, w))], -1)
    best = np.full((h, w), np.inf)
    ids = np.zeros((h, w), np.uint16)
    with np.errstate(divide="ignore", invalid="ignore"):
        for sid, (n, d) in planes.items():
            t = d / (r @ np.asarray(n, float))
            t[~(t > 0)] = np.inf
            m = t < best
            best[m], ids[m] = t[m], sid
        for sid, (lo, hi) in boxes.items():  # slab method; the camera is outside every box
            t1, t2 = np.asarray(lo, float) / r, np.asarray(hi, float) / r
            near, far = np.minimum(t1, t2).max(-1), np.maximum(t1, t2).min(-1)
            t = np.where((near <= far) & (near > 0), near, np.inf)
            m = t < best
            best[m], ids[m] = t[m], sid
    return best, ids, r * best[..., None]


DEPTH, IDS, POINTS = render_scene()


def _truth(sid, stride=1):
    """Per-axis median and max - min of the exact hit points of the segment (on the stride grid)."""
    p = POINTS[::stride, ::stride][IDS[::stride, ::stride] == sid]
    return np.median(p, 0), p.max(0) - p.min(0), len(p)


def _corrupt(depth, seed=0, holes=0.05, outliers=0.02, hole_value=np.nan):
    rng = np.random.default_rng(seed)
    d = depth.copy()
    r = rng.random(d.shape)
    d[r < holes] = hole_value
    d[(r >= holes) & (r < holes + outliers)] *= 3.0
    return d


def _check(geo, centroid_tol=0.01, extent_tol=0.02, stride=1):
    for i, sid in enumerate(SEGMENTS):
        med, ext, _ = _truth(sid, stride)
        assert np.abs(geo.centroids[i] - med).max() <= centroid_tol, (sid, geo.centroids[i], med)
        assert np.abs(geo.extents[i] - ext).max() <= extent_tol, (sid, geo.extents[i], ext)


def test_scene_is_what_the_tests_assume():
    assert np.isfinite(DEPTH).all() and set(np.unique(IDS)) == set(SEGMENTS)
    # closed form: floor at y = 1, wall at z = 5, the boxes' faces where they were put
    assert np.allclose(POINTS[IDS == FLOOR][:, 1], 1.0) and np.allclose(POINTS[IDS == WALL][:, 2], 5.0)
    for sid, (lo, hi) in BOXES.items():
        p = POINTS[IDS == sid]
        assert p[:, 2].min() == pytest.approx(lo[2])  # the front face
        assert np.allclose(p.min(0)[:2], lo[:2], atol=0.005) and np.allclose(p.max(0)[:2], hi[:2], atol=0.005)
        assert p[:, 2].max() == pytest.approx(hi[2], abs=0.04)  # side faces, foreshortened


def test_clean_scene_exact():
    geo = g3.segment_geometry(g3.depth_to_metres(DEPTH.astype(np.float32), "32FC1"), IDS, SEGMENTS, INTR)
    _check(geo, 0.002, 0.002)
    assert geo.counts.tolist() == [int((IDS == s).sum()) for s in SEGMENTS] == geo.inliers.tolist()
    # closed-form truth of the fronto-parallel parts
    assert geo.centroids[1, 2] == pytest.approx(5.0, abs=1e-4) and geo.extents[1, 2] == pytest.approx(0, abs=1e-4)
    assert geo.centroids[0, 1] == pytest.approx(1.0, abs=1e-4) and geo.extents[0, 1] == pytest.approx(0, abs=1e-4)
    for i, sid in ((2, BOX_A), (3, BOX_B)):
        lo, hi = np.array(BOXES[sid][0]), np.array(BOXES[sid][1])
        assert np.allclose(geo.extents[i], hi - lo, atol=0.04)
        assert np.allclose(geo.box_min[i], lo, atol=0.005)
        assert geo.centroids[i, 2] == pytest.approx(lo[2], abs=1e-4)  # most pixels are on the front face
    assert np.allclose(geo.box_max - geo.box_min, geo.extents)


@pytest.mark.parametrize("hole_value", [np.nan, 0.0])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_holes_and_outliers(seed, hole_value):
    d = _corrupt(DEPTH, seed, hole_value=hole_value)
    geo = g3.segment_geometry(g3.depth_to_metres(d.astype(np.float32), "32FC1"), IDS, SEGMENTS, INTR)
    _check(geo)
    n_valid = [int(((IDS == s) & (d > 0) & np.isfinite(d)).sum()) for s in SEGMENTS]
    assert geo.counts.tolist() == n_valid
    # the outliers were dropped (2% of each segment, give or take), and nothing much else
    frac = 1 - geo.inliers / geo.counts
    assert ((frac > 0.01) & (frac < 0.03)).all(), frac


def test_outliers_do_break_min_max():
    # the gate is what makes it robust: without it the extents blow up (the test above can fail)
    d = g3.depth_to_metres(_corrupt(DEPTH, 0).astype(np.float32), "32FC1")
    z = d[IDS == BOX_B]
    z = z[np.isfinite(z)]
    assert z.max() - z.min() > 3.0


def test_16uc1_and_32fc1_agree():
    d = _corrupt(DEPTH, 4, hole_value=0.0)
    mm = np.round(d * 1000).astype(np.uint16)
    a = g3.segment_geometry(g3.depth_to_metres(mm, "16UC1"), IDS, SEGMENTS, INTR)
    b = g3.segment_geometry(g3.depth_to_metres(d.astype(np.float32), "32FC1"), IDS, SEGMENTS, INTR)
    assert np.abs(a.centroids - b.centroids).max() < 0.002
    assert np.abs(a.extents - b.extents).max() < 0.004
    assert a.counts.tolist() == b.counts.tolist()
    _check(a)


def test_stride_two():
    geo = g3.segment_geometry(g3.depth_to_metres(_corrupt(DEPTH, 5), "32FC1"), IDS, SEGMENTS, INTR, stride=2)
    # against the exact points of the stride grid: the floor's rows are 3.3 cm apart in z there, 1.8%
    # of its points each, so removing the holes and outliers can move its z median by one row
    _check(geo, 0.035, 0.02, stride=2)
    # against the full grid: extents are exact to a 2-pixel footprint (10 cm on the floor's far rows)
    _check(geo, 0.035, 0.1)
    # ... and everything but the floor seen at grazing angles is within the full-resolution targets
    for i, sid in enumerate(SEGMENTS[1:], start=1):
        med, ext, _ = _truth(sid)
        assert np.abs(geo.centroids[i] - med).max() <= 0.01 and np.abs(geo.extents[i] - ext).max() <= 0.02, sid
    assert abs(geo.counts.sum() - 0.95 * H * W / 4) < 0.01 * H * W / 4


def test_small_absent_and_void_segments():
    ids = IDS.copy()
    ids[:3, :3] = 9  # 9 pixels < min_points
    geo = g3.segment_geometry(DEPTH.astype(np.float32), ids, [9, 77, 0, BOX_B], INTR)
    assert geo.counts.tolist()[:3] == [9, 0, 0] and geo.counts[3] > 0
    assert np.isnan(geo.centroids[:3]).all() and np.isnan(geo.extents[:3]).all()
    assert np.isfinite(geo.centroids[3]).all()
    geo = g3.segment_geometry(DEPTH.astype(np.float32), ids, [9], INTR, min_points=9)
    assert np.isfinite(geo.centroids).all()
    empty = g3.segment_geometry(np.full((H, W), np.nan, np.float32), IDS, SEGMENTS, INTR)
    assert empty.counts.tolist() == [0, 0, 0, 0] and np.isnan(empty.centroids).all()
    assert len(g3.segment_geometry(DEPTH, IDS, [], INTR)) == 0
    # a raw array with 0 (and inf) for holes is as good as NaN
    raw = DEPTH.astype(np.float32)
    raw[::7] = 0.0
    raw[1::7] = np.inf
    a = g3.segment_geometry(raw, IDS, SEGMENTS, INTR)
    raw[::7] = np.nan
    raw[1::7] = np.nan
    b = g3.segment_geometry(raw, IDS, SEGMENTS, INTR)
    assert np.array_equal(a.counts, b.counts) and np.allclose(a.centroids, b.centroids)
    assert len(g3.cloud_arrays(raw, IDS, IDS, None, INTR, max_points=10**7)) == b.counts.sum()


def test_out_of_range_depth_is_ignored():
    d = DEPTH.astype(np.float32).copy()
    d[IDS == BOX_B] = 0.05  # closer than min_depth
    d[IDS == WALL] = 30.0  # farther than max_depth
    m = g3.depth_to_metres(d, "32FC1")
    geo = g3.segment_geometry(m, IDS, SEGMENTS, INTR)
    assert geo.counts[1] == 0 and geo.counts[3] == 0 and geo.counts[0] == (IDS == FLOOR).sum()
    assert np.isfinite(g3.depth_to_metres(d, "32FC1", min_depth=None, max_depth=None)).all()
    m = g3.depth_to_metres(np.array([[0, 99, 100, 20000, 20001, 65535]], np.uint16), "16UC1")
    assert np.isnan(m[0, [0, 1, 4, 5]]).all() and m[0, 2] == pytest.approx(0.1) and m[0, 3] == pytest.approx(20.0)
    f = g3.depth_to_metres(np.array([[np.nan, np.inf, -np.inf, -1.0, 0.0, 1.5]], np.float32), "32FC1")
    assert np.isnan(f[0, :5]).all() and f[0, 5] == np.float32(1.5)


def _image(a, enc, big=False, pad=0):
    a = np.asarray(a)
    dt = a.dtype.newbyteorder(">" if big else "<")
    row = a.shape[1] * a.dtype.itemsize
    raw = np.zeros((a.shape[0], row + pad), np.uint8)
    raw[:, :row] = a.astype(dt).view(np.uint8).reshape(a.shape[0], row)
    return Image(
        height=a.shape[0], width=a.shape[1], encoding=enc, is_bigendian=int(big), step=row + pad, data=raw.tobytes()
    )


@pytest.mark.parametrize("big", [False, True])
@pytest.mark.parametrize("pad", [0, 6])
def test_depth_images(big, pad):
    mm = np.array([[0, 1000, 2500], [65535, 123, 4000]], np.uint16)
    m = g3.depth_to_metres(_image(mm, "16UC1", big, pad))
    assert np.array_equal(np.isnan(m), [[True, False, False], [True, False, False]])
    assert np.allclose(m[~np.isnan(m)], [1.0, 2.5, 0.123, 4.0])
    f = np.array([[1.25, np.nan], [0.0, 7.5]], np.float32)
    m = g3.depth_image_to_metres(_image(f, "32FC1", big, pad))
    assert m[0, 0] == 1.25 and m[1, 1] == 7.5 and np.isnan(m[0, 1]) and np.isnan(m[1, 0])
    assert m.dtype == np.float32


def test_bad_depth_refused():
    with pytest.raises(g3.GeometryError, match="'mono8'"):
        g3.depth_to_metres(np.zeros((2, 2), np.uint8), "mono8")
    with pytest.raises(g3.GeometryError, match="'rgb8'"):
        g3.depth_to_metres(Image(height=1, width=1, encoding="rgb8", step=3, data=b"abc"))
    with pytest.raises(g3.GeometryError, match="None"):
        g3.depth_to_metres(np.zeros((2, 2), np.uint16))
    with pytest.raises(g3.GeometryError, match="integer"):
        g3.depth_to_metres(np.zeros((2, 2), np.float32), "16UC1")
    with pytest.raises(g3.GeometryError, match="less than"):
        g3.depth_to_metres(Image(height=2, width=2, encoding="16UC1", step=4, data=b"\0" * 6))
    with pytest.raises(g3.GeometryError, match="smaller than max_depth"):
        g3.depth_to_metres(np.zeros((2, 2), np.uint16), "16UC1", min_depth=5, max_depth=1)
    with pytest.raises(g3.GeometryError, match="use Intrinsics.scaled_to"):
        g3.segment_geometry(DEPTH[::2, ::2], IDS[::2, ::2], SEGMENTS, INTR)


def _info(k, w=W, h=H):
    return CameraInfo(width=w, height=h, k=list(map(float, k)))


def test_camera_info():
    intr = g3.Intrinsics.from_camera_info(_info([FX, 0, CX, 0, FY, CY, 0, 0, 1]))
    assert intr == INTR
    cases = [
        (_info([0] * 9), "all zeros"),
        (_info([-FX, 0, CX, 0, FY, CY, 0, 0, 1]), "non-positive focal"),
        (_info([FX, 0, CX, 0, 0, CY, 0, 0, 1]), "non-positive focal"),
        (_info([FX, 0, CX, 0, FY, CY, 0, 0, 1], w=0), "empty image size"),
        (_info([FX, 0, CX, 0, FY, CY, 0, 0, 1], h=0), "empty image size"),
        (object(), "no 3x3 K"),
    ]
    for msg, reason in cases:
        with pytest.raises(g3.GeometryError, match=reason):
            g3.Intrinsics.from_camera_info(msg)


def test_scaled_intrinsics_for_a_depth_image_of_another_resolution():
    half = INTR.scaled_to(320, 240)
    assert (half.fx, half.fy, half.cx, half.cy) == (262.5, 262.5, 159.5, 119.5)
    assert INTR.scaled_to(640, 480) == INTR
    # render the scene at 320x240 with the scaled camera: the geometry is the same camera's
    d2, ids2, _ = render_scene(h=240, w=320, fx=half.fx, fy=half.fy, cx=half.cx, cy=half.cy)
    # ... and the half-resolution image of a 640x480 one by 2x2 binning sees the same rays
    assert np.allclose(half.rays()[0], INTR.rays()[0].reshape(-1, 2).mean(1), atol=1e-6)
    geo = g3.segment_geometry(d2.astype(np.float32), ids2, SEGMENTS, half)
    full = g3.segment_geometry(DEPTH.astype(np.float32), IDS, SEGMENTS, INTR)
    assert np.abs(geo.centroids - full.centroids).max() < 0.02
    assert np.abs(geo.extents - full.extents).max() < 0.05
    with pytest.raises(g3.GeometryError, match="aspect ratio"):
        INTR.scaled_to(640, 360)
    assert INTR.scaled_to(638, 480).width == 638  # 0.3%: a scaling within tolerance


def test_cloud_layout_and_counts():
    labels = (IDS * 10).astype(np.uint16)
    scores = np.array([0, 0.9, 0.8, 0.7, 0.6], np.float32)
    d = g3.depth_to_metres(_corrupt(DEPTH, 3).astype(np.float32), "32FC1")
    ids = IDS.copy()
    ids[:, :50] = 0  # void
    header = Header(frame_id="camera_color_optical_frame")
    for stride in (1, 2, 3):
        valid = np.isfinite(d[::stride, ::stride]) & (ids[::stride, ::stride] != 0)
        expect = int(valid.sum())
        for max_points in (10**7, 20000, 1):
            points = g3.cloud_arrays(d, ids, labels, scores, INTR, stride=stride, max_points=max_points)
            msg = g3.labelled_cloud(points, header=header)
            assert isinstance(msg, PointCloud2) and msg.header.frame_id == "camera_color_optical_frame"
            n = min(expect, max_points)
            assert msg.height == 1 and msg.width == n and msg.is_dense and not msg.is_bigendian
            assert msg.point_step == 24 and msg.row_step == 24 * n and len(msg.data) == 24 * n
            fields = [(f.name, f.offset, f.datatype, f.count) for f in msg.fields]
            assert fields == [
                ("x", 0, PointField.FLOAT32, 1),
                ("y", 4, PointField.FLOAT32, 1),
                ("z", 8, PointField.FLOAT32, 1),
                ("label", 12, PointField.UINT32, 1),
                ("segment_id", 16, PointField.UINT32, 1),
                ("score", 20, PointField.FLOAT32, 1),
            ]
    # the content, decoded from the bytes independently
    msg = g3.labelled_cloud(g3.cloud_arrays(d, ids, labels, scores, INTR, stride=2, max_points=10**7))
    raw = np.frombuffer(bytes(msg.data), np.uint8).reshape(-1, 24)
    xyz = raw[:, :12].copy().view("<f4")
    lab, seg = raw[:, 12:16].copy().view("<u4")[:, 0], raw[:, 16:20].copy().view("<u4")[:, 0]
    sc = raw[:, 20:24].copy().view("<f4")[:, 0]
    vv, uu = np.nonzero(np.isfinite(d[::2, ::2]) & (ids[::2, ::2] != 0))
    vv, uu = vv * 2, uu * 2
    z = d[vv, uu]
    assert np.allclose(xyz[:, 2], z) and np.allclose(xyz[:, 0], (uu - CX) / FX * z, atol=1e-5)
    assert np.allclose(xyz[:, 1], (vv - CY) / FY * z, atol=1e-5)
    assert np.array_equal(seg, ids[vv, uu]) and np.array_equal(lab, labels[vv, uu]) and np.array_equal(sc, scores[seg])
    # per-pixel scores and dict scores
    per_pixel = np.random.default_rng(0).random((H, W)).astype(np.float32)
    arr = g3.cloud_arrays(d, ids, labels, per_pixel, INTR, stride=2, max_points=10**7)
    assert np.array_equal(arr["score"], per_pixel[vv, uu])
    arr = g3.cloud_arrays(d, ids, labels, {1: 0.5, 2: 0.25, 3: 1, 4: 0}, INTR, stride=2, max_points=10**7)
    assert np.array_equal(arr["score"], np.array([0, 0.5, 0.25, 1, 0], np.float32)[seg])


def test_cloud_subsampling_is_even_and_deterministic():
    d = DEPTH.astype(np.float32)
    a = g3.cloud_arrays(d, IDS, IDS, None, INTR, max_points=20000)
    b = g3.cloud_arrays(d, IDS, IDS, None, INTR, max_points=20000)
    assert len(a) == 20000 and a.tobytes() == b.tobytes() and (a["score"] == 1).all()
    full = g3.cloud_arrays(d, IDS, IDS, None, INTR, max_points=10**7)
    step = len(full) / 20000
    assert np.array_equal(a, full[(np.arange(20000) * len(full)) // 20000])
    assert abs(step - H * W / 20000) < 1e-9
    # every segment keeps its share of the points, to within a row's worth
    for s in SEGMENTS:
        share = (IDS == s).mean()
        assert abs((a["segment_id"] == s).mean() - share) < 0.01
    assert len(g3.cloud_arrays(d, IDS, IDS, None, INTR, max_points=0)) == 0


def test_cloud_refuses_bad_input():
    with pytest.raises(g3.GeometryError, match="per-segment scores"):
        g3.cloud_arrays(DEPTH, IDS, IDS, np.ones(3), INTR)
    with pytest.raises(g3.GeometryError, match="label map"):
        g3.cloud_arrays(DEPTH, IDS, IDS[:10], None, INTR)
    with pytest.raises(g3.GeometryError, match="stride"):
        g3.cloud_arrays(DEPTH, IDS, IDS, None, INTR, stride=0)


def test_bench_runs():
    res = g3.bench(repeats=2)
    assert set(res) == {"frame_geometry_stride1", "frame_geometry_stride2", "frame_geometry_stride3", "labelled_cloud"}
    assert all(v > 0 for v in res.values())


@pytest.mark.parametrize("stride", [2, 3])
def test_strided_decoding_is_the_stride_grid_of_the_whole_image(stride):
    """What the node does (decode only the depth.stride grid) equals the stride of the whole image."""
    mm = np.round(_corrupt(DEPTH, 6, hole_value=0.0) * 1000).astype(np.uint16)
    for big, pad in ((False, 0), (True, 6)):
        full = g3.depth_to_metres(_image(mm, "16UC1", big, pad))
        part = g3.depth_image_to_metres(_image(mm, "16UC1", big, pad), stride=stride)
        assert np.array_equal(part, full[::stride, ::stride], equal_nan=True)
    strided = INTR.strided(stride)
    assert np.allclose(strided.rays()[0], INTR.rays()[0][::stride]) and len(strided.rays()[1]) == part.shape[0]
    labels = (IDS * 3).astype(np.uint16)
    a_geo, a_cloud = g3.frame_geometry(full, IDS, labels, None, SEGMENTS, INTR, stride=stride)
    s = np.s_[::stride, ::stride]
    b_geo, b_cloud = g3.frame_geometry(part, IDS[s], labels[s], None, SEGMENTS, strided)
    assert np.array_equal(a_geo.counts, b_geo.counts) and np.array_equal(a_geo.inliers, b_geo.inliers)
    assert np.allclose(a_geo.centroids, b_geo.centroids, atol=1e-5) and np.allclose(
        a_geo.extents, b_geo.extents, atol=1e-5
    )
    assert np.array_equal(a_cloud[["label", "segment_id", "score"]], b_cloud[["label", "segment_id", "score"]])
    assert np.allclose(a_cloud["x"], b_cloud["x"], atol=1e-5) and np.array_equal(a_cloud["z"], b_cloud["z"])
    with pytest.raises(g3.GeometryError, match="stride"):
        INTR.strided(0)


def test_camera_info_binning_and_roi_follow_image_geometry():
    from sensor_msgs.msg import RegionOfInterest

    k = [FX, 0, CX, 0, FY, CY, 0, 0, 1]
    binned = _info(k)
    binned.binning_x = binned.binning_y = 2
    assert g3.Intrinsics.from_camera_info(binned) == g3.Intrinsics(FX / 2, FY / 2, CX / 2, CY / 2, W // 2, H // 2)
    roi = _info(k)
    roi.roi = RegionOfInterest(x_offset=100, y_offset=40, width=320, height=240)
    assert g3.Intrinsics.from_camera_info(roi) == g3.Intrinsics(FX, FY, CX - 100, CY - 40, 320, 240)
    both = _info(k)
    both.roi, both.binning_x, both.binning_y = RegionOfInterest(x_offset=100, y_offset=40, width=320, height=240), 2, 4
    assert g3.Intrinsics.from_camera_info(both) == g3.Intrinsics(FX / 2, FY / 4, (CX - 100) / 2, (CY - 40) / 4, 160, 60)
    # a pixel of the ROI sees the ray of the full image's pixel it was cut from
    ru, rv = g3.Intrinsics.from_camera_info(roi).rays()
    full_u, full_v = INTR.rays()
    assert np.allclose(ru, full_u[100:420]) and np.allclose(rv, full_v[40:280])
    outside = _info(k)
    outside.roi = RegionOfInterest(x_offset=600, y_offset=0, width=320, height=240)
    with pytest.raises(g3.GeometryError, match="outside"):
        g3.Intrinsics.from_camera_info(outside)


@pytest.mark.parametrize("method", ["sort", "partition"])
@pytest.mark.parametrize("m", [1, 2, 3, 10, 11, 2433, 2434])
def test_both_selection_methods_give_the_exact_min_median_max(monkeypatch, method, m):
    """The per-segment selection is whichever of two exact methods is faster on the CPU: both
    must give numpy's min, median (mean of the two middle values for an even count) and max."""
    monkeypatch.setattr(g3, "_selection_method", lambda: method)
    v = (np.random.default_rng(m).normal(0, 2, (3, m))).astype(np.float32)
    lo, med, hi = g3._min_median_max(v)
    assert np.array_equal(lo, v.min(1)) and np.array_equal(hi, v.max(1))
    np.testing.assert_allclose(med, np.median(v.astype(np.float64), axis=1), rtol=0, atol=1e-6)


def test_the_selection_method_is_timed_once_and_is_one_of_the_two():
    g3._selection_method.cache_clear()
    first = g3._selection_method()
    assert first in ("sort", "partition")
    assert g3._selection_method() == first and g3._selection_method.cache_info().hits >= 1
