"""Mask AP with ``pycocotools`` (``COCOeval``, ``iouType="segm"``), and panoptic -> instance conversion.

Formats:
- Ground truth: a COCO instances dict ``{"images": [...], "annotations": [...], "categories": [...]}``;
  annotations carry ``segmentation`` (RLE or polygons), ``area``, ``bbox``, ``iscrowd``, ``category_id``.
  :func:`panoptic_to_instances` builds it from COCO panoptic ground truth (thing segments only).
- Predictions: per image, ``masks`` (N, H, W) bool/0-1 (numpy or torch), ``scores`` (N,), ``category_ids`` (N,)
  holding dataset category ids.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import torch
from pycocotools import mask as mask_util
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from .panoptic import rgb2id

__all__ = ["encode_mask", "instance_predictions_to_coco", "panoptic_to_instances", "evaluate_mask_ap"]


def _np(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def encode_mask(mask: np.ndarray) -> dict:
    """Binary mask (H, W) -> COCO RLE with a ``str`` ``counts`` (JSON serialisable)."""
    rle = mask_util.encode(np.asfortranarray(_np(mask).astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def panoptic_to_instances(
    *,
    images: Sequence[Mapping],
    panoptic_annotations: Sequence[Mapping],
    panoptic_maps: Mapping[int, np.ndarray],
    categories: Sequence[Mapping],
) -> dict:
    """COCO panoptic ground truth -> COCO instances ground truth for the thing categories.

    ``panoptic_maps[image_id]`` is the RGB PNG array or segment-id map; ``categories`` are the panoptic categories
    (with ``isthing``); only things are kept. Areas are counted from the masks.
    """
    thing_cats = [dict(c) for c in categories if int(c.get("isthing", 1)) == 1]
    thing_ids = {int(c["id"]) for c in thing_cats}
    annotations: list[dict] = []
    for ann in panoptic_annotations:
        ids = rgb2id(_np(panoptic_maps[int(ann["image_id"])]))
        for seg in ann["segments_info"]:
            if int(seg["category_id"]) not in thing_ids:
                continue
            mask = ids == int(seg["id"])
            rle = encode_mask(mask)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": int(ann["image_id"]),
                    "category_id": int(seg["category_id"]),
                    "segmentation": rle,
                    "area": float(mask.sum()),
                    "bbox": [float(v) for v in mask_util.toBbox(rle)],
                    "iscrowd": int(seg.get("iscrowd", 0)),
                }
            )
    return {
        "images": [dict(i) for i in images],
        "annotations": annotations,
        "categories": thing_cats,
    }


def instance_predictions_to_coco(*, image_id: int, masks, scores, category_ids) -> list[dict]:
    """One image's instance predictions -> COCO results list (``segmentation`` RLE, ``score``, ``category_id``)."""
    masks_np = _np(masks).astype(bool)
    scores_np = _np(scores).astype(float).reshape(-1)
    cats_np = _np(category_ids).astype(int).reshape(-1)
    if not (len(masks_np) == len(scores_np) == len(cats_np)):
        raise ValueError("masks, scores and category_ids must have the same length")
    return [
        {
            "image_id": int(image_id),
            "category_id": int(cat),
            "segmentation": encode_mask(mask),
            "score": float(score),
        }
        for mask, score, cat in zip(masks_np, scores_np, cats_np, strict=False)
    ]


_STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl")


def evaluate_mask_ap(
    *, ground_truth: Mapping, predictions: Iterable[Mapping], max_dets: int = 100, per_class: bool = True
) -> dict:
    """COCO mask AP (percent). ``predictions`` is a COCO results list (see :func:`instance_predictions_to_coco`).

    Returns ``{"AP", "AP50", "AP75", "APs", "APm", "APl"}`` plus ``"AP-<category name>"`` entries when
    ``per_class`` (NaN for categories without ground truth). With no predictions all values are 0.
    """
    results = list(predictions)
    gt_dict = {"info": {}, "licenses": [], **dict(ground_truth)}
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt_dict
        coco_gt.createIndex()
        if not results:
            return {name: 0.0 for name in _STAT_NAMES}
        coco_dt = coco_gt.loadRes(results)
        evaluator = COCOeval(coco_gt, coco_dt, iouType="segm")
        evaluator.params.maxDets = [1, 10, max_dets]
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    out = {
        name: float(evaluator.stats[i] * 100.0) if evaluator.stats[i] >= 0 else float("nan")
        for i, name in enumerate(_STAT_NAMES)
    }
    if per_class:
        precisions = evaluator.eval["precision"]  # (iou, recall, class, area, maxdet)
        for k, cat_id in enumerate(evaluator.params.catIds):
            name = coco_gt.cats[cat_id]["name"]
            p = precisions[:, :, k, 0, -1]
            p = p[p > -1]
            out[f"AP-{name}"] = float(np.mean(p) * 100.0) if p.size else float("nan")
    return out
