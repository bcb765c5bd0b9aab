"""``SegmentationResult.score`` is a probability in [0, 1] for both models, so that
``semantic_score_threshold`` (``ovseg_ros.messages.semantic_labels``) means what it says."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny_models import tiny_catseg, tiny_fcclip

from ovseg_models.vocabulary import Vocabulary
from ovseg_ros.messages import semantic_labels

UNLABELED = 65535


@pytest.fixture(scope="module")
def fcclip():
    return tiny_fcclip(seed=0)


@pytest.fixture(scope="module")
def catseg():
    return tiny_catseg(seed=0)


def test_fcclip_score_is_the_mask_weighted_class_probability(fcclip):
    """Two queries that both say 'cat' with p=0.9 cover the left half, one that says 'dog' with
    p=0.8 the right half. The official per-class map sums them (1.8 on the left); the score is 0.9."""
    h, w = 8, 16
    probs = torch.tensor([[0.9, 0.05, 0.05], [0.9, 0.05, 0.05], [0.1, 0.8, 0.1]])
    masks = torch.full((3, h, w), -30.0)
    masks[0, :, : w // 2] = 30.0
    masks[1, :, : w // 2] = 30.0
    masks[2, :, w // 2 :] = 30.0
    vocab = Vocabulary.create(["cat", "dog"])
    r = fcclip.postprocess(
        probs.log(),
        masks,
        padded_size=(h, w),
        image_size=(h, w),
        output_size=(h, w),
        vocabulary=vocab,
        is_thing=[True, True],
        outputs=("semantic",),
        return_class_scores=True,
    )
    assert (r.semantic[:, : w // 2] == 0).all() and (r.semantic[:, w // 2 :] == 1).all()
    assert float(r.class_scores[0, 0, 0]) == pytest.approx(1.8, abs=1e-4)  # official sem_seg: a sum
    assert np.allclose(r.score[:, : w // 2], 0.9, atol=1e-4)
    assert np.allclose(r.score[:, w // 2 :], 0.8, atol=1e-4)
    labels = semantic_labels(r, 0.85)
    assert (labels[:, : w // 2] == 0).all() and (labels[:, w // 2 :] == UNLABELED).all()
    assert (semantic_labels(r, 0.95) == UNLABELED).all()
    assert (semantic_labels(r, 0.5) == r.semantic).all()


@pytest.mark.parametrize("name", ["fcclip", "catseg"])
def test_score_threshold_on_real_predictions(name, request):
    seg = request.getfixturevalue(name)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
    r = seg.predict(image, vocabulary=seg.encode_vocabulary(["cat", "dog", "wall", "floor"]))
    assert r.score.dtype == np.float32 and r.score.shape == image.shape[:2]
    assert 0.0 <= float(r.score.min()) and float(r.score.max()) <= 1.0
    if r.class_scores is not None and name == "catseg":
        assert np.allclose(r.score, r.class_scores.max(0).values.numpy())
    t = float(np.median(r.score))
    labels = semantic_labels(r, t)
    below = r.score < t
    assert (labels[below] == UNLABELED).all()
    assert (labels[~below] == r.semantic[~below]).all()
    assert (semantic_labels(r, 0.0) == r.semantic).all()
    assert (semantic_labels(r, 1.0 + 1e-6) == UNLABELED).all()
