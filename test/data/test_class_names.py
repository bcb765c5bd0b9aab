"""Tests of the benchmark class vocabularies (ovseg_models.data.class_names)."""

import dataclasses
import json

import pytest
from shared_data import shared_path

from ovseg_models.data.class_names import (
    DATASET_KEYS,
    CategoryInfo,
    ade20k_847_full_ids,
    get_categories,
    get_class_names,
    get_synonyms,
    seen_mask,
    split_synonyms,
)

EXPECTED_COUNTS = {
    "coco_panoptic": 133,
    "coco_stuff_171": 171,
    "ade20k_150": 150,
    "ade20k_847": 847,
    "pascal_context_59": 59,
    "pascal_context_459": 459,
    "pascal_voc_20": 20,
    "pascal_voc_21": 21,
    "cityscapes": 19,
    "mapillary_vistas": 65,
}


@pytest.mark.parametrize("key", DATASET_KEYS)
def test_counts_and_structure(key):
    cats = get_categories(key)
    assert len(cats) == EXPECTED_COUNTS[key]
    assert all(isinstance(c, CategoryInfo) for c in cats)
    for c in cats:
        assert c.synonyms and c.name == c.synonyms[0]
        assert all(s and s == s.strip() for s in c.synonyms), c
    ids = [c.id for c in cats]
    assert len(set(ids)) == len(ids)
    if not key.startswith("coco"):
        assert ids == list(range(len(cats)))


def test_frozen():
    cat = get_categories("ade20k_150")[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cat.name = "x"  # type: ignore[misc]


def test_thing_counts():
    assert sum(c.is_thing for c in get_categories("coco_panoptic")) == 80
    assert sum(c.is_thing for c in get_categories("coco_stuff_171")) == 80
    assert sum(c.is_thing for c in get_categories("ade20k_150")) == 100
    assert sum(c.is_thing for c in get_categories("cityscapes")) == 8
    assert sum(c.is_thing for c in get_categories("mapillary_vistas")) == 37


def test_split_rule():
    assert split_synonyms("wall, walls,brick wall") == ("wall", "walls", "brick wall")
    # a stray space after a comma is kept by the official rule only when not ", "
    assert split_synonyms("window ", exact=True) == ("window ",)
    assert split_synonyms(" window ,, door") == ("window", "door")


def test_known_entries():
    ade = get_categories("ade20k_150")
    assert ade[6].synonyms == ("road", "route")
    assert ade[12].name == "person" and ade[12].is_thing
    assert ade[0].name == "wall" and not ade[0].is_thing
    coco = {c.id: c for c in get_categories("coco_panoptic")}
    assert coco[1].synonyms[:3] == ("person", "child", "girl")
    assert coco[200].name == "rug" and not coco[200].is_thing
    voc21 = get_categories("pascal_voc_21")
    voc20 = get_categories("pascal_voc_20")
    assert voc21[0].name == "background"
    assert [c.synonyms for c in voc20] == [c.synonyms for c in voc21[1:]]
    assert get_categories("pascal_context_459")[283].name == "person"
    assert get_categories("ade20k_847")[846].name == "adding machine"
    assert get_categories("cityscapes")[18].name == "bicycle"
    assert get_categories("mapillary_vistas")[64].name == "ego vehicle"


def test_aliases_and_unknown():
    assert get_categories("A-847") is get_categories("ade20k_847")
    assert get_categories("pc59") is get_categories("pascal_context_59")
    with pytest.raises(KeyError):
        get_categories("imagenet")


def test_ade847_full_ids():
    ids = ade20k_847_full_ids()
    assert len(ids) == 847 and len(set(ids)) == 847
    # spot checks against the official prepare_ade20k_full.py id -> trainId table
    assert ids[0] == 2978 and ids[11] == 1831 and ids[846] == 3148


def test_coco_matches_official_categories_json():
    path = shared_path("data", "coco_panoptic", "panoptic_coco_categories.json")
    official = json.loads(path.read_text())
    ours = get_categories("coco_panoptic")
    assert [c["id"] for c in official] == [c.id for c in ours]
    assert [bool(c["isthing"]) for c in official] == [c.is_thing for c in ours]


def test_seen_mask_rule():
    train = [["wall", "walls"], ["cat"]]
    assert seen_mask([["walls", "x"], ["dog"], ["Cat"], "cat, kitty"], training_dataset=train) == [
        True,
        False,
        False,  # exact, case-sensitive match
        True,
    ]


def test_seen_mask_benchmarks():
    coco = get_synonyms("coco_panoptic")
    assert all(seen_mask(coco))
    ade_mask = seen_mask(get_synonyms("ade20k_150"))
    ade = get_categories("ade20k_150")
    by_name = {c.name: m for c, m in zip(ade, ade_mask, strict=False)}
    assert by_name["wall"] and by_name["person"] and by_name["sky"]
    assert not by_name["escalator"] and not by_name["arcade machine"]
    assert 0 < sum(ade_mask) < 150
    a847 = seen_mask(get_synonyms("ade20k_847"))
    assert len(a847) == 847 and 0 < sum(a847) < 847


@pytest.mark.parametrize("training", ["coco_panoptic", "coco_stuff_171", "coco_stuff"])
def test_seen_mask_against_each_papers_training_set(training):
    """FC-CLIP trains on COCO panoptic (133), CAT-Seg on COCO-Stuff (171): both are valid ``training_dataset``s."""
    train_key = "coco_stuff_171" if training == "coco_stuff" else training
    assert all(seen_mask(get_synonyms(train_key), training))  # every training class is seen against itself
    for key in DATASET_KEYS:
        mask = seen_mask(get_synonyms(key), training)
        assert len(mask) == len(get_categories(key))
        if key not in ("coco_panoptic", "coco_stuff_171"):
            assert 0 < sum(mask) < len(mask) or key.startswith("pascal_voc"), key
    ade = dict(zip(get_class_names("ade20k_150"), seen_mask(get_synonyms("ade20k_150"), training), strict=False))
    assert ade["person"] and ade["sky"] and not ade["escalator"]
    # the same list of synonym lists passed explicitly gives the same mask
    assert seen_mask(get_synonyms("ade20k_847"), training) == seen_mask(
        get_synonyms("ade20k_847"), get_synonyms(train_key)
    )


def test_seen_mask_coco_stuff_differs_from_coco_panoptic():
    # COCO panoptic merges stuff classes (e.g. "wall-other-merged"); COCO-Stuff keeps the 91 fine stuff classes,
    # so the two training vocabularies give different masks on some benchmarks
    a847_pan = seen_mask(get_synonyms("ade20k_847"), "coco_panoptic")
    a847_stuff = seen_mask(get_synonyms("ade20k_847"), "coco_stuff_171")
    assert a847_pan != a847_stuff
    assert all(seen_mask(get_synonyms("pascal_voc_20"), "coco_stuff_171"))
