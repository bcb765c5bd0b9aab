"""Official FC-CLIP checkpoints -> this project's modules.

The released checkpoints are detectron2 files: a ``.pth`` (``torch.save`` of a dict whose
``"model"`` entry is the state_dict) or a ``.pkl`` (pickled dict of numpy arrays under ``"model"``).
:func:`convert_official_state_dict` maps every official key to a key of :class:`~.model.FCCLIP`.
It is strict: an official key it cannot map, a model key nothing maps to, or a shape mismatch is an
error that names the keys. Two documented exceptions:

* training-only entries (``criterion.empty_weight``) are dropped;
* the released ``fcclip_cocopan.pth`` lacks (part of) the CLIP text tower
  (``backbone.clip_model.{token_embedding, positional_embedding, transformer.*, ln_final.*,
  text_projection}``); missing text-tower keys are taken from open_clip's pretrained weights for the
  same backbone, as the official code does when it builds its model (a clear error names the file
  to supply when they cannot be had offline).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from pathlib import Path

import torch

from .. import weights_io
from ..weights_io import (
    TRAINING_CHECKPOINT_FORMAT,
    CheckpointError,
    format_keys,
    key_problems,
    read_state_dict,
    strict_load,
)

__all__ = [
    "CheckpointError",
    "TEXT_TOWER_PREFIXES",
    "TRAINING_ONLY_KEYS",
    "convert_official_state_dict",
    "is_text_tower_key",
    "load_checkpoint_file",
    "load_official_checkpoint",
    "official_to_model_key",
    "read_checkpoint",
    "save_checkpoint",
    "stored_config",
]

log = logging.getLogger(__name__)

CLIP = "backbone.clip_model."
#: official keys (after ``backbone.clip_model.``) that belong to the CLIP text tower
TEXT_TOWER_PREFIXES = ("token_embedding.", "positional_embedding", "transformer.", "ln_final.", "text_projection")
#: official entries used only for training; dropped by the converter
TRAINING_ONLY_KEYS = frozenset({"criterion.empty_weight", "pixel_mean", "pixel_std"})


def is_text_tower_key(official_key: str) -> bool:
    return official_key.startswith(CLIP) and official_key[len(CLIP) :].startswith(TEXT_TOWER_PREFIXES)


# official -> model key rules; each returns the new key or None when it does not apply
def _pixel_decoder_key(rest: str, num_fpn: int) -> str | None:
    if rest.startswith("input_proj.") or rest.startswith("mask_features."):
        return "pixel_decoder." + rest
    if rest == "transformer.level_embed":
        return "pixel_decoder.level_embed"
    m = re.fullmatch(r"transformer\.encoder\.layers\.(\d+)\.(.+)", rest)
    if m:
        return f"pixel_decoder.encoder_layers.{m[1]}.{m[2]}"
    m = re.fullmatch(r"(adapter|layer)_(\d+)\.(weight|bias|norm\.weight|norm\.bias)", rest)
    if m:
        idx = num_fpn - int(m[2])  # official lists are reversed into top-down order
        if idx < 0:
            return None
        group = "lateral_convs" if m[1] == "adapter" else "output_convs"
        sub = {"weight": "0.weight", "bias": "0.bias", "norm.weight": "1.weight", "norm.bias": "1.bias"}[m[3]]
        return f"pixel_decoder.{group}.{idx}.{sub}"
    return None


def official_to_model_key(key: str, *, num_fpn: int = 1) -> str | None:
    """This project's key for an official FC-CLIP key (None: no rule applies)."""
    if key.startswith(CLIP) or key == "void_embedding.weight":
        return key
    if key.startswith("sem_seg_head.pixel_decoder."):
        return _pixel_decoder_key(key[len("sem_seg_head.pixel_decoder.") :], num_fpn)
    if key.startswith("sem_seg_head.predictor."):
        return "transformer_decoder." + key[len("sem_seg_head.predictor.") :]
    return None


def convert_official_state_dict(
    official: Mapping[str, torch.Tensor],
    model: torch.nn.Module,
    *,
    text_tower_source: Mapping[str, torch.Tensor] | Callable[[], Mapping] | None = None,
) -> dict[str, torch.Tensor]:
    """Official-format state_dict -> ``model.state_dict()`` format, strictly.

    ``text_tower_source``: open_clip-format state_dict (keys without ``backbone.clip_model.``), or
    a function returning one, used only for text-tower keys the checkpoint lacks.
    """
    target = model.state_dict()
    num_fpn = len(getattr(getattr(model, "pixel_decoder", None), "lateral_convs", [None]))
    out: dict[str, torch.Tensor] = {}
    unexpected, mismatched = [], []
    for key, value in official.items():
        if key in TRAINING_ONLY_KEYS:
            continue
        new = official_to_model_key(key, num_fpn=num_fpn)
        if new is None or new not in target:
            unexpected.append(key)
            continue
        value = torch.as_tensor(value)
        if tuple(value.shape) != tuple(target[new].shape):
            mismatched.append(f"{key}: checkpoint {tuple(value.shape)} vs model {tuple(target[new].shape)}")
            continue
        out[new] = value.to(target[new].dtype) if target[new].is_floating_point() else value
    missing = [k for k in target if k not in out]
    text_missing = [k for k in missing if is_text_tower_key(k)]
    other_missing = [k for k in missing if not is_text_tower_key(k)]
    problems = key_problems(
        missing=other_missing, unexpected=unexpected, mismatched=mismatched, unexpected_note=" (no module takes them)"
    )
    if problems:
        raise CheckpointError("checkpoint does not fit the FC-CLIP model: " + "; ".join(problems))
    if text_missing:
        if text_tower_source is None:
            raise CheckpointError(
                f"checkpoint lacks {len(text_missing)} CLIP text-tower key(s) "
                f"({format_keys(text_missing)}) and no open_clip source was given"
            )
        source = text_tower_source() if callable(text_tower_source) else text_tower_source
        still = []
        for k in text_missing:
            sk = k[len(CLIP) :]
            if sk not in source:
                still.append(k)
                continue
            v = torch.as_tensor(source[sk])
            if tuple(v.shape) != tuple(target[k].shape):
                raise CheckpointError(
                    f"open_clip text weight {sk} has shape {tuple(v.shape)}, model expects {tuple(target[k].shape)}"
                )
            out[k] = v.to(target[k].dtype)
        if still:
            raise CheckpointError(
                f"text-tower key(s) missing from both the checkpoint and the open_clip weights: {format_keys(still)}"
            )
        log.info("took %d CLIP text-tower entries from open_clip's pretrained weights", len(text_missing))
    return out


_FORMAT = "ovseg_fcclip"


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """A checkpoint file's state_dict and metadata (see :func:`ovseg_models.weights_io.read_checkpoint`)."""
    return weights_io.read_checkpoint(path)


def stored_config(meta: Mapping) -> dict | None:
    """The FC-CLIP configuration (as a dict) recorded in a checkpoint's metadata: ``ovseg-train``
    checkpoints (``task.fcclip_config``) and :func:`save_checkpoint` files; None for other files."""
    if meta.get("format") == TRAINING_CHECKPOINT_FORMAT:
        task = meta.get("task") or {}
        if task.get("name") not in (None, "fcclip"):
            raise CheckpointError(f"this is a {task.get('name')!r} training checkpoint, not an FC-CLIP one")
        return task.get("fcclip_config")
    if meta.get("format") == _FORMAT:
        return meta.get("config")
    return None


def save_checkpoint(model: torch.nn.Module, path: str | Path, *, config=None, variant: str = "") -> None:
    """Save ``model``'s state_dict with a format marker and its configuration (an
    :class:`~.config.FCCLIPConfig` or dict), atomically; ``create_segmenter("fcclip", checkpoint=path)``
    rebuilds the same network from it."""
    if config is not None and not isinstance(config, dict):
        config = config.to_dict()
    weights_io.save_state_dict(model.state_dict(), path, format=_FORMAT, variant=variant, config=config)


def load_checkpoint_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a detectron2 ``.pth``/``.pkl`` (weights under ``"model"``) or a plain state_dict file."""
    return read_state_dict(path)


def load_official_checkpoint(
    model: torch.nn.Module, checkpoint: str | Path | Mapping[str, torch.Tensor], *, text_tower_source=None
) -> dict[str, torch.Tensor]:
    """Load an official checkpoint (file or state_dict) into ``model`` strictly; returns the converted dict.

    Checkpoints saved by this project (keys already in model format) are loaded as they are.
    """
    sd = load_checkpoint_file(checkpoint) if isinstance(checkpoint, (str, Path)) else dict(checkpoint)
    if any(k.startswith(("pixel_decoder.", "transformer_decoder.")) for k in sd):
        converted = dict(sd)  # native format
        strict_load(model, converted, "native FC-CLIP checkpoint")
    else:
        converted = convert_official_state_dict(sd, model, text_tower_source=text_tower_source)
        strict_load(model, converted, "official FC-CLIP checkpoint")
    return converted
