"""VocabularyClass.thing: THING_AUTO (the default) lets a known name take its dataset's flag and
makes an unknown name a thing, so the README's `{name: mug}` is split into instances; THING and
STUFF are kept; published vocabularies state the resolved value (never THING_AUTO)."""

from __future__ import annotations

import pytest

from ovseg.msg import VocabularyClass
from ovseg_models.segmenter import EncodedVocabulary
from ovseg_ros import messages

CASES = [
    # name, synonyms, thing given, resolved is_thing
    ("mug", ["cup"], VocabularyClass.THING_AUTO, True),  # cup: a COCO thing
    ("coffee mug", [], VocabularyClass.THING_AUTO, True),  # no dataset names it: a thing
    ("wall", [], VocabularyClass.THING_AUTO, False),  # COCO stuff
    ("Floor", [], VocabularyClass.THING_AUTO, False),  # case-insensitive
    ("table", [], VocabularyClass.THING_AUTO, False),  # COCO's table-merged (stuff) before ADE's table
    ("car", [], VocabularyClass.THING_AUTO, True),
    ("sidewalk", [], VocabularyClass.THING_AUTO, False),  # Cityscapes stuff
    ("rug", [], VocabularyClass.STUFF, False),
    ("sky", [], VocabularyClass.THING, True),  # explicit flags win over the datasets
]


def test_thing_auto_resolves_from_the_datasets_and_explicit_values_are_kept():
    req = [VocabularyClass(name=n, synonyms=s, thing=t) for n, s, t, _ in CASES]
    vocab = messages.vocabulary_from_msgs(req)
    assert [c.is_thing for c in vocab] == [want for *_, want in CASES]


def test_the_default_is_thing_auto():
    assert VocabularyClass().thing == VocabularyClass.THING_AUTO == 0
    assert messages.vocabulary_from_msgs([VocabularyClass(name="mug")])[0].is_thing


def test_published_vocabularies_state_the_resolved_value():
    vocab = messages.vocabulary_from_msgs([VocabularyClass(name="mug"), VocabularyClass(name="wall")])
    msg = messages.vocabulary_to_msg(EncodedVocabulary(vocab, "test", {}, 1), version=3, model="fcclip")
    assert [c.thing for c in msg.classes] == [VocabularyClass.THING, VocabularyClass.STUFF]


@pytest.mark.parametrize("value", [3, 255])
def test_unknown_thing_values_are_refused(value):
    with pytest.raises(messages.VocabularyError, match="thing must be 0 \\(auto\\), 1 \\(thing\\) or 2 \\(stuff\\)"):
        messages.vocabulary_from_msgs([VocabularyClass(name="mug", thing=value)])


def test_seen_auto_is_decided_against_the_familys_training_vocabulary():
    vocab = messages.vocabulary_from_msgs([VocabularyClass(name="moss"), VocabularyClass(name="person")])
    assert messages.resolve_seen(vocab, "fcclip") == [False, True]  # COCO panoptic has no moss
    assert messages.resolve_seen(vocab, "catseg") == [True, True]  # COCO-Stuff has
    unseen = messages.vocabulary_from_msgs([VocabularyClass(name="moss", seen=VocabularyClass.UNSEEN)])
    assert messages.resolve_seen(unseen, "catseg") == [False]  # explicit values are kept
