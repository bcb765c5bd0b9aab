"""Matcher, point sampling and losses against brute-force computations on small cases."""

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ovseg_models.training.catseg_loss import per_pixel_bce_loss
from ovseg_models.training.criterion import SetCriterion, dice_loss, sigmoid_ce_loss
from ovseg_models.training.matcher import HungarianMatcher, match_cost_matrix
from ovseg_models.training.point_sampling import get_uncertain_point_coords_with_randomness, point_sample


def _bce(x, t):
    return -(t * math.log(1 / (1 + math.exp(-x))) + (1 - t) * math.log(1 - 1 / (1 + math.exp(-x))))


def _sig(x):
    return 1 / (1 + math.exp(-x))


def _pair_costs(logits, pred, labels, tgt, wc, wm, wd):
    """Brute-force cost of every (query, target) pair with dense pixels (pred and tgt same size)."""
    q, m = pred.shape[0], tgt.shape[0]
    probs = torch.softmax(logits.double(), -1)
    c = np.zeros((q, m))
    for i in range(q):
        for j in range(m):
            xs = pred[i].flatten().tolist()
            ts = tgt[j].flatten().tolist()
            bce = sum(_bce(x, t) for x, t in zip(xs, ts, strict=False)) / len(xs)
            s = [_sig(x) for x in xs]
            dice = 1 - (2 * sum(a * b for a, b in zip(s, ts, strict=False)) + 1) / (sum(s) + sum(ts) + 1)
            c[i, j] = wm * bce + wd * dice - wc * float(probs[i, labels[j]])
    return c


def test_cost_matrix_matches_brute_force():
    g = torch.Generator().manual_seed(0)
    q, m, k, h, w = 5, 3, 4, 6, 7
    logits = torch.randn(q, k + 1, generator=g)
    pred = torch.randn(q, h, w, generator=g) * 3
    tgt = (torch.rand(m, h, w, generator=g) > 0.5).float()
    labels = torch.tensor([2, 0, 2])
    cost = match_cost_matrix(logits, pred, labels, tgt, cost_class=2.0, cost_mask=5.0, cost_dice=5.0, num_points=0)
    ref = _pair_costs(logits, pred, labels, tgt, 2.0, 5.0, 5.0)
    np.testing.assert_allclose(cost.numpy(), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("q,m", [(4, 3), (5, 5), (6, 2)])
def test_hungarian_assignment_is_the_brute_force_optimum(q, m):
    g = torch.Generator().manual_seed(q * 10 + m)
    k, h, w = 3, 5, 5
    outputs = {"pred_logits": torch.randn(1, q, k + 1, generator=g), "pred_masks": torch.randn(1, q, h, w, generator=g)}
    targets = [
        {"labels": torch.randint(0, k, (m,), generator=g), "masks": (torch.rand(m, h, w, generator=g) > 0.6).float()}
    ]
    ((src, tgt),) = HungarianMatcher(2.0, 5.0, 5.0, num_points=0)(outputs, targets)
    cost = _pair_costs(
        outputs["pred_logits"][0],
        outputs["pred_masks"][0],
        targets[0]["labels"].tolist(),
        targets[0]["masks"],
        2.0,
        5.0,
        5.0,
    )
    best = min(sum(cost[perm[j], j] for j in range(m)) for perm in itertools.permutations(range(q), m))
    assert len(src) == len(tgt) == m
    assert sorted(tgt.tolist()) == list(range(m))
    assert sum(cost[i, j] for i, j in zip(src.tolist(), tgt.tolist(), strict=False)) == pytest.approx(best, rel=1e-9)


def test_point_sample_is_bilinear_with_half_pixel_centres():
    x = torch.arange(12.0).view(1, 1, 3, 4)
    # pixel centres are at ((j + 0.5) / W, (i + 0.5) / H); halfway between pixel (1,1) and (1,2)
    coords = torch.tensor([[[1.5 / 4, 1.5 / 3], [2.0 / 4, 1.5 / 3], [2.0 / 4, 2.0 / 3]]])
    out = point_sample(x, coords, align_corners=False)[0, 0]
    assert out.tolist() == pytest.approx([5.0, 5.5, (5 + 6 + 9 + 10) / 4])


def test_importance_sampling_keeps_the_most_uncertain_points():
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(2, 1, 8, 8, generator=g) * 4
    n, over, imp = 20, 3.0, 0.75
    coords = get_uncertain_point_coords_with_randomness(
        logits, lambda l: -l.abs(), n, over, imp, generator=torch.Generator().manual_seed(7)
    )
    assert coords.shape == (2, n, 2)
    # replay the draw: the kept points are the 15 smallest |logit| among the 60 candidates
    gen = torch.Generator().manual_seed(7)
    cand = torch.rand((2, 60, 2), generator=gen)
    vals = point_sample(logits, cand, align_corners=False)[:, 0].abs()
    for b in range(2):
        kept = point_sample(logits[b : b + 1], coords[b : b + 1, :15], align_corners=False)[0, 0].abs()
        assert torch.allclose(kept.sort().values, vals[b].sort().values[:15])
    assert ((coords >= 0) & (coords <= 1)).all()


def test_mask_losses_match_loops():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 10, generator=g)
    t = (torch.rand(3, 10, generator=g) > 0.5).float()
    bce = (
        sum(
            sum(_bce(a, b) for a, b in zip(xr.tolist(), tr.tolist(), strict=False)) / 10
            for xr, tr in zip(x, t, strict=False)
        )
        / 2.5
    )
    assert float(sigmoid_ce_loss(x, t, 2.5)) == pytest.approx(bce, rel=1e-5)
    d = 0.0
    for xr, tr in zip(x.tolist(), t.tolist(), strict=False):
        s = [_sig(v) for v in xr]
        d += 1 - (2 * sum(a * b for a, b in zip(s, tr, strict=False)) + 1) / (sum(s) + sum(tr) + 1)
    assert float(dice_loss(x, t, 2.5)) == pytest.approx(d / 2.5, rel=1e-5)


def _brute_force_layer_loss(logits, pred, labels, tgt, eos, wc, wm, wd, num_masks):
    """Match by enumeration, then class CE (weighted mean) + mask BCE + dice per the recipe."""
    q, m = pred.shape[0], tgt.shape[0]
    cost = _pair_costs(logits, pred, labels, tgt, wc, wm, wd)
    perm = min(itertools.permutations(range(q), m), key=lambda p: sum(cost[p[j], j] for j in range(m)))
    cls = [len(logits[0]) - 1] * q
    for j, i in enumerate(perm):
        cls[i] = labels[j]
    num, den = 0.0, 0.0
    for i in range(q):
        lp = torch.log_softmax(logits[i].double(), -1)
        wgt = eos if cls[i] == len(logits[0]) - 1 else 1.0
        num += -wgt * float(lp[cls[i]])
        den += wgt
    bce = dice = 0.0
    for j, i in enumerate(perm):
        xs, ts = pred[i].flatten().tolist(), tgt[j].flatten().tolist()
        bce += sum(_bce(a, b) for a, b in zip(xs, ts, strict=False)) / len(xs)
        s = [_sig(a) for a in xs]
        dice += 1 - (2 * sum(a * b for a, b in zip(s, ts, strict=False)) + 1) / (sum(s) + sum(ts) + 1)
    return (num, den), wm * bce / num_masks, wd * dice / num_masks


@pytest.mark.parametrize("ce_normalization", ["global", "local"])
def test_set_criterion_with_deep_supervision_matches_brute_force(ce_normalization):
    g = torch.Generator().manual_seed(5)
    b, q, k, h, w = 2, 4, 3, 5, 6

    def out():
        return {
            "pred_logits": torch.randn(b, q, k + 1, generator=g),
            "pred_masks": torch.randn(b, q, h, w, generator=g),
        }

    outputs = out()
    outputs["aux_outputs"] = [out(), out()]
    targets = [
        {"labels": torch.tensor([0, 2]), "masks": (torch.rand(2, h, w, generator=g) > 0.5).float()},
        {"labels": torch.tensor([1, 1, 2]), "masks": (torch.rand(3, h, w, generator=g) > 0.5).float()},
    ]
    crit = SetCriterion(k, num_points=0, ce_normalization=ce_normalization)
    losses = crit(outputs, targets)
    assert set(losses) == {f"loss_{n}{s}" for n in ("ce", "mask", "dice") for s in ("", "_0", "_1")}
    num_masks = 5.0
    for suffix, layer in [("", outputs), ("_0", outputs["aux_outputs"][0]), ("_1", outputs["aux_outputs"][1])]:
        ce_parts, bce, dice = [], 0.0, 0.0
        for i in range(b):
            c, m_, d_ = _brute_force_layer_loss(
                layer["pred_logits"][i],
                layer["pred_masks"][i],
                targets[i]["labels"].tolist(),
                targets[i]["masks"],
                0.1,
                2.0,
                5.0,
                5.0,
                num_masks,
            )
            ce_parts.append(c)
            bce += m_
            dice += d_
        assert float(losses["loss_mask" + suffix]) == pytest.approx(bce, rel=1e-5)
        assert float(losses["loss_dice" + suffix]) == pytest.approx(dice, rel=1e-5)
        # class loss: one weighted mean over all queries of the batch (global == local on one process)
        ce_joint = sum(p[0] for p in ce_parts) / sum(p[1] for p in ce_parts)
        assert float(losses["loss_ce" + suffix]) == pytest.approx(2.0 * ce_joint, rel=1e-5)


def test_point_sampled_loss_approximates_dense_loss():
    g = torch.Generator().manual_seed(11)
    b, q, k, h, w = 1, 3, 2, 32, 32
    outputs = {
        "pred_logits": torch.randn(b, q, k + 1, generator=g),
        "pred_masks": F.interpolate(torch.randn(b, q, 4, 4, generator=g) * 3, size=(h, w), mode="bilinear"),
    }
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    targets = [{"labels": torch.tensor([0, 1]), "masks": torch.stack([(xx < 16).float(), (yy < 10).float()])}]
    dense = SetCriterion(k, num_points=0, deep_supervision=False)(outputs, targets)
    sampled = SetCriterion(k, num_points=20000, importance_sample_ratio=0.0, deep_supervision=False)(
        outputs, targets, [torch.Generator().manual_seed(0)]
    )
    for key in ("loss_mask", "loss_dice", "loss_ce"):
        assert float(sampled[key]) == pytest.approx(float(dense[key]), rel=0.05), key


def test_criterion_is_reproducible_with_per_image_generators_and_handles_empty_targets():
    g = torch.Generator().manual_seed(2)
    outputs = {
        "pred_logits": torch.randn(2, 4, 4, generator=g, requires_grad=True),
        "pred_masks": torch.randn(2, 4, 8, 8, generator=g, requires_grad=True),
    }
    targets = [
        {"labels": torch.tensor([1]), "masks": (torch.rand(1, 32, 32, generator=g) > 0.5).float()},
        {"labels": torch.zeros(0, dtype=torch.long), "masks": torch.zeros(0, 32, 32)},
    ]
    crit = SetCriterion(3, num_points=64)
    a = crit(outputs, targets, [torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)])
    b = crit(outputs, targets, [torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)])
    assert all(torch.equal(a[k], b[k]) for k in a)
    sum(a.values()).backward()
    assert outputs["pred_masks"].grad is not None
    none = crit(outputs, [targets[1], targets[1]])
    assert float(none["loss_mask"].detach()) == 0.0 and float(none["loss_dice"].detach()) == 0.0


@pytest.mark.parametrize("ignore", ["official", "exclude"])
def test_catseg_bce_matches_loops(ignore):
    g = torch.Generator().manual_seed(4)
    logits = torch.randn(2, 3, 4, 4, generator=g)
    labels = torch.randint(0, 3, (2, 4, 4), generator=g)
    labels[0, 0, :2] = 255
    loss = per_pixel_bce_loss(logits, labels, ignore=ignore)
    total, count = 0.0, 0
    for bi in range(2):
        for y in range(4):
            for x in range(4):
                lab = int(labels[bi, y, x])
                if lab == 255 and ignore == "exclude":
                    continue
                for c in range(3):
                    total += _bce(float(logits[bi, c, y, x]), 1.0 if c == lab else 0.0)
                    count += 1
    assert float(loss) == pytest.approx(total / count, rel=1e-5)
    # logits at a lower resolution are upsampled bilinearly to the labels
    low = per_pixel_bce_loss(logits[:, :, ::2, ::2], labels, ignore=ignore)
    up = F.interpolate(logits[:, :, ::2, ::2], size=(4, 4), mode="bilinear", align_corners=False)
    assert float(low) == pytest.approx(float(per_pixel_bce_loss(up, labels, ignore=ignore)), rel=1e-6)
