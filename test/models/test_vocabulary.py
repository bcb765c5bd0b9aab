"""Vocabulary validation (one owner: ``ovseg_models.vocabulary``), benchmark lists as published,
the text-encoding work bound and cancellation."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from tiny_models import tiny_catseg, tiny_fcclip

from ovseg_models.data.class_names import DATASET_KEYS, get_categories
from ovseg_models.segmenter import MAX_TEXT_ENCODINGS, EncodingCancelled
from ovseg_models.text import get_templates
from ovseg_models.vocabulary import Vocabulary, VocabularyClass, VocabularyError, normalize_name, validate_templates
from ovseg_ros.messages import vocabulary_from_msgs
from ovseg_ros.params import ConfigError, config_from_dict


class FakeEncoder:
    """Deterministic sentence embeddings of FC-CLIP's width (1024 for RN50), fast; counts calls."""

    def __init__(self, dim=1024, on_call=None):
        self.cache_key, self.dim, self.calls, self.on_call = "fake", dim, 0, on_call

    def encode(self, sentences):
        self.calls += 1
        if self.on_call is not None:
            self.on_call(self.calls)
        out = torch.empty(len(sentences), self.dim)
        for i, s in enumerate(sentences):
            out[i] = torch.randn(self.dim, generator=torch.Generator().manual_seed(hash(s) % 2**31))
        return out


@pytest.fixture(scope="module")
def fcclip():
    seg = tiny_fcclip(seed=0)
    seg.text_encoder = FakeEncoder()  # the real tower is RN50-sized: too slow for 3,000 names on a CPU
    return seg


@pytest.fixture(scope="module")
def catseg():
    return tiny_catseg(seed=0, synonyms="mean")  # every synonym goes through the (tiny, real) text tower


# -- benchmark class lists load and encode exactly as published -----------------------------------
@pytest.mark.parametrize("dataset", DATASET_KEYS)
def test_every_benchmark_vocabulary_loads_and_encodes(dataset, fcclip, catseg):
    cats = get_categories(dataset)
    vocab = Vocabulary.from_dataset(dataset)
    assert vocab.trusted and len(vocab) == len(cats)
    assert vocab.synonyms == [c.synonyms for c in cats] and vocab.is_thing == [c.is_thing for c in cats]
    enc = fcclip.encode_vocabulary(vocab)
    assert enc.tensors["num_synonyms"] == [len(c.synonyms) for c in cats]
    assert enc.tensors["text_classifier"].shape[0] == sum(len(c.synonyms) for c in cats)
    enc2 = catseg.encode_vocabulary(vocab)
    assert enc2.tensors["text"].shape[0] == len(cats) and torch.isfinite(enc2.tensors["text"]).all()


def test_a847_and_pas21_as_published(fcclip):
    a847 = Vocabulary.from_dataset("ade20k_847")
    assert len(a847) == 847
    pots = [i for i, n in enumerate(a847.names) if n == "pot"]
    assert len(pots) == 2 and a847[pots[0]].synonyms != a847[pots[1]].synonyms  # two classes, one name
    bg = Vocabulary.from_dataset("pascal_voc_21")[0]
    assert bg.name == "background" and len(bg.synonyms) == 74  # duplicates included, as published
    # an A-847 frame can be predicted: two "pot" classes stay two categories
    r = fcclip.predict(np.full((64, 64, 3), 90, np.uint8), vocabulary=fcclip.encode_vocabulary(a847))
    assert r.semantic.max() < 847
    # the same lists as an operator's request are refused, with the reason
    with pytest.raises(VocabularyError, match="duplicate class name 'pot'"):
        Vocabulary.create(a847.classes)
    with pytest.raises(VocabularyError, match="72 synonyms; at most 64"):
        Vocabulary.create(Vocabulary.from_dataset("pascal_voc_21").classes)


# -- operator requests ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "classes, reason",
    [
        (["cat", "cat\u200b"], "U\\+200B"),  # differs only by a zero-width space
        (["\u200b\u200c"], "invisible character, U\\+200B"),  # a name made only of invisible characters
        (["\u3164"], "invisible character, U\\+3164"),  # Hangul filler: looks empty, is not Cf
        (["cat", "\u202egod"], "bidirectional control, U\\+202E"),  # right-to-left override
        (["cat", "d\u2066og"], "bidirectional control, U\\+2066"),
        (["cat", "do\u200fg"], "bidirectional control, U\\+200F"),
        (["cat", "\uff43\uff41\uff54"], "duplicate class name"),  # full-width "cat" (NFKC)
        (["Straße", "STRASSE"], "duplicate class name"),  # case-folded
        (["cat", ["dog", "Cat"]], "synonym 'Cat' of class 1 \\('dog'\\) is also a name of class 0"),
        ([["cup", "mug"], ["glass", "mug"]], "synonym 'mug' of class 1"),
        (["ca\x07t"], "control character U\\+0007"),
        ([["cat"] + [f"cat{i}" for i in range(64)]], "65 synonyms; at most 64"),
    ],
)
def test_operator_names_refused_with_a_reason(classes, reason):
    with pytest.raises(VocabularyError, match=reason):
        Vocabulary.create(classes)


def test_request_normalisation_and_accepted_unicode():
    v = Vocabulary.create([["  coffee\t cup ", "Coffee Cup", "mug"], "café", "猫", "straße"])
    assert v[0].synonyms == ("coffee cup", "mug")  # whitespace collapsed, duplicates dropped
    assert v.names[1:] == ["café", "猫", "straße"]
    assert normalize_name("Ｃａｆé\u00a0 ") == normalize_name("café")


@pytest.mark.parametrize(
    "template, reason",
    [
        ("a photo of a {{}}.", "'{}' exactly once.*found 0"),
        ("a photo of a cup", "found 0"),
        ("{} and {}", "found 2"),
        ("a photo of a {0}.", "exactly one"),
        ("a photo of a {name}.", "exactly one"),
        ("a photo of a {!r}.", "exactly one"),
        ("a photo of a {:>20}.", "exactly one"),
        ("a photo of a {", "not a valid format string"),
        ("a photo of a } {}", "not a valid format string"),
        ("a photo\u200b of a {}", "invisible"),
        ("x" * 300 + "{}", "exceeds 200"),
    ],
)
def test_templates_refused_by_the_one_validator(template, reason):
    with pytest.raises(VocabularyError, match=reason):
        validate_templates([template])
    with pytest.raises(VocabularyError, match=reason):
        Vocabulary.create(["cat"], templates=[template])
    with pytest.raises(ValueError, match=reason):
        get_templates([template])
    with pytest.raises(ConfigError, match=reason):
        config_from_dict({"prompt_templates": [template], "allow_random_weights": True})
    msg = SimpleNamespace(name="cat", synonyms=[], thing=0, seen=0)
    with pytest.raises(VocabularyError, match=reason):
        vocabulary_from_msgs([msg], [template])


def test_literal_braces_around_the_placeholder_are_fine():
    assert validate_templates(["a {{quoted}} photo of a {}."]) == ("a {{quoted}} photo of a {}.",)
    v = Vocabulary.create(["cat"], templates=["a {{quoted}} photo of a {}."])
    assert v.templates[0].format("cat") == "a {quoted} photo of a cat."


def test_request_messages_refused_by_the_same_rules():
    def m(name, synonyms=(), seen=0):
        return SimpleNamespace(name=name, synonyms=list(synonyms), thing=0, seen=seen)

    cases = [
        [m("cat"), m("cat\u200b")],
        [m("\u200b")],
        [m("cup", ["mug"]), m("mug")],
        [m("cup", [" "])],
        [m("x" * 201)],
        [],
    ]
    for classes in cases:
        with pytest.raises(VocabularyError) as from_msgs:
            vocabulary_from_msgs(classes)
        with pytest.raises(VocabularyError) as direct:
            Vocabulary.create([VocabularyClass((c.name, *c.synonyms)) for c in classes])
        assert str(from_msgs.value) == str(direct.value)
    with pytest.raises(VocabularyError, match="seen must be"):
        vocabulary_from_msgs([m("cat", seen=7)])
    v = vocabulary_from_msgs([m(" Coffee  cup ", ["mug", "MUG"], seen=1)], ["a {}."])
    assert v[0].synonyms == ("Coffee cup", "mug") and v[0].seen is True and v.templates == ("a {}.",)


# -- work bound and cancellation ----------------------------------------------------------------
def test_text_encoding_work_is_bounded_with_the_figure(fcclip, catseg):
    templates = [f"a photo number {i} of a {{}}." for i in range(1000)]
    vocab = Vocabulary.create([f"class {i}" for i in range(21)], templates=templates)
    for seg in (fcclip, catseg):
        calls = fcclip.text_encoder.calls
        with pytest.raises(VocabularyError, match="needs 21,000 text encodings .*the limit is 20,000"):
            seg.encode_vocabulary(vocab)
        assert fcclip.text_encoder.calls == calls  # refused before any work
    assert MAX_TEXT_ENCODINGS == 20_000
    many = Vocabulary.create(
        [[f"c{i}", f"c{i} x", f"c{i} y"] for i in range(500)], templates=get_templates("vild")
    )  # 1,500 synonyms x 14 templates
    assert fcclip.text_encodings(many) == 21_000
    with pytest.raises(VocabularyError, match="21,000"):
        fcclip.encode_vocabulary(many)
    # a published list is not refused
    fcclip.encode_vocabulary(Vocabulary.create(many.classes, templates=many.templates, trusted=True))
    assert catseg.text_encodings(Vocabulary.create(many.classes)) == 1_500  # CAT-Seg: one template


def test_pending_encoding_is_cancelled_between_batches(fcclip, catseg):
    cancel = threading.Event()
    fcclip.text_encoder.on_call = lambda n: cancel.set()  # another thread would set it; here the first batch
    fcclip.text_cache.clear()
    version = fcclip.encode_vocabulary(["warm"]).version
    cancel.clear()
    old_batch = fcclip.text_batch_size
    fcclip.text_batch_size = 4
    try:
        vocab = Vocabulary.create([f"thing {i}" for i in range(10)], templates=["a {}.", "the {}."])
        with pytest.raises(EncodingCancelled):
            fcclip.encode_vocabulary(vocab, cancel=cancel)
        assert fcclip.text_encoder.calls >= 1
        assert not any(k[2].startswith("thing") for k in fcclip.text_cache._data)  # nothing half-cached
        fcclip.text_encoder.on_call = None
        assert fcclip.encode_vocabulary(vocab).version == version + 1  # the cancelled one took no version
        with pytest.raises(EncodingCancelled):  # already set: nothing starts
            fcclip.encode_vocabulary(vocab, cancel=cancel)
    finally:
        fcclip.text_encoder.on_call = None
        fcclip.text_batch_size = old_batch

    # CAT-Seg: another thread cancels while the encoding runs
    cancel = threading.Event()
    enc = catseg.text_encoder
    real = catseg.model.encode_text
    started = threading.Event()

    def slow_encode_text(tokens):
        started.set()
        assert cancel.wait(10)
        return real(tokens)

    catseg.model.encode_text = slow_encode_text
    enc.batch_size = 8
    before = enc.encoded_names
    errors = []
    try:
        t = threading.Thread(
            target=lambda: errors.append(
                pytest.raises(
                    EncodingCancelled, catseg.encode_vocabulary, [f"item {i}" for i in range(40)], cancel=cancel
                )
            )
        )
        t.start()
        assert started.wait(10)
        cancel.set()
        t.join(10)
        assert not t.is_alive() and len(errors) == 1
        assert enc.encoded_names - before == 8  # the batch in flight finished; no further batch started
    finally:
        del catseg.model.encode_text
        enc.batch_size = 256


@pytest.mark.parametrize("dataset", DATASET_KEYS)
def test_builtin_default_vocabularies_of_the_node_load_as_published(dataset):
    """ADE-150's synonym 'screen' is also a class name, A-847 has two 'pot's: the node's built-in
    defaults are published lists, not operator requests."""
    from ovseg_ros.messages import load_vocabulary

    v = load_vocabulary(dataset, directories=())
    assert v == Vocabulary.from_dataset(dataset) and v.trusted
    # templates set by the node's parameter keep it a published list
    again = Vocabulary.create(v.classes, templates=["a photo of a {}."], trusted=v.trusted)
    assert len(again) == len(v)
