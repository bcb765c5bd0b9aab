"""ovseg_models.segments_from_semantic (the panoptic output of semantic-only models such as CAT-Seg)
against a plain per-class-mask reference, on the real COCO panoptic sample's semantic maps and on
random maps with void pixels and labels outside the vocabulary."""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
from PIL import Image
from shared_data import shared_path

from ovseg_models import Segment, segments_from_semantic
from ovseg_models.vocabulary import Vocabulary, VocabularyClass


def reference(labels, score, vocabulary):
    """One boolean mask per class present, in class order."""
    ids = np.zeros(labels.shape, np.uint16)
    segments = []
    for cat in range(len(vocabulary)):
        mask = labels == cat
        if not mask.any():
            continue
        sid = len(segments) + 1
        ids[mask] = sid
        ys, xs = np.nonzero(mask)
        segments.append(
            {
                "id": sid,
                "category": cat,
                "label": vocabulary[cat].name,
                "score": float(score[mask].mean()) if score is not None else 1.0,
                "area": int(mask.sum()),
                "is_thing": bool(vocabulary[cat].is_thing),
                "bbox": (int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)),
            }
        )
    return ids, segments


def check(labels, score, vocabulary):
    ids, segments = segments_from_semantic(labels, score, vocabulary)
    assert all(isinstance(s, Segment) for s in segments)
    segs = [asdict(s) for s in segments]
    ref_ids, ref_segs = reference(labels, score, vocabulary)
    assert ids.dtype == np.uint16 and np.array_equal(ids, ref_ids)
    assert [{k: v for k, v in s.items() if k not in ("score", "queries")} for s in segs] == [
        {k: v for k, v in s.items() if k != "score"} for s in ref_segs
    ]
    np.testing.assert_allclose([s["score"] for s in segs], [s["score"] for s in ref_segs], rtol=1e-5)
    return segs


def test_on_the_coco_panoptic_samples_semantic_maps():
    root = shared_path("data", "coco_panoptic")
    data = json.loads((root / "panoptic_val.json").read_text())
    cats = json.loads((root / "panoptic_coco_categories.json").read_text())
    index = {c["id"]: i for i, c in enumerate(cats)}
    vocabulary = Vocabulary.create([VocabularyClass((c["name"],), is_thing=bool(c["isthing"])) for c in cats])
    rng = np.random.default_rng(0)
    checked = 0
    for ann in data["annotations"]:
        rgb = np.array(Image.open(root / "panoptic_val" / ann["file_name"])).astype(np.uint32)
        pan = rgb[..., 0] + 256 * rgb[..., 1] + 256 * 256 * rgb[..., 2]
        labels = np.full(pan.shape, 65535, np.uint16)
        for s in ann["segments_info"]:
            labels[pan == s["id"]] = index[s["category_id"]]
        score = rng.random(labels.shape, dtype=np.float32)
        segs = check(labels, score, vocabulary)
        assert {s["category"] for s in segs} == {index[s["category_id"]] for s in ann["segments_info"]}
        checked += 1
    assert checked >= 1


def test_on_random_maps_with_void_and_labels_outside_the_vocabulary():
    vocabulary = Vocabulary.create([VocabularyClass((f"class {i}",), is_thing=i % 2 == 0) for i in range(12)])
    rng = np.random.default_rng(1)
    for trial in range(100):
        h, w = (int(x) for x in rng.integers(1, 40, 2))
        labels = rng.integers(0, 14, (h, w)).astype(np.uint16)  # 12 and 13 are no class: void
        labels[rng.random((h, w)) < 0.2] = 65535
        if trial % 10 == 0:
            labels[:] = 65535
        score = None if trial % 3 == 0 else rng.random((h, w), dtype=np.float32)
        ids, segs = segments_from_semantic(labels, score, vocabulary)
        check(np.where(labels >= 12, 65535, labels).astype(np.uint16), score, vocabulary)
        assert np.array_equal(ids == 0, labels >= 12)
    # signed labels (negative = void) are accepted too
    signed = np.array([[-1, 0, 0], [1, 1, -5]])
    ids, segs = segments_from_semantic(signed, None, vocabulary)
    assert ids.tolist() == [[0, 1, 1], [2, 2, 0]] and [s.area for s in segs] == [2, 2]
