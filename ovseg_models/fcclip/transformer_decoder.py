"""FC-CLIP's Mask2Former transformer decoder (masked cross-attention, self-attention, FFN).

Class predictions are CLIP-space embeddings: the decoder output plus a projection of the pixel
decoder's mask features average-pooled inside each predicted mask go through an MLP and are
compared (cosine, learned temperature) with the text classifier; per class, the maximum over its
synonym rows is taken, and the last row is the void embedding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .backbone import mask_pooling
from .position_encoding import PositionEmbeddingSine

__all__ = [
    "Attention",
    "BLOCK_MASKS",
    "MaskedTransformerDecoder",
    "MLP",
    "SynonymClasses",
    "get_classification_logits",
]

#: how layer i's attention mask (predicted mask logits resized to level i's size, < 0 blocks) is
#: computed: "masks" resizes each layer's full-resolution masks (the official order of operations);
#: "features" resizes the mask features once per level and takes the mask-embedding product there.
#: Resizing is linear per channel, so both give the same logits up to float rounding, and
#: "features" skips the full-resolution product of every layer whose masks nobody reads (about a
#: third of the decoder's CPU time). The rounding can flip single attention-mask pixels whose
#: logit is ~1e-6, which moves intermediate-layer logits by ~1e-4 on the reference case.
BLOCK_MASKS = ("masks", "features")


@dataclass(frozen=True)
class SynonymClasses:
    """The class of each synonym row as a tensor, for graphs whose class count is an input (the
    ONNX export, :mod:`ovseg_models.export`): ``index`` [S] int64 in ``[0, count)``."""

    index: torch.Tensor
    count: int | torch.SymInt


def get_classification_logits(
    x: torch.Tensor,
    text_classifier: torch.Tensor,
    logit_scale: torch.Tensor,
    num_synonyms: Sequence[int] | torch.Tensor | SynonymClasses,
) -> torch.Tensor:
    """Cosine logits against synonym rows, max over each class's rows; last row (void) kept as is.

    x [B, Q, C]; text_classifier [S + 1, C] (normalised, void last) -> [B, Q, K + 1].
    ``num_synonyms``: rows per class, or :class:`SynonymClasses` (the same max, as a scatter).
    """
    x = F.normalize(x, dim=-1)
    scale = torch.clamp(logit_scale.exp(), max=100)
    logits = scale * x @ text_classifier.T
    if isinstance(num_synonyms, SynonymClasses):
        rows = logits[..., :-1]
        best = rows.new_full((*rows.shape[:-1], num_synonyms.count), float("-inf"))
        best = best.scatter_reduce(-1, num_synonyms.index.expand(rows.shape), rows, "amax", include_self=True)
        return torch.cat([best, logits[..., -1:]], dim=-1)
    counts = [int(n) for n in num_synonyms]
    if all(n == 1 for n in counts):
        return logits
    out = [part.amax(-1) for part in logits[..., :-1].split(counts, dim=-1)]
    out.append(logits[..., -1])
    return torch.stack(out, dim=-1)


class MLP(nn.Module):
    """``num_layers`` linear layers with ReLU in between."""

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, num_layers: int):
        super().__init__()
        dims = [hidden_dim] * (num_layers - 1)
        self.layers = nn.ModuleList(
            nn.Linear(a, b) for a, b in zip([input_dim] + dims, dims + [output_dim], strict=False)
        )

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x


class Attention(nn.Module):
    """Multi-head attention with ``nn.MultiheadAttention``'s parameters (``in_proj_*``, ``out_proj``),
    batch-first, computed with ``F.scaled_dot_product_attention``. ``block`` masks are True where
    attending is NOT allowed (the official convention)."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(self.in_proj_weight)

    def forward(self, q, k, v, block: torch.Tensor | None = None):
        b, lq, c = q.shape
        lk = k.shape[1]
        h = self.num_heads
        wq, wk, wv = self.in_proj_weight.chunk(3)
        bq, bk, bv = self.in_proj_bias.chunk(3)
        q = F.linear(q, wq, bq).view(b, lq, h, c // h).transpose(1, 2)
        k = F.linear(k, wk, bk).view(b, lk, h, c // h).transpose(1, 2)
        v = F.linear(v, wv, bv).view(b, lk, h, c // h).transpose(1, 2)
        mask = None if block is None else ~block
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out_proj(out.transpose(1, 2).reshape(b, lq, c))


class _CrossAttentionLayer(nn.Module):
    def __init__(self, dim, nhead, pre_norm=False):
        super().__init__()
        self.multihead_attn = Attention(dim, nhead)
        self.norm = nn.LayerNorm(dim)
        self.pre_norm = pre_norm

    def forward(self, tgt, memory, block, pos, query_pos):
        if self.pre_norm:
            t = self.norm(tgt)
            return tgt + self.multihead_attn(t + query_pos, memory + pos, memory, block)
        return self.norm(tgt + self.multihead_attn(tgt + query_pos, memory + pos, memory, block))


class _SelfAttentionLayer(nn.Module):
    def __init__(self, dim, nhead, pre_norm=False):
        super().__init__()
        self.self_attn = Attention(dim, nhead)
        self.norm = nn.LayerNorm(dim)
        self.pre_norm = pre_norm

    def forward(self, tgt, query_pos):
        if self.pre_norm:
            t = self.norm(tgt)
            q = t + query_pos
            return tgt + self.self_attn(q, q, t)
        q = tgt + query_pos
        return self.norm(tgt + self.self_attn(q, q, tgt))


class _FFNLayer(nn.Module):
    def __init__(self, dim, dim_feedforward, pre_norm=False):
        super().__init__()
        self.linear1 = nn.Linear(dim, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, dim)
        self.norm = nn.LayerNorm(dim)
        self.pre_norm = pre_norm

    def forward(self, tgt):
        if self.pre_norm:
            return tgt + self.linear2(F.relu(self.linear1(self.norm(tgt))))
        return self.norm(tgt + self.linear2(F.relu(self.linear1(tgt))))


class MaskedTransformerDecoder(nn.Module):
    """Mask2Former's multi-scale masked-attention decoder with FC-CLIP's CLIP-space class head.

    ``block_masks``: "features" (default) or "masks", see :data:`BLOCK_MASKS`; settable after
    construction."""

    block_masks = "features"

    def __init__(
        self,
        *,
        in_channels: int = 256,
        hidden_dim: int = 256,
        num_queries: int = 250,
        nheads: int = 8,
        dim_feedforward: int = 2048,
        dec_layers: int = 9,
        pre_norm: bool = False,
        mask_dim: int = 256,
        enforce_input_project: bool = False,
        clip_embedding_dim: int = 768,
        num_feature_levels: int = 3,
    ):
        super().__init__()
        self.num_heads = nheads
        self.num_layers = dec_layers
        self.num_feature_levels = num_feature_levels
        self.pe_layer = PositionEmbeddingSine(hidden_dim // 2, normalize=True)
        self.transformer_cross_attention_layers = nn.ModuleList(
            _CrossAttentionLayer(hidden_dim, nheads, pre_norm) for _ in range(dec_layers)
        )
        self.transformer_self_attention_layers = nn.ModuleList(
            _SelfAttentionLayer(hidden_dim, nheads, pre_norm) for _ in range(dec_layers)
        )
        self.transformer_ffn_layers = nn.ModuleList(
            _FFNLayer(hidden_dim, dim_feedforward, pre_norm) for _ in range(dec_layers)
        )
        self.decoder_norm = nn.LayerNorm(hidden_dim)
        self.num_queries = num_queries
        self.query_feat = nn.Embedding(num_queries, hidden_dim)
        self.query_embed = nn.Embedding(num_queries, hidden_dim)
        self.level_embed = nn.Embedding(num_feature_levels, hidden_dim)
        self.input_proj = nn.ModuleList(
            nn.Conv2d(in_channels, hidden_dim, kernel_size=1)
            if (in_channels != hidden_dim or enforce_input_project)
            else nn.Identity()
            for _ in range(num_feature_levels)
        )
        self.mask_embed = MLP(hidden_dim, hidden_dim, mask_dim, 3)
        self._mask_pooling_proj = nn.Sequential(nn.LayerNorm(hidden_dim), nn.Linear(hidden_dim, hidden_dim))
        self.class_embed = MLP(hidden_dim, hidden_dim, clip_embedding_dim, 3)
        self.logit_scale = nn.Parameter(torch.ones([]) * np.log(1 / 0.07))

    @classmethod
    def from_config(cls, cfg, in_channels: int) -> MaskedTransformerDecoder:
        return cls(
            in_channels=in_channels,
            hidden_dim=cfg.hidden_dim,
            num_queries=cfg.num_queries,
            nheads=cfg.nheads,
            dim_feedforward=cfg.dim_feedforward,
            dec_layers=cfg.dec_layers,
            pre_norm=cfg.pre_norm,
            mask_dim=cfg.mask_dim,
            enforce_input_project=cfg.enforce_input_project,
            clip_embedding_dim=cfg.embed_dim,
        )

    def forward(
        self,
        x: Sequence[torch.Tensor],
        mask_features: torch.Tensor,
        text_classifier: torch.Tensor,
        num_synonyms: Sequence[int],
        *,
        aux_outputs: bool = False,
    ) -> dict:
        """``x``: 3 feature maps (low to high resolution); returns pred_logits [B,Q,K+1], pred_masks
        [B,Q,H/4,W/4] of the last layer (and ``aux_outputs`` of the earlier ones if asked)."""
        if len(x) != self.num_feature_levels:
            raise ValueError(f"expected {self.num_feature_levels} feature levels, got {len(x)}")
        src, pos, sizes = [], [], []
        for i in range(self.num_feature_levels):
            sizes.append(tuple(x[i].shape[-2:]))
            pos.append(self.pe_layer(x[i]).flatten(2).transpose(1, 2))
            src.append(
                (self.input_proj[i](x[i]).flatten(2) + self.level_embed.weight[i][None, :, None]).transpose(1, 2)
            )
        bs = src[0].shape[0]
        query_embed = self.query_embed.weight.unsqueeze(0).expand(bs, -1, -1)
        output = self.query_feat.weight.unsqueeze(0).expand(bs, -1, -1)

        if self.block_masks not in BLOCK_MASKS:
            raise ValueError(f"block_masks must be one of {BLOCK_MASKS}, got {self.block_masks!r}")
        by_features = self.block_masks == "features"
        block_features = [
            F.interpolate(mask_features, size=s, mode="bilinear", align_corners=False) if by_features else s
            for s in sizes
        ]
        aux = []
        cls_, masks, block = self._heads(
            output,
            mask_features,
            block_features[0],
            text_classifier,
            num_synonyms,
            with_class=aux_outputs,
            with_masks=aux_outputs or not by_features,
        )
        for i in range(self.num_layers):
            if aux_outputs:
                aux.append({"pred_logits": cls_, "pred_masks": masks})
            level = i % self.num_feature_levels
            block = block & ~block.all(-1, keepdim=True)  # fully masked rows attend everywhere
            output = self.transformer_cross_attention_layers[i](output, src[level], block, pos[level], query_embed)
            output = self.transformer_self_attention_layers[i](output, query_embed)
            output = self.transformer_ffn_layers[i](output)
            last = i == self.num_layers - 1
            cls_, masks, block = self._heads(
                output,
                mask_features,
                None if last else block_features[(i + 1) % self.num_feature_levels],
                text_classifier,
                num_synonyms,
                with_class=aux_outputs or last,
                with_masks=aux_outputs or last or not by_features,
            )
        out = {"pred_logits": cls_, "pred_masks": masks}
        if aux_outputs:
            out["aux_outputs"] = aux
        return out

    def _heads(
        self, output, mask_features, block_at, text_classifier, num_synonyms, *, with_class=True, with_masks=True
    ):
        """Class logits and masks [B,Q,H/4,W/4] (if asked; class logits need the masks), and the
        next layer's attention mask: ``block_at`` is that layer's (h, w) (the masks are resized
        to it) or the mask features already resized to it, or None for no attention mask."""
        decoder_output = self.decoder_norm(output)
        mask_embed = self.mask_embed(decoder_output)
        cls_ = masks = block = None
        if with_masks or with_class:
            masks = torch.einsum("bqc,bchw->bqhw", mask_embed, mask_features)
        if with_class:
            pooled = self._mask_pooling_proj(mask_pooling(mask_features, masks))
            class_embed = self.class_embed(pooled + decoder_output)
            cls_ = get_classification_logits(class_embed, text_classifier, self.logit_scale, num_synonyms)
        if isinstance(block_at, torch.Tensor):
            m = torch.einsum("bqc,bchw->bqhw", mask_embed, block_at)
        elif block_at is not None:
            m = F.interpolate(masks, size=block_at, mode="bilinear", align_corners=False)
        if block_at is not None:
            block = (m.sigmoid().flatten(2) < 0.5).unsqueeze(1)  # [B, 1, Q, HW], same for every head
        return cls_, masks, block
