"""Image conversions (ovseg_ros.conversions): bit-exact round trips of every encoding with row
padding and both byte orders, colour handling, compressed images, label images, malformed input,
and agreement with a real cv_bridge where one is importable."""

from __future__ import annotations

import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image

from ovseg_ros import conversions as cv


def _random(enc, h=7, w=10, seed=0):
    dtype, ch = cv.ENCODINGS[enc]
    rng = np.random.default_rng(seed)
    shape = (h, w) if ch == 1 else (h, w, ch)
    return rng.integers(0, np.iinfo(dtype).max, size=shape, dtype=np.uint64, endpoint=True).astype(dtype)


@pytest.mark.parametrize("big", [False, True])
@pytest.mark.parametrize("pad", [0, 1, 6])
@pytest.mark.parametrize("enc", sorted(cv.ENCODINGS))
def test_round_trip_is_bit_exact(enc, pad, big):
    a = _random(enc)
    dtype, ch = cv.ENCODINGS[enc]
    row = a.shape[1] * ch * dtype.itemsize
    msg = cv.numpy_to_image(a, enc, step=row + pad, is_bigendian=big)
    assert isinstance(msg, Image) and msg.step == row + pad and len(msg.data) == (row + pad) * a.shape[0]
    assert msg.is_bigendian == int(big)
    back = cv.image_to_numpy(msg)
    assert back.dtype == a.dtype.newbyteorder("=") and back.shape == a.shape
    assert np.array_equal(back, a)
    # the bytes on the wire are what the encoding says
    raw = np.frombuffer(bytes(msg.data), np.uint8).reshape(a.shape[0], row + pad)[:, :row]
    expect = a.astype(dtype.newbyteorder(">" if big else "<")).view(np.uint8).reshape(a.shape[0], row)
    assert np.array_equal(raw, expect)
    # through real CDR serialisation too
    from rclpy.serialization import deserialize_message, serialize_message

    again = deserialize_message(serialize_message(msg), Image)
    assert np.array_equal(cv.image_to_numpy(again), a)


def test_byte_order_of_16_bit_data_is_respected():
    msg = Image(height=1, width=2, encoding="mono16", is_bigendian=1, step=4, data=bytes([0x12, 0x34, 0xAB, 0xCD]))
    assert cv.image_to_numpy(msg).tolist() == [[0x1234, 0xABCD]]
    msg.is_bigendian = 0
    assert cv.image_to_numpy(msg).tolist() == [[0x3412, 0xCDAB]]


def test_to_rgb8_colour_orders():
    rgb = _random("rgb8", seed=3)
    alpha = np.full(rgb.shape[:2] + (1,), 7, np.uint8)
    cases = {
        "rgb8": rgb,
        "bgr8": rgb[:, :, ::-1],
        "rgba8": np.concatenate([rgb, alpha], 2),
        "bgra8": np.concatenate([rgb[:, :, ::-1], alpha], 2),
        "8UC3": rgb[:, :, ::-1],
        "8UC4": np.concatenate([rgb[:, :, ::-1], alpha], 2),
        "rgb16": rgb.astype(np.uint16) * 257,
        "bgr16": rgb[:, :, ::-1].astype(np.uint16) * 257,
        "rgba16": np.concatenate([rgb, alpha], 2).astype(np.uint16) * 257 + 3,
    }
    for enc, arr in cases.items():
        out = cv.image_to_rgb8(cv.numpy_to_image(np.ascontiguousarray(arr), enc, step=None))
        assert out.dtype == np.uint8 and out.flags.writeable and np.array_equal(out, rgb), enc
    grey = _random("mono8", seed=4)
    for enc, arr in (
        ("mono8", grey),
        ("8UC1", grey),
        ("mono16", grey.astype(np.uint16) << 8 | 0xFF),
        ("16UC1", grey.astype(np.uint16) << 8),
    ):
        out = cv.image_to_rgb8(cv.numpy_to_image(arr, enc))
        assert np.array_equal(out, np.repeat(grey[:, :, None], 3, 2)), enc


def test_yuv422_decoding():
    # UYVY of a grey ramp with neutral chroma decodes to grey (BT.601 limited range)
    y = np.array([[16, 235, 126, 126]], np.uint8)
    uyvy = np.array([[[128, 16], [128, 235], [128, 126], [128, 126]]], np.uint8)
    out = cv.image_to_rgb8(cv.numpy_to_image(uyvy, "yuv422"))
    assert out.shape == (1, 4, 3)
    assert out[0, :, 0].tolist() == [0, 255, 128, 128] and np.all(out[..., 0] == out[..., 1])
    yuyv = np.array([[[16, 128], [235, 128], [126, 128], [126, 128]]], np.uint8)
    assert np.array_equal(cv.image_to_rgb8(cv.numpy_to_image(yuyv, "yuv422_yuy2")), out)
    del y


MALFORMED = {
    "data shorter than step x height": (
        dict(height=4, width=4, encoding="rgb8", step=12, data=bytes(47)),
        "less than step x height",
    ),
    "zero width": (dict(height=4, width=0, encoding="rgb8", step=0, data=b""), "empty image"),
    "zero height": (dict(height=0, width=4, encoding="mono8", step=4, data=b""), "empty image"),
    "unsupported encoding": (dict(height=1, width=1, encoding="32FC1", step=4, data=bytes(4)), "unsupported encoding"),
    "step smaller than a row": (
        dict(height=2, width=4, encoding="mono16", step=6, data=bytes(16)),
        "smaller than a row",
    ),
    "absurd size": (dict(height=1 << 20, width=1 << 20, encoding="mono8", step=1 << 20, data=b""), "exceeds"),
    "odd yuv width": (dict(height=1, width=3, encoding="yuv422", step=6, data=bytes(6)), "even width"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_images_are_refused_with_a_reason(case):
    fields, reason = MALFORMED[case]
    msg = Image(**fields)
    with pytest.raises(cv.ImageConversionError, match=reason):
        cv.image_to_numpy(msg)
    with pytest.raises(cv.ImageConversionError, match=reason):
        cv.image_to_rgb8(msg)


def test_numpy_to_image_refuses_mismatches():
    with pytest.raises(cv.ImageConversionError, match="dtype"):
        cv.numpy_to_image(np.zeros((2, 2), np.uint16), "mono8")
    with pytest.raises(cv.ImageConversionError, match="shape"):
        cv.numpy_to_image(np.zeros((2, 2, 3), np.uint8), "rgba8")
    with pytest.raises(cv.ImageConversionError, match="step"):
        cv.numpy_to_image(np.zeros((2, 2, 3), np.uint8), "rgb8", step=5)
    with pytest.raises(cv.ImageConversionError, match="unsupported"):
        cv.numpy_to_image(np.zeros((2, 2), np.float32), "32FC1")


def test_compressed_round_trips():
    rgb = np.kron(_random("rgb8", 6, 8, seed=5), np.ones((8, 8, 1), np.uint8))
    png = cv.rgb8_to_compressed(rgb, "png")
    assert isinstance(png, CompressedImage) and png.format == "rgb8; png compressed rgb8"
    assert np.array_equal(cv.compressed_to_rgb8(png), rgb)  # lossless
    jpg = cv.rgb8_to_compressed(rgb, "jpeg", quality=98)
    assert jpg.format == "rgb8; jpeg compressed rgb8"
    assert (
        np.abs(cv.compressed_to_rgb8(jpg).astype(int) - rgb).mean() < 12
    )  # chroma subsampling; swapped channels give ~80
    for fmt in ("jpeg", "bgr8; jpeg compressed bgr8", "jpg"):
        jpg.format = fmt
        assert cv.compressed_to_rgb8(jpg).shape == rgb.shape
    grey = rgb[:, :, 0].copy()
    g = cv.rgb8_to_compressed(grey, "png")
    assert g.format.startswith("mono8") and np.array_equal(cv.compressed_to_rgb8(g), np.repeat(grey[:, :, None], 3, 2))
    # 16-bit PNG (Pillow writes I;16)
    import io

    from PIL import Image as PILImage

    a16 = (grey.astype(np.uint16) << 8) | 0x7F
    bio = io.BytesIO()
    PILImage.fromarray(a16).save(bio, format="PNG")
    m = CompressedImage(format="16UC1; png compressed 16UC1", data=bio.getvalue())
    assert np.array_equal(cv.compressed_to_numpy(m), a16)
    assert np.array_equal(cv.compressed_to_rgb8(m)[:, :, 0], grey)


@pytest.mark.parametrize(
    "fmt,data,reason",
    [
        ("jpeg", b"", "no data"),
        ("jpeg", b"\xff\xd8\xff garbage", "cannot decode"),
        ("theora", b"abc", "unsupported compressed format"),
        ("16UC1; compressedDepth png", b"abc", "compressedDepth"),
    ],
)
def test_malformed_compressed_images(fmt, data, reason):
    with pytest.raises(cv.ImageConversionError, match=reason):
        cv.compressed_to_rgb8(CompressedImage(format=fmt, data=data))


def test_label_images():
    lab = np.array([[0, 1, 65534], [-1, 70000, 3]], np.int64)
    msg = cv.labels_to_image(lab)
    assert msg.encoding == "mono16" and msg.step == 6 and msg.is_bigendian == 0
    assert cv.image_to_numpy(msg).tolist() == [[0, 1, 65534], [65535, 65535, 3]]
    msg = cv.labels_to_image(np.array([[1, 2]]), unlabeled=np.array([[True, False]]))
    assert cv.image_to_numpy(msg).tolist() == [[65535, 2]]


def test_label_images_reuse_the_previous_frames_buffer_and_publish_right(ros_context, executor):
    """The node writes each frame's labels into the last published message: the buffer is reused
    (same array), and every publish carries that frame's labels, over real DDS."""
    from ros_test_utils import image_probe, spin_until

    node, pub, got = image_probe(ros_context, executor, "reuse_probe", publish_to="labels", listen_to="labels")
    assert spin_until(executor, lambda: pub.get_subscription_count() > 0)
    rng = np.random.default_rng(0)
    frames = [rng.integers(-2, 70000, size=(48, 64)).astype(np.int32) for _ in range(3)]
    frames.append(np.arange(12, dtype=np.uint16).reshape(3, 4))  # another size: a new buffer
    msg, buffers = None, []
    for lab in frames:
        msg = cv.labels_to_image(lab, msg=msg)
        buffers.append(msg.data)
        pub.publish(msg)
    assert buffers[0] is buffers[1] is buffers[2] and buffers[3] is not buffers[2]
    # label_image hands out a view of the message's own data (its setter may copy what it is given)
    msg2, view = cv.label_image(2, 3)
    view[...] = 7
    assert cv.image_to_numpy(msg2).tolist() == [[7, 7, 7], [7, 7, 7]]
    assert spin_until(executor, lambda: len(got) == 4)
    for lab, out in zip(frames, got, strict=False):
        want = np.where((lab < 0) | (lab >= 65535), 65535, lab)
        assert np.array_equal(cv.image_to_numpy(out), want)
    executor.remove_node(node)
    node.destroy_node()


def test_agrees_with_a_real_cv_bridge():
    cv_bridge = pytest.importorskip("cv_bridge", reason="no working cv_bridge here (PyPI's is broken)")
    try:
        bridge = cv_bridge.CvBridge()
        probe = bridge.cv2_to_imgmsg(np.zeros((2, 2, 3), np.uint8), "rgb8")
        bridge.imgmsg_to_cv2(probe)
    except Exception as e:  # the PyPI ROS 1 port fails with numpy 2
        pytest.skip(f"cv_bridge is importable but broken here: {type(e).__name__}: {e}")
    for enc in ("rgb8", "bgr8", "rgba8", "bgra8", "mono8", "mono16", "8UC3", "16UC1"):
        a = _random(enc, seed=9)
        ours = cv.numpy_to_image(a, enc)
        theirs = bridge.cv2_to_imgmsg(a, enc)
        assert (ours.height, ours.width, ours.step, ours.encoding) == (
            theirs.height,
            theirs.width,
            theirs.step,
            theirs.encoding,
        )
        assert bytes(ours.data) == bytes(theirs.data), enc
        assert np.array_equal(np.asarray(bridge.imgmsg_to_cv2(ours)), cv.image_to_numpy(theirs)), enc
    # both convert bgr8 to rgb8 alike
    a = _random("bgr8", seed=10)
    theirs = bridge.imgmsg_to_cv2(cv.numpy_to_image(a, "bgr8"), "rgb8")
    assert np.array_equal(np.asarray(theirs), cv.image_to_rgb8(cv.numpy_to_image(a, "bgr8")))
