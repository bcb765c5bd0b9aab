"""Resizing in ``Segmenter.predict``: outputs at a reduced size expanded to the image's size, with
segment areas and boxes checked against the expanded maps themselves."""

import numpy as np
import pytest
import torch
from tiny_models import tiny_catseg, tiny_fcclip

from ovseg_models.catseg.inference import InferenceOptions, run_inference
from ovseg_models.segmenter import Segment, expand_segments
from ovseg_models.transforms import nearest_indices

torch.set_num_threads(2)


def _brute_segments(ids: np.ndarray) -> dict[int, tuple[int, tuple[int, int, int, int]]]:
    out = {}
    for sid in np.unique(ids):
        if sid == 0:
            continue
        ys, xs = np.nonzero(ids == sid)
        out[int(sid)] = (len(ys), (int(xs.min()), int(ys.min()), int(np.ptp(xs) + 1), int(np.ptp(ys) + 1)))
    return out


@pytest.mark.parametrize("small,big", [((7, 9), (23, 31)), ((10, 10), (20, 20)), ((5, 13), (6, 40))])
def test_expand_segments_matches_the_expanded_map(small, big):
    rng = np.random.default_rng(sum(big))
    ids = rng.integers(0, 5, size=small).astype(np.int32)
    ids[0, 0] = 4  # a one-pixel segment that may or may not survive
    segs = [
        Segment(id=int(s), category=0, label="x", score=0.5, area=a, bbox=b, is_thing=True)
        for s, (a, b) in _brute_segments(ids).items()
    ]
    yi, xi = nearest_indices(big[0], small[0]), nearest_indices(big[1], small[1])
    expanded = ids[np.ix_(yi, xi)]
    got = {s.id: (s.area, s.bbox) for s in expand_segments(ids, segs, yi, xi)}
    assert got == _brute_segments(expanded)


def test_nearest_indices_follow_torch_nearest():
    src = torch.arange(7.0)[None, None, :, None]
    for n in (3, 7, 10, 23):
        ref = torch.nn.functional.interpolate(src, size=(n, 1), mode="nearest")[0, 0, :, 0].long().numpy()
        assert (nearest_indices(n, 7) == ref).all()


@pytest.fixture(scope="module")
def fcclip():
    seg = tiny_fcclip(outputs=("semantic", "panoptic", "instance"))
    seg.set_vocabulary(["cat", "dog", "wall"])
    return seg


def _image(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)


def test_fcclip_outputs_at_a_reduced_size_come_back_at_the_image_size(fcclip):
    img = _image(96, 128)
    full = fcclip.predict(img)
    small = fcclip.predict(img, max_output_side=64)  # outputs computed at 48x64, expanded 2x
    for r in (full, small):
        assert r.semantic.shape == r.score.shape == r.panoptic.shape == (96, 128)
        assert r.instances["masks"].shape[-2:] == (96, 128)
    assert "expand" in small.timings and "expand" not in full.timings
    # exactly 2x nearest: every 2x2 block holds one value
    assert (small.semantic == np.repeat(np.repeat(small.semantic[::2, ::2], 2, 0), 2, 1)).all()
    assert {s.id: (s.area, s.bbox) for s in small.segments} == _brute_segments(small.panoptic)
    # the same model at the two output sizes mostly agrees (same masks, resized differently)
    assert (small.semantic == full.semantic).mean() > 0.9


def test_catseg_outputs_at_a_reduced_size():
    seg = tiny_catseg()
    seg.set_vocabulary(["cat", "dog", "wall"])
    img = _image(60, 90, 1)
    full, small = seg.predict(img), seg.predict(img, max_output_side=45)
    assert small.semantic.shape == small.score.shape == small.class_scores.shape[1:] == (60, 90)
    for a in (small.semantic, small.score):
        assert (a == np.repeat(np.repeat(a[::2, ::2], 2, 0), 2, 1)).all()
    assert (small.semantic == small.class_scores.argmax(0).numpy()).all()
    # the scores are the model's score maps sampled at 30x45 (run_inference at that size), expanded
    o = seg.defaults
    opts = InferenceOptions(sliding_window=bool(o["sliding_window"]), pooling_size=o["pooling_size"] or None)
    with torch.inference_mode():
        acc = run_inference(seg.model, torch.from_numpy(img), seg.vocabulary.tensors["text"], opts, height=30, width=45)
    yi, xi = nearest_indices(60, 30), nearest_indices(90, 45)
    assert np.allclose(small.score, acc.best.numpy()[np.ix_(yi, xi)], atol=1e-6)
    assert full.score.shape == (60, 90)


@pytest.mark.parametrize("bad", [-1, 1.5, True, "64"])
def test_max_output_side_is_validated(fcclip, bad):
    with pytest.raises(ValueError, match="max_output_side"):
        fcclip.predict(_image(32, 32), max_output_side=bad)
