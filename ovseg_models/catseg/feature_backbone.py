"""The separate feature backbones of the first CAT-Seg paper version (arXiv v1), with v1's checkpoint names.

The v1 code (cvlab-kaist/CAT-Seg before "Update CVPR version") gives the aggregator its appearance
and decoder guidance from a detectron2 backbone run on the ImageNet-normalised image at 384x384:

* ``build_resnet_backbone`` ResNet-101 (basic stem, stride in the 3x3 convolution, 1x1 strided
  projection shortcut, FrozenBatchNorm, outputs ``res2``-``res4``) for ViT-B/16;
* ``D2SwinTransformer`` Swin-B with three stages (embed 128, depths 2-2-18, heads 4-8-16,
  window 12, a LayerNorm ``norm{i}`` on each output) for ViT-L/14.

Both networks exist in timm, so they are built from timm (``resnet101`` with its BatchNorms
frozen by ``timm.layers.freeze_batch_norm_2d``, i.e. detectron2's FrozenBatchNorm:
``x * w / sqrt(var + eps) + (b - mean * w / sqrt(var + eps))``; ``SwinTransformer`` with the
three v1 stages). Only the parameter names differ; each backbone maps a detectron2 name to its
own (:meth:`from_official_key`) and back (:meth:`to_official_key`), and names it does not know
raise ``KeyError`` naming them. Outputs are ``[stride 4, stride 8, stride 16]`` in NCHW.
"""

from __future__ import annotations

import re
from typing import Any, cast

import torch
from torch import nn

__all__ = ["ResNetGuidance", "SwinGuidance", "build_feature_backbone"]


class ResNetGuidance(nn.Module):
    """detectron2's ResNet-101 backbone (``res2``-``res4``) as timm's ``resnet101``, FrozenBatchNorm.

    detectron2 -> timm names: ``stem.conv1`` -> ``conv1``, ``stem.conv1.norm`` -> ``bn1``,
    ``res{s}.{i}.conv{k}`` -> ``layer{s-1}.{i}.conv{k}``, ``.conv{k}.norm`` -> ``.bn{k}``,
    ``.shortcut`` -> ``.downsample.0``, ``.shortcut.norm`` -> ``.downsample.1``.
    """

    def __init__(self, name: str = "resnet101", *, pretrained: bool = False):
        super().__init__()
        import timm
        from timm.layers import freeze_batch_norm_2d

        # Any: timm's features-only wrapper class (and so its attributes) depends on the model
        body: Any = cast(Any, timm.create_model(name, pretrained=pretrained, features_only=True, out_indices=(1, 2, 3)))
        self.body = freeze_batch_norm_2d(body)
        self.channels = list(body.feature_info.channels())

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return list(self.body(x))

    _FIELDS = ("weight", "bias", "running_mean", "running_var")

    @classmethod
    def from_official_key(cls, key: str) -> str:
        """detectron2 name (without ``backbone.``) -> this module's name."""
        m = re.fullmatch(r"stem\.conv1\.(?:(norm)\.)?(\w+)", key)
        if m:
            if m.group(1):
                return f"body.bn1.{cls._field(key, m.group(2))}"
            return f"body.conv1.{cls._weight(key, m.group(2))}"
        m = re.fullmatch(r"res([2-4])\.(\d+)\.(conv[1-3]|shortcut)\.(?:(norm)\.)?(\w+)", key)
        if not m:
            raise KeyError(key)
        stage, block, conv, norm, field = m.groups()
        base = f"body.layer{int(stage) - 1}.{block}."
        if conv == "shortcut":
            return base + (
                f"downsample.1.{cls._field(key, field)}" if norm else f"downsample.0.{cls._weight(key, field)}"
            )
        return base + (f"bn{conv[-1]}.{cls._field(key, field)}" if norm else f"{conv}.{cls._weight(key, field)}")

    @staticmethod
    def to_official_key(key: str) -> str:
        """This module's name -> detectron2 name (without ``backbone.``)."""
        m = re.fullmatch(r"body\.(conv1|bn1)\.(\w+)", key)
        if m:
            return f"stem.conv1.{m.group(2)}" if m.group(1) == "conv1" else f"stem.conv1.norm.{m.group(2)}"
        m = re.fullmatch(r"body\.layer([1-3])\.(\d+)\.(conv[1-3]|bn[1-3]|downsample\.[01])\.(\w+)", key)
        if not m:
            raise KeyError(key)
        layer, block, mod, field = m.groups()
        base = f"res{int(layer) + 1}.{block}."
        if mod == "downsample.0":
            return base + f"shortcut.{field}"
        if mod == "downsample.1":
            return base + f"shortcut.norm.{field}"
        if mod.startswith("bn"):
            return base + f"conv{mod[2]}.norm.{field}"
        return base + f"{mod}.{field}"

    @classmethod
    def _field(cls, key: str, field: str) -> str:
        if field not in cls._FIELDS:
            raise KeyError(key)
        return field

    @staticmethod
    def _weight(key: str, field: str) -> str:
        if field != "weight":  # detectron2's ResNet convolutions have no bias
            raise KeyError(key)
        return field


class SwinGuidance(nn.Module):
    """v1's ``D2SwinTransformer`` (three stages, per-output LayerNorm) as a timm ``SwinTransformer``.

    The original Swin code (and detectron2's copy) merges patches at the *end* of a stage
    (``layers.{i}.downsample``, stages 0 and 1); timm at the *start* of the next
    (``layers.{i+1}.downsample``): the same layer, renamed as timm's own
    ``checkpoint_filter_fn`` does. ``relative_position_index`` is a constant stored in v1
    checkpoints (timm rebuilds it; the converter checks the stored one equals it). The output
    norms ``norm0``-``norm2`` keep their names here; timm's final ``norm`` is not used.
    """

    def __init__(
        self,
        *,
        embed_dim: int = 128,
        depths=(2, 2, 18),
        num_heads=(4, 8, 16),
        window_size: int = 12,
        img_size: int = 384,
        drop_path_rate: float = 0.3,
    ):
        super().__init__()
        from timm.models.swin_transformer import SwinTransformer

        self.body = SwinTransformer(
            img_size=img_size,
            patch_size=4,
            embed_dim=embed_dim,
            depths=tuple(depths),
            num_heads=tuple(num_heads),
            window_size=window_size,
            num_classes=0,
            drop_path_rate=drop_path_rate,
        )
        self.body.norm = nn.Identity()  # v1 normalises each output with its own norm{i} instead
        self.channels = [embed_dim * 2**i for i in range(len(depths))]
        for i, c in enumerate(self.channels):
            self.add_module(f"norm{i}", nn.LayerNorm(c))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.body.patch_embed(x)  # (B, H, W, C)
        outs = []
        for i, stage in enumerate(self.body.layers):
            x = stage(x)
            outs.append(getattr(self, f"norm{i}")(x).permute(0, 3, 1, 2).contiguous())
        return outs

    def relative_position_indices(self) -> dict[str, torch.Tensor]:
        """This module's (non-persistent) ``relative_position_index`` buffers by module name."""
        return {n: b for n, b in self.named_buffers() if n.endswith("relative_position_index")}

    @staticmethod
    def from_official_key(key: str) -> str:
        if re.fullmatch(r"norm\d+\.(weight|bias)", key) or key.startswith("patch_embed."):
            return key if key.startswith("norm") else "body." + key
        m = re.fullmatch(r"layers\.(\d+)\.downsample\.(.+)", key)
        if m:
            return f"body.layers.{int(m.group(1)) + 1}.downsample.{m.group(2)}"
        if re.fullmatch(r"layers\.\d+\.blocks\.\d+\..+", key):
            return "body." + key
        raise KeyError(key)

    @staticmethod
    def to_official_key(key: str) -> str:
        if re.fullmatch(r"norm\d+\.(weight|bias)", key):
            return key
        if not key.startswith("body."):
            raise KeyError(key)
        key = key[len("body.") :]
        m = re.fullmatch(r"layers\.(\d+)\.downsample\.(.+)", key)
        if m:
            return f"layers.{int(m.group(1)) - 1}.downsample.{m.group(2)}"
        return key


def build_feature_backbone(cfg, *, pretrained: bool = False) -> nn.Module:
    """The v1 feature backbone of a :class:`~ovseg_models.catseg.configs.CATSegConfig` (``guidance``
    ``"resnet"`` or ``"swin"``)."""
    if cfg.guidance == "resnet":
        return ResNetGuidance(cfg.timm_backbone or "resnet101", pretrained=pretrained)
    if cfg.guidance == "swin":
        if pretrained:
            raise ValueError(
                "the v1 Swin-B guidance has no timm pretrained weights (three stages); load the "
                "detectron2 swin_base_patch4_window12_384_22k weights or a CAT-Seg checkpoint"
            )
        return SwinGuidance(**dict(cfg.swin))
    raise ValueError(f"no v1 feature backbone for guidance {cfg.guidance!r}")
