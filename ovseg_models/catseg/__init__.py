"""CAT-Seg (Cho et al., CVPR 2024) in plain PyTorch: loads the official released checkpoints.

    >>> from ovseg_models.catseg import build_segmenter
    >>> seg = build_segmenter(variant="vitb16_384", checkpoint="model_base.pth", pretrained=False)
    >>> seg.set_vocabulary(["cup", "table", "wall"])
    >>> result = seg.predict(rgb_uint8)          # official sliding-window evaluation
    >>> result = seg.predict(rgb_uint8, sliding_window=False)   # plain resize, faster

Variants: see :data:`VARIANTS` (``vitb16_384`` and ``vitl14_336`` are the released models).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import torch

from .checkpoint import CheckpointError, load_checkpoint, load_clip_weights, read_state_dict, save_checkpoint
from .configs import CONFIGS, DEFAULT_VARIANT, CATSegConfig, get_config
from .model import CATSeg
from .segmenter import CATSegSegmenter, CATSegTextEncoder
from .training import count_trainable_parameters, set_trainable

__all__ = [
    "CATSeg",
    "CATSegConfig",
    "CATSegSegmenter",
    "CATSegTextEncoder",
    "CheckpointError",
    "CONFIGS",
    "DEFAULT_VARIANT",
    "VARIANTS",
    "build_model",
    "build_segmenter",
    "count_trainable_parameters",
    "get_config",
    "load_checkpoint",
    "save_checkpoint",
    "set_trainable",
]

#: variant name -> configuration (hyperparameters as data)
VARIANTS = CONFIGS


def _clip_state_dict(cfg: CATSegConfig, pretrained) -> dict:
    if isinstance(pretrained, (str, Path)) and Path(pretrained).is_file():
        return read_state_dict(pretrained)
    tag = cfg.clip.open_clip_pretrained if pretrained is True else str(pretrained)
    try:
        import open_clip

        pcfg = open_clip.get_pretrained_cfg(cfg.clip.open_clip_name, tag)
        if not pcfg:
            raise ValueError(f"open_clip has no pretrained tag {tag!r} for {cfg.clip.open_clip_name}")
        path = open_clip.download_pretrained(pcfg)
    except Exception as e:
        raise CheckpointError(f"could not obtain CLIP weights {cfg.clip.open_clip_name}/{tag} through open_clip "
                              f"({type(e).__name__}: {e}); pass a local file as pretrained=, or pretrained=False"
                              ) from e
    return read_state_dict(path)


def build_model(*, variant: str | None = None, checkpoint: str | Path | None = None,
                pretrained: str | bool | None = False, device: str | torch.device = "cpu",
                timm_pretrained: bool = False) -> CATSeg:
    """Construct a :class:`CATSeg` and load weights.

    ``checkpoint`` (official detectron2 file or one from :func:`save_checkpoint`) holds every
    weight, CLIP included; without it, ``pretrained`` CLIP weights (True: the variant's open_clip
    tag, or a tag / local file) are loaded and the head stays randomly initialised.
    """
    cfg = get_config(variant)
    model = CATSeg(cfg, timm_pretrained=timm_pretrained and checkpoint is None)
    if checkpoint is not None:
        load_checkpoint(model, checkpoint)
    else:
        if pretrained:
            load_clip_weights(model.clip_model, _clip_state_dict(cfg, pretrained))
        warnings.warn("CAT-Seg built without a checkpoint: the aggregator is randomly initialised", stacklevel=2)
    return model.to(device).eval()


def build_segmenter(*, variant: str | None = None, checkpoint: str | Path | None = None,
                    pretrained: str | bool | None = True, device: str = "cpu", precision: str = "fp32",
                    **options) -> CATSegSegmenter:
    """Factory entry point (``ovseg_models.create_segmenter("catseg", ...)``).

    ``options``: :class:`CATSegSegmenter` keyword options (``sliding_window``, ``pooling_size``,
    ``chunk_classes``, ``templates``, ``synonyms``, ``class_scores``, ...).
    """
    if checkpoint is not None:
        pretrained = False  # the official checkpoint contains the fine-tuned CLIP
    model = build_model(variant=variant, checkpoint=checkpoint, pretrained=pretrained, device=device)
    return CATSegSegmenter(model, device=device, precision=precision, **options)
