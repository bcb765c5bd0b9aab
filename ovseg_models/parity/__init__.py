"""Parity with the official FC-CLIP and CAT-Seg code on the shared reference cases.

``python -m ovseg_models.parity CASE.npz [--manifest M]`` rebuilds the official-format
state_dict from the case's manifest (name-seeded weights, sha256-checked), loads it through
this project's checkpoint converter, runs this project's code on the case's inputs and prints
the maximum absolute difference of every compared output, one per line. It exits non-zero when
any comparison is outside tolerance.

Each model family registers a runner in :data:`RUNNERS`, keyed by the case file name's prefix.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "Comparison",
    "DecisionFlip",
    "compare_argmax",
    "compare_rows",
    "compare_threshold",
    "compare_values",
    "default_manifest",
    "run_case",
]


@dataclass(frozen=True)
class Comparison:
    """One compared output: ``max_abs_diff`` against ``tolerance`` (0 means exact).

    For an output decided by a hard threshold or an argmax (see :mod:`.compare`), ``flips`` lists every element
    whose decision differs from the official one, each with its margin (how far the scores are from the decision
    boundary); such a comparison is ok only when every flip lies within ``flip_epsilon`` of the boundary (float
    rounding decided it) and nothing else differs.
    """

    name: str
    max_abs_diff: float
    tolerance: float
    note: str = ""
    flips: tuple = ()
    flip_epsilon: float | None = None

    @property
    def bad_flips(self) -> tuple:
        """The flips too far from the decision boundary to be float rounding (all of them without an epsilon)."""
        eps = self.flip_epsilon
        return tuple(f for f in self.flips if eps is None or not f.margin <= eps)

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= self.tolerance and not self.bad_flips  # NaN compares False: never ok

    def __str__(self) -> str:
        status = "ok" if self.ok else "FAIL"
        note = f"  ({self.note})" if self.note else ""
        text = f"{self.name}: max_abs_diff={self.max_abs_diff:.3e} tol={self.tolerance:.0e} {status}{note}"
        if self.flips:
            eps = "none" if self.flip_epsilon is None else f"{self.flip_epsilon:.0e}"
            text += f"\n  {len(self.flips)} decision flip(s), {len(self.bad_flips)} beyond epsilon {eps}:"
            text += "".join(f"\n    {f}" for f in self.flips[:_MAX_FLIPS_SHOWN])
            if len(self.flips) > _MAX_FLIPS_SHOWN:
                text += f"\n    ... {len(self.flips) - _MAX_FLIPS_SHOWN} more"
        return text


_MAX_FLIPS_SHOWN = 20


#: case-file prefix -> "module:function" taking (case_path, manifest_path) -> list[Comparison]
def _runners() -> dict[str, str]:
    from ..families import get_family, list_families

    return {p: r for m in list_families() for p, r in get_family(m).parity_runners.items()}


def __getattr__(name: str):
    if name == "RUNNERS":  # from each family's descriptor
        return _runners()
    raise AttributeError(name)


#: case-file prefix -> manifest file name, for cases whose name does not say it directly
_MANIFESTS = {
    "fcclip_rn50": "fcclip_rn50.json.gz",
    "fcclip_convnext_large": "fcclip_convnext_large_d_320.json.gz",
    "catseg_vitb16": "catseg_vitb16_384.json.gz",
    "catseg_vitl14": "catseg_vitl14_336.json.gz",
}


def default_manifest(case: Path) -> Path | None:
    """The manifest in the ``manifests/`` folder beside the case's folder, matched by name."""
    folder = case.resolve().parent.parent / "manifests"
    for prefix, name in _MANIFESTS.items():
        if case.name.startswith(prefix):
            return folder / name
    return None


def run_case(case: str | Path, manifest: str | Path | None = None, *, backend: str = "torch") -> list:
    """Run one case and return its comparisons (see :class:`Comparison`). ``backend="onnxruntime"``
    (runners that support it): the exported network too, against PyTorch and the official outputs."""
    case = Path(case)
    if not case.is_file():
        raise FileNotFoundError(f"case file not found: {case}")
    runners = _runners()
    for prefix in runners:
        if case.name.startswith(prefix):
            break
    else:
        raise ValueError(f"no parity runner for {case.name}; known prefixes: {sorted(runners)}")
    manifest = Path(manifest) if manifest is not None else default_manifest(case)
    module, func = runners[prefix].split(":")
    runner = getattr(importlib.import_module(module), func)
    if backend == "torch":
        return runner(case, manifest)
    if "backend" not in inspect.signature(runner).parameters:
        raise ValueError(f"the parity runner for {case.name} has no {backend!r} backend")
    return runner(case, manifest, backend=backend)


from .compare import DecisionFlip, compare_argmax, compare_rows, compare_threshold, compare_values  # noqa: E402
