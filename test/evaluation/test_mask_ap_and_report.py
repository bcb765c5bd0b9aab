"""Mask AP through pycocotools on the real COCO panoptic sample (as instances), and the results report."""

import json
import math

import pytest
import torch

from ovseg_models.evaluation.instance import evaluate_mask_ap, instance_predictions_to_coco, panoptic_to_instances
from ovseg_models.evaluation.panoptic import rgb2id
from ovseg_models.evaluation.report import format_results_table, write_results_json


@pytest.fixture(scope="module")
def coco_instances(coco_panoptic_sample):
    data, cats, maps = coco_panoptic_sample
    gt = panoptic_to_instances(
        images=data["images"], panoptic_annotations=data["annotations"], panoptic_maps=maps, categories=cats
    )
    return gt, maps, data


def _perfect_predictions(gt, maps):
    preds = []
    for ann in gt["annotations"]:
        if ann["iscrowd"]:
            continue
        ids = rgb2id(maps[ann["image_id"]])
        from pycocotools import mask as mask_util

        mask = mask_util.decode(ann["segmentation"]).astype(bool)
        assert mask.shape == ids.shape
        preds.extend(
            instance_predictions_to_coco(
                image_id=ann["image_id"], masks=mask[None], scores=[0.9], category_ids=[ann["category_id"]]
            )
        )
    return preds


def test_conversion(coco_instances):
    gt, maps, data = coco_instances
    n_things = sum(1 for a in data["annotations"] for s in a["segments_info"] if s["category_id"] <= 90)
    assert len(gt["annotations"]) == n_things > 0
    assert len(gt["categories"]) == 80
    for ann in gt["annotations"]:
        src = next(
            s
            for a in data["annotations"]
            for s in a["segments_info"]
            if a["image_id"] == ann["image_id"] and s["category_id"] == ann["category_id"] and s["area"] == ann["area"]
        )
        assert src["bbox"] == pytest.approx(ann["bbox"], abs=1.0)


def test_perfect_predictions_give_ap_100(coco_instances):
    gt, maps, _ = coco_instances
    result = evaluate_mask_ap(ground_truth=gt, predictions=_perfect_predictions(gt, maps))
    assert result["AP"] == pytest.approx(100.0)
    assert result["AP50"] == pytest.approx(100.0)
    present = {
        gt_cat["name"]
        for gt_cat in gt["categories"]
        if any(a["category_id"] == gt_cat["id"] for a in gt["annotations"])
    }
    for name in present:
        assert result[f"AP-{name}"] == pytest.approx(100.0)
    absent = next(c["name"] for c in gt["categories"] if c["name"] not in present)
    assert math.isnan(result[f"AP-{absent}"])


def test_degraded_predictions(coco_instances):
    gt, maps, _ = coco_instances
    preds = _perfect_predictions(gt, maps)
    # wrong class on half of the predictions -> those become FPs of another class and their GT is missed
    degraded = [
        dict(p, category_id=(p["category_id"] % 80) + 1 if i % 2 else p["category_id"]) for i, p in enumerate(preds)
    ]
    valid_ids = {c["id"] for c in gt["categories"]}
    degraded = [p for p in degraded if p["category_id"] in valid_ids]
    result = evaluate_mask_ap(ground_truth=gt, predictions=degraded)
    assert 0.0 < result["AP"] < 100.0
    # eroded masks: IoU drops below the high thresholds -> AP50 stays 100 but AP75+ falls
    from pycocotools import mask as mask_util
    from scipy.ndimage import binary_erosion

    eroded = []
    for p in preds:
        m = mask_util.decode(p["segmentation"]).astype(bool)
        e = binary_erosion(m, iterations=2)
        if e.sum() == 0:
            continue
        eroded.extend(
            instance_predictions_to_coco(
                image_id=p["image_id"],
                masks=torch.from_numpy(e)[None],
                scores=torch.tensor([p["score"]]),
                category_ids=[p["category_id"]],
            )
        )
    result = evaluate_mask_ap(ground_truth=gt, predictions=eroded)
    assert result["AP"] < 100.0
    assert result["AP"] < result["AP50"]


def test_no_predictions(coco_instances):
    gt, _, _ = coco_instances
    assert evaluate_mask_ap(ground_truth=gt, predictions=[])["AP"] == 0.0


def test_results_table_and_json(tmp_path):
    results = {
        "ade20k_847": {"mIoU": 14.83},
        "pascal_context_459": {"mIoU": 18.2},
        "ade20k_150": {"PQ": 26.8, "AP": 16.8, "mIoU": 34.1},
        "pascal_context_59": {"mIoU": 58.4},
        "pascal_voc_20": {"mIoU": 95.4},
        "pascal_voc_21": {"mIoU": float("nan")},
        "coco_panoptic": {"PQ": 54.4, "AP": 44.6, "mIoU": 63.7},
    }
    text = format_results_table(results, model_name="FC-CLIP")
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("Model"))
    assert [c.strip() for c in header.split("|")] == ["Model", "A-847", "PC-459", "A-150", "PC-59", "PAS-20", "PAS-20b"]
    row = [c.strip() for c in lines[lines.index(header) + 2].split("|")]
    assert row == ["FC-CLIP", "14.8", "18.2", "34.1", "58.4", "95.4", "-"]
    coco = [c.strip() for c in next(line for line in lines if line.startswith("COCO")).split("|")]
    assert coco == ["COCO", "54.4", "44.6", "63.7"]
    city = [c.strip() for c in next(line for line in lines if line.startswith("Cityscapes")).split("|")]
    assert city == ["Cityscapes", "-", "-", "-"]
    path = write_results_json(tmp_path / "out" / "results.json", results, model_name="FC-CLIP")
    loaded = json.loads(path.read_text())
    assert loaded["model"] == "FC-CLIP"
    assert loaded["results"]["ade20k_150"]["PQ"] == 26.8
    assert loaded["results"]["pascal_voc_21"]["mIoU"] is None
