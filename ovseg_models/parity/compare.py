"""Comparisons of this project's outputs with the official ones, telling decision flips apart.

Some compared outputs are decisions: a binary mask ``logit > 0`` (instance masks, the masked-attention mask of the
decoder), an ``argmax`` over classes. Where the official and this project's scores straddle the decision boundary
by a float-rounding amount, the decision flips although the code is the same. Such flips are reported one by one
with their margin and accepted only within a stated ``epsilon`` of the boundary; any flip farther from it, and any
other difference, fails the comparison, so a real regression cannot hide among rounding flips.

- :func:`compare_values`: plain max-abs difference against a tolerance (no decisions).
- :func:`compare_threshold`: the decisions ``scores > threshold``; the margin of a flip is the larger distance of
  the two scores from the threshold.
- :func:`compare_argmax`: the decisions ``argmax(scores, axis)``; the margin of a flip is the larger of the two
  score gaps between the two chosen classes (how much either side would have to move to agree).
- :func:`compare_rows`: scores computed *from* a per-row decision (one query's class logits, pooled over its
  binarised mask): a rounding flip of one mask pixel moves that row only, so each group may hold a stated number
  of outlier rows, each reported and bounded; every other row is held to the tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import Comparison

__all__ = ["DecisionFlip", "compare_argmax", "compare_rows", "compare_threshold", "compare_values"]


@dataclass(frozen=True)
class DecisionFlip:
    """One element whose decision differs: its index, both decisions, both scores and the margin."""

    index: tuple[int, ...]
    mine: object
    official: object
    margin: float
    detail: str = ""

    def __str__(self) -> str:
        extra = f" {self.detail}" if self.detail else ""
        return f"at {self.index}: mine {self.mine} vs official {self.official}, margin {self.margin:.3e}{extra}"


def _as_float(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def _maxdiff(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        return float("inf")
    return float(np.abs(a - b).max()) if a.size else 0.0


def compare_values(name: str, mine, official, *, tolerance: float, note: str = "") -> Comparison:
    """Max-abs difference of two arrays against ``tolerance`` (shape mismatch: infinite)."""
    return Comparison(name, _maxdiff(_as_float(mine), _as_float(official)), tolerance, note)


def compare_threshold(
    name: str, mine, official, *, threshold: float = 0.0, epsilon: float, tolerance: float | None = None, note: str = ""
) -> Comparison:
    """Decisions ``scores > threshold`` of two score arrays of one shape.

    Every element whose decision differs is a :class:`DecisionFlip` with margin
    ``max(|mine - threshold|, |official - threshold|)``; the comparison passes only when every margin is
    ``<= epsilon``. With ``tolerance`` the scores themselves are also compared (max-abs difference), else only
    the decisions are.
    """
    a, b = _as_float(mine), _as_float(official)
    if a.shape != b.shape:
        return Comparison(name, float("inf"), 0.0, f"shape {a.shape} vs official {b.shape}")
    da, db = a > threshold, b > threshold
    flips = tuple(
        DecisionFlip(
            tuple(int(i) for i in idx),
            bool(da[idx]),
            bool(db[idx]),
            float(max(abs(a[idx] - threshold), abs(b[idx] - threshold))),
            f"(scores {a[idx]:.3e} / {b[idx]:.3e}, threshold {threshold:g})",
        )
        for idx in zip(*np.nonzero(da != db), strict=False)
    )
    diff = _maxdiff(a, b) if tolerance is not None else 0.0
    note = note or f"{int(da.sum())} of {da.size} above {threshold:g}"
    return Comparison(name, diff, tolerance if tolerance is not None else 0.0, note, flips, epsilon)


def compare_argmax(
    name: str, mine, official, *, axis: int = -1, epsilon: float, tolerance: float | None = None, note: str = ""
) -> Comparison:
    """Decisions ``argmax(scores, axis)`` of two score arrays of one shape.

    A flip's margin is ``max(mine[k_mine] - mine[k_official], official[k_official] - official[k_mine])``: both
    sides would need to move by at most that much to agree. Passes only when every margin is ``<= epsilon``
    (and, with ``tolerance``, the scores agree within it).
    """
    a, b = _as_float(mine), _as_float(official)
    if a.shape != b.shape:
        return Comparison(name, float("inf"), 0.0, f"shape {a.shape} vs official {b.shape}")
    ka, kb = np.argmax(a, axis=axis), np.argmax(b, axis=axis)
    am, bm = np.moveaxis(a, axis, -1), np.moveaxis(b, axis, -1)
    flips = []
    for idx in zip(*np.nonzero(ka != kb), strict=False):
        i, j = int(ka[idx]), int(kb[idx])
        margin = max(am[idx][i] - am[idx][j], bm[idx][j] - bm[idx][i])
        flips.append(DecisionFlip(tuple(int(v) for v in idx), i, j, float(margin)))
    diff = _maxdiff(a, b) if tolerance is not None else 0.0
    return Comparison(name, diff, tolerance if tolerance is not None else 0.0, note, tuple(flips), epsilon)


def compare_rows(
    name: str,
    mine,
    official,
    *,
    tolerance: float,
    max_outliers_per_group: int,
    outlier_cap: float,
    note: str = "",
) -> Comparison:
    """Scores ``[G, R, C]`` (groups of rows, e.g. decoder layers x queries x classes) whose rows each depend on
    their own hard decisions (a query's logits on its binarised mask and attention mask).

    A row whose max-abs difference exceeds ``tolerance`` is an outlier, reported as a :class:`DecisionFlip` at
    (group, row) with that difference as its margin. The comparison passes when every group has at most
    ``max_outliers_per_group`` outliers, each within ``outlier_cap``, and all other rows are within
    ``tolerance``: a wrong computation moves every row, a rounding flip of one decision moves one.
    """
    a, b = _as_float(mine), _as_float(official)
    if a.shape != b.shape or a.ndim < 2:
        return Comparison(name, float("inf"), 0.0, f"shape {a.shape} vs official {b.shape}")
    row_diff = np.abs(a - b).reshape(a.shape[0], a.shape[1], -1).max(-1)  # [G, R]
    outliers = row_diff > tolerance
    flips = tuple(
        DecisionFlip((int(g), int(r)), "row", "row", float(row_diff[g, r]), "(row max-abs difference)")
        for g, r in zip(*np.nonzero(outliers), strict=False)
    )
    inliers = np.where(outliers, 0.0, row_diff)
    diff = float(inliers.max()) if inliers.size else 0.0
    crowded = [int(g) for g in np.nonzero(outliers.sum(1) > max_outliers_per_group)[0]]
    if crowded:  # more rows moved than single decisions explain: the whole difference counts
        diff = float(row_diff.max())
        note = f"groups {crowded} have more than {max_outliers_per_group} rows beyond {tolerance:.0e}"
    else:
        note = note or f"at most {max_outliers_per_group} row(s) per group may differ, up to {outlier_cap:.0e}"
    return Comparison(name, diff, tolerance, note, flips, outlier_cap)
