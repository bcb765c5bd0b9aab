"""Class-name vocabularies (with synonyms) of the open-vocabulary segmentation benchmarks.

Each dataset is a tuple of :class:`CategoryInfo`, in the dataset's contiguous
class order (the index in the tuple is the contiguous training id used by the
prepared semantic label maps and by the model's classifier):

- ``id``: the dataset's own category id. COCO panoptic / COCO-Stuff use the
  original COCO category ids (1..200, non-contiguous); every other dataset uses
  its contiguous id (0..N-1).
- ``name``: the first synonym.
- ``synonyms``: all synonyms, obtained with the official FC-CLIP split rule
  ``names.replace(', ', ',').split(',')`` (order and duplicates preserved).
- ``is_thing``: thing (countable instance) vs stuff class.

The names follow FC-CLIP's prompt-engineered synonym lists (see the
``_class_data_*`` modules for the exact provenance of each list).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from ovseg_models.data import _class_data_ade847, _class_data_coco, _class_data_pc459, _class_data_small
from ovseg_models.vocabulary import split_synonyms  # the one split rule (``exact=True``: the official one)

__all__ = [
    "CategoryInfo",
    "DATASET_KEYS",
    "get_categories",
    "get_class_names",
    "get_synonyms",
    "split_synonyms",
    "seen_mask",
    "ade20k_847_full_ids",
    "cityscapes_label_ids",
]


@dataclass(frozen=True)
class CategoryInfo:
    """One category: dataset id, display name, synonyms (name first), thing/stuff flag."""

    id: int
    name: str
    synonyms: tuple[str, ...]
    is_thing: bool


DATASET_KEYS: tuple[str, ...] = (
    "coco_panoptic",
    "coco_stuff_171",
    "ade20k_150",
    "ade20k_847",
    "pascal_context_59",
    "pascal_context_459",
    "pascal_voc_20",
    "pascal_voc_21",
    "cityscapes",
    "mapillary_vistas",
)

_ALIASES = {
    "coco": "coco_panoptic",
    "coco_panoptic_133": "coco_panoptic",
    "coco_stuff": "coco_stuff_171",
    "ade20k": "ade20k_150",
    "ade150": "ade20k_150",
    "a150": "ade20k_150",
    "ade847": "ade20k_847",
    "a847": "ade20k_847",
    "pc59": "pascal_context_59",
    "pc459": "pascal_context_459",
    "voc20": "pascal_voc_20",
    "voc21": "pascal_voc_21",
    "pas20": "pascal_voc_20",
    "pas20b": "pascal_voc_21",
    "cityscapes_19": "cityscapes",
    "mapillary": "mapillary_vistas",
    "mapillary_vistas_65": "mapillary_vistas",
}


def _make(cat_id: int, names: str, is_thing: bool) -> CategoryInfo:
    synonyms = split_synonyms(names.strip(), exact=True)
    return CategoryInfo(id=cat_id, name=synonyms[0], synonyms=synonyms, is_thing=is_thing)


def _parse_coco(table: str) -> tuple[CategoryInfo, ...]:
    """Lines ``<coco_id>:<names>``; COCO ids <= 90 are things."""
    out = []
    for line in table.strip().splitlines():
        cat_id, names = line.split(":", 1)
        out.append(_make(int(cat_id), names, int(cat_id) <= 90))
    return tuple(out)


def _parse_flagged(table: str) -> tuple[CategoryInfo, ...]:
    """Lines ``<is_thing 0/1>:<names>``; ids are the contiguous line indices."""
    out = []
    for index, line in enumerate(table.strip().splitlines()):
        flag, names = line.split(":", 1)
        out.append(_make(index, names, flag == "1"))
    return tuple(out)


def _parse_plain(table: str) -> tuple[CategoryInfo, ...]:
    """Lines ``<names>``; ids are the contiguous line indices, all stuff."""
    return tuple(_make(i, line, False) for i, line in enumerate(table.strip().splitlines()))


@cache
def _load(key: str) -> tuple[CategoryInfo, ...]:
    if key == "coco_panoptic":
        return _parse_coco(_class_data_coco.COCO_PANOPTIC_133)
    if key == "coco_stuff_171":
        return _parse_coco(_class_data_coco.COCO_STUFF_171)
    if key == "ade20k_150":
        return _parse_flagged(_class_data_small.ADE20K_150)
    if key == "ade20k_847":
        return _parse_plain(_class_data_ade847.ADE20K_847)
    if key == "pascal_context_59":
        return _parse_flagged(_class_data_small.PASCAL_CONTEXT_59)
    if key == "pascal_context_459":
        return _parse_plain(_class_data_pc459.PASCAL_CONTEXT_459)
    if key == "pascal_voc_21":
        return _parse_flagged(_class_data_small.PASCAL_VOC_21)
    if key == "pascal_voc_20":
        # VOC-20 = VOC-21 without background, re-indexed 0..19 (FC-CLIP: ``[1:]``).
        voc21 = _load("pascal_voc_21")[1:]
        return tuple(
            CategoryInfo(id=i, name=c.name, synonyms=c.synonyms, is_thing=c.is_thing) for i, c in enumerate(voc21)
        )
    if key == "cityscapes":
        return _parse_flagged(_class_data_small.CITYSCAPES_19)
    if key == "mapillary_vistas":
        return _parse_flagged(_class_data_small.MAPILLARY_VISTAS_65)
    raise KeyError(key)


def _canonical(dataset: str) -> str:
    key = dataset.strip().lower().replace("-", "_")
    key = _ALIASES.get(key.replace("_", ""), key)
    key = _ALIASES.get(key, key)
    if key not in DATASET_KEYS:
        raise KeyError(f"unknown dataset {dataset!r}; known: {', '.join(DATASET_KEYS)}")
    return key


def get_categories(dataset: str) -> tuple[CategoryInfo, ...]:
    """Categories of ``dataset`` (one of :data:`DATASET_KEYS` or a short alias such as ``"a847"``)."""
    return _load(_canonical(dataset))


def get_class_names(dataset: str) -> list[str]:
    """First synonym of every class, in contiguous order."""
    return [c.name for c in get_categories(dataset)]


def get_synonyms(dataset: str) -> list[list[str]]:
    """Synonym lists of every class, in contiguous order (input format of :func:`seen_mask`)."""
    return [list(c.synonyms) for c in get_categories(dataset)]


def seen_mask(
    vocabulary_synonyms: Sequence[Sequence[str]] | Sequence[str],
    training_dataset: str | Sequence[Sequence[str]] = "coco_panoptic",
) -> list[bool]:
    """FC-CLIP's ``category_overlapping_mask``: is each test class "seen" in training?

    Rule (``prepare_class_names_from_metadata`` in FC-CLIP): the training
    vocabulary is the set of *all* synonyms of all training classes; a test
    class is seen iff any of its synonyms is in that set (exact, case-sensitive
    string match, no stripping).

    ``vocabulary_synonyms`` items may be synonym sequences or unsplit FC-CLIP
    strings (``"wall, walls"``), which are split with :func:`split_synonyms` (``exact=True``).
    ``training_dataset`` is a dataset key or an explicit list of synonym lists.
    """
    if isinstance(training_dataset, str):
        train_lists: Sequence[Sequence[str]] = get_synonyms(training_dataset)
    else:
        train_lists = [split_synonyms(x, exact=True) if isinstance(x, str) else x for x in training_dataset]
    train_names = {name for names in train_lists for name in names}
    mask = []
    for names in vocabulary_synonyms:
        synonyms = split_synonyms(names, exact=True) if isinstance(names, str) else names
        mask.append(not train_names.isdisjoint(synonyms))
    return mask


def ade20k_847_full_ids() -> tuple[int, ...]:
    """ADE20K full-release class index (``_seg.png`` class value) of each ADE-847 class, in order."""
    return tuple(int(x) for x in _class_data_ade847.ADE20K_847_FULL_IDS.split())


def cityscapes_label_ids() -> tuple[int, ...]:
    """Cityscapes ``labelIds`` value of each of the 19 evaluated classes, in trainId order."""
    return _class_data_small.CITYSCAPES_LABEL_IDS
