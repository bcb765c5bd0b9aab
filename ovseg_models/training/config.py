"""YAML training configurations with Mask2Former-style inheritance.

A config file may name one or more parents under ``_base_`` (paths relative to the file); parents
are merged first, then the file itself (dicts merge recursively, anything else replaces). Command
line overrides ``key.sub=value`` are applied last (values parsed as YAML: ``train.max_steps=10``,
``task.data.root=/data``, ``train.precision=bf16``). A config name without a path
(``fcclip_convnext_large``) refers to the files shipped in ``ovseg_models/training/configs``.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "CONFIG_DIR",
    "list_configs",
    "resolve_config_path",
    "load_config",
    "merge",
    "apply_overrides",
    "get",
    "dump_config",
    "plain_config",
]

CONFIG_DIR = Path(__file__).resolve().parent / "configs"


def list_configs() -> list[str]:
    """Names of the shipped configs (one per paper table row; ``_base_*`` files excluded)."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml") if not p.name.startswith("_"))


def resolve_config_path(name: str | os.PathLike) -> Path:
    p = Path(name)
    if p.is_file():
        return p.resolve()
    for cand in (CONFIG_DIR / p, CONFIG_DIR / f"{p}.yaml", CONFIG_DIR / p.name, CONFIG_DIR / f"{p.name}.yaml"):
        if cand.is_file():
            return cand.resolve()
    raise FileNotFoundError(f"config {str(name)!r} not found (shipped configs: {', '.join(list_configs())})")


def merge(base: Mapping, update: Mapping) -> dict:
    """Recursive dict merge (``update`` wins); a key ``_delete_: true`` in ``update`` replaces wholesale."""
    out = copy.deepcopy(dict(base))
    for k, v in update.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) and not v.get("_delete_", False):
            out[k] = merge(out[k], v)
        else:
            v = copy.deepcopy(v)
            if isinstance(v, dict):
                v.pop("_delete_", None)
            out[k] = v
    return out


def _load(path: Path, stack: tuple[Path, ...]) -> dict:
    if path in stack:
        raise ValueError(f"circular _base_ chain: {' -> '.join(str(p) for p in (*stack, path))}")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a config must be a mapping")
    bases = data.pop("_base_", None)
    if bases is None:
        return data
    merged: dict = {}
    for b in [bases] if isinstance(bases, str) else list(bases):
        merged = merge(merged, _load((path.parent / b).resolve(), (*stack, path)))
    return merge(merged, data)


def apply_overrides(cfg: Mapping, overrides: Sequence[str] | None) -> dict:
    out = copy.deepcopy(dict(cfg))
    for item in overrides or ():
        if "=" not in item:
            raise ValueError(f"override {item!r} is not of the form key.sub=value")
        key, raw = item.split("=", 1)
        value = yaml.safe_load(raw) if raw.strip() else ""
        node = out
        parts = key.strip().split(".")
        for p in parts[:-1]:
            if not isinstance(node.get(p), dict):
                node[p] = {}
            node = node[p]
        node[parts[-1]] = value
    return out


def load_config(name: str | os.PathLike, overrides: Sequence[str] | None = None) -> dict:
    """Load a config (file path or shipped name), resolve ``_base_`` and apply overrides."""
    path = resolve_config_path(name)
    cfg = _load(path, ())
    cfg = apply_overrides(cfg, overrides)
    cfg.setdefault("metadata", {})
    cfg["metadata"].setdefault("config_name", path.stem)
    return cfg


def get(cfg: Mapping, dotted: str, default: Any = None) -> Any:
    node: Any = cfg
    for p in dotted.split("."):
        if not isinstance(node, Mapping) or p not in node:
            return default
        node = node[p]
    return node


def plain_config(obj: Any) -> Any:
    """The config as YAML-safe plain data (dataclasses -> mappings, tuples -> lists, others -> repr)."""
    import dataclasses

    if isinstance(obj, Mapping):
        return {str(k): plain_config(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain_config(v) for v in obj]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return plain_config(dataclasses.asdict(obj))
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    return repr(obj)


def dump_config(cfg: Mapping) -> str:
    """YAML text of a config (dataclass values, e.g. a model config object, become mappings)."""
    return yaml.safe_dump(plain_config(cfg), sort_keys=False, default_flow_style=None)
