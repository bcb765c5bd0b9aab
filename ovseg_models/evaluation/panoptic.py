"""Panoptic quality (PQ, SQ, RQ) with the COCO rules of ``panopticapi`` (``pq_compute``).

Input format (COCO panoptic):

- ``*_ids``: segment-id map (H, W) of integers (numpy or torch), or an RGB PNG array (H, W, 3) uint8 which is
  decoded with ``id = R + 256 * G + 256**2 * B``. Id 0 is VOID (unlabeled).
- ``*_segments``: the ``segments_info`` list; each item has ``id`` and ``category_id``; ground-truth items also
  ``iscrowd`` (default 0) and optionally ``area`` (panopticapi uses the JSON ``area`` of ground-truth segments;
  it is counted from the map when missing).

Rules (panopticapi ``pq_compute_single_core``): a ground-truth/prediction pair of the same category matches when
``IoU > 0.5``, the union excluding the prediction's pixels on VOID; crowd ground truth never matches; unmatched
non-crowd ground truth are false negatives; an unmatched prediction is a false positive unless more than half of
it lies on VOID plus the crowd region of its own category. ``PQ_c = sum IoU / (TP + FP/2 + FN/2)``; dataset PQ
averages over the categories with ``TP + FP + FN > 0`` (separately for things and stuff).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

__all__ = [
    "VOID",
    "OFFSET",
    "PanopticStat",
    "PanopticQualityMetric",
    "rgb2id",
    "id2rgb",
    "pq_single_image",
    "pq_average",
]

VOID = 0
OFFSET = 256 * 256 * 256


def rgb2id(color: np.ndarray) -> np.ndarray:
    """COCO panoptic PNG (H, W, 3) uint8 -> segment ids (H, W) int64: ``R + 256 G + 256^2 B``."""
    color = np.asarray(color)
    if color.ndim == 3 and color.shape[-1] == 3:
        c = color.astype(np.int64)
        return c[..., 0] + 256 * c[..., 1] + 256 * 256 * c[..., 2]
    return color.astype(np.int64)


def id2rgb(ids: np.ndarray) -> np.ndarray:
    """Segment ids (H, W) -> COCO panoptic RGB (H, W, 3) uint8 (inverse of :func:`rgb2id`)."""
    ids = np.asarray(ids).astype(np.int64)
    out = np.zeros((*ids.shape, 3), dtype=np.uint8)
    for channel in range(3):
        out[..., channel] = ids % 256
        ids = ids // 256
    return out


def _to_ids(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return rgb2id(np.asarray(x))


@dataclass
class PanopticStat:
    """Per-category sums: IoU of matched pairs, true/false positives, false negatives."""

    iou: float = 0.0
    tp: int = 0
    fp: int = 0
    fn: int = 0


def pq_single_image(
    *,
    gt_ids,
    gt_segments: Sequence[Mapping],
    pred_ids,
    pred_segments: Sequence[Mapping],
    category_ids: Iterable[int] | None = None,
) -> dict[int, PanopticStat]:
    """Per-category PQ statistics of one image (panopticapi ``pq_compute_single_core`` for one annotation).

    Raises ``KeyError`` like panopticapi when a predicted segment id is in the map but not in ``pred_segments``
    (or vice versa), or when a predicted ``category_id`` is not in ``category_ids`` (when given).
    """
    pan_gt = _to_ids(gt_ids)
    pan_pred = _to_ids(pred_ids)
    if pan_gt.shape != pan_pred.shape:
        raise ValueError(f"ground-truth shape {pan_gt.shape} != prediction shape {pan_pred.shape}")
    known = set(category_ids) if category_ids is not None else None
    stats: dict[int, PanopticStat] = {}

    def stat(cat: int) -> PanopticStat:
        return stats.setdefault(int(cat), PanopticStat())

    gt_segms = {int(s["id"]): dict(s) for s in gt_segments}
    pred_segms = {int(s["id"]): dict(s) for s in pred_segments}

    # ground-truth areas: JSON area when given (as panopticapi), else counted
    gt_labels, gt_counts = np.unique(pan_gt, return_counts=True)
    gt_count_map = dict(zip(gt_labels.tolist(), gt_counts.tolist(), strict=False))
    for seg_id, info in gt_segms.items():
        if "area" not in info:
            info["area"] = gt_count_map.get(seg_id, 0)

    # predicted segment areas + sanity checks
    pred_labels_left = set(pred_segms)
    labels, counts = np.unique(pan_pred, return_counts=True)
    for label, count in zip(labels.tolist(), counts.tolist(), strict=False):
        if label not in pred_segms:
            if label == VOID:
                continue
            raise KeyError(f"segment id {label} is in the prediction map but not in its segments_info")
        pred_segms[label]["area"] = count
        pred_labels_left.discard(label)
        if known is not None and int(pred_segms[label]["category_id"]) not in known:
            raise KeyError(f"segment {label} has unknown category_id {pred_segms[label]['category_id']}")
    if pred_labels_left:
        raise KeyError(f"segments {sorted(pred_labels_left)} are in segments_info but not in the prediction map")

    # intersections of every (gt id, pred id) pair
    joint = pan_gt.astype(np.uint64) * np.uint64(OFFSET) + pan_pred.astype(np.uint64)
    labels, counts = np.unique(joint, return_counts=True)
    gt_pred_map: dict[tuple[int, int], int] = {}
    for label, count in zip(labels.tolist(), counts.tolist(), strict=False):
        gt_pred_map[(label // OFFSET, label % OFFSET)] = count

    gt_matched: set[int] = set()
    pred_matched: set[int] = set()
    for (gt_label, pred_label), intersection in gt_pred_map.items():
        if gt_label not in gt_segms or pred_label not in pred_segms:
            continue
        gt_info, pred_info = gt_segms[gt_label], pred_segms[pred_label]
        if int(gt_info.get("iscrowd", 0)) == 1:
            continue
        if int(gt_info["category_id"]) != int(pred_info["category_id"]):
            continue
        union = pred_info["area"] + gt_info["area"] - intersection - gt_pred_map.get((VOID, pred_label), 0)
        iou = intersection / union
        if iou > 0.5:
            s = stat(gt_info["category_id"])
            s.tp += 1
            s.iou += iou
            gt_matched.add(gt_label)
            pred_matched.add(pred_label)

    crowd_by_category: dict[int, int] = {}
    for gt_label, gt_info in gt_segms.items():
        if gt_label in gt_matched:
            continue
        if int(gt_info.get("iscrowd", 0)) == 1:
            crowd_by_category[int(gt_info["category_id"])] = gt_label
            continue
        stat(gt_info["category_id"]).fn += 1

    for pred_label, pred_info in pred_segms.items():
        if pred_label in pred_matched:
            continue
        intersection = gt_pred_map.get((VOID, pred_label), 0)
        cat = int(pred_info["category_id"])
        if cat in crowd_by_category:
            intersection += gt_pred_map.get((crowd_by_category[cat], pred_label), 0)
        if intersection / pred_info["area"] > 0.5:
            continue
        stat(cat).fp += 1
    return stats


def pq_average(
    stats: Mapping[int, PanopticStat], *, categories: Mapping[int, bool], isthing: bool | None = None
) -> tuple[dict, dict[int, dict]]:
    """panopticapi ``PQStat.pq_average``: mean PQ/SQ/RQ over categories with TP+FP+FN > 0.

    ``categories`` maps category id -> is_thing; ``isthing`` selects things (True), stuff (False) or all (None).
    Returns ``({"pq", "sq", "rq", "n"}, {category_id: {"pq", "sq", "rq"}})``, values in [0, 1]; the averages are
    NaN when no category qualifies.
    """
    pq = sq = rq = 0.0
    n = 0
    per_class: dict[int, dict] = {}
    for cat, cat_isthing in categories.items():
        if isthing is not None and bool(cat_isthing) != isthing:
            continue
        s = stats.get(cat, PanopticStat())
        if s.tp + s.fp + s.fn == 0:
            per_class[cat] = {"pq": 0.0, "sq": 0.0, "rq": 0.0}
            continue
        n += 1
        denom = s.tp + 0.5 * s.fp + 0.5 * s.fn
        pq_c = s.iou / denom
        sq_c = s.iou / s.tp if s.tp != 0 else 0.0
        rq_c = s.tp / denom
        per_class[cat] = {"pq": pq_c, "sq": sq_c, "rq": rq_c}
        pq += pq_c
        sq += sq_c
        rq += rq_c
    if n == 0:
        nan = float("nan")
        return {"pq": nan, "sq": nan, "rq": nan, "n": 0}, per_class
    return {"pq": pq / n, "sq": sq / n, "rq": rq / n, "n": n}, per_class


class PanopticQualityMetric:
    """Accumulates panoptic statistics over images; ``sync()`` all-reduces them under torch.distributed.

    ``categories`` maps every evaluated category id to its ``is_thing`` flag (e.g. from
    :func:`ovseg_models.data.class_names.get_categories`).
    """

    def __init__(self, *, categories: Mapping[int, bool]):
        self.categories = {int(k): bool(v) for k, v in categories.items()}
        self._index = {cat: i for i, cat in enumerate(self.categories)}
        n = len(self.categories)
        self.iou = torch.zeros(n, dtype=torch.float64)
        self.counts = torch.zeros((n, 3), dtype=torch.int64)  # tp, fp, fn

    def reset(self) -> None:
        self.iou.zero_()
        self.counts.zero_()

    def update(self, *, gt_ids, gt_segments, pred_ids, pred_segments) -> None:
        """Add one image (formats in the module docstring)."""
        stats = pq_single_image(
            gt_ids=gt_ids,
            gt_segments=gt_segments,
            pred_ids=pred_ids,
            pred_segments=pred_segments,
            category_ids=self.categories.keys(),
        )
        for cat, s in stats.items():
            if cat not in self._index:
                continue  # ground-truth category outside the evaluated set
            i = self._index[cat]
            self.iou[i] += s.iou
            self.counts[i, 0] += s.tp
            self.counts[i, 1] += s.fp
            self.counts[i, 2] += s.fn

    def sync(self) -> None:
        """Sum statistics over processes when ``torch.distributed`` is initialised."""
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            backend = torch.distributed.get_backend()
            device = torch.device("cuda", torch.cuda.current_device()) if backend == "nccl" else torch.device("cpu")
            for tensor_name in ("iou", "counts"):
                tensor = getattr(self, tensor_name).to(device)
                torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.SUM)
                setattr(self, tensor_name, tensor.cpu())

    def stats(self) -> dict[int, PanopticStat]:
        return {
            cat: PanopticStat(
                iou=float(self.iou[i]),
                tp=int(self.counts[i, 0]),
                fp=int(self.counts[i, 1]),
                fn=int(self.counts[i, 2]),
            )
            for cat, i in self._index.items()
        }

    def compute(self) -> dict:
        """``{"All"|"Things"|"Stuff": {"pq","sq","rq","n"}, "per_class": {cat: {...}}}`` (values in [0, 1])."""
        stats = self.stats()
        out = {}
        per_class = {}
        for name, isthing in (("All", None), ("Things", True), ("Stuff", False)):
            out[name], pcs = pq_average(stats, categories=self.categories, isthing=isthing)
            if isthing is None:
                per_class = pcs
        out["per_class"] = per_class
        return out
