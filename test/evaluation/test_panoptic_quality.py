"""Panoptic quality vs an independent brute-force panopticapi re-implementation, torchmetrics, and real COCO GT."""

import numpy as np
import pytest
import torch
from torchmetrics.detection import PanopticQuality

from ovseg_models.evaluation.panoptic import PanopticQualityMetric, id2rgb, pq_average, pq_single_image, rgb2id


# ---------------------------------------------------------------- brute force (mask loops, no joint histogram)
def brute_force_stats(gt_ids, gt_segments, pred_ids, pred_segments, stats):
    """Straight reading of panopticapi pq_compute_single_core (one image), with boolean masks; adds to ``stats``."""
    void = gt_ids == 0
    gt_area = {s["id"]: s.get("area", int((gt_ids == s["id"]).sum())) for s in gt_segments}
    pred_area = {s["id"]: int((pred_ids == s["id"]).sum()) for s in pred_segments}
    matched_gt, matched_pred = set(), set()
    for g in gt_segments:
        if g.get("iscrowd", 0):
            continue
        gmask = gt_ids == g["id"]
        for p in pred_segments:
            if p["category_id"] != g["category_id"]:
                continue
            pmask = pred_ids == p["id"]
            inter = int((gmask & pmask).sum())
            if inter == 0:
                continue
            union = pred_area[p["id"]] + gt_area[g["id"]] - inter - int((pmask & void).sum())
            if inter / union > 0.5:
                stats[g["category_id"]][0] += inter / union
                stats[g["category_id"]][1] += 1
                matched_gt.add(g["id"])
                matched_pred.add(p["id"])
    crowd = {}
    for g in gt_segments:
        if g["id"] in matched_gt:
            continue
        if g.get("iscrowd", 0):
            crowd[g["category_id"]] = g["id"]  # last crowd segment of a category wins, as in panopticapi
            continue
        stats[g["category_id"]][3] += 1
    for p in pred_segments:
        if p["id"] in matched_pred:
            continue
        pmask = pred_ids == p["id"]
        ignored = int((pmask & void).sum())
        if p["category_id"] in crowd:
            ignored += int((pmask & (gt_ids == crowd[p["category_id"]])).sum())
        if ignored / pred_area[p["id"]] > 0.5:
            continue
        stats[p["category_id"]][2] += 1


def brute_force_average(stats, categories):
    """panopticapi pq_average over accumulated [iou, tp, fp, fn] per category."""
    out = {}
    for name, sel in (("All", None), ("Things", True), ("Stuff", False)):
        pqs, sqs, rqs = [], [], []
        for c, isthing in categories.items():
            if sel is not None and isthing != sel:
                continue
            iou, tp, fp, fn = stats[c]
            if tp + fp + fn == 0:
                continue
            pqs.append(iou / (tp + 0.5 * fp + 0.5 * fn))
            sqs.append(iou / tp if tp else 0.0)
            rqs.append(tp / (tp + 0.5 * fp + 0.5 * fn))
        out[name] = (np.mean(pqs), np.mean(sqs), np.mean(rqs), len(pqs)) if pqs else (np.nan, np.nan, np.nan, 0)
    return out


def random_panoptic(rng, h, w, categories, n_segments, with_crowd):
    """Random blocky segment map with segments_info; some pixels void (0)."""
    cats = list(categories)
    ids = np.zeros((h, w), dtype=np.int64)
    segments = []
    next_id = 1
    for _ in range(n_segments):
        y0, x0 = rng.integers(0, h), rng.integers(0, w)
        y1, x1 = y0 + rng.integers(2, h // 2 + 3), x0 + rng.integers(2, w // 2 + 3)
        ids[y0:y1, x0:x1] = next_id
        segments.append(
            {"id": next_id, "category_id": int(rng.choice(cats)), "iscrowd": int(with_crowd and rng.random() < 0.15)}
        )
        next_id += 1
    present = set(np.unique(ids).tolist())
    return ids, [s for s in segments if s["id"] in present]


def perturb(rng, gt_ids, gt_segments, categories):
    """Prediction derived from the ground truth: shifted, some relabelled, some holes, random extra blobs."""
    shift = rng.integers(-2, 3, 2)
    pred = np.roll(gt_ids, tuple(shift), axis=(0, 1)).copy()
    segments = []
    offset = 1000
    for s in gt_segments:
        cat = s["category_id"] if rng.random() < 0.8 else int(rng.choice(list(categories)))
        segments.append({"id": s["id"] + offset, "category_id": cat})
    pred = np.where(pred > 0, pred + offset, 0)
    h, w = pred.shape
    for k in range(rng.integers(0, 4)):
        y0, x0 = rng.integers(0, h), rng.integers(0, w)
        pred[y0 : y0 + rng.integers(2, 10), x0 : x0 + rng.integers(2, 10)] = 5000 + k
        segments.append({"id": 5000 + k, "category_id": int(rng.choice(list(categories)))})
    present = set(np.unique(pred).tolist())
    return pred, [s for s in segments if s["id"] in present]


CATEGORIES = {1: True, 2: True, 3: True, 10: False, 11: False, 12: False}


@pytest.mark.parametrize("seed", range(12))
def test_against_brute_force(seed):
    rng = np.random.default_rng(seed)
    metric = PanopticQualityMetric(categories=CATEGORIES)
    images = []
    for _ in range(3):
        gt, gt_segs = random_panoptic(rng, 24, 32, CATEGORIES, n_segments=8, with_crowd=True)
        pred, pred_segs = perturb(rng, gt, gt_segs, CATEGORIES)
        metric.update(gt_ids=gt, gt_segments=gt_segs, pred_ids=pred, pred_segments=pred_segs)
        images.append((gt, gt_segs, pred, pred_segs))
    ours = metric.compute()
    stats = {c: [0.0, 0, 0, 0] for c in CATEGORIES}  # iou, tp, fp, fn
    for gt, gt_segs, pred, pred_segs in images:
        brute_force_stats(gt, gt_segs, pred, pred_segs, stats)
    ref = brute_force_average(stats, CATEGORIES)
    for name in ("All", "Things", "Stuff"):
        pq, sq, rq, n = ref[name]
        assert ours[name]["n"] == n
        if n:
            assert ours[name]["pq"] == pytest.approx(pq)
            assert ours[name]["sq"] == pytest.approx(sq)
            assert ours[name]["rq"] == pytest.approx(rq)


def _to_torchmetrics_input(ids, segments, categories):
    cat_map = np.full(ids.shape, 99, dtype=np.int64)  # 99: not a known category -> void
    inst_map = np.zeros(ids.shape, dtype=np.int64)
    for s in segments:
        mask = ids == s["id"]
        cat_map[mask] = s["category_id"]
        inst_map[mask] = 0 if not categories[s["category_id"]] else s["id"]
    return torch.from_numpy(np.stack([cat_map, inst_map], axis=-1))[None]


def _merge_stuff(ids, segments, categories):
    """torchmetrics treats all pixels of a stuff category as one segment: build the same in COCO form."""
    out = ids.copy()
    merged, seen = [], {}
    for s in segments:
        if categories[s["category_id"]]:
            merged.append(s)
            continue
        if s["category_id"] not in seen:
            seen[s["category_id"]] = s["id"]
            merged.append(s)
        out[ids == s["id"]] = seen[s["category_id"]]
    return out, merged


@pytest.mark.parametrize("seed", range(8))
def test_against_torchmetrics(seed):
    rng = np.random.default_rng(100 + seed)
    things = {c for c, t in CATEGORIES.items() if t}
    stuffs = {c for c, t in CATEGORIES.items() if not t}
    tm = PanopticQuality(things=things, stuffs=stuffs, allow_unknown_preds_category=True, return_sq_and_rq=True)
    ours = PanopticQualityMetric(categories=CATEGORIES)
    for _ in range(2):
        gt, gt_segs = random_panoptic(rng, 24, 32, CATEGORIES, n_segments=8, with_crowd=False)
        pred, pred_segs = perturb(rng, gt, gt_segs, CATEGORIES)
        # torchmetrics handles unlabeled *prediction* pixels differently from panopticapi (it drops them from the
        # ground-truth area): compare where the semantics agree, i.e. with fully labeled predictions
        pred = np.where(pred == 0, 9999, pred)
        pred_segs = pred_segs + [{"id": 9999, "category_id": 11}]
        gt, gt_segs = _merge_stuff(gt, gt_segs, CATEGORIES)
        pred, pred_segs = _merge_stuff(pred, pred_segs, CATEGORIES)
        ours.update(gt_ids=gt, gt_segments=gt_segs, pred_ids=pred, pred_segments=pred_segs)
        tm.update(_to_torchmetrics_input(pred, pred_segs, CATEGORIES), _to_torchmetrics_input(gt, gt_segs, CATEGORIES))
    pq, sq, rq = (float(v) for v in tm.compute())
    result = ours.compute()["All"]
    assert result["pq"] == pytest.approx(pq, abs=1e-6)
    assert result["sq"] == pytest.approx(sq, abs=1e-6)
    assert result["rq"] == pytest.approx(rq, abs=1e-6)


def test_hand_computed_rules():
    gt = np.zeros((10, 10), dtype=np.int64)
    gt[:, :5] = 1  # thing cat 1, 50 px
    gt[:, 5:8] = 2  # crowd of cat 1, 30 px; columns 8-9 void
    gt_segs = [{"id": 1, "category_id": 1}, {"id": 2, "category_id": 1, "iscrowd": 1}]
    pred = np.zeros((10, 10), dtype=np.int64)
    pred[:, :4] = 7  # 40 px inside gt 1 -> IoU 40/50
    pred[:, 6:9] = 8  # 20 px on crowd + 10 on void -> ignored, not FP
    pred[:, 4] = 9  # cat 2 on gt 1 -> FP of cat 2
    pred_segs = [{"id": 7, "category_id": 1}, {"id": 8, "category_id": 1}, {"id": 9, "category_id": 2}]
    stats = pq_single_image(gt_ids=gt, gt_segments=gt_segs, pred_ids=pred, pred_segments=pred_segs)
    assert stats[1].tp == 1 and stats[1].fp == 0 and stats[1].fn == 0
    assert stats[1].iou == pytest.approx(0.8)
    assert stats[2].fp == 1 and stats[2].tp == 0
    avg, per_class = pq_average(stats, categories={1: True, 2: True})
    assert per_class[1]["pq"] == pytest.approx(0.8) and per_class[2]["pq"] == 0.0
    assert avg["pq"] == pytest.approx(0.4) and avg["n"] == 2
    # void overlap is removed from the union: a prediction spilling onto void keeps IoU 1
    pred2 = np.where(gt == 0, 7, pred)
    pred2[:, :5] = 7
    pred2[:, 5:8] = 0
    stats = pq_single_image(gt_ids=gt, gt_segments=gt_segs, pred_ids=pred2, pred_segments=[pred_segs[0]])
    assert stats[1].iou == pytest.approx(1.0)


def test_sanity_errors():
    gt = np.ones((4, 4), dtype=np.int64)
    segs = [{"id": 1, "category_id": 1}]
    with pytest.raises(KeyError):
        pq_single_image(gt_ids=gt, gt_segments=segs, pred_ids=gt * 3, pred_segments=segs)
    with pytest.raises(KeyError):
        pq_single_image(gt_ids=gt, gt_segments=segs, pred_ids=gt, pred_segments=segs + [{"id": 5, "category_id": 1}])
    with pytest.raises(KeyError):
        pq_single_image(
            gt_ids=gt, gt_segments=segs, pred_ids=gt, pred_segments=[{"id": 1, "category_id": 9}], category_ids=[1]
        )


def test_rgb_roundtrip():
    ids = np.random.default_rng(0).integers(0, 256**3, (5, 7))
    assert np.array_equal(rgb2id(id2rgb(ids)), ids)


# ---------------------------------------------------------------- real COCO panoptic samples
@pytest.fixture
def coco(coco_panoptic_sample):
    data, cats, maps = coco_panoptic_sample
    return data, {c["id"]: bool(c["isthing"]) for c in cats}, maps


def test_coco_gt_vs_itself_is_perfect(coco):
    data, categories, maps = coco
    metric = PanopticQualityMetric(categories=categories)
    for ann in data["annotations"]:
        rgb = maps[ann["image_id"]]
        # json areas are consistent with the PNGs
        ids = rgb2id(rgb)
        for s in ann["segments_info"]:
            assert s["area"] == int((ids == s["id"]).sum())
        pred_segs = [{"id": s["id"], "category_id": s["category_id"]} for s in ann["segments_info"]]
        metric.update(gt_ids=rgb, gt_segments=ann["segments_info"], pred_ids=rgb, pred_segments=pred_segs)
    result = metric.compute()
    for name in ("All", "Things", "Stuff"):
        assert result[name]["pq"] == pytest.approx(1.0)
        assert result[name]["sq"] == pytest.approx(1.0)
        assert result[name]["rq"] == pytest.approx(1.0)
    n_present = len({s["category_id"] for a in data["annotations"] for s in a["segments_info"] if not s["iscrowd"]})
    assert result["All"]["n"] == n_present


def test_coco_perturbed_prediction_expected_numbers(coco):
    data, categories, maps = coco
    ann = data["annotations"][0]
    ids = rgb2id(maps[ann["image_id"]])
    segs = [s for s in ann["segments_info"]]
    non_crowd = [s for s in segs if not s["iscrowd"]]
    # drop the largest thing segment (-> FN) and relabel the largest stuff segment to another stuff class (-> FN + FP)
    thing = max((s for s in non_crowd if categories[s["category_id"]]), key=lambda s: s["area"])
    stuff = max((s for s in non_crowd if not categories[s["category_id"]]), key=lambda s: s["area"])
    present = {s["category_id"] for s in segs}
    new_stuff_cat = next(c for c, t in categories.items() if not t and c not in present)
    pred = np.where(ids == thing["id"], 0, ids)
    pred_segs = []
    for s in segs:
        if s["id"] == thing["id"]:
            continue
        cat = new_stuff_cat if s["id"] == stuff["id"] else s["category_id"]
        pred_segs.append({"id": s["id"], "category_id": cat})
    metric = PanopticQualityMetric(categories=categories)
    metric.update(gt_ids=ids, gt_segments=segs, pred_ids=pred, pred_segments=pred_segs)
    result = metric.compute()

    # expected per-category PQ: every untouched category is perfect
    per_cat = {}
    for s in non_crowd:
        per_cat.setdefault(s["category_id"], []).append(s)
    expected = {}
    for cat, members in per_cat.items():
        tp = len(members) - sum(m["id"] in (thing["id"], stuff["id"]) for m in members)
        fn = len(members) - tp
        expected[cat] = tp / (tp + 0.5 * fn)
    expected[new_stuff_cat] = 0.0  # one FP only
    for cat, value in expected.items():
        assert result["per_class"][cat]["pq"] == pytest.approx(value), cat
    assert result["All"]["pq"] == pytest.approx(np.mean(list(expected.values())))
    assert result["All"]["n"] == len(expected)
    assert result["All"]["pq"] < 1.0
