"""The frozen CLIP backbone of FC-CLIP, on top of open_clip's modules.

``CLIPBackbone.clip_model`` is exactly the open_clip model the official code builds (same module
tree and state_dict keys, ``backbone.clip_model.*`` in official checkpoints). This module adds what
FC-CLIP needs around it:

* multi-scale features ``stem``, ``res2``..``res5`` (strides 2/4 for the stem, 4, 8, 16, 32) and the
  dense CLIP features ``clip_vis_dense`` used for out-of-vocabulary mask pooling;
* the out-of-vocabulary head (``visual_prediction_forward``): ConvNeXt: the timm head + projection
  MLP applied to mask-pooled features; ResNet: CLIP's attention pool restricted to each mask;
* text encoding (FC-CLIP's ``encode_text``) as a :class:`~ovseg_models.text.TextEncoder`.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .config import FCCLIPConfig

__all__ = [
    "CLIPBackbone",
    "CLIPTextEncoder",
    "PretrainedWeightsUnavailable",
    "create_clip_model",
    "resolve_open_clip_weights",
    "load_open_clip_state_dict",
]

log = logging.getLogger(__name__)


class PretrainedWeightsUnavailable(RuntimeError):
    """open_clip pretrained weights could not be found locally nor downloaded."""


def _weights_hint(model_name: str, tag: str) -> str:
    try:
        from open_clip.pretrained import get_pretrained_cfg

        cfg = get_pretrained_cfg(model_name, tag) or {}
    except Exception:  # pragma: no cover - open_clip internals
        cfg = {}
    parts = []
    hub = cfg.get("hf_hub", "")
    if hub:
        repo, filename = os.path.split(hub)
        files = filename or "open_clip_model.safetensors (or open_clip_pytorch_model.bin)"
        parts.append(f"file {files} of https://huggingface.co/{repo.rstrip('/')}")
    if cfg.get("url"):
        parts.append(f"or {cfg['url']}")
    where = " ".join(parts) if parts else f"the open_clip weights of {model_name}/{tag}"
    return (
        f"open_clip weights for {model_name!r} / {tag!r} are not available offline. Supply {where}: "
        "put it in the Hugging Face cache (e.g. `huggingface-cli download` on a machine with network) "
        "or pass its local path as pretrained=/path/to/file"
    )


def resolve_open_clip_weights(model_name: str, pretrained: str, *, allow_download: bool = True) -> str:
    """Local file of open_clip weights for ``pretrained`` (a tag or a path); downloads if allowed.

    Raises :class:`PretrainedWeightsUnavailable` naming the file to supply when it cannot be had.
    """
    if os.path.isfile(pretrained):
        return pretrained
    from open_clip.pretrained import download_pretrained, get_pretrained_cfg

    cfg = get_pretrained_cfg(model_name, pretrained)
    if not cfg:
        if Path(pretrained).suffix or os.sep in pretrained:
            raise PretrainedWeightsUnavailable(f"pretrained weights file not found: {pretrained}")
        raise ValueError(f"{pretrained!r} is neither a file nor an open_clip pretrained tag of {model_name!r}")
    hub = cfg.get("hf_hub", "")
    if hub:  # look in the local HF cache first, without network
        try:
            from huggingface_hub import try_to_load_from_cache

            repo, filename = os.path.split(hub)
            for fn in [filename] if filename else ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]:
                hit = try_to_load_from_cache(repo.rstrip("/"), fn)
                if isinstance(hit, str) and os.path.isfile(hit):
                    return hit
        except Exception:  # pragma: no cover
            pass
    offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0") or os.environ.get("OVSEG_OFFLINE")
    if allow_download and not offline:
        try:
            path = download_pretrained(cfg)
            if path and os.path.isfile(path):
                return path
        except Exception as e:  # network errors of all kinds
            raise PretrainedWeightsUnavailable(
                f"{_weights_hint(model_name, pretrained)} (download failed: {type(e).__name__}: {str(e)[:200]})"
            ) from e
    raise PretrainedWeightsUnavailable(_weights_hint(model_name, pretrained))


def load_open_clip_state_dict(
    model_name: str, pretrained: str, *, allow_download: bool = True
) -> dict[str, torch.Tensor]:
    """The open_clip-format state_dict (keys as in ``clip_model.state_dict()``) for a tag or file."""
    path = resolve_open_clip_weights(model_name, pretrained, allow_download=allow_download)
    import open_clip

    # build on the meta device and let open_clip convert whatever format the file has (OpenAI JIT
    # archives, timm/HF layouts) by loading into a real model of the right architecture
    model = open_clip.create_model(
        model_name, pretrained=None, force_quick_gelu=_is_openai(pretrained, path), device="cpu"
    )
    try:
        open_clip.load_checkpoint(model, path)
    except Exception as e:
        raise PretrainedWeightsUnavailable(f"could not load open_clip weights from {path}: {e}") from e
    return model.state_dict()


def _is_openai(tag: str, path: str | None = None) -> bool:
    return tag.lower() == "openai" or (path is not None and Path(path).name.lower().startswith("rn"))


def create_clip_model(
    cfg: FCCLIPConfig,
    *,
    pretrained: bool | str | None = False,
    device: str | torch.device = "cpu",
    allow_download: bool = True,
) -> nn.Module:
    """The open_clip CLIP model FC-CLIP uses; with ``pretrained`` True/tag/path its weights are loaded."""
    import open_clip

    model = open_clip.create_model(cfg.clip_model_name, pretrained=None, force_quick_gelu=cfg.quick_gelu, device=device)
    if pretrained:
        tag = cfg.clip_pretrained if pretrained is True else str(pretrained)
        path = resolve_open_clip_weights(cfg.clip_model_name, tag, allow_download=allow_download)
        open_clip.load_checkpoint(model, path)
    return model.eval()


class CLIPBackbone(nn.Module):
    """Frozen open_clip model + FC-CLIP's feature extraction and out-of-vocabulary head."""

    def __init__(
        self, clip_model: nn.Module, *, model_name: str, backbone_type: str, feature_channels: tuple[int, ...]
    ):
        super().__init__()
        if backbone_type not in ("resnet", "convnext"):
            raise ValueError(f"backbone_type must be resnet or convnext, got {backbone_type!r}")
        # Any: open_clip builds its towers with attributes (visual.trunk, attnpool, ...) that depend on
        # the architecture, so nn.Module's typing cannot describe them.
        self.clip_model: Any = clip_model
        self.model_name = model_name
        self.backbone_type = backbone_type
        self.feature_channels = dict(zip(("stem", "res2", "res3", "res4", "res5"), feature_channels, strict=False))
        self.feature_strides = {
            "stem": 4 if backbone_type == "convnext" else 2,
            "res2": 4,
            "res3": 8,
            "res4": 16,
            "res5": 32,
        }
        for p in self.clip_model.parameters():
            p.requires_grad_(False)
        self.clip_model.eval()

    @classmethod
    def from_config(
        cls,
        cfg: FCCLIPConfig,
        *,
        pretrained: bool | str | None = False,
        device: str | torch.device = "cpu",
        allow_download: bool = True,
    ) -> CLIPBackbone:
        clip_model = create_clip_model(cfg, pretrained=pretrained, device=device, allow_download=allow_download)
        return cls(
            clip_model,
            model_name=cfg.clip_model_name,
            backbone_type=cfg.backbone_type,
            feature_channels=cfg.feature_channels,
        )

    def train(self, mode: bool = True):  # the CLIP model stays in eval mode (frozen BN statistics)
        super().train(mode)
        self.clip_model.eval()
        return self

    @property
    def dim_latent(self) -> int:
        return int(self.clip_model.text_projection.shape[-1])

    # -- image side -----------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, *, stem: bool = True) -> dict[str, torch.Tensor]:
        """Multi-scale features of a normalised, padded image batch ``[B, 3, H, W]``; ``stem=False``
        leaves the stem's output out (the pixel decoder does not read it: 59 MB less held through
        the stages at case0's size)."""
        if self.backbone_type == "convnext":
            return self._features_convnext(x, stem)
        return self._features_resnet(x, stem)

    def _features_convnext(self, x, stem: bool):
        trunk = self.clip_model.visual.trunk
        out = {}
        x = trunk.stem(x)
        if stem:
            out["stem"] = x
        for i in range(4):
            x = trunk.stages[i](x)
            out[f"res{i + 2}"] = x
        out["clip_vis_dense"] = trunk.norm_pre(x)
        return out

    def _features_resnet(self, x, stem: bool):
        v = self.clip_model.visual
        out = {}
        x = v.act1(v.bn1(v.conv1(x)))
        x = v.act2(v.bn2(v.conv2(x)))
        x = v.act3(v.bn3(v.conv3(x)))
        if stem:
            out["stem"] = x
        x = v.avgpool(x)
        for i, layer in enumerate((v.layer1, v.layer2, v.layer3, v.layer4)):
            x = layer(x)
            out[f"res{i + 2}"] = x
        out["clip_vis_dense"] = x
        return out

    def visual_prediction_forward(
        self, dense: torch.Tensor, masks: torch.Tensor, *, image_cells: tuple[int, int] | None = None
    ) -> Any:
        """CLIP embedding of every mask region: ``dense`` [B,C,h,w], ``masks`` logits [B,Q,h,w] -> [B,Q,D].

        ``image_cells``: also CLIP's embedding of each whole image (:meth:`image_embedding`);
        then the pair ([B,Q,D], [B,D]), computed together (ResNet: one value projection for both).
        """
        if self.backbone_type == "convnext":
            pooled = self._head_convnext(mask_pooling(dense, masks))
            return pooled if image_cells is None else (pooled, self.image_embedding(dense, image_cells))
        mask_embeddings, image = self._attention_pool(dense, masks, image_cells)
        assert mask_embeddings is not None  # masks were given
        return mask_embeddings if image_cells is None else (mask_embeddings, image)

    def image_embedding(self, dense: torch.Tensor, cells: tuple[int, int]) -> torch.Tensor:
        """CLIP's own embedding [B, D] of each whole image (not normalised), from ``dense``
        [B,C,h,w] of which the first ``cells`` = (rows, columns) cover the image (the rest is
        padding). ConvNeXt: the mean of the cells through CLIP's head (``encode_image`` exactly);
        ResNet: CLIP's attention pooling (the cells' mean as the query, itself a key, as in
        ``AttentionPool2d``) with the 7x7 position embedding resized bilinearly to the cells, as
        the mask pooling resizes it (at 7x7 cells, ``encode_image`` exactly)."""
        if self.backbone_type == "convnext":
            x = dense[..., : cells[0], : cells[1]]
            return self._head_convnext(x.mean(dim=(-2, -1))[:, None]).squeeze(1)
        image = self._attention_pool(dense, None, cells)[1]
        assert image is not None  # cells were given
        return image

    def _head_convnext(self, pooled: torch.Tensor) -> torch.Tensor:
        b, q, c = pooled.shape
        x = pooled.reshape(b * q, c, 1, 1)
        x = self.clip_model.visual.trunk.head(x)
        x = self.clip_model.visual.head(x)
        return x.view(b, q, x.shape[-1])

    def _attention_pool(
        self, x: torch.Tensor, masks: torch.Tensor | None, cells: tuple[int, int] | None
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """CLIP's attention pooling (ResNet ``attnpool``) of mask regions and of whole images.

        Masks (FC-CLIP's out-of-vocabulary head): the query (the spatial mean + the class position)
        attends only to the mask's pixels, the 7x7 position embedding bilinearly resized to the
        feature size -> [B,Q,D]. Image (``cells`` covered): the query is the covered cells' mean,
        which is a key too, as in ``AttentionPool2d`` -> [B,D].

        Written out instead of ``F.multi_head_attention_forward`` because every mask has the same
        query: a head's scores are ``q_h . (W_k,h t + b_k,h) = (W_k,h^T q_h) . t + q_h . b_k,h``, so
        the keys are never projected (a [HW, C] x [C, C] product less: about 45 ms of RN50's 133
        ms at 640x480 on a 2-core CPU), and the values are projected once for the masks and the
        image. Equal to the plain formulation up to float rounding.
        """
        pool = self.clip_model.visual.attnpool
        batch, channel, height, width = x.shape
        if cells is not None and tuple(cells) != (height, width):
            # padding beyond a cell (tiny images): the image alone, on its own position grid
            pooled = self._attention_pool(x, masks, None)[0] if masks is not None else None
            return pooled, self._attention_pool(x[..., : cells[0], : cells[1]], None, cells)[1]
        heads = pool.num_heads
        dh = channel // heads
        pos = pool.positional_embedding.to(x.dtype)
        orig = int(math.sqrt(pos.shape[0] - 1))
        spatial = pos[1:].T.reshape(1, channel, orig, orig)
        if (height, width) != (orig, orig):
            spatial = F.interpolate(spatial, size=(height, width), mode="bilinear", align_corners=False)
        tokens = x.flatten(2).transpose(1, 2) + spatial.flatten(2).transpose(1, 2)  # [B, HW, C]
        wq, wk, wv = (p.weight.to(x.dtype) for p in (pool.q_proj, pool.k_proj, pool.v_proj))
        bq, bk, bv = (p.bias.to(x.dtype) for p in (pool.q_proj, pool.k_proj, pool.v_proj))
        values = F.linear(tokens, wv, bv).view(batch, -1, heads, dh).transpose(1, 2)  # [B, heads, HW, dh]
        scale = dh**-0.5

        def scores_of(query_in: torch.Tensor, keys_in: torch.Tensor) -> torch.Tensor:
            """[B, heads, N] scores of one query per image ([B, C] before projection) on ``keys_in`` [B, N, C]."""
            q = (F.linear(query_in, wq, bq) * scale).view(batch, heads, dh)
            u = torch.einsum("bhd,hdc->bhc", q, wk.view(heads, dh, channel))
            return torch.einsum("bnc,bhc->bhn", keys_in, u) + (q * bk.view(heads, dh)).sum(-1, keepdim=True)

        def out_proj(heads_out: torch.Tensor) -> torch.Tensor:  # [B, heads, ..., dh] -> [B, ..., D]
            return F.linear(heads_out.movedim(1, -2).flatten(-2), pool.c_proj.weight, pool.c_proj.bias)

        # one query for every mask and for the image: the spatial mean + the class position
        query_in = x.mean(dim=(-2, -1)) + pos[0]
        scores = scores_of(query_in, tokens)  # [B, heads, HW]
        pooled = image = None
        if masks is not None:
            if masks.shape[-2:] != (height, width):
                masks = F.interpolate(masks, size=(height, width), mode="bilinear", align_corners=False)
            inside = (masks > 0).flatten(2)  # [B, Q, HW]
            # A mask with no pixel attends to nothing: torch's attention gives it zero weights
            # (out_proj's bias comes out), a plain softmax (ONNX) NaN. Such rows attend everywhere
            # here and get the bias below: the same output on both, and no NaN in between.
            empty = ~inside.any(-1)  # [B, Q]
            # 0 where a mask's query attends, -inf elsewhere: one broadcast add makes the logits
            bias = torch.zeros(inside.shape, dtype=scores.dtype, device=x.device)
            bias.masked_fill_(~(inside | empty[..., None]), float("-inf"))
            logits = scores[:, :, None, :] + bias[:, None]  # [B, heads, Q, HW]
            pooled = out_proj(torch.softmax(logits, dim=-1) @ values)  # [B, Q, D]
            pooled = torch.where(empty[..., None], pool.c_proj.bias.to(pooled.dtype), pooled)
        if cells is not None:  # the query token is a key too, as in AttentionPool2d
            weights = torch.softmax(torch.cat([scores_of(query_in, query_in[:, None]), scores], -1), -1)
            v_first = F.linear(query_in, wv, bv).view(batch, heads, 1, dh)
            mixed = weights[:, :, None, :1] * v_first + weights[:, :, None, 1:] @ values  # [B, heads, 1, dh]
            image = out_proj(mixed)[:, 0]
        return pooled, image

    # -- text side ------------------------------------------------------------------------------
    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """FC-CLIP's ``encode_text`` (un-normalised, EOT token = argmax), on the shortest exact context.

        With the causal mask, the output at the EOT position depends only on the tokens up to it,
        so the sequence is cut after the longest EOT of the batch: same result, far less work.
        """
        m = self.clip_model
        eot = tokens.argmax(dim=-1)
        length = int(eot.max().item()) + 1
        tokens = tokens[:, :length]
        cast_dtype = m.transformer.get_cast_dtype()
        x = m.token_embedding(tokens).to(cast_dtype) + m.positional_embedding[:length].to(cast_dtype)
        attn_mask = m.attn_mask[:length, :length] if m.attn_mask is not None else None
        batch_first = getattr(m.transformer, "batch_first", False)
        if not batch_first:
            x = x.permute(1, 0, 2)
        x = m.transformer(x, attn_mask=attn_mask)
        if not batch_first:
            x = x.permute(1, 0, 2)
        x = m.ln_final(x)
        x = x[torch.arange(x.shape[0], device=x.device), eot]
        return x @ m.text_projection

    def text_fingerprint(self) -> str:
        """Digest of small text-tower tensors: identifies the text weights for embedding caches."""
        m = self.clip_model
        h = hashlib.sha256(self.model_name.encode())
        for t in (
            m.text_projection,
            m.positional_embedding,
            m.ln_final.weight,
            m.ln_final.bias,
            m.token_embedding.weight[:64],
        ):
            h.update(t.detach().float().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()[:16]


def mask_pooling(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Average of ``x`` [B,C,H,W] over each mask's positive-logit pixels (``mask`` [B,Q,h,w]) -> [B,Q,C]."""
    if x.shape[-2:] != mask.shape[-2:]:
        mask = F.interpolate(mask, size=x.shape[-2:], mode="bilinear", align_corners=False)
    mask = (mask > 0).to(mask.dtype)
    denorm = mask.sum(dim=(-1, -2), keepdim=True) + 1e-8
    return torch.einsum("bchw,bqhw->bqc", x, mask.div_(denorm))  # in place: a new tensor, [B,Q,h,w] less


class CLIPTextEncoder:
    """:class:`~ovseg_models.text.TextEncoder` over a :class:`CLIPBackbone` (open_clip tokenizer)."""

    def __init__(self, backbone: CLIPBackbone, *, cache_key: str | None = None):
        import open_clip

        self.backbone = backbone
        self.tokenizer = open_clip.get_tokenizer(backbone.model_name)
        self.cache_key = cache_key or f"open_clip:{backbone.model_name}:{backbone.text_fingerprint()}"
        self.calls = 0

    def refresh_key(self) -> None:
        """Recompute the cache key after the text weights changed (e.g. a checkpoint was loaded)."""
        self.cache_key = f"open_clip:{self.backbone.model_name}:{self.backbone.text_fingerprint()}"

    @torch.no_grad()
    def encode(self, sentences: list[str]) -> torch.Tensor:
        self.calls += 1
        device = self.backbone.clip_model.text_projection.device
        tokens = self.tokenizer(list(sentences)).to(device)
        return self.backbone.encode_text(tokens)
