"""Benchmark results table laid out like the FC-CLIP / CAT-Seg papers, and JSON output.

Input: ``results`` mapping a benchmark key to its metrics (percent), e.g.::

    {"ade20k_847": {"mIoU": 14.8}, "pascal_context_459": {"mIoU": 18.2}, "ade20k_150": {"PQ": 26.8, "AP": 16.8,
     "mIoU": 34.1}, "pascal_context_59": {"mIoU": 58.4}, "pascal_voc_20": {"mIoU": 95.4},
     "pascal_voc_21": {"mIoU": 81.8}, "coco_panoptic": {"PQ": 54.4, "AP": 44.6, "mIoU": 63.7}, ...}

Two tables are produced: open-vocabulary semantic mIoU (columns A-847, PC-459, A-150, PC-59, PAS-20, PAS-20b, as
in CAT-Seg) and panoptic (PQ, AP, mIoU for COCO, ADE20K, Cityscapes, Mapillary Vistas, as in FC-CLIP). Missing
values print as ``-``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path

__all__ = ["SEMANTIC_COLUMNS", "PANOPTIC_ROWS", "format_results_table", "write_results_json"]

# (column header, benchmark key)
SEMANTIC_COLUMNS: tuple[tuple[str, str], ...] = (
    ("A-847", "ade20k_847"),
    ("PC-459", "pascal_context_459"),
    ("A-150", "ade20k_150"),
    ("PC-59", "pascal_context_59"),
    ("PAS-20", "pascal_voc_20"),
    ("PAS-20b", "pascal_voc_21"),
)

# (row header, benchmark key)
PANOPTIC_ROWS: tuple[tuple[str, str], ...] = (
    ("COCO", "coco_panoptic"),
    ("ADE20K", "ade20k_150"),
    ("Cityscapes", "cityscapes"),
    ("Mapillary Vistas", "mapillary_vistas"),
)

_PANOPTIC_METRICS = ("PQ", "AP", "mIoU")


def _fmt(value) -> str:
    if value is None:
        return "-"
    value = float(value)
    return "-" if math.isnan(value) else f"{value:.1f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=False)]
        return " | ".join([first, *rest])

    sep = "-+-".join("-" * w for w in widths)
    return "\n".join([line(header), sep, *(line(r) for r in rows)])


def format_results_table(results: Mapping[str, Mapping[str, float]], *, model_name: str = "model") -> str:
    """Render the semantic and panoptic tables as plain text (see module docstring for ``results``)."""
    sem_header = ["Model", *[name for name, _ in SEMANTIC_COLUMNS]]
    sem_row = [model_name, *[_fmt(results.get(key, {}).get("mIoU")) for _, key in SEMANTIC_COLUMNS]]
    pan_header = ["Dataset", *_PANOPTIC_METRICS]
    pan_rows = [
        [name, *[_fmt(results.get(key, {}).get(metric)) for metric in _PANOPTIC_METRICS]] for name, key in PANOPTIC_ROWS
    ]
    return (
        "Open-vocabulary semantic segmentation (mIoU)\n"
        + _table(sem_header, [sem_row])
        + f"\n\nPanoptic / instance / semantic ({model_name})\n"
        + _table(pan_header, pan_rows)
    )


def _json_safe(value):
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):
        return _json_safe(value.item())
    return value


def write_results_json(path: str | Path, results: Mapping, *, model_name: str | None = None) -> Path:
    """Write ``{"model": ..., "results": results}`` as indented JSON (NaN -> null); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"model": model_name, "results": _json_safe(results)}
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    return path
