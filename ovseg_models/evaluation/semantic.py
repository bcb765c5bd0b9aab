"""Semantic-segmentation metrics from an accumulated confusion matrix (mIoU, per-class IoU, pixel accuracy).

Formats:
- ``prediction``: integer class map (H, W) (or batch (B, H, W)), values in ``[0, num_classes)``.
- ``target``: integer class map of the same shape; ``ignore_index`` (default 255) marks unlabeled pixels,
  which are excluded from every metric. Other target values must lie in ``[0, num_classes)``.

The confusion matrix ``cm[t, p]`` counts pixels of true class ``t`` predicted as ``p``. Definitions (identical to
detectron2's ``SemSegEvaluator``, which the FC-CLIP and CAT-Seg evaluations use; ``ovseg-eval`` and
``ovseg-bag-eval`` both compute mIoU here):

- ``IoU_c = cm[c, c] / (sum_p cm[c, p] + sum_t cm[t, c] - cm[c, c])`` for the classes with ground-truth pixels
  (``pos_gt = sum_p cm[c, p] > 0``), NaN for the others, even when they are predicted;
- ``mIoU`` = mean of ``IoU_c`` over the classes with ground-truth pixels
  (:func:`mean_iou_over_ground_truth_classes`, detectron2's ``SemSegEvaluator`` rule ``iou_valid = pos_gt > 0``;
  torchmetrics' macro average also counts classes that are only predicted, so it differs when such classes exist);
- ``pixel accuracy`` = trace / total valid pixels; ``mACC`` = mean over classes present in the target of
  ``cm[c, c] / sum_p cm[c, p]``; ``fwIoU`` = target-frequency-weighted IoU.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = [
    "SemanticMetrics",
    "SemanticSegmentationMetric",
    "confusion_matrix",
    "mean_iou_over_ground_truth_classes",
    "metrics_from_confusion_matrix",
]


def _as_long_tensor(x, device: torch.device | None = None) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"expected a numpy array or torch tensor, got {type(x).__name__}")
    if x.is_floating_point():
        raise TypeError("label maps must be integer arrays")
    return x.to(device=device, dtype=torch.long) if device is not None else x.long()


def confusion_matrix(*, prediction, target, num_classes: int, ignore_index: int | None = 255) -> torch.Tensor:
    """Confusion matrix (num_classes, num_classes) int64 of one prediction/target pair (any equal shapes)."""
    target_t = _as_long_tensor(target)
    pred_t = _as_long_tensor(prediction, device=target_t.device)
    if pred_t.shape != target_t.shape:
        raise ValueError(f"prediction shape {tuple(pred_t.shape)} != target shape {tuple(target_t.shape)}")
    target_t = target_t.reshape(-1)
    pred_t = pred_t.reshape(-1)
    if ignore_index is not None:
        keep = target_t != ignore_index
        target_t = target_t[keep]
        pred_t = pred_t[keep]
    if target_t.numel() and (int(target_t.min()) < 0 or int(target_t.max()) >= num_classes):
        raise ValueError(f"target values must be in [0, {num_classes}) or ignore_index={ignore_index}")
    if pred_t.numel() and (int(pred_t.min()) < 0 or int(pred_t.max()) >= num_classes):
        raise ValueError(f"prediction values must be in [0, {num_classes})")
    flat = target_t * num_classes + pred_t
    return torch.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


@dataclass(frozen=True)
class SemanticMetrics:
    """Metrics in [0, 1] (not percent). ``iou``/``acc`` are per class (NaN for classes without ground-truth
    pixels); ``miou`` is :func:`mean_iou_over_ground_truth_classes`."""

    miou: float
    fwiou: float
    macc: float
    pixel_accuracy: float
    iou: tuple[float, ...]
    acc: tuple[float, ...]

    def as_dict(self, *, class_names: list[str] | None = None, percent: bool = True) -> dict:
        """Flat dict in the detectron2 style (``mIoU``, ``fwIoU``, ``mACC``, ``pACC``, ``IoU-<name>``...)."""
        scale = 100.0 if percent else 1.0
        names = class_names or [str(i) for i in range(len(self.iou))]
        out = {
            "mIoU": self.miou * scale,
            "fwIoU": self.fwiou * scale,
            "mACC": self.macc * scale,
            "pACC": self.pixel_accuracy * scale,
        }
        for name, value in zip(names, self.iou, strict=False):
            out[f"IoU-{name}"] = value * scale
        for name, value in zip(names, self.acc, strict=False):
            out[f"ACC-{name}"] = value * scale
        return out


def _per_class(cm: torch.Tensor | np.ndarray):
    cm_t = torch.as_tensor(cm).to(dtype=torch.float64, device="cpu")
    tp = torch.diagonal(cm_t)
    pos_gt = cm_t.sum(dim=1)
    pos_pred = cm_t.sum(dim=0)
    union = pos_gt + pos_pred - tp
    valid = pos_gt > 0  # detectron2: acc_valid = pos_gt > 0; iou_valid = acc_valid & (union > 0) (implied)
    nan = torch.tensor(float("nan"), dtype=torch.float64)
    iou = torch.where(valid, tp / union.clamp(min=1), nan)
    acc = torch.where(valid, tp / pos_gt.clamp(min=1), nan)
    return tp, pos_gt, iou, acc, valid


def mean_iou_over_ground_truth_classes(cm: torch.Tensor | np.ndarray) -> float:
    """mIoU of a (C, C) confusion matrix ``cm[target, prediction]``: the mean IoU over the classes that have
    ground-truth pixels (detectron2's ``SemSegEvaluator``); NaN when no pixel is labeled."""
    _, _, iou, _, valid = _per_class(cm)
    return float(iou[valid].mean()) if valid.any() else float("nan")


def metrics_from_confusion_matrix(cm: torch.Tensor | np.ndarray) -> SemanticMetrics:
    """Compute :class:`SemanticMetrics` from a (C, C) confusion matrix ``cm[target, prediction]``."""
    tp, pos_gt, iou, acc, valid = _per_class(cm)
    total = pos_gt.sum()
    macc = float(acc[valid].mean()) if valid.any() else float("nan")
    if total > 0:
        fwiou = float((pos_gt[valid] / total * iou[valid]).sum())
        pacc = float(tp.sum() / total)
    else:
        fwiou = pacc = float("nan")
    return SemanticMetrics(
        miou=mean_iou_over_ground_truth_classes(cm),
        fwiou=fwiou,
        macc=macc,
        pixel_accuracy=pacc,
        iou=tuple(float(v) for v in iou),
        acc=tuple(float(v) for v in acc),
    )


class SemanticSegmentationMetric:
    """Accumulates a confusion matrix over images; works on CPU or GPU tensors and numpy arrays.

    >>> metric = SemanticSegmentationMetric(num_classes=150, ignore_index=255)
    >>> metric.update(prediction=pred_hw, target=gt_hw)   # repeat per image
    >>> metric.sync()                                     # all-reduce under torch.distributed (no-op otherwise)
    >>> metric.compute().miou
    """

    def __init__(self, *, num_classes: int, ignore_index: int | None = 255, device: str | torch.device = "cpu"):
        if num_classes <= 0:
            raise ValueError("num_classes must be positive")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.device = torch.device(device)
        self.confusion = torch.zeros((num_classes, num_classes), dtype=torch.int64, device=self.device)

    def reset(self) -> None:
        self.confusion.zero_()

    def update(self, *, prediction, target) -> None:
        """Add one image (H, W) or a batch (B, H, W) of prediction/target class maps."""
        cm = confusion_matrix(
            prediction=prediction, target=target, num_classes=self.num_classes, ignore_index=self.ignore_index
        )
        self.confusion += cm.to(self.device)

    def sync(self) -> None:
        """Sum the confusion matrices of all processes when ``torch.distributed`` is initialised."""
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(self.confusion, op=torch.distributed.ReduceOp.SUM)

    def compute(self) -> SemanticMetrics:
        return metrics_from_confusion_matrix(self.confusion)
