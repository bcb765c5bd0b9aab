"""In-training panoptic quality of a mask-classification model on a (small) panoptic dataset.

Uses the in-vocabulary classifier only (``softmax(pred_logits)``, what the training loss optimises;
FC-CLIP's out-of-vocabulary ensemble is left to ``ovseg-eval``), FC-CLIP's panoptic merging, and
predictions resized to the original image size, scored with the COCO PQ rules
(:class:`~ovseg_models.evaluation.PanopticQualityMetric`). Needs ``augment="resize"`` datasets.
"""

from __future__ import annotations

import torch
from torch import nn

from ..evaluation.panoptic import PanopticQualityMetric
from ..fcclip.postprocess import panoptic_inference, resize_masks
from .data import PanopticTrainDataset

__all__ = ["panoptic_quality"]


@torch.no_grad()
def panoptic_quality(
    model: nn.Module,
    dataset: PanopticTrainDataset,
    *,
    device="cpu",
    object_mask_threshold: float = 0.0,
    overlap_threshold: float = 0.8,
) -> dict:
    """``{"All"|"Things"|"Stuff": {"pq", "sq", "rq", "n"}}`` (fractions) over the whole dataset."""
    if dataset.augment != "resize":
        raise ValueError("panoptic_quality needs a dataset with augment='resize'")
    cats = dataset.base.categories
    is_thing = [bool(c.get("isthing", 1)) for c in cats]
    metric = PanopticQualityMetric(categories={int(c["id"]): bool(c.get("isthing", 1)) for c in cats})
    was_training = model.training
    model.eval()
    try:
        for i in range(len(dataset)):
            raw = dataset.base[dataset.indices[i]]
            item = dataset[(i, 0)]
            h, w = raw["image"].shape[:2]
            s = dataset.image_size / max(h, w)
            valid = (max(1, round(h * s)), max(1, round(w * s)))
            out = model([item["image"].to(device)])
            mask_cls = out["pred_logits"][0].float().log_softmax(-1)
            pad = tuple(item["image"].shape[-2:])
            masks = resize_masks(out["pred_masks"][0].float(), pad, valid, (h, w))
            pan = panoptic_inference(
                mask_cls,
                masks,
                is_thing,
                object_mask_threshold=object_mask_threshold,
                overlap_threshold=overlap_threshold,
            )
            segs = [{"id": s_["id"], "category_id": int(cats[s_["category_id"]]["id"])} for s_ in pan.segments]
            metric.update(
                gt_ids=raw["pan_ids"],
                gt_segments=raw["segments_info"],
                pred_ids=pan.panoptic_seg.cpu().numpy(),
                pred_segments=segs,
            )
    finally:
        model.train(was_training)
    res = metric.compute()
    return {k: res[k] for k in ("All", "Things", "Stuff")}
