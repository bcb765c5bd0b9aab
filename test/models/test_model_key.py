"""Encoded vocabularies are keyed by the text tower's weights, not by the family or variant name."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny_models import tiny_catseg, tiny_fcclip

from ovseg_models.vocabulary import VocabularyError


@pytest.mark.parametrize("build", [tiny_fcclip, tiny_catseg], ids=["fcclip", "catseg"])
def test_vocabulary_of_another_text_tower_of_equal_width_is_refused(build):
    a, b = build(seed=1), build(seed=2)
    assert a.model.__class__ is b.model.__class__  # same variant, same widths, other random weights
    enc = a.encode_vocabulary(["cat", "dog"])
    image = np.full((64, 96, 3), 100, np.uint8)
    a.predict(image, vocabulary=enc)  # its own segmenter takes it
    with pytest.raises(VocabularyError, match="encoded for .*another text tower"):
        b.predict(image, vocabulary=enc)
    with pytest.raises(VocabularyError, match="another text tower"):
        b.set_vocabulary(enc)
    # same weights (another segmenter object): accepted
    c = build(seed=1)
    assert c.model_key == a.model_key
    c.predict(image, vocabulary=enc)


def test_loading_weights_changes_the_key_and_empties_the_embedding_cache():
    a, b = tiny_catseg(seed=1), tiny_catseg(seed=2)
    enc_b = b.encode_vocabulary(["cat"])
    a.encode_vocabulary(["cat"])
    a.model.load_state_dict(b.model.state_dict())
    a.refresh_model_key()
    assert a.model_key == b.model_key
    assert torch.allclose(a.encode_vocabulary(["cat"]).tensors["text"], enc_b.tensors["text"])

    f1, f2 = tiny_fcclip(seed=1), tiny_fcclip(seed=2)
    f1.encode_vocabulary(["cat"])
    f1.model.load_state_dict(f2.model.state_dict())
    f1.refresh_model_key()
    assert f1.model_key == f2.model_key and f1.text_encoder.cache_key == f2.text_encoder.cache_key
    assert torch.allclose(
        f1.encode_vocabulary(["cat"]).tensors["text_classifier"],
        f2.encode_vocabulary(["cat"]).tensors["text_classifier"],
        atol=1e-6,
    )
