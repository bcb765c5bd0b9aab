"""Semantic metrics vs detectron2's SemSegEvaluator rule (reimplemented below from its ``evaluate``) and
torchmetrics' MulticlassJaccardIndex, on random cases and real ground truth."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from shared_data import shared_path
from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex

from ovseg_models.data.class_names import get_categories
from ovseg_models.evaluation.semantic import (
    SemanticSegmentationMetric,
    confusion_matrix,
    mean_iou_over_ground_truth_classes,
    metrics_from_confusion_matrix,
)


def _detectron2_miou(pairs, num_classes, ignore=255):
    """detectron2 SemSegEvaluator.process/evaluate: conf[pred, gt] with an extra row/column for ignored pixels;
    IoU over the classes with ``pos_gt > 0``."""
    conf = np.zeros((num_classes + 1, num_classes + 1), dtype=np.int64)
    for pred, gt in pairs:
        gt = np.asarray(gt).copy()
        gt[gt == ignore] = num_classes
        conf += np.bincount(
            (num_classes + 1) * np.asarray(pred).reshape(-1) + gt.reshape(-1), minlength=conf.size
        ).reshape(conf.shape)
    iou = np.full(num_classes, np.nan)
    tp = conf.diagonal()[:-1].astype(float)
    pos_gt = conf[:-1, :-1].sum(axis=0).astype(float)
    pos_pred = conf[:-1, :-1].sum(axis=1).astype(float)
    union = pos_gt + pos_pred - tp
    valid = np.logical_and(pos_gt > 0, union > 0)
    iou[valid] = tp[valid] / union[valid]
    return float(np.sum(iou[valid]) / np.sum(valid)), iou


def test_miou_ignores_classes_only_predicted():
    # class 2 is predicted but absent from the ground truth: detectron2 leaves it out of the mean
    pred = np.array([[0, 0, 2, 2], [1, 1, 1, 1]])
    target = np.array([[0, 0, 0, 0], [1, 1, 1, 1]])
    cm = confusion_matrix(prediction=pred, target=target, num_classes=3)
    result = metrics_from_confusion_matrix(cm)
    assert result.miou == pytest.approx((0.5 + 1.0) / 2)
    assert mean_iou_over_ground_truth_classes(cm) == result.miou
    assert np.isnan(result.iou[2])
    assert result.miou == pytest.approx(_detectron2_miou([(pred, target)], 3)[0])


def _torchmetrics(pred, target, num_classes, average):
    metric = MulticlassJaccardIndex(num_classes=num_classes, ignore_index=255, average=average)
    return metric(pred, target)


@pytest.mark.parametrize("seed", range(8))
def test_random_against_torchmetrics(seed):
    g = torch.Generator().manual_seed(seed)
    num_classes = int(torch.randint(2, 30, (1,), generator=g))
    metric = SemanticSegmentationMetric(num_classes=num_classes, ignore_index=255)
    tm_none = MulticlassJaccardIndex(num_classes=num_classes, ignore_index=255, average="none")
    tm_macro = MulticlassJaccardIndex(num_classes=num_classes, ignore_index=255, average="macro")
    tm_micro_acc = MulticlassAccuracy(num_classes=num_classes, ignore_index=255, average="micro")
    pairs = []
    for _ in range(3):  # accumulate over images of different sizes
        h, w = (int(v) for v in torch.randint(5, 40, (2,), generator=g))
        target = torch.randint(0, num_classes, (h, w), generator=g)
        # skew the prediction towards the target so IoUs are not all tiny
        pred = torch.where(
            torch.rand(h, w, generator=g) < 0.6, target, torch.randint(0, num_classes, (h, w), generator=g)
        )
        target[torch.rand(h, w, generator=g) < 0.2] = 255
        metric.update(prediction=pred, target=target)
        tm_none.update(pred[None], target[None])
        tm_macro.update(pred[None], target[None])
        tm_micro_acc.update(pred[None], target[None])
        pairs.append((pred.numpy(), target.numpy()))
    result = metric.compute()
    ours = torch.tensor(result.iou, dtype=torch.float64)
    # IoU is defined (equal to torchmetrics') where the class has ground truth, NaN elsewhere
    has_gt = ~torch.isnan(ours)
    torch.testing.assert_close(ours[has_gt], tm_none.compute().double()[has_gt], rtol=1e-5, atol=1e-6)
    # torchmetrics' macro mean also counts classes that are only predicted; detectron2 (and we) do not
    assert result.miou == pytest.approx(_detectron2_miou(pairs, num_classes)[0], rel=1e-9)
    assert result.pixel_accuracy == pytest.approx(float(tm_micro_acc.compute()), rel=1e-5)


def test_hand_computed_case():
    pred = np.array([[0, 0, 1, 1], [2, 2, 2, 0]])
    target = np.array([[0, 1, 1, 255], [2, 2, 255, 255]])
    result = metrics_from_confusion_matrix(confusion_matrix(prediction=pred, target=target, num_classes=4))
    # valid pixels (t, p): (0,0) (1,0) (1,1) (2,2) (2,2); ignored pixels never count, even when predicted
    # class 0: tp 1, gt 1, pred 2 -> 1/2 ; class 1: tp 1, gt 2, pred 1 -> 1/2 ; class 2: 2/2 ; class 3 absent
    assert result.iou[:3] == pytest.approx((0.5, 0.5, 1.0))
    assert np.isnan(result.iou[3])
    assert result.miou == pytest.approx(2 / 3)
    assert result.pixel_accuracy == pytest.approx(4 / 5)
    assert result.macc == pytest.approx((1 + 0.5 + 1) / 3)
    assert result.fwiou == pytest.approx((1 * 0.5 + 2 * 0.5 + 2 * 1) / 5)


def test_rejects_bad_input():
    metric = SemanticSegmentationMetric(num_classes=3)
    with pytest.raises(ValueError):
        metric.update(prediction=np.zeros((2, 2), int), target=np.zeros((2, 3), int))
    with pytest.raises(ValueError):
        metric.update(prediction=np.full((2, 2), 3), target=np.zeros((2, 2), int))
    with pytest.raises(ValueError):
        metric.update(prediction=np.zeros((2, 2), int), target=np.full((2, 2), 7))
    with pytest.raises(TypeError):
        metric.update(prediction=np.zeros((2, 2), float), target=np.zeros((2, 2), int))


def test_reset_sync_noop_and_numpy_torch_equivalence():
    rng = np.random.default_rng(0)
    pred = rng.integers(0, 5, (16, 16))
    target = rng.integers(0, 5, (16, 16))
    a = SemanticSegmentationMetric(num_classes=5)
    b = SemanticSegmentationMetric(num_classes=5)
    a.update(prediction=pred, target=target)
    b.update(prediction=torch.from_numpy(pred), target=torch.from_numpy(target))
    a.sync()  # not distributed: no-op
    assert torch.equal(a.confusion, b.confusion)
    assert int(a.confusion.sum()) == 256
    a.reset()
    assert int(a.confusion.sum()) == 0


def _coco_semantic_gt():
    root = shared_path("data", "coco_panoptic")
    data = json.loads((root / "panoptic_val.json").read_text())
    contiguous = {c.id: i for i, c in enumerate(get_categories("coco_panoptic"))}
    maps = []
    for ann in data["annotations"]:
        rgb = np.array(Image.open(root / "panoptic_val" / ann["file_name"]), dtype=np.int64)
        ids = rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2]
        sem = np.full(ids.shape, 255, dtype=np.int64)
        for seg in ann["segments_info"]:
            sem[ids == seg["id"]] = contiguous[seg["category_id"]]
        maps.append(sem)
    return maps


def test_real_coco_ground_truth():
    maps = _coco_semantic_gt()
    metric = SemanticSegmentationMetric(num_classes=133)
    tm = MulticlassJaccardIndex(num_classes=133, ignore_index=255, average="macro")
    tm_none = MulticlassJaccardIndex(num_classes=133, ignore_index=255, average="none")
    rng = np.random.default_rng(1)
    pairs = []
    for sem in maps:
        metric.update(prediction=np.where(sem == 255, 0, sem), target=sem)
    assert metric.compute().miou == pytest.approx(1.0)
    assert metric.compute().pixel_accuracy == pytest.approx(1.0)
    metric.reset()
    for sem in maps:
        # corrupt: shift labels in a random block, and predict class 0 on ignore pixels
        pred = np.where(sem == 255, 0, sem)
        y, x = rng.integers(0, 200, 2)
        pred[y : y + 120, x : x + 200] = (pred[y : y + 120, x : x + 200] + 7) % 133
        metric.update(prediction=pred, target=sem)
        tm.update(torch.from_numpy(pred)[None], torch.from_numpy(sem)[None])
        tm_none.update(torch.from_numpy(pred)[None], torch.from_numpy(sem)[None])
        pairs.append((pred, sem))
    result = metric.compute()
    assert 0.0 < result.miou < 1.0
    d2_miou, d2_iou = _detectron2_miou(pairs, 133)
    assert result.miou == pytest.approx(d2_miou, rel=1e-12)
    np.testing.assert_allclose(np.array(result.iou), d2_iou, rtol=1e-12)  # NaN where detectron2 has NaN
    has_gt = ~np.isnan(d2_iou)
    np.testing.assert_allclose(np.array(result.iou)[has_gt], tm_none.compute().double().numpy()[has_gt], rtol=1e-5)
