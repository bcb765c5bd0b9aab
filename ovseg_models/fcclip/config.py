"""FC-CLIP model configurations as data (the official configs' hyperparameters).

Every variant shares the COCO-panoptic FC-CLIP head (Mask2Former ``maskformer2_R50_bs16_50ep`` base +
``fcclip_convnext_large_eval_*.yaml``): MSDeformAttn pixel decoder (6 layers, 256 dims, res3-res5,
common stride 4, GroupNorm), 250 queries, 9 decoder layers (``DEC_LAYERS: 10`` minus the learnable
query layer), 8 heads, FFN 2048, post-norm; ensemble alpha 0.4 / beta 0.8; panoptic thresholds
(object mask 0.0, overlap 0.8); 100 detections per image; test resize shortest edge 800, max 1333.
Only the CLIP backbone differs (name, open_clip pretrained tag, embedding size, feature channels,
``ENSEMBLE_ON_VALID_MASK``, which the ResNet configs turn on).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FCCLIPConfig", "VARIANTS", "DEFAULT_VARIANT", "get_config", "variant_name"]

CLIP_MEAN = (122.7709383, 116.7460125, 104.09373615)
CLIP_STD = (68.5005327, 66.6321579, 70.32316305)


@dataclass(frozen=True)
class FCCLIPConfig:
    # --- CLIP backbone (open_clip) ---
    clip_model_name: str
    clip_pretrained: str
    embed_dim: int
    #: channels of stem, res2, res3, res4, res5 (official ``output_channels``)
    feature_channels: tuple[int, int, int, int, int]
    backbone_type: str  # "resnet" or "convnext"
    #: OpenAI-pretrained towers use QuickGELU (what open_clip builds for tag "openai")
    quick_gelu: bool = False
    ensemble_on_valid_mask: bool = False
    # --- pixel decoder ---
    conv_dim: int = 256
    mask_dim: int = 256
    norm: str = "GN"
    transformer_enc_layers: int = 6
    transformer_dim_feedforward: int = 1024
    transformer_nheads: int = 8
    transformer_n_points: int = 4
    transformer_in_features: tuple[str, ...] = ("res3", "res4", "res5")
    in_features: tuple[str, ...] = ("res2", "res3", "res4", "res5")
    common_stride: int = 4
    # --- transformer decoder ---
    hidden_dim: int = 256
    num_queries: int = 250
    nheads: int = 8
    dim_feedforward: int = 2048
    dec_layers: int = 9
    pre_norm: bool = False
    enforce_input_project: bool = False
    # --- FC-CLIP ensemble and inference ---
    geometric_ensemble_alpha: float = 0.4
    geometric_ensemble_beta: float = 0.8
    object_mask_threshold: float = 0.0
    overlap_threshold: float = 0.8
    test_topk_per_image: int = 100
    # --- input ---
    pixel_mean: tuple[float, float, float] = CLIP_MEAN
    pixel_std: tuple[float, float, float] = CLIP_STD
    size_divisibility: int = 32
    min_size_test: int = 800
    max_size_test: int = 1333
    templates: str = "vild"
    training_dataset: str = "coco_panoptic"
    extra: dict[str, Any] = field(default_factory=dict)

    def replace(self, **changes) -> FCCLIPConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FCCLIPConfig:
        d = dict(d)
        for k in ("feature_channels", "transformer_in_features", "in_features", "pixel_mean", "pixel_std"):
            if k in d:
                d[k] = tuple(d[k])
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown FC-CLIP config fields: {sorted(unknown)}")
        return cls(**d)


def _rn(name: str, embed_dim: int, width: int) -> FCCLIPConfig:
    return FCCLIPConfig(
        clip_model_name=name,
        clip_pretrained="openai",
        embed_dim=embed_dim,
        feature_channels=(width, 4 * width, 8 * width, 16 * width, 32 * width),
        backbone_type="resnet",
        quick_gelu=True,
        ensemble_on_valid_mask=True,
    )


VARIANTS: dict[str, FCCLIPConfig] = {
    # main model of the paper: fcclip_convnext_large_eval_*.yaml
    "convnext_large_d_320": FCCLIPConfig(
        clip_model_name="convnext_large_d_320",
        clip_pretrained="laion2b_s29b_b131k_ft_soup",
        embed_dim=768,
        feature_channels=(192, 192, 384, 768, 1536),
        backbone_type="convnext",
    ),
    # ConvNeXt-B: the official repository ships no config or checkpoint for it (only ConvNeXt-L and
    # the OpenAI ResNets); this pairs the backbone code's ``_base`` channels with open_clip's 320 px
    # LAION-aesthetic ConvNeXt-B-w. Train it yourself (no released weights to convert).
    "convnext_base": FCCLIPConfig(
        clip_model_name="convnext_base_w_320",
        clip_pretrained="laion_aesthetic_s13b_b82k_augreg",
        embed_dim=640,
        feature_channels=(128, 128, 256, 512, 1024),
        backbone_type="convnext",
    ),
    # fcclip_convnext_large_eval_ade20k_r50.yaml etc. (OpenAI weights, ENSEMBLE_ON_VALID_MASK: True)
    "rn50": _rn("RN50", 1024, 64),
    "rn101": _rn("RN101", 512, 64),
    "rn50x4": _rn("RN50x4", 640, 80),
    "rn50x16": _rn("RN50x16", 768, 96),
    "rn50x64": _rn("RN50x64", 1024, 128),
}
DEFAULT_VARIANT = "convnext_large_d_320"

_ALIASES = {
    "convnext_large": "convnext_large_d_320",
    "convnext-l": "convnext_large_d_320",
    "convnext_l": "convnext_large_d_320",
    "convnext-b": "convnext_base",
    "convnext_b": "convnext_base",
}


def variant_name(cfg: FCCLIPConfig) -> str:
    """The :data:`VARIANTS` name of the CLIP tower ``cfg`` uses (e.g. "rn50"); that tower's
    open_clip name where no variant has it."""
    return next((k for k, v in VARIANTS.items() if v.clip_model_name == cfg.clip_model_name), cfg.clip_model_name)


def get_config(variant: str | None = None, **overrides) -> FCCLIPConfig:
    """The configuration of ``variant`` (default: ConvNeXt-L), with field ``overrides`` applied."""
    key = (variant or DEFAULT_VARIANT).lower().replace("-", "_") if variant else DEFAULT_VARIANT
    key = _ALIASES.get(key, _ALIASES.get((variant or "").lower(), key))
    if key not in VARIANTS:
        raise ValueError(f"unknown FC-CLIP variant {variant!r}; choose one of {sorted(VARIANTS)}")
    cfg = VARIANTS[key]
    return cfg.replace(**overrides) if overrides else cfg
