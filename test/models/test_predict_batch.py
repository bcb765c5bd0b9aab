"""``Segmenter.predict_batch``: several images, one vocabulary, as few forward passes as the family
can batch them; each result equals ``predict`` of that image."""

import numpy as np
import pytest
import torch
from tiny_models import tiny_catseg, tiny_fcclip

from ovseg_models.segmenter import ImageError

torch.set_num_threads(2)


def _images(*shapes):
    rng = np.random.default_rng(7)
    return [rng.integers(0, 255, (h, w, 3), dtype=np.uint8) for h, w in shapes]


def _count_forwards(module):
    calls = []
    handle = module.register_forward_hook(lambda m, args, out: calls.append(args[0].shape[0]))
    return calls, handle


def _assert_same(batched, single, *, atol=1e-5):
    assert batched.semantic.shape == single.semantic.shape
    assert np.allclose(batched.score, single.score, atol=atol)
    scores = single.class_scores.numpy()
    top2 = np.sort(scores, axis=0)[-2:]
    clear = (top2[1] - top2[0]) > 1e-4  # float rounding may decide exact near-ties either way
    assert (batched.semantic[clear] == single.semantic[clear]).all()
    assert batched.vocabulary_version == single.vocabulary_version


@pytest.fixture(scope="module")
def fcclip():
    seg = tiny_fcclip(outputs=("semantic", "panoptic"))
    seg.set_vocabulary(["cat", "dog", "wall", "floor"])
    return seg


def test_fcclip_batch_equals_single_and_batches_equal_sizes(fcclip):
    images = _images((64, 80), (48, 48), (64, 80))  # two share a model-input size
    single = [fcclip.predict(im, return_class_scores=True) for im in images]
    calls, handle = _count_forwards(fcclip.model)
    try:
        batched = fcclip.predict_batch(images, return_class_scores=True)
    finally:
        handle.remove()
    assert sorted(calls) == [1, 2]  # one pass for the two 64x80 frames, one for the other
    assert len(batched) == 3 and all(r.timings["batch_size"] == 3 for r in batched)
    for b, s in zip(batched, single, strict=True):
        _assert_same(b, s)
        assert b.panoptic.shape == s.panoptic.shape
        assert [(x.category, x.area) for x in b.segments] == [(x.category, x.area) for x in s.segments]


def test_fcclip_batch_with_reduced_outputs(fcclip):
    images = _images((96, 128), (96, 128))
    batched = fcclip.predict_batch(images, max_output_side=64, return_class_scores=True)
    single = [fcclip.predict(im, max_output_side=64, return_class_scores=True) for im in images]
    for b, s in zip(batched, single, strict=True):
        assert b.semantic.shape == (96, 128)
        _assert_same(b, s)


def test_catseg_batches_any_sizes_in_one_pass():
    seg = tiny_catseg()
    seg.set_vocabulary(["cat", "dog", "wall"])
    images = _images((60, 90), (40, 40), (75, 50))
    single = [seg.predict(im, class_scores=True) for im in images]
    calls, handle = _count_forwards(seg.model)
    try:
        batched = seg.predict_batch(images, class_scores=True)
    finally:
        handle.remove()
    assert len(calls) == 1  # every view of the three images in one forward pass
    for b, s in zip(batched, single, strict=True):
        _assert_same(b, s)


def test_a_bad_image_refuses_the_whole_batch_before_any_runs(fcclip):
    calls, handle = _count_forwards(fcclip.model)
    try:
        with pytest.raises(ImageError):
            fcclip.predict_batch([*_images((64, 80)), np.zeros((0, 10, 3), np.uint8)])
    finally:
        handle.remove()
    assert calls == []
    assert fcclip.predict_batch([]) == []
