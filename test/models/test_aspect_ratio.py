"""Valid extreme aspect ratios run on both models (the network input is padded to what the model
needs, outputs are cropped back to the image); only images with a 1-pixel side are refused."""

from __future__ import annotations

import numpy as np
import pytest
from tiny_models import tiny_catseg, tiny_fcclip

from ovseg_models.segmenter import ImageError

SHAPES = [(60, 180), (180, 60), (20, 200), (200, 20), (8, 400), (400, 8)]  # 3:1, 10:1, 50:1 both ways


@pytest.fixture(scope="module")
def segmenters():
    return {"fcclip": tiny_fcclip(seed=0), "catseg": tiny_catseg(seed=0)}


def _image(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _check(r, h, w, k):
    assert r.semantic.shape == (h, w) and r.score.shape == (h, w)
    assert r.semantic.min() >= 0 and r.semantic.max() < k and np.isfinite(r.score).all()
    if r.panoptic is not None:
        assert r.panoptic.shape == (h, w)
        for s in r.segments:
            assert s.area == int((r.panoptic == s.id).sum()) > 0
            x, y, bw, bh = s.bbox
            assert 0 <= x and x + bw <= w and 0 <= y and y + bh <= h


@pytest.mark.parametrize("h, w", SHAPES)
@pytest.mark.parametrize(
    "name, options", [("fcclip", {}), ("catseg", {"sliding_window": True}), ("catseg", {"sliding_window": False})]
)
def test_extreme_aspect_ratios_run_on_the_tiny_models(segmenters, name, options, h, w):
    seg = segmenters[name]
    enc = seg.encode_vocabulary(["cat", "dog", "wall"])
    _check(seg.predict(_image(h, w), vocabulary=enc, **options), h, w, 3)


def test_fcclip_default_resize_policy_beyond_41_to_1(segmenters):
    """800 / 1333 (the official test resize) makes a 60:1 frame 22 x 1333: padded to 32 rows."""
    from ovseg_models.fcclip import FCCLIPSegmenter

    tiny = segmenters["fcclip"]
    seg = FCCLIPSegmenter(tiny.model, config=tiny.config, min_size=800, max_size=1333, templates="single")
    enc = seg.encode_vocabulary(["cat", "dog"])
    _check(seg.predict(_image(30, 1800), vocabulary=enc), 30, 1800, 2)


def test_network_input_is_zero_padded_bottom_right_to_the_minimum_side():
    import torch

    from ovseg_models.fcclip.segmenter import MIN_MODEL_SIDE, pad_to_min_side

    batch = torch.ones(1, 3, 5, 70)
    padded = pad_to_min_side(batch, MIN_MODEL_SIDE)
    assert padded.shape == (1, 3, 32, 70)
    assert torch.equal(padded[..., :5, :70], batch) and padded[..., 5:, :].abs().sum() == 0
    assert pad_to_min_side(torch.ones(1, 3, 64, 64), 32).shape == (1, 3, 64, 64)


@pytest.mark.parametrize("name", ["fcclip", "catseg"])
@pytest.mark.parametrize("h, w", [(1, 500), (500, 1), (1, 1)])
def test_one_pixel_sides_are_refused_with_a_reason(segmenters, name, h, w):
    seg = segmenters[name]
    with pytest.raises(ImageError, match=f"image of {h}x{w} is degenerate: both sides must be at least 2 pixels"):
        seg.predict(_image(h, w), vocabulary=seg.encode_vocabulary(["cat"]))
    _check(seg.predict(_image(2, 2), vocabulary=seg.encode_vocabulary(["cat"])), 2, 2, 1)
