"""The CAT-Seg network: CLIP (dense image features, text), guidance, aggregator.

Submodule names map onto the official detectron2 model by prefix (see
:mod:`ovseg_models.catseg.checkpoint`): ``clip_model.*`` = ``sem_seg_head.predictor.clip_model.*``,
``aggregator.*`` = ``sem_seg_head.predictor.transformer.*``, ``upsample1/2.*`` are the same, and
``guidance_backbone.*`` holds the separate guidance backbone of the paper's variants: a timm
backbone under timm's names (``guidance="timm"``, official ``backbone.*`` -> ``guidance_backbone.body.*``)
or the arXiv v1 detectron2 ResNet-101 / Swin-B (``"resnet"`` / ``"swin"``), whose official
detectron2 names are mapped by :mod:`~ovseg_models.catseg.feature_backbone`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from .aggregator import Aggregator
from .clip_dense import CLIP
from .configs import CATSegConfig
from .feature_backbone import build_feature_backbone

__all__ = ["CATSeg", "TimmGuidance"]


class TimmGuidance(nn.Module):
    """A timm backbone giving guidance at strides 16, 8 and 4 (the paper's Swin-B / ResNet-101)."""

    def __init__(self, name: str, out_indices: Sequence[int], *, pretrained: bool = False):
        super().__init__()
        import timm

        # Any: timm's features-only wrapper class (and so its attributes) depends on the model
        self.body: Any = cast(
            Any, timm.create_model(name, pretrained=pretrained, features_only=True, out_indices=tuple(out_indices))
        )
        self.channels = list(self.body.feature_info.channels())
        self.nhwc = str(getattr(self.body, "output_fmt", "NCHW")).upper().endswith("NHWC")

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = self.body(x)
        if self.nhwc:
            feats = [f.permute(0, 3, 1, 2) for f in feats]
        return feats  # increasing stride


class CATSeg(nn.Module):
    # buffers registered in __init__
    clip_pixel_mean: torch.Tensor
    clip_pixel_std: torch.Tensor
    pixel_mean: torch.Tensor
    pixel_std: torch.Tensor

    def __init__(self, cfg: CATSegConfig, *, timm_pretrained: bool = False):
        super().__init__()
        self.cfg = cfg
        self.clip_model = CLIP(cfg.clip)
        width = cfg.clip.vision_width
        # CLIP guidance: upsamplers of two CLIP layers; otherwise a separate guidance backbone
        self.upsample1: nn.ConvTranspose2d | None
        self.upsample2: nn.ConvTranspose2d | None
        self.guidance_backbone: nn.Module | None
        if cfg.guidance == "clip":
            if len(cfg.guidance_layers) != 2:
                raise ValueError("CLIP guidance needs two guidance layers")
            self.upsample1 = nn.ConvTranspose2d(width, cfg.decoder_guidance_dims[0], kernel_size=2, stride=2)
            self.upsample2 = nn.ConvTranspose2d(width, cfg.decoder_guidance_dims[1], kernel_size=4, stride=4)
            self.guidance_backbone = None
        elif cfg.guidance == "timm":
            self.upsample1 = self.upsample2 = None
            self.guidance_backbone = TimmGuidance(cfg.timm_backbone, cfg.timm_out_indices, pretrained=timm_pretrained)
        elif cfg.guidance in ("resnet", "swin"):
            self.upsample1 = self.upsample2 = None
            self.guidance_backbone = build_feature_backbone(cfg, pretrained=timm_pretrained)
        else:
            raise ValueError(f"guidance must be 'clip', 'timm', 'resnet' or 'swin', got {cfg.guidance!r}")
        self.aggregator = Aggregator.from_config(cfg)
        self.register_buffer("clip_pixel_mean", torch.tensor(cfg.clip_pixel_mean).view(-1, 1, 1), False)
        self.register_buffer("clip_pixel_std", torch.tensor(cfg.clip_pixel_std).view(-1, 1, 1), False)
        self.register_buffer("pixel_mean", torch.tensor(cfg.pixel_mean).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(cfg.pixel_std).view(-1, 1, 1), False)

    @classmethod
    def from_config(cls, cfg: CATSegConfig, **kwargs) -> CATSeg:
        return cls(cfg, **kwargs)

    # -- text -------------------------------------------------------------------------------
    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """L2-normalised text embeddings of token ids ``(N, 77)``."""
        emb = self.clip_model.encode_text(tokens)
        return emb / emb.norm(dim=-1, keepdim=True)

    # -- image ------------------------------------------------------------------------------
    def image_features(
        self,
        clip_images: torch.Tensor,
        guidance_images: torch.Tensor | None = None,
        *,
        intermediates: dict | None = None,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Dense CLIP features (B, C, g, g) and the guidance list [appearance, decoder 2x, decoder 4x].

        ``clip_images``: CLIP-normalised (B, 3, R, R) at ``clip_resolution``. ``guidance_images``
        (ImageNet-normalised with ``pixel_mean/std``, any size) feed the separate guidance backbone
        if the variant has one; they are resized to ``timm_resolution`` as the official code does.
        ``intermediates`` holding the key ``"image_embedding"``: it is set to CLIP's image
        embedding of each view (B, D), not normalised (:meth:`VisionTransformer.forward_dense`).
        """
        want_image = intermediates is not None and "image_embedding" in intermediates
        feats, hooks = self.clip_model.visual.forward_dense(
            clip_images, return_layers=tuple(self.cfg.guidance_layers), class_token=want_image
        )
        if want_image:
            assert intermediates is not None
            intermediates["image_embedding"] = feats[:, 0]
        b, length, c = feats.shape
        g = int(round((int(length) - 1) ** 0.5))  # int(): a traced size in the ONNX export
        dense = feats[:, 1:].transpose(1, 2).reshape(b, c, g, g)
        if self.cfg.guidance == "clip":

            def grid(t):
                return t[:, 1:].transpose(1, 2).reshape(b, t.shape[-1], g, g)

            assert self.upsample1 is not None and self.upsample2 is not None  # built for CLIP guidance
            guidance = [dense, self.upsample1(grid(hooks[0])), self.upsample2(grid(hooks[1]))]
        else:
            if guidance_images is None:
                raise ValueError("this variant needs guidance_images for its guidance backbone")
            side = self.cfg.timm_resolution
            imgs = guidance_images
            if tuple(imgs.shape[-2:]) != (side, side):
                imgs = F.interpolate(imgs, size=(side, side), mode="bilinear", align_corners=False)
            assert self.guidance_backbone is not None  # built for every guidance but "clip"
            s4, s8, s16 = self.guidance_backbone(imgs)
            guidance = [s16, s8, s4]
        return dense, guidance

    def use_fast_formulations(self, enabled: bool = True) -> CATSeg:
        """Select the faster CPU formulations of the aggregator (``enabled``, the default) or the
        official code's order of operations: the decoder's fused upsampling (``Up.fused``) and
        the cache-sized chunks on CPU (``Aggregator.cpu_chunks``). They differ by float rounding
        only."""
        self.aggregator.cpu_chunks = enabled
        for up in (self.aggregator.decoder1, self.aggregator.decoder2):
            up.fused = enabled
        return self

    def forward(
        self,
        clip_images: torch.Tensor,
        text: torch.Tensor,
        *,
        guidance_images: torch.Tensor | None = None,
        pooling_size: Sequence[int] | None = None,
        chunk_classes: int | None = None,
        timer: Callable | None = None,
        intermediates: dict | None = None,
    ) -> torch.Tensor:
        """Per-class logits (B, T, 96, 96) for CLIP-normalised images and normalised text (T, P, C)."""
        timer = timer or (lambda name: contextlib.nullcontext())
        with timer("clip_image"):
            dense, guidance = self.image_features(clip_images, guidance_images, intermediates=intermediates)
        if intermediates is not None:
            intermediates["dense"] = dense
        return self.aggregator(
            dense,
            text,
            guidance,
            pooling_size=pooling_size,
            chunk_classes=chunk_classes,
            timer=timer,
            intermediates=intermediates,
        )
