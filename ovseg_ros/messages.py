"""ovseg messages <-> ovseg_models objects.

- :func:`vocabulary_from_msgs`: ``VocabularyClass[]`` + templates (a SetVocabulary request) ->
  validated :class:`ovseg_models.Vocabulary` (raises :class:`VocabularyError` with the reason).
- :func:`vocabulary_to_msg`: an encoded vocabulary -> ``ovseg/Vocabulary`` (``seen``, ``thing`` resolved).
- :func:`panoptic_to_msg`: a :class:`SegmentationResult` -> ``ovseg/PanopticSegmentation``.
- :func:`semantic_to_msg`: a :class:`SegmentationResult` -> mono16 label image.
- :func:`load_vocabulary`: the built-in dataset vocabularies and vocabulary files (only from
  permitted directories, see :func:`resolve_vocabulary_file`; the file formats are
  :func:`ovseg_models.vocabulary.parse_vocabulary_text`'s).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ovseg_models.segmenter import EncodedVocabulary, SegmentationResult
from ovseg_models.vocabulary import (
    MAX_VOCABULARY_FILE_BYTES,
    SEEN,
    STUFF,
    THING,
    UNSEEN,
    VOCABULARY_SUFFIXES,
    Vocabulary,
    VocabularyClass,
    VocabularyError,
)

from .conversions import UNLABELED, label_image, labels_to_image

__all__ = [
    "BUILTIN_VOCABULARIES",
    "MAX_VOCABULARY_FILE_BYTES",
    "VOCABULARY_SUFFIXES",
    "load_vocabulary",
    "resolve_vocabulary_file",
    "panoptic_to_msg",
    "semantic_to_msg",
    "vocabulary_from_msgs",
    "vocabulary_to_msg",
]

#: names accepted as built-in default vocabularies (see ovseg_models.data.class_names)
BUILTIN_VOCABULARIES = (
    "coco_panoptic",
    "ade20k_150",
    "coco_stuff_171",
    "ade20k_847",
    "pascal_context_59",
    "pascal_context_459",
    "pascal_voc_20",
    "pascal_voc_21",
    "cityscapes",
    "mapillary_vistas",
)


def vocabulary_from_msgs(classes: Sequence[Any], templates: Sequence[str] = ()) -> Vocabulary:
    """A SetVocabulary request's classes and templates -> a validated :class:`Vocabulary`.

    Only converts: the fields' meaning (``thing``, ``seen``, THING_AUTO) is
    :meth:`VocabularyClass.from_fields`', every rule on names and templates :meth:`Vocabulary.create`'s,
    which refuse the request with the reason (:class:`VocabularyError`).
    """
    parsed = [
        VocabularyClass.from_fields(c.name, c.synonyms, thing=c.thing, seen=c.seen, what=f"class {i} ({c.name!r})")
        for i, c in enumerate(classes)
    ]
    return Vocabulary.create(parsed, templates=list(templates) or None)


def resolve_seen(vocabulary: Vocabulary, model: str) -> list[bool]:
    """``seen`` per class: as given, or decided against the model family's training vocabulary
    (COCO panoptic for a model no family names)."""
    from ovseg_models.data.class_names import seen_mask
    from ovseg_models.families import get_family

    unknown = [i for i, c in enumerate(vocabulary) if c.seen is None]
    seen = [bool(c.seen) for c in vocabulary]
    if unknown:
        try:
            training = get_family(model).training_vocabulary or "coco_panoptic"
        except ValueError:
            training = "coco_panoptic"
        auto = seen_mask([vocabulary[i].synonyms for i in unknown], training)
        for i, s in zip(unknown, auto, strict=False):
            seen[i] = bool(s)
    return seen


def vocabulary_to_msg(
    encoded: EncodedVocabulary, *, version: int, model: str, stamp=None, default_templates: Sequence[str] = ()
):
    """``ovseg/Vocabulary`` for an encoded vocabulary (``seen`` is SEEN or UNSEEN, never AUTO)."""
    from ovseg.msg import Vocabulary as VocabularyMsg
    from ovseg.msg import VocabularyClass as ClassMsg

    vocab = encoded.vocabulary
    seen = list(encoded.seen) if encoded.seen is not None else resolve_seen(vocab, model)
    msg = VocabularyMsg()
    if stamp is not None:
        msg.stamp = stamp
    msg.version = int(version)
    msg.model = model
    msg.classes = [
        ClassMsg(
            name=c.name, synonyms=list(c.synonyms[1:]), thing=THING if c.is_thing else STUFF, seen=SEEN if s else UNSEEN
        )
        for c, s in zip(vocab, seen, strict=False)
    ]
    msg.prompt_templates = list(vocab.templates or encoded.templates or default_templates)
    return msg


def _inside(path: str, folder: str) -> bool:
    try:
        return os.path.commonpath([path, folder]) == folder
    except ValueError:  # different drives
        return False


def resolve_vocabulary_file(spec: str, *, directories: Sequence[str | Path], files: Sequence[str | Path] = ()) -> Path:
    """The real path of vocabulary file ``spec`` if it may be read, else :class:`VocabularyError`.

    Allowed: a regular file, after following every link, inside one of ``directories`` or equal to
    one of ``files``, with a vocabulary suffix (:data:`VOCABULARY_SUFFIXES`) and at most
    :data:`MAX_VOCABULARY_FILE_BYTES`. A relative ``spec`` is looked up in ``directories`` in order.
    The reasons name the rule, never the file's content.
    """
    dirs = [os.path.realpath(os.path.expanduser(str(d))) for d in directories if str(d)]
    allowed_files = {os.path.realpath(os.path.expanduser(str(f))) for f in files if str(f)}
    p = Path(spec).expanduser()
    candidates = [str(p)] if p.is_absolute() else [os.path.join(d, str(p)) for d in dirs] + [str(p)]
    real = None
    for c in candidates:
        r = os.path.realpath(c)
        if r in allowed_files or any(_inside(r, d) for d in dirs):
            real = r
            if os.path.exists(r):
                break
    where = ", ".join(dirs) if dirs else "none"
    if real is None:
        raise VocabularyError(
            f"default vocabulary {spec!r} is neither a built-in ({', '.join(BUILTIN_VOCABULARIES)}) "
            f"nor a file in the vocabulary directories ({where}); files elsewhere are never "
            "read: put it in one of them, or add its folder to the read-only parameter "
            "'vocabulary.directories' at start-up"
        )
    if Path(real).suffix.lower() not in VOCABULARY_SUFFIXES:
        raise VocabularyError(
            f"vocabulary file {spec!r} is not a vocabulary file: use one of {', '.join(VOCABULARY_SUFFIXES)}"
        )
    try:
        st = os.stat(real)
    except OSError:
        raise VocabularyError(
            f"default vocabulary {spec!r} is neither a built-in "
            f"({', '.join(BUILTIN_VOCABULARIES)}) nor an existing file"
        ) from None
    if not stat.S_ISREG(st.st_mode):
        raise VocabularyError(f"vocabulary file {spec!r} is not a regular file")
    if st.st_size > MAX_VOCABULARY_FILE_BYTES:
        raise VocabularyError(
            f"vocabulary file {spec!r} has {st.st_size} bytes, more than a vocabulary has "
            f"(at most {MAX_VOCABULARY_FILE_BYTES})"
        )
    return Path(real)


def load_vocabulary(spec: str, *, directories: Sequence[str | Path], files: Sequence[str | Path] = ()) -> Vocabulary:
    """A vocabulary from a built-in name (``coco_panoptic``, ``ade20k_150``, ...) or a permitted file.

    Only files that :func:`resolve_vocabulary_file` permits are read (``directories``, ``files``):
    a peer that may set ``vocabulary.default`` cannot make the node read, and then publish, any
    other file. :meth:`Vocabulary.from_file` reads it (the formats are
    :func:`ovseg_models.vocabulary.parse_vocabulary_text`'s) and refuses a file that is not a
    vocabulary without repeating what it holds.
    """
    from ovseg_models.data.class_names import get_categories

    s = spec.strip()
    if s.startswith("file:"):
        s = s[5:]
    key = s.lower()
    try:
        cats = get_categories(key)
    except (KeyError, ValueError):
        cats = None
    if cats is not None:
        return Vocabulary.from_dataset(key)  # as published: exempt from the request limits
    return Vocabulary.from_file(resolve_vocabulary_file(s, directories=directories, files=files))


# -- outputs ----------------------------------------------------------------------------------


def semantic_labels(
    result: SegmentationResult, score_threshold: float = 0.0, *, out: np.ndarray | None = None
) -> np.ndarray:
    """uint16 label map: category per pixel, 65535 where the score is below ``score_threshold``.

    ``out``: an (H, W) uint16 array to fill (a view of an output message's buffer, see
    :func:`ovseg_ros.conversions.label_image`), so the labels are written once.
    """
    sem = np.asarray(result.semantic)
    if out is None:
        out = np.empty(sem.shape, dtype=np.uint16)
    np.copyto(out, sem, casting="unsafe")
    # a range check by min/max is cheaper than building masks on every frame
    if sem.dtype != np.uint16 and sem.size and (sem.min() < 0 or sem.max() >= UNLABELED):
        out[(sem < 0) | (sem >= UNLABELED)] = UNLABELED
    if score_threshold > 0 and result.score is not None:
        out[np.asarray(result.score) < score_threshold] = UNLABELED
    return out


def semantic_to_msg(labels: np.ndarray, header, msg=None):
    """mono16 label image with ``header`` (labels from :func:`semantic_labels`; ``msg`` reused)."""
    return labels_to_image(labels, header=header, msg=msg)


def panoptic_to_msg(ids: np.ndarray, segments: Sequence[Any], header, vocabulary_version: int, msg=None):
    """``ovseg/PanopticSegmentation`` from an id map and segments (model ``Segment`` objects or dicts)."""
    from sensor_msgs.msg import RegionOfInterest

    from ovseg.msg import PanopticSegmentation, Segment

    if msg is None:
        msg = PanopticSegmentation()
    msg.header = header
    a = np.asarray(ids)
    if a.ndim != 2:
        raise ValueError(f"segment id map must be 2-D, got shape {a.shape}")
    if a.dtype != np.uint16 and a.size and (a.min() < 0 or a.max() > 65535):
        raise ValueError("segment ids do not fit mono16")
    _, out = label_image(*a.shape, header=header, msg=msg.id_image)  # range checked above: one pass
    np.copyto(out, a, casting="unsafe")
    out = []
    for s in segments:
        get = s.get if isinstance(s, dict) else (lambda k, _s=s: getattr(_s, k))
        x, y, w, h = get("bbox")
        out.append(
            Segment(
                id=int(get("id")),
                category=int(get("category")),
                label=str(get("label")),
                score=float(min(max(get("score"), 0.0), 1.0)),
                area=int(get("area")),
                bbox=RegionOfInterest(x_offset=int(x), y_offset=int(y), width=int(w), height=int(h), do_rectify=False),
                is_thing=bool(get("is_thing")),
            )
        )
    msg.segments = out
    msg.vocabulary_version = int(vocabulary_version)
    return msg
