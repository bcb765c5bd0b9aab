"""CLIP for CAT-Seg: a ViT image tower with dense output and a causal text tower.

Parameters follow the layout of CAT-Seg's vendored OpenAI CLIP (``cat_seg/third_party/model_vpt.py``):
every attention block stores ``q_proj_weight``, ``k_proj_weight`` and ``v_proj_weight``
separately (so the official ``attention`` fine-tuning can train q and v but not k) plus one
``in_proj_bias``. OpenAI / open_clip checkpoints, which store a fused ``in_proj_weight``, are split
by :mod:`ovseg_models.catseg.checkpoint`.

Dense image features reproduce the official treatment:

* position embeddings: when the token count differs from the stored table, the patch part is
  resized bicubically (``align_corners=False``, no antialias) to the working grid at every
  forward; the class-token entry is kept;
* final block (``forward_dense``): no attention mixing. Each token goes through ``ln_1``, the
  value projection and ``out_proj``; the residual is the *class token* of the block's input
  (OpenAI CLIP, ``dense_residual="cls"``) or the whole input (CAT-Seg's vendored open_clip for
  ViT-H/G, ``"full"``); then the MLP branch as usual;
* ``ln_post`` and ``proj`` are applied to every token.
"""

from __future__ import annotations

import math
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from .configs import CLIPConfig

__all__ = ["CLIP", "QuickGELU", "ResidualAttentionBlock", "Transformer", "VisionTransformer"]


class QuickGELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


def _activation(name: str) -> nn.Module:
    if name == "quick_gelu":
        return QuickGELU()
    if name == "gelu":
        return nn.GELU()
    raise ValueError(f"unknown activation {name!r}")


class Attention(nn.Module):
    """Multi-head self-attention with separate q/k/v projection weights and one fused bias."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} is not divisible by {heads} heads")
        self.width, self.heads = width, heads
        self.q_proj_weight = nn.Parameter(torch.empty(width, width))
        self.k_proj_weight = nn.Parameter(torch.empty(width, width))
        self.v_proj_weight = nn.Parameter(torch.empty(width, width))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * width))
        self.out_proj = nn.Linear(width, width)
        for w in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
            nn.init.xavier_uniform_(w)

    def project_value(self, x: torch.Tensor) -> torch.Tensor:
        """``out_proj(v_proj(x))``: what the official dense block keeps of the attention."""
        w = self.width
        return self.out_proj(F.linear(x, self.v_proj_weight, self.in_proj_bias[2 * w :]))

    def forward(self, x: torch.Tensor, *, causal: bool = False, queries: int | None = None) -> torch.Tensor:
        """Self-attention of ``x`` (N, L, C), batch-first; ``queries``: only the first ``queries``
        tokens attend (to all of them) and only their outputs (N, queries, C) are returned."""
        n, length, _ = x.shape
        w = self.width
        b = self.in_proj_bias
        lq = length if queries is None else queries
        q = F.linear(x[:, :lq], self.q_proj_weight, b[:w])
        k = F.linear(x, self.k_proj_weight, b[w : 2 * w])
        v = F.linear(x, self.v_proj_weight, b[2 * w :])
        heads = (self.heads, w // self.heads)
        q = q.view(n, lq, *heads).transpose(1, 2)
        k, v = (t.view(n, length, *heads).transpose(1, 2) for t in (k, v))
        out = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        return self.out_proj(out.transpose(1, 2).reshape(n, lq, w))


class ResidualAttentionBlock(nn.Module):
    def __init__(self, width: int, heads: int, *, mlp_ratio: float = 4.0, activation: str = "quick_gelu"):
        super().__init__()
        self.attn = Attention(width, heads)
        self.ln_1 = nn.LayerNorm(width)
        hidden = int(round(width * mlp_ratio))
        self.mlp = nn.Sequential()
        self.mlp.add_module("c_fc", nn.Linear(width, hidden))
        self.mlp.add_module("gelu", _activation(activation))
        self.mlp.add_module("c_proj", nn.Linear(hidden, width))
        self.ln_2 = nn.LayerNorm(width)

    def mlp_forward(self, x: torch.Tensor) -> torch.Tensor:
        """``c_proj(act(c_fc(x)))``. QuickGELU ``y * sigmoid(1.702 y)`` is evaluated as
        ``silu(1.702 y) / 1.702`` with the two constants folded into the linear layers: one fused
        elementwise pass instead of three (same function; float rounding differs slightly). Used
        when the activations outweigh the weights (image tower), where it saves time."""
        # nn.Sequential types its named children as plain modules; these two are the Linears built above.
        fc, proj = cast(nn.Linear, self.mlp.c_fc), cast(nn.Linear, self.mlp.c_proj)
        if isinstance(self.mlp.gelu, QuickGELU) and x.numel() >= 4 * fc.weight.numel():
            h = F.silu(F.linear(x, fc.weight * 1.702, fc.bias * 1.702))
            return F.linear(h, proj.weight * (1.0 / 1.702), proj.bias)
        return self.mlp(x)

    def forward(self, x: torch.Tensor, *, causal: bool = False) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), causal=causal)
        return x + self.mlp_forward(self.ln_2(x))

    def forward_dense(self, x: torch.Tensor, *, residual: str = "cls", class_token: bool = False) -> torch.Tensor:
        """The official last-block treatment for dense features (no token mixing). ``class_token``:
        token 0 of the output is instead the class token through the block's regular attention
        (CLIP's own image feature; the patch tokens are unchanged)."""
        h = self.ln_1(x)
        v = self.attn.project_value(h)
        v = v + (x[:, :1] if residual == "cls" else x)
        if class_token:
            cls = x[:, :1] + self.attn(h, queries=1)
            v = torch.cat([cls, v[:, 1:]], dim=1)
        return v + self.mlp_forward(self.ln_2(v))


class Transformer(nn.Module):
    def __init__(self, width: int, layers: int, heads: int, *, mlp_ratio: float = 4.0, activation: str = "quick_gelu"):
        super().__init__()
        self.width, self.layers = width, layers
        self.resblocks = nn.ModuleList(
            ResidualAttentionBlock(width, heads, mlp_ratio=mlp_ratio, activation=activation) for _ in range(layers)
        )


class VisionTransformer(nn.Module):
    def __init__(
        self,
        *,
        image_resolution: int,
        patch_size: int,
        width: int,
        layers: int,
        heads: int,
        output_dim: int,
        mlp_ratio: float = 4.0,
        activation: str = "quick_gelu",
        dense_residual: str = "cls",
    ):
        super().__init__()
        if dense_residual not in ("cls", "full"):
            raise ValueError(f"dense_residual must be 'cls' or 'full', got {dense_residual!r}")
        self.image_resolution, self.patch_size = image_resolution, patch_size
        self.dense_residual = dense_residual
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch_size, stride=patch_size, bias=False)
        scale = width**-0.5
        grid = image_resolution // patch_size
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn(grid * grid + 1, width))
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = Transformer(width, layers, heads, mlp_ratio=mlp_ratio, activation=activation)
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(scale * torch.randn(width, output_dim))

    def position_embedding(self, num_tokens: int) -> torch.Tensor:
        """The stored table, or its patch part resized bicubically to ``num_tokens - 1`` patches."""
        pos = self.positional_embedding
        if num_tokens == pos.shape[0]:
            return pos
        length, dim = pos.shape
        src = int(round(math.sqrt(length - 1)))
        dst = int(math.sqrt(num_tokens - 1))
        grid = pos[1:].reshape(1, src, src, dim).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, size=(dst, dst), mode="bicubic", align_corners=False)
        return torch.cat([pos[:1], grid.squeeze(0).reshape(dim, -1).T], dim=0)

    def forward_dense(
        self, image: torch.Tensor, *, return_layers: tuple[int, ...] = (), class_token: bool = False
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Dense tokens ``(B, 1 + g*g, output_dim)`` and the outputs ``(B, 1 + g*g, width)`` of
        the blocks in ``return_layers`` (the official forward hooks). ``class_token``: token 0 is
        CLIP's image embedding (``encode_image``: the class token through every block's regular
        attention, ``ln_post``, ``proj``) instead of the dense variant's class token, which the
        official code never reads."""
        x = self.conv1(image.to(self.conv1.weight.dtype))
        x = x.flatten(2).transpose(1, 2)
        cls = self.class_embedding.to(x.dtype) + torch.zeros(x.shape[0], 1, x.shape[-1], dtype=x.dtype, device=x.device)
        x = torch.cat([cls, x], dim=1)
        x = x + self.position_embedding(x.shape[1]).to(x.dtype)
        x = self.ln_pre(x)
        blocks = self.transformer.resblocks
        collected: list[torch.Tensor] = []
        for i, block in enumerate(blocks[:-1]):
            x = block(x)
            if i in return_layers:
                collected.append(x)
        x = cast(ResidualAttentionBlock, blocks[-1]).forward_dense(
            x, residual=self.dense_residual, class_token=class_token
        )
        x = self.ln_post(x) @ self.proj
        return x, collected


class CLIP(nn.Module):
    """CLIP with the OpenAI parameter names (``visual.*``, ``transformer.*``, ``token_embedding`` ...)."""

    def __init__(self, cfg: CLIPConfig):
        super().__init__()
        self.cfg = cfg
        self.context_length = cfg.context_length
        self.visual = VisionTransformer(
            image_resolution=cfg.image_resolution,
            patch_size=cfg.vision_patch_size,
            width=cfg.vision_width,
            layers=cfg.vision_layers,
            heads=cfg.vision_heads,
            output_dim=cfg.embed_dim,
            mlp_ratio=cfg.vision_mlp_ratio or cfg.mlp_ratio,
            activation=cfg.activation,
            dense_residual=cfg.dense_residual,
        )
        self.transformer = Transformer(
            cfg.text_width, cfg.text_layers, cfg.text_heads, mlp_ratio=cfg.mlp_ratio, activation=cfg.activation
        )
        self.token_embedding = nn.Embedding(cfg.vocab_size, cfg.text_width)
        self.positional_embedding = nn.Parameter(torch.empty(cfg.context_length, cfg.text_width))
        self.ln_final = nn.LayerNorm(cfg.text_width)
        self.text_projection = nn.Parameter(torch.empty(cfg.text_width, cfg.embed_dim))
        self.logit_scale = nn.Parameter(torch.ones([]))
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        nn.init.normal_(self.text_projection, std=cfg.text_width**-0.5)

    @classmethod
    def from_config(cls, cfg: CLIPConfig) -> CLIP:
        return cls(cfg)

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """Text embeddings (not normalised) of ``(N, context_length)`` token ids.

        The end-of-text token has the largest id; its output is the embedding. Attention is
        causal, so positions after the longest sequence's end token cannot influence any
        result and are not computed.
        """
        eot = tokens.argmax(dim=-1)
        length = int(eot.max()) + 1 if tokens.numel() else 1
        tokens = tokens[:, :length]
        x = self.token_embedding(tokens) + self.positional_embedding[:length]
        for block in self.transformer.resblocks:
            x = block(x, causal=True)
        x = self.ln_final(x)
        return x[torch.arange(x.shape[0], device=x.device), eot] @ self.text_projection
