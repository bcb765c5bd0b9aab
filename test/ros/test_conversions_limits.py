"""Hostile and huge images (ovseg_ros.conversions): only JPEG and PNG are decoded, checked by the
format string and the data's signature; decoded pixels are capped from the header before decoding;
raw conversions cost the output and little more; memory goes back to the baseline afterwards."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import textwrap
import tracemalloc
import zlib

import numpy as np
import pytest
from PIL import Image as PILImage
from sensor_msgs.msg import CompressedImage

from ovseg_ros import conversions as cv


def _encoded(fmt: str, size=(16, 12), mode="RGB") -> bytes:
    bio = io.BytesIO()
    PILImage.new(mode, size, (10, 200, 30) if mode == "RGB" else 7).save(bio, format=fmt)
    return bio.getvalue()


def png_bomb(width: int, height: int) -> bytes:
    """A valid RGB PNG of ``width`` x ``height`` black pixels, a few hundred KiB at most (streamed)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    z = zlib.compressobj(9)
    row = bytes(1 + 3 * width)  # filter byte 0 + black pixels
    body = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", body)
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    "fmt, data, reason",
    [
        ("png", _encoded("GIF"), "says png, but the data does not start with a png signature"),
        ("jpeg", _encoded("BMP"), "says jpeg, but the data does not start"),
        ("rgb8; png compressed rgb8", _encoded("TIFF"), "says png"),
        ("png", _encoded("WEBP"), "says png"),
        ("jpeg", _encoded("PNG"), "says jpeg, but the data is png"),
        ("png", _encoded("JPEG"), "says png, but the data is jpeg"),
        ("gif", _encoded("GIF"), "unsupported compressed format 'gif'"),
        ("bmp", _encoded("BMP"), "unsupported compressed format"),
        ("tiff", _encoded("TIFF"), "unsupported compressed format"),
        ("", _encoded("JPEG"), "unsupported compressed format ''"),
        ("png or jpeg", _encoded("PNG"), "unsupported compressed format"),
    ],
)
def test_only_jpeg_and_png_are_decoded(fmt, data, reason):
    with pytest.raises(cv.ImageConversionError, match=reason):
        cv.compressed_to_rgb8(CompressedImage(format=fmt, data=data))


def test_pillow_only_tries_the_named_decoder(monkeypatch):
    """Data with a JPEG signature is opened by Pillow's JPEG plugin alone, never by a fallback."""
    opened = {}
    real = PILImage.open

    def spy(fp, mode="r", formats=None):
        opened["formats"] = formats
        return real(fp, mode, formats)

    monkeypatch.setattr(PILImage, "open", spy)
    rgb = cv.compressed_to_rgb8(CompressedImage(format="bgr8; jpeg compressed bgr8", data=_encoded("JPEG")))
    assert rgb.shape == (12, 16, 3) and opened["formats"] == ["JPEG"]
    cv.compressed_to_rgb8(CompressedImage(format="png", data=_encoded("PNG")))
    assert opened["formats"] == ["PNG"]


def test_decoded_pixels_are_capped_before_decoding():
    bomb = png_bomb(8192, 8192)
    assert len(bomb) < 1 << 20  # under 1 MiB on the wire, 201 MB decoded
    with pytest.raises(cv.ImageConversionError, match="8192x8192 refused: at most 16,777,216 pixels"):
        cv.compressed_to_rgb8(CompressedImage(format="png", data=bomb))
    small = CompressedImage(format="png", data=_encoded("PNG", (100, 100)))
    with pytest.raises(cv.ImageConversionError, match="100x100 refused: at most 5,000 pixels"):
        cv.compressed_to_rgb8(small, max_pixels=5000)
    assert cv.compressed_to_rgb8(small).shape == (100, 100, 3)
    out = cv.compressed_to_rgb8(small)
    assert out.flags.writeable and out.flags.c_contiguous  # no further copy needed downstream


def test_raw_images_over_the_pixel_limit_are_refused_from_the_header():
    msg = type("M", (), {})()
    msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian = "mono8", 10_000, 10_000, 10_000, 0
    msg.data = b""
    with pytest.raises(cv.ImageConversionError, match="exceeds the limit of 33,177,600 pixels"):
        cv.check_image(msg)


@pytest.mark.parametrize(
    "enc, big",
    [(e, False) for e in ("rgb8", "bgr8", "bgra8", "mono8", "yuv422", "yuv422_yuy2")]
    + [(e, b) for e in ("mono16", "rgb16", "bgra16") for b in (False, True)],
)
def test_raw_conversion_peak_memory_is_the_output(enc, big):
    """Peak allocation while converting a 1500x2000 frame: the RGB output plus at most 4 MB."""
    dtype, ch = cv.ENCODINGS[enc]
    h, w = 1500, 2000
    rng = np.random.default_rng(0)
    a = rng.integers(0, np.iinfo(dtype).max, size=(h, w, ch) if ch > 1 else (h, w), dtype=dtype)
    msg = cv.numpy_to_image(a, enc, is_bigendian=big)
    expect = cv.image_to_rgb8(msg)
    tracemalloc.start()
    try:
        out = cv.image_to_rgb8(msg)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert np.array_equal(out, expect) and out.shape == (h, w, 3) and out.flags.c_contiguous
    assert peak <= out.nbytes + 4 * 2**20, (
        f"{enc}: peak {peak / 2**20:.1f} MiB for a {out.nbytes / 2**20:.1f} MiB output"
    )


def test_16_bit_values_keep_their_high_byte_in_both_byte_orders():
    a = np.array([[[0x1234, 0xABCD, 0x00FF, 0xFF00]]], np.uint16)
    for big in (False, True):
        m = cv.numpy_to_image(a, "bgra16", is_bigendian=big)
        assert cv.image_to_rgb8(m).tolist() == [[[0x00, 0xAB, 0x12]]]
        m = cv.numpy_to_image(a[..., 0], "mono16", is_bigendian=big)
        assert cv.image_to_rgb8(m).tolist() == [[[0x12, 0x12, 0x12]]]


def test_memory_returns_to_baseline_after_huge_and_refused_inputs():
    """In a fresh process: decode 4096x4096 PNGs, refuse 8192x8192 bombs and convert 8K raw frames,
    ten times each; resident memory afterwards is within 64 MiB of the level after the first round."""
    script = textwrap.dedent(f"""
        import gc, io, sys
        import numpy as np
        sys.path.insert(0, {str(__import__("pathlib").Path(__file__).parent)!r})
        from test_conversions_limits import png_bomb
        from PIL import Image
        from ovseg_ros import conversions as cv
        from sensor_msgs.msg import CompressedImage

        def rss():
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * 4096

        bio = io.BytesIO()
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (4096, 4096, 3), dtype=np.uint8)).save(
            bio, format="PNG", compress_level=1)
        big = CompressedImage(format="png", data=bio.getvalue())
        bomb = CompressedImage(format="png", data=png_bomb(8192, 8192))
        raw = cv.numpy_to_image(np.zeros((4320, 7680, 2), np.uint8), "yuv422")

        def round_():
            assert cv.compressed_to_rgb8(big).shape == (4096, 4096, 3)
            try:
                cv.compressed_to_rgb8(bomb)
            except cv.ImageConversionError:
                pass
            else:
                raise SystemExit("bomb decoded")
            assert cv.image_to_rgb8(raw).shape == (4320, 7680, 3)
            gc.collect()

        round_()
        base = rss()
        for _ in range(10):
            round_()
        print((rss() - base) / 2**20)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    growth = float(out.stdout.strip().splitlines()[-1])
    assert growth < 64, f"resident memory grew by {growth:.0f} MiB"
