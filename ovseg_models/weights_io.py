"""Reading and strictly loading weight files, shared by the FC-CLIP and CAT-Seg converters.

Accepted files: detectron2 checkpoints (``.pth``: ``torch.save`` of a dict with the state_dict under
``"model"``; ``.pkl``: a pickled dict of numpy arrays), plain state_dicts, ``.safetensors``,
OpenAI's TorchScript CLIP archives, files written by :func:`save_state_dict`, and ``ovseg-train``
checkpoints (``{"format": "ovseg-train-v1", "model": <network state_dict>, "task": ..., ...}``; the
optimizer, scheduler and RNG states are ignored). Pickles are read with an allow-list (numpy arrays
and plain containers only), ``.pth`` with ``torch.load(weights_only=True)`` (numpy arrays allowed):
a weights file never runs code. :func:`read_checkpoint` also returns the metadata a file carries
(the model configuration of training checkpoints and of this project's saves). Corrupt, truncated or foreign
files raise :class:`CheckpointError` with the path and the reason.
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import torch
from torch import nn

__all__ = [
    "CheckpointError",
    "TRAINING_CHECKPOINT_FORMAT",
    "checkpoint_metadata",
    "format_keys",
    "read_checkpoint",
    "read_state_dict",
    "save_state_dict",
    "strict_load",
    "unwrap_state_dict",
]

#: ``format`` of the checkpoints written by the training engine (``ovseg-train``)
TRAINING_CHECKPOINT_FORMAT = "ovseg-train-v1"
#: module prefixes of training wrappers around the network (e.g. ``FCCLIPForTraining.net``)
_WRAPPER_PREFIXES = ("net.",)


class CheckpointError(RuntimeError):
    """A checkpoint could not be read or does not fit the model; the message says which keys/why."""


class _WeightsUnpickler(pickle.Unpickler):
    """Unpickler for detectron2 ``.pkl`` weights: numpy arrays and plain containers only."""

    _ALLOWED = {
        ("collections", "OrderedDict"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("builtins", "slice"),
        ("builtins", "set"),
    }

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a weights pickle")


def format_keys(keys: Iterable[str], limit: int = 12) -> str:
    """``"a, b, c ... (+N more)"`` for error messages."""
    keys = list(keys)
    more = f" ... (+{len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def _load_object(path: Path):
    if path.suffix == ".pkl":
        with open(path, "rb") as f:
            return _WeightsUnpickler(f, encoding="latin1").load()
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        with torch.serialization.safe_globals(_numpy_globals()):  # training checkpoints hold numpy RNG states
            return torch.load(path, map_location="cpu", weights_only=True)
    except RuntimeError:
        # OpenAI's CLIP releases are TorchScript archives (a zip holding constants.pkl).
        if zipfile.is_zipfile(path) and any(n.endswith("constants.pkl") for n in zipfile.ZipFile(path).namelist()):
            return torch.jit.load(str(path), map_location="cpu").state_dict()
        raise


def _numpy_globals() -> list:
    """numpy's array reconstruction and dtype classes: data only, as :class:`_WeightsUnpickler` allows."""
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]  # same function, older path
    dtypes = [type(np.dtype(t)) for t in ("uint8", "uint32", "int64", "float32", "float64", "bool")]
    return [_reconstruct, np.ndarray, np.dtype, *dtypes]


def _strip_wrapper_prefix(sd: dict) -> dict:
    for prefix in _WRAPPER_PREFIXES:
        if sd and all(k.startswith(prefix) for k in sd):
            return {k[len(prefix) :]: v for k, v in sd.items()}
    return sd


def checkpoint_metadata(obj) -> dict:
    """What a loaded checkpoint says about itself besides the weights: ``format`` and, for this
    project's files, everything stored beside the state_dict (training checkpoints: ``step``,
    ``task`` (model name, variant, model configuration) and ``config``; optimizer and RNG states
    are left out). Empty for foreign files."""
    if not isinstance(obj, Mapping) or not str(obj.get("format", "")).startswith("ovseg"):
        return {}
    if obj["format"] == TRAINING_CHECKPOINT_FORMAT:
        return {k: obj[k] for k in ("format", "step", "task", "config") if k in obj}
    return {k: v for k, v in obj.items() if k != "state_dict"}


def unwrap_state_dict(obj, where: str = "state_dict", *, scalar_keys: Iterable[str] = ()) -> dict[str, torch.Tensor]:
    """Flat ``{key: tensor}`` from a loaded object (``model``/``state_dict`` wrappers, ``module.`` prefixes).

    ``scalar_keys`` are entries allowed to be plain numbers (e.g. OpenAI CLIP's ``input_resolution``).
    """
    if isinstance(obj, Mapping) and obj.get("format") == TRAINING_CHECKPOINT_FORMAT:
        if not isinstance(obj.get("model"), Mapping):
            raise CheckpointError(f"{where}: training checkpoint without model weights (no 'model' entry)")
        obj = _strip_wrapper_prefix(dict(obj["model"]))
    elif isinstance(obj, Mapping) and str(obj.get("format", "")).startswith("ovseg") and "state_dict" in obj:
        obj = obj["state_dict"]
    elif isinstance(obj, Mapping) and isinstance(obj.get("model"), Mapping):
        obj = obj["model"]
    elif isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(
            f"{where} holds no state_dict (expected a dict of tensors, under 'model' for detectron2 files)"
        )
    scalar_keys = set(scalar_keys)
    out: dict[str, torch.Tensor] = {}
    for k, v in obj.items():
        k = str(k)
        if k.startswith("module."):  # saved from DistributedDataParallel
            k = k[len("module.") :]
        if isinstance(v, np.ndarray):
            v = torch.from_numpy(np.ascontiguousarray(v))
        elif isinstance(v, (int, float)) and k in scalar_keys:
            v = torch.tensor(v)
        if not isinstance(v, torch.Tensor):
            raise CheckpointError(f"{where}: entry {k!r} is a {type(v).__name__}, not a tensor")
        out[k] = v
    return out


def read_state_dict(path: str | Path, *, scalar_keys: Iterable[str] = ()) -> dict[str, torch.Tensor]:
    """Read a weights file (see the module docstring) into a flat ``{key: tensor}``."""
    return read_checkpoint(path, scalar_keys=scalar_keys)[0]


def read_checkpoint(path: str | Path, *, scalar_keys: Iterable[str] = ()) -> tuple[dict[str, torch.Tensor], dict]:
    """Read a weights file once: the flat state_dict and :func:`checkpoint_metadata`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        obj = _load_object(path)
    except Exception as e:  # corrupt, truncated or foreign file: say so, whatever the library raised
        raise CheckpointError(
            f"cannot read checkpoint {path} (corrupt, truncated or not a weights file): "
            f"{type(e).__name__}: {str(e)[:300]}"
        ) from e
    return unwrap_state_dict(obj, str(path), scalar_keys=scalar_keys), checkpoint_metadata(obj)


def key_problems(*, missing=(), unexpected=(), mismatched=(), unexpected_note: str = "") -> list[str]:
    """Human-readable descriptions of what keeps a state_dict from fitting a model (empty: it fits)."""
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing key(s): {format_keys(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s){unexpected_note}: {format_keys(unexpected)}")
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatch(es): {format_keys(mismatched, 8)}")
    return problems


def strict_load(
    module: nn.Module, state_dict: Mapping[str, torch.Tensor], what: str = "checkpoint", *, assign: bool | None = None
) -> None:
    """``load_state_dict(strict=True)`` with an error that names missing, unexpected and misshapen keys."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    shapes = [
        f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in expected
        if k in state_dict and tuple(state_dict[k].shape) != tuple(expected[k].shape)
    ]
    problems = key_problems(missing=missing, unexpected=unexpected, mismatched=shapes)
    if problems:
        raise CheckpointError(f"{what} does not fit the model: " + "; ".join(problems))
    if assign is None:  # models built on the meta device take the tensors as they are
        assign = any(p.is_meta for p in module.parameters())
    module.load_state_dict(state_dict, strict=True, assign=assign)


def save_state_dict(state_dict: Mapping[str, torch.Tensor], path: str | Path, *, format: str, **meta) -> None:
    """Write ``{"format": format, **meta, "state_dict": ...}`` atomically (temporary file + rename)."""
    if not format.startswith("ovseg"):
        raise ValueError("format names start with 'ovseg'")
    path = Path(path)
    buf = io.BytesIO()
    torch.save({"format": format, **meta, "state_dict": dict(state_dict)}, buf)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, path)
