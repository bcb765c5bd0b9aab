"""The parity tool's decision-flip comparisons on synthetic arrays: a flip at float-rounding distance from the
threshold passes and is reported with its margin; a flip far from it, or a plain difference above tolerance,
fails; per-query rows (compare_rows) allow a stated number of moved queries per layer, never all of them."""

import numpy as np
import pytest

from ovseg_models.parity import Comparison, compare_argmax, compare_rows, compare_threshold, compare_values


def _mask_logits():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(2, 16, 16))
    ref[np.abs(ref) < 0.05] = 0.5  # keep every other element far from the threshold
    return ref


def test_flip_near_threshold_passes_and_is_reported():
    ref = _mask_logits()
    mine = ref.copy()
    ref[1, 3, 4], mine[1, 3, 4] = 3e-6, -1e-6  # float rounding decides mask > 0 here
    c = compare_threshold("instance_masks", mine, ref, threshold=0.0, epsilon=1e-5)
    assert c.ok
    assert len(c.flips) == 1 and c.flips[0].index == (1, 3, 4)
    assert c.flips[0].mine is False and c.flips[0].official is True
    assert abs(c.flips[0].margin - 3e-6) < 1e-12
    text = str(c)
    assert "1 decision flip(s), 0 beyond epsilon" in text and "margin 3.000e-06" in text and "(1, 3, 4)" in text


def test_flip_far_from_threshold_fails():
    ref = _mask_logits()
    mine = ref.copy()
    ref[0, 0, 0], mine[0, 0, 0] = 0.1, -0.1
    ref[1, 3, 4], mine[1, 3, 4] = 3e-6, -1e-6
    c = compare_threshold("instance_masks", mine, ref, threshold=0.0, epsilon=1e-5)
    assert not c.ok
    assert [f.index for f in c.bad_flips] == [(0, 0, 0)]
    assert "2 decision flip(s), 1 beyond epsilon" in str(c) and "FAIL" in str(c)


def test_value_difference_above_tolerance_fails_even_without_flips():
    ref = _mask_logits()
    mine = ref.copy()
    mine[0, 5, 5] += 2e-3 * np.sign(mine[0, 5, 5])  # no decision changes, but the scores differ
    c = compare_threshold("mask_logits", mine, ref, threshold=0.0, epsilon=1e-5, tolerance=1e-4)
    assert not c.flips and not c.ok
    assert not compare_values("aux_pred_logits", mine, ref, tolerance=1e-4).ok
    assert compare_values("aux_pred_logits", ref, ref.copy(), tolerance=0.0).ok


def test_argmax_flips():
    ref = np.array([[0.1, 0.9, 0.0], [0.5, 0.5 + 2e-6, 0.0], [0.3, 0.2, 0.1]])
    mine = ref.copy()
    mine[1, 0] += 3e-6  # class 0 now wins by 1e-6: a rounding flip
    c = compare_argmax("semantic", mine, ref, axis=-1, epsilon=1e-5)
    assert c.ok and len(c.flips) == 1 and c.flips[0].index == (1,)
    assert (c.flips[0].mine, c.flips[0].official) == (0, 1)
    mine[2, 1] = 0.6  # a real change of decision
    c = compare_argmax("semantic", mine, ref, axis=-1, epsilon=1e-5)
    assert not c.ok and [f.index for f in c.bad_flips] == [(2,)]


def test_plain_comparison_unchanged():
    assert Comparison("x", 1e-5, 1e-4).ok and not Comparison("x", float("nan"), 1e-4).ok
    assert not compare_threshold("m", np.zeros((2, 2)), np.zeros((3, 2)), epsilon=1e-5).ok  # shape mismatch


def _layers(rng):
    return rng.normal(size=(3, 50, 9)).astype(np.float32)  # [layers, queries, classes]


def test_compare_rows_accepts_one_moved_query_per_layer_and_reports_it():
    ref = _layers(np.random.default_rng(0))
    mine = ref + 1e-6
    mine[1, 7] += 3e-3  # one query's logits moved by a flipped mask pixel
    c = compare_rows("aux", mine, ref, tolerance=1e-4, max_outliers_per_group=1, outlier_cap=0.1)
    assert c.ok, str(c)
    assert [f.index for f in c.flips] == [(1, 7)]
    assert c.flips[0].margin == pytest.approx(3e-3, rel=1e-3)
    assert c.max_abs_diff < 1e-5  # the other rows are held to the tolerance


def test_compare_rows_fails_when_every_query_moves():
    ref = _layers(np.random.default_rng(1))
    c = compare_rows("aux", ref * 1.001, ref, tolerance=1e-4, max_outliers_per_group=2, outlier_cap=0.1)
    assert not c.ok
    assert "more than 2 rows" in c.note


def test_compare_rows_fails_on_too_many_or_too_large_outliers():
    ref = _layers(np.random.default_rng(2))
    mine = ref.copy()
    mine[0, [3, 4, 5]] += 1e-3
    assert not compare_rows("aux", mine, ref, tolerance=1e-4, max_outliers_per_group=2, outlier_cap=0.1).ok
    mine = ref.copy()
    mine[2, 9] += 0.5
    c = compare_rows("aux", mine, ref, tolerance=1e-4, max_outliers_per_group=2, outlier_cap=0.1)
    assert not c.ok and len(c.bad_flips) == 1
    assert not compare_rows("aux", ref[:, :10], ref, tolerance=1e-4, max_outliers_per_group=2, outlier_cap=0.1).ok
