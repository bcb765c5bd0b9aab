"""CAT-Seg model configurations, as data.

Each :class:`CATSegConfig` holds the hyperparameters the official code derives from its yaml
configs (``configs/vitb_384.yaml``, ``configs/vitl_336.yaml``, ``configs/vitl_swinb_384.yaml``,
``configs/vitb_r101_384.yaml``) and from the CLIP checkpoint it loads. Nothing here imports
torch modules; :func:`get_config` returns a copy that may be edited with
:func:`dataclasses.replace` (or give it field overrides; ``clip`` may be a mapping of
:class:`CLIPConfig` fields to change).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

__all__ = ["CLIPConfig", "CATSegConfig", "VARIANTS", "DEFAULT_VARIANT", "get_config"]


@dataclass(frozen=True)
class CLIPConfig:
    """A CLIP model: ViT image tower and causal text transformer (OpenAI layout)."""

    embed_dim: int
    image_resolution: int  #: resolution of the stored position embedding (224 for ViT-B/16)
    vision_layers: int
    vision_width: int
    vision_patch_size: int
    vision_heads: int
    text_width: int
    text_heads: int
    text_layers: int
    context_length: int = 77
    vocab_size: int = 49408
    mlp_ratio: float = 4.0
    vision_mlp_ratio: float | None = None  #: ViT-bigG uses 4.9231 in the image tower only
    #: ``quick_gelu`` (OpenAI checkpoints) or ``gelu`` (LAION open_clip checkpoints)
    activation: str = "quick_gelu"
    #: the official dense last block adds back the class token of its input (OpenAI vendored CLIP,
    #: ``"cls"``) or the whole input (CAT-Seg's vendored open_clip for ViT-H/G, ``"full"``)
    dense_residual: str = "cls"
    #: open_clip model name and pretrained tag that provide the official weights
    open_clip_name: str = ""
    open_clip_pretrained: str = ""


@dataclass(frozen=True)
class CATSegConfig:
    name: str
    clip: CLIPConfig
    #: resolution fed to the CLIP image encoder (official ``clip_resolution``)
    clip_resolution: int
    #: ``"clip"``: guidance from CLIP ViT intermediate layers (released checkpoints);
    #: ``"timm"``: a separate timm backbone (``timm_backbone``, timm's parameter names);
    #: ``"resnet"`` / ``"swin"``: the paper's (arXiv v1) detectron2 ResNet-101 / three-stage Swin-B,
    #: loading v1 checkpoints' detectron2 names (:mod:`~ovseg_models.catseg.feature_backbone`)
    guidance: str = "clip"
    #: CLIP visual blocks whose outputs feed the decoder guidance (``layer_indexes``)
    guidance_layers: tuple[int, ...] = (3, 7)
    timm_backbone: str = ""
    timm_out_indices: tuple[int, ...] = (0, 1, 2)
    #: input side for the separate guidance backbone (official resizes to 384x384)
    timm_resolution: int = 384
    #: ``guidance="swin"``: :class:`~ovseg_models.catseg.feature_backbone.SwinGuidance` arguments
    swin: dict = field(default_factory=dict)
    # Aggregator (MODEL.SEM_SEG_HEAD.*)
    text_guidance_dim: int = 512
    text_guidance_proj_dim: int = 128
    appearance_guidance_dim: int = 512
    appearance_guidance_proj_dim: int = 128
    decoder_dims: tuple[int, int] = (64, 32)
    decoder_guidance_dims: tuple[int, int] = (256, 128)
    decoder_guidance_proj_dims: tuple[int, int] = (32, 16)
    num_layers: int = 2
    num_heads: int = 4
    hidden_dim: int = 128
    pooling_size: tuple[int, int] = (2, 2)
    feature_resolution: tuple[int, int] = (24, 24)
    window_size: int = 12
    attention_type: str = "linear"
    #: class padding / top-``pad_len`` selection of the class attention (256 in the CVPR code; 0: none, as v1)
    pad_len: int = 256
    #: ``PROMPT_ENSEMBLE_TYPE``: ``single`` / ``imagenet`` / ``imagenet_select``
    prompt_ensemble_type: str = "single"
    #: number of cost-volume channels (``prompt_channel``); 1 in every released model
    prompt_channel: int = 1
    #: how a class's synonyms ("a, b") become its text embedding: ``"first"`` (CVPR code: only the
    #: first) or ``"mean"`` (v1: per template, the normalised mean of the synonyms' embeddings)
    text_synonyms: str = "first"
    #: official code the checkpoint layout follows: ``"cvpr"`` (released code; CLIP attention stores
    #: q/k/v separately) or ``"v1"`` (arXiv v1 code @ af4fa0b; fused ``in_proj_weight``)
    official_code: str = "cvpr"
    # Pre-processing (official defaults)
    clip_pixel_mean: tuple[float, float, float] = (122.7709383, 116.7460125, 104.09373615)
    clip_pixel_std: tuple[float, float, float] = (68.5005327, 66.6321579, 70.3231630)
    pixel_mean: tuple[float, float, float] = (123.675, 116.280, 103.530)
    pixel_std: tuple[float, float, float] = (58.395, 57.120, 57.375)
    min_size_test: int = 640
    max_size_test: int = 2560
    size_divisibility: int = 32
    #: pooling used with the sliding window (the official ``eval.sh`` sets ``POOLING_SIZES [1,1]``)
    sliding_pooling_size: tuple[int, int] = (1, 1)
    notes: str = ""
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def width(self) -> int:
        return self.clip.vision_width

    def to_dict(self) -> dict:
        """Plain data (YAML / checkpoint metadata); :meth:`from_dict` inverts it."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> CATSegConfig:
        d = dict(d)
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown CAT-Seg config fields: {sorted(unknown)}")
        if isinstance(d.get("clip"), dict):
            d["clip"] = _clip_config(d["clip"])
        for f in dataclasses.fields(cls):  # YAML / JSON give lists where the config holds tuples
            if isinstance(d.get(f.name), list):
                d[f.name] = tuple(d[f.name])
        if isinstance(d.get("swin"), dict):
            d["swin"] = {k: tuple(v) if isinstance(v, list) else v for k, v in d["swin"].items()}
        return cls(**d)


def _clip_config(d: dict) -> CLIPConfig:
    unknown = set(d) - {f.name for f in dataclasses.fields(CLIPConfig)}
    if unknown:
        raise ValueError(f"unknown CLIP config fields: {sorted(unknown)}")
    return CLIPConfig(**d)


_VIT_B16 = CLIPConfig(
    embed_dim=512,
    image_resolution=224,
    vision_layers=12,
    vision_width=768,
    vision_patch_size=16,
    vision_heads=12,
    text_width=512,
    text_heads=8,
    text_layers=12,
    open_clip_name="ViT-B-16",
    open_clip_pretrained="openai",
)
_VIT_L14_336 = CLIPConfig(
    embed_dim=768,
    image_resolution=336,
    vision_layers=24,
    vision_width=1024,
    vision_patch_size=14,
    vision_heads=16,
    text_width=768,
    text_heads=12,
    text_layers=12,
    open_clip_name="ViT-L-14-336",
    open_clip_pretrained="openai",
)
# arXiv v1's vendored OpenAI CLIP: the dense last block adds back its whole input
_V1_VIT_B16 = dataclasses.replace(_VIT_B16, dense_residual="full")
_V1_VIT_L14_336 = dataclasses.replace(_VIT_L14_336, dense_residual="full")
# open_clip LAION-2B towers. CAT-Seg builds them with force_image_size=336 (24x24 grid), so the
# position table is stored at 336 here and resized from 224 when loading open_clip's weights.
_VIT_H14 = CLIPConfig(
    embed_dim=1024,
    image_resolution=336,
    vision_layers=32,
    vision_width=1280,
    vision_patch_size=14,
    vision_heads=16,
    text_width=1024,
    text_heads=16,
    text_layers=24,
    activation="gelu",
    dense_residual="full",
    open_clip_name="ViT-H-14",
    open_clip_pretrained="laion2b_s32b_b79k",
)
_VIT_G14 = CLIPConfig(
    embed_dim=1280,
    image_resolution=336,
    vision_layers=48,
    vision_width=1664,
    vision_patch_size=14,
    vision_heads=16,
    text_width=1280,
    text_heads=20,
    text_layers=32,
    vision_mlp_ratio=8192 / 1664,
    activation="gelu",
    dense_residual="full",
    open_clip_name="ViT-bigG-14",
    open_clip_pretrained="laion2b_s39b_b160k",
)

#: variant name -> configuration (hyperparameters as data)
VARIANTS: dict[str, CATSegConfig] = {
    # configs/vitb_384.yaml (released model_base.pth)
    "vitb16_384": CATSegConfig(name="vitb16_384", clip=_VIT_B16, clip_resolution=384, guidance_layers=(3, 7)),
    # configs/vitl_336.yaml (released model_large.pth)
    "vitl14_336": CATSegConfig(
        name="vitl14_336",
        clip=_VIT_L14_336,
        clip_resolution=336,
        guidance_layers=(7, 15),
        text_guidance_dim=768,
        appearance_guidance_dim=768,
    ),
    # arXiv v1 (cvlab-kaist/CAT-Seg @ af4fa0b) configs/vitb_r101_384.yaml: ViT-B/16 + detectron2 ResNet-101.
    # Its R-101.pkl with STRIDE_IN_1X1 False and torchvision's mean/std is the torchvision ImageNet
    # model converted to detectron2, which timm serves as resnet101.tv_in1k
    "vitb16_r101_384": CATSegConfig(
        name="vitb16_r101_384",
        clip=_V1_VIT_B16,
        clip_resolution=384,
        guidance="resnet",
        guidance_layers=(),
        timm_backbone="resnet101.tv_in1k",
        appearance_guidance_dim=1024,
        decoder_guidance_dims=(512, 256),
        pad_len=0,
        prompt_ensemble_type="imagenet",
        prompt_channel=80,
        text_synonyms="mean",
        official_code="v1",
        notes="paper (arXiv v1) model: ResNet-101 guidance, dense residual of the whole input, no class padding, "
        "80 ImageNet templates as cost-volume channels, synonyms averaged per template",
    ),
    # arXiv v1 configs/vitl_swinb_384.yaml: ViT-L/14@336px + three-stage Swin-B (D2SwinTransformer)
    "vitl14_swinb_384": CATSegConfig(
        name="vitl14_swinb_384",
        clip=_V1_VIT_L14_336,
        clip_resolution=336,
        guidance="swin",
        guidance_layers=(),
        timm_backbone="swin_base_patch4_window12_384",
        swin={
            "embed_dim": 128,
            "depths": (2, 2, 18),
            "num_heads": (4, 8, 16),
            "window_size": 12,
            "img_size": 384,
            "drop_path_rate": 0.3,
        },
        text_guidance_dim=768,
        appearance_guidance_dim=512,
        decoder_guidance_dims=(256, 128),
        pad_len=0,
        prompt_ensemble_type="imagenet",
        prompt_channel=80,
        text_synonyms="mean",
        official_code="v1",
        notes="paper (arXiv v1) model: Swin-B guidance, dense residual of the whole input, no class padding, "
        "80 ImageNet templates as cost-volume channels, synonyms averaged per template",
    ),
    # README: run.sh configs/vitl_swinb_384.yaml ... CLIP_PRETRAINED "ViT-H" TEXT_GUIDANCE_DIM 1024
    "vith14": CATSegConfig(
        name="vith14",
        clip=_VIT_H14,
        clip_resolution=336,
        guidance="timm",
        guidance_layers=(),
        timm_backbone="swin_base_patch4_window12_384",
        timm_out_indices=(0, 1, 2),
        text_guidance_dim=1024,
        appearance_guidance_dim=512,
        prompt_ensemble_type="imagenet",
        prompt_channel=80,
        notes="open_clip ViT-H-14 laion2b_s32b_b79k; Swin-B guidance as the official README's training command",
    ),
    # README: ... CLIP_PRETRAINED "ViT-G" TEXT_GUIDANCE_DIM 1280
    "vitg14": CATSegConfig(
        name="vitg14",
        clip=_VIT_G14,
        clip_resolution=336,
        guidance="timm",
        guidance_layers=(),
        timm_backbone="swin_base_patch4_window12_384",
        timm_out_indices=(0, 1, 2),
        text_guidance_dim=1280,
        appearance_guidance_dim=512,
        prompt_ensemble_type="imagenet",
        prompt_channel=80,
        notes="open_clip ViT-bigG-14 laion2b_s39b_b160k; Swin-B guidance as the official README's training command",
    ),
}

DEFAULT_VARIANT = "vitb16_384"

_ALIASES = {
    "vitb": "vitb16_384",
    "vit-b/16": "vitb16_384",
    "base": "vitb16_384",
    "vitl": "vitl14_336",
    "vit-l/14@336px": "vitl14_336",
    "large": "vitl14_336",
    "vith": "vith14",
    "vitg": "vitg14",
}


def get_config(variant: str | None = None, **overrides) -> CATSegConfig:
    """The configuration of ``variant`` (default :data:`DEFAULT_VARIANT`), with field overrides."""
    key = (variant or DEFAULT_VARIANT).lower()
    key = _ALIASES.get(key, key)
    if key not in VARIANTS:
        raise ValueError(f"unknown CAT-Seg variant {variant!r}; choose one of {sorted(VARIANTS)}")
    cfg = VARIANTS[key]
    if not overrides:
        return cfg
    if isinstance(overrides.get("clip"), dict):  # a partial CLIP override (e.g. a tiny tower in tests)
        overrides = {**overrides, "clip": dataclasses.replace(cfg.clip, **overrides["clip"])}
    return CATSegConfig.from_dict({**dataclasses.asdict(cfg), **overrides, "clip": overrides.get("clip", cfg.clip)})
