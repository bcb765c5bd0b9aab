"""Tiny randomly initialised FC-CLIP and CAT-Seg segmenters for fast functional tests.

FC-CLIP: the network of ``config/tiny_random.yaml`` (``ovseg_ros.tiny``: RN50 CLIP, 10 queries,
one decoder layer, 64 px). CAT-Seg: a small CLIP (width 32) with the real aggregator geometry.
``seed`` decides every random weight, so two seeds give two text towers of the same width and
different weights.
"""

from __future__ import annotations

import dataclasses

import torch

__all__ = ["tiny_catseg", "tiny_catseg_config", "tiny_fcclip"]


def tiny_fcclip(seed: int = 0, **options):
    from ovseg_ros import tiny

    return tiny.segmenter(seed, **options)


def tiny_catseg_config(**overrides):
    from ovseg_models.catseg import get_config
    from ovseg_models.catseg.configs import CLIPConfig

    clip = CLIPConfig(
        embed_dim=32,
        image_resolution=224,
        vision_layers=3,
        vision_width=64,
        vision_patch_size=16,
        vision_heads=2,
        text_width=32,
        text_heads=2,
        text_layers=2,
    )
    base = dataclasses.replace(
        get_config("vitb16_384"),
        name="tiny",
        clip=clip,
        guidance_layers=(0, 1),
        text_guidance_dim=32,
        appearance_guidance_dim=32,
    )
    return dataclasses.replace(base, **overrides)


def tiny_catseg(seed: int = 0, *, config_overrides: dict | None = None, **options):
    from ovseg_models.catseg import CATSeg, CATSegSegmenter

    torch.manual_seed(seed)
    model = CATSeg(tiny_catseg_config(**(config_overrides or {}))).eval()
    with torch.no_grad():  # non-trivial padding tokens and guidance (zeros at construction)
        for p in model.parameters():
            if p.dim() == 3:
                p.normal_(0, 0.5)
    return CATSegSegmenter(model, **options)
