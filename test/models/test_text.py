"""Text side: templates, per-synonym classifier cache, batching."""

import pytest
import torch
import torch.nn.functional as F

from ovseg_models.text import OPENAI_TEMPLATES, VILD_TEMPLATES, TextEmbeddingCache, build_text_classifier, get_templates


class FakeEncoder:
    """Deterministic sentence embeddings; counts calls and sentences."""

    def __init__(self, key="fake", dim=8):
        self.cache_key = key
        self.dim = dim
        self.calls = 0
        self.sentences = []

    def encode(self, sentences):
        self.calls += 1
        self.sentences.extend(sentences)
        out = []
        for s in sentences:
            g = torch.Generator().manual_seed(sum(ord(c) * (i + 1) for i, c in enumerate(s)) % (2**31))
            out.append(torch.randn(self.dim, generator=g) * 3)
        return torch.stack(out)


def test_template_sets():
    assert len(VILD_TEMPLATES) == 14 and VILD_TEMPLATES[0] == "a photo of a {}."
    assert len(OPENAI_TEMPLATES) == 80 and all(t.count("{}") == 1 for t in OPENAI_TEMPLATES)
    assert get_templates(None) == VILD_TEMPLATES
    assert get_templates("openai") == OPENAI_TEMPLATES
    assert get_templates(["a {} here"]) == ("a {} here",)
    with pytest.raises(ValueError, match="unknown template set"):
        get_templates("nope")
    with pytest.raises(ValueError, match="exactly one"):
        get_templates(["no placeholder"])


def test_classifier_matches_official_averaging():
    enc = FakeEncoder()
    rows = build_text_classifier(enc, ["cat", "dog"], VILD_TEMPLATES, batch_size=5)
    emb = F.normalize(enc.encode([t.format(s) for s in ["cat", "dog"] for t in VILD_TEMPLATES]), dim=-1)
    ref = F.normalize(emb.reshape(2, 14, -1).mean(1), dim=-1)
    assert torch.allclose(rows, ref, atol=1e-6)
    assert enc.calls == 1 + 6  # 28 sentences in batches of 5 (+1 call above)


def test_cache_encodes_only_new_synonyms():
    enc = FakeEncoder()
    cache = TextEmbeddingCache()
    a = build_text_classifier(enc, ["cat", "dog", "wall"], VILD_TEMPLATES, cache=cache)
    assert len(enc.sentences) == 3 * 14
    b = build_text_classifier(enc, ["wall", "dog", "floor"], VILD_TEMPLATES, cache=cache)
    assert len(enc.sentences) == 4 * 14  # only "floor" was encoded
    assert enc.sentences[-14:] == [t.format("floor") for t in VILD_TEMPLATES]
    assert torch.equal(b[0], a[2]) and torch.equal(b[1], a[1])
    # another template set or another model is another cache entry
    build_text_classifier(enc, ["cat"], ("a {}.",), cache=cache)
    assert len(enc.sentences) == 4 * 14 + 1
    build_text_classifier(FakeEncoder("other"), ["cat"], VILD_TEMPLATES, cache=cache)
    assert len(cache) == 6


def test_cache_lru_eviction_and_duplicates():
    enc = FakeEncoder()
    cache = TextEmbeddingCache(max_entries=2)
    rows = build_text_classifier(enc, ["a", "b", "a"], ("{}",), cache=cache)
    assert rows.shape == (3, 8) and torch.equal(rows[0], rows[2])
    assert enc.sentences == ["a", "b"]
    build_text_classifier(enc, ["c"], ("{}",), cache=cache)  # evicts "a"
    build_text_classifier(enc, ["a"], ("{}",), cache=cache)
    assert enc.sentences == ["a", "b", "c", "a"]
