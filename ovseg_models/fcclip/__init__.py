"""FC-CLIP (Yu et al., NeurIPS 2023) in plain PyTorch: faithful inference with the official weights.

    >>> from ovseg_models.fcclip import build_segmenter
    >>> seg = build_segmenter(variant="rn50", checkpoint="fcclip_cocopan_r50.pth")
    >>> seg.set_vocabulary(["cat, kitty", "wall", "floor, carpet"])
    >>> result = seg.predict(rgb_uint8)

Modules: :mod:`.config` (variants as data), :mod:`.backbone` (open_clip CLIP), :mod:`.pixel_decoder`,
:mod:`.transformer_decoder`, :mod:`.model` (network + ensemble), :mod:`.postprocess`,
:mod:`.checkpoint` (official key converter), :mod:`.segmenter` (Segmenter API).
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import torch

from .backbone import CLIPBackbone, CLIPTextEncoder, PretrainedWeightsUnavailable, load_open_clip_state_dict
from .checkpoint import (
    CheckpointError,
    convert_official_state_dict,
    load_checkpoint_file,
    load_official_checkpoint,
    read_checkpoint,
    save_checkpoint,
    stored_config,
)
from .config import DEFAULT_VARIANT, VARIANTS, FCCLIPConfig, get_config
from .model import FCCLIP, geometric_ensemble
from .segmenter import FCCLIPSegmenter

__all__ = [
    "CLIPBackbone",
    "CLIPTextEncoder",
    "CheckpointError",
    "DEFAULT_VARIANT",
    "FCCLIP",
    "FCCLIPConfig",
    "FCCLIPSegmenter",
    "PretrainedWeightsUnavailable",
    "VARIANTS",
    "build_model",
    "build_segmenter",
    "convert_official_state_dict",
    "geometric_ensemble",
    "get_config",
    "load_checkpoint_file",
    "load_official_checkpoint",
    "save_checkpoint",
]

log = logging.getLogger(__name__)

_SEGMENTER_OPTIONS = (
    "min_size",
    "max_size",
    "templates",
    "outputs",
    "text_cache",
    "text_batch_size",
    "class_agnostic",
)


def build_model(
    *,
    variant: str | None = None,
    config: FCCLIPConfig | None = None,
    checkpoint=None,
    pretrained: bool | str | None = True,
    device: str | torch.device = "cpu",
    allow_download: bool = True,
) -> FCCLIP:
    """The FC-CLIP network with weights.

    ``checkpoint``: official detectron2 ``.pth``/``.pkl`` (or a state_dict). When given, CLIP weights
    come from it; text-tower entries it lacks come from open_clip's pretrained weights for the
    variant (``pretrained`` True/tag/path; ``False`` refuses a checkpoint without them). Without a
    checkpoint, ``pretrained`` loads open_clip's CLIP weights and the head stays randomly initialised
    (warned): ``True`` (the default, as for CAT-Seg and the factory) the variant's open_clip tag, or
    a tag or local file; ``False``/``None`` random CLIP weights.
    """
    cfg = config if config is not None else get_config(variant)
    if checkpoint is not None:
        # built on the meta device: the checkpoint provides every weight (no random init of CLIP)
        model = FCCLIP.from_config(cfg, pretrained=False, device="meta")
        tag = cfg.clip_pretrained if pretrained in (True, None, False) else str(pretrained)

        def text_source():
            if pretrained is False:
                raise CheckpointError(
                    "the checkpoint lacks the CLIP text tower and pretrained=False forbids "
                    f"taking it from open_clip's {cfg.clip_model_name}/{cfg.clip_pretrained}"
                )
            return load_open_clip_state_dict(cfg.clip_model_name, tag, allow_download=allow_download)

        load_official_checkpoint(model, checkpoint, text_tower_source=text_source)
        model = model.materialize_buffers().to(device)
    else:
        model = FCCLIP.from_config(cfg, pretrained=pretrained, device=device, allow_download=allow_download)
        warnings.warn("FC-CLIP built without a checkpoint: the segmentation head is randomly initialised", stacklevel=2)
    return model.eval()


def build_segmenter(
    *,
    variant: str | None = None,
    checkpoint=None,
    pretrained: bool | str | None = True,
    device: str = "cpu",
    precision: str = "fp32",
    config: FCCLIPConfig | dict | None = None,
    allow_download: bool = True,
    **options,
) -> FCCLIPSegmenter:
    """Factory entry point (``ovseg_models.create_segmenter("fcclip", ...)``).

    ``checkpoint``, ``pretrained``: see :func:`build_model`.
    ``options``: ``min_size``, ``max_size`` (resize policy), ``templates``, ``outputs``,
    ``text_cache``, ``text_batch_size``, and any :class:`FCCLIPConfig` field as an override
    (e.g. ``num_queries``, ``overlap_threshold``, ``geometric_ensemble_alpha``).
    """
    seg_opts = {k: options.pop(k) for k in list(options) if k in _SEGMENTER_OPTIONS}
    if isinstance(checkpoint, (str, Path)):  # read once: weights and the configuration they were trained with
        checkpoint, meta = read_checkpoint(checkpoint)
        if config is None and (stored := stored_config(meta)) is not None:
            config = _checked_stored_config(stored, variant, meta)
    if isinstance(config, dict):
        config = FCCLIPConfig.from_dict(config)
    cfg = config if config is not None else get_config(variant)
    if options:
        cfg = cfg.replace(**options)
    model = build_model(
        config=cfg, checkpoint=checkpoint, pretrained=pretrained, device=device, allow_download=allow_download
    )
    return FCCLIPSegmenter(model, config=cfg, device=device, precision=precision, **seg_opts)


def _checked_stored_config(stored: dict, variant: str | None, meta: dict) -> FCCLIPConfig:
    """The configuration a checkpoint records; a requested ``variant`` must be the one it was trained as."""
    cfg = FCCLIPConfig.from_dict(stored)
    recorded = (meta.get("task") or {}).get("variant") or meta.get("variant")
    if variant and recorded and get_config(variant) != get_config(recorded):
        raise CheckpointError(f"the checkpoint holds an FC-CLIP {recorded!r}, not the requested variant {variant!r}")
    if variant and not recorded and get_config(variant).clip_model_name != cfg.clip_model_name:
        raise CheckpointError(
            f"the checkpoint holds an FC-CLIP with {cfg.clip_model_name}, not the requested variant {variant!r}"
        )
    return cfg
