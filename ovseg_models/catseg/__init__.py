"""CAT-Seg (Cho et al., CVPR 2024) in plain PyTorch: loads the official released checkpoints.

    >>> from ovseg_models.catseg import build_segmenter
    >>> seg = build_segmenter(variant="vitb16_384", checkpoint="model_base.pth", pretrained=False)
    >>> seg.set_vocabulary(["cup", "table", "wall"])
    >>> result = seg.predict(rgb_uint8)          # official sliding-window evaluation
    >>> result = seg.predict(rgb_uint8, sliding_window=False)   # plain resize, faster

Variants: see :data:`VARIANTS` (``vitb16_384`` and ``vitl14_336`` are the released models;
``vitb16_r101_384`` and ``vitl14_swinb_384`` the paper's first version, arXiv v1).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path

import torch

from .checkpoint import (
    CheckpointError,
    convert_official_state_dict,
    load_checkpoint,
    load_clip_weights,
    pretrained_clip_state_dict,
    read_checkpoint,
    save_checkpoint,
    stored_config,
)
from .configs import DEFAULT_VARIANT, VARIANTS, CATSegConfig, get_config
from .model import CATSeg
from .segmenter import CATSegSegmenter, CATSegTextEncoder
from .training import count_trainable_parameters, set_trainable

__all__ = [
    "CATSeg",
    "CATSegConfig",
    "CATSegSegmenter",
    "CATSegTextEncoder",
    "CheckpointError",
    "DEFAULT_VARIANT",
    "VARIANTS",
    "build_model",
    "build_segmenter",
    "convert_official_state_dict",
    "count_trainable_parameters",
    "get_config",
    "load_checkpoint",
    "load_clip_weights",
    "pretrained_clip_state_dict",
    "save_checkpoint",
    "set_trainable",
]


def build_model(
    *,
    variant: str | None = None,
    checkpoint: str | Path | Mapping[str, torch.Tensor] | None = None,
    pretrained: str | bool | None = True,
    device: str | torch.device = "cpu",
    timm_pretrained: bool = False,
    config: CATSegConfig | dict | None = None,
) -> CATSeg:
    """Construct a :class:`CATSeg` and load weights.

    ``checkpoint`` (official detectron2 file, an ``ovseg-train`` checkpoint, a file from
    :func:`save_checkpoint`, or a state_dict) holds every weight, CLIP included; the configuration
    the last two record is used (``variant``, if given, must agree with it). Without a checkpoint,
    ``pretrained`` CLIP weights are loaded and the head stays randomly initialised (warned):
    ``True`` (the default, as for FC-CLIP and the factory) the variant's open_clip tag, or a tag or
    local file; ``False``/``None`` random CLIP weights. ``config`` replaces the variant's configuration.
    """
    if isinstance(checkpoint, (str, Path)):  # read once: weights and the configuration they were trained with
        checkpoint, meta = read_checkpoint(checkpoint)
        if config is None and (stored := stored_config(meta)) is not None:
            config = _checked_stored_config(stored, variant, meta)
    if isinstance(config, dict):
        config = CATSegConfig.from_dict(config)
    cfg = config if config is not None else get_config(variant)
    model = CATSeg(cfg, timm_pretrained=timm_pretrained and checkpoint is None)
    if checkpoint is not None:
        load_checkpoint(model, checkpoint)
    else:
        if pretrained:
            load_clip_weights(model.clip_model, pretrained_clip_state_dict(cfg, pretrained))
        warnings.warn("CAT-Seg built without a checkpoint: the aggregator is randomly initialised", stacklevel=2)
    return model.to(device).eval()


def _checked_stored_config(stored: dict, variant: str | None, meta: dict) -> CATSegConfig:
    cfg = CATSegConfig.from_dict(stored)
    recorded = (meta.get("task") or {}).get("variant") or meta.get("variant")
    if variant and recorded and recorded in VARIANTS and get_config(variant) != get_config(recorded):
        raise CheckpointError(f"the checkpoint holds a CAT-Seg {recorded!r}, not the requested variant {variant!r}")
    if variant and get_config(variant).clip.open_clip_name != cfg.clip.open_clip_name:
        raise CheckpointError(
            f"the checkpoint holds a CAT-Seg with CLIP {cfg.clip.open_clip_name or cfg.name!r}, "
            f"not the requested variant {variant!r}"
        )
    return cfg


def build_segmenter(
    *,
    variant: str | None = None,
    checkpoint: str | Path | Mapping[str, torch.Tensor] | None = None,
    pretrained: str | bool | None = True,
    device: str = "cpu",
    precision: str = "fp32",
    config: CATSegConfig | dict | None = None,
    **options,
) -> CATSegSegmenter:
    """Factory entry point (``ovseg_models.create_segmenter("catseg", ...)``).

    ``checkpoint``, ``pretrained``: see :func:`build_model` (a checkpoint holds the fine-tuned CLIP,
    so ``pretrained`` is not used with one). ``options``: :class:`CATSegSegmenter` keyword options
    (``sliding_window``, ``pooling_size``, ``chunk_classes``, ``templates``, ``synonyms``,
    ``class_scores``, ...).
    """
    if checkpoint is not None:
        pretrained = False  # the checkpoint contains the fine-tuned CLIP
    model = build_model(variant=variant, checkpoint=checkpoint, pretrained=pretrained, device=device, config=config)
    return CATSegSegmenter(model, device=device, precision=precision, **options)
