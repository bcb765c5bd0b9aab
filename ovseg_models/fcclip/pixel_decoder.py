"""FC-CLIP / Mask2Former pixel decoder: a multi-scale deformable-attention encoder + one FPN level.

Plain PyTorch. The deformable attention computes what the official CUDA op and its PyTorch
reference (``F.grid_sample``: bilinear, zero padding, ``align_corners=False``) compute, as one
``F.grid_sample`` per level (``sampling="grid_sample"``, the official PyTorch reference's
formulation) or, by default, as one weighted gather (``sampling="gather"``, about 1.7x faster on
CPU): each (query, head) output is the sum over levels, points and the 4 bilinear corners of
``attention weight * corner weight * value row``, which ``F.embedding_bag`` (mode "sum",
``per_sample_weights``) does in one call over contiguous value rows (no PyTorch op does the
multi-scale sampling itself). The value's levels carry a zero border (:func:`pad_levels`, once
per layer), so that corner indices need no validity masks, and the index and weight arithmetic
runs coordinate-major (2.5x faster than per-corner masks). The two differ by float rounding only; that rounding can flip
single thresholded attention-mask pixels of the transformer decoder (logits within ~1e-6 of 0,
1-2 of millions per layer on the reference case), which moves one query's logits in that layer
by ~1e-4 (the parity tool allows such single-query moves, see ``ovseg_models.parity.fcclip``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .position_encoding import PositionEmbeddingSine

__all__ = [
    "CPU_CHUNK_TOKENS",
    "MSDeformAttn",
    "MSDeformAttnEncoderLayer",
    "MSDeformAttnPixelDecoder",
    "ConvNorm",
    "ms_deform_attn",
    "ms_deform_attn_gather",
    "pad_levels",
    "SAMPLING",
]


def pad_levels(value: torch.Tensor, spatial_shapes: Sequence[tuple[int, int]]) -> torch.Tensor:
    """value [N, S, M, D] -> each level zero-padded by one pixel before and two after on both axes,
    flattened again [N, sum (h+3)(w+3), M, D] (the layout :func:`ms_deform_attn_gather` reads)."""
    n, _, m, d = value.shape
    levels = value.split([h * w for h, w in spatial_shapes], dim=1)
    padded = [
        F.pad(v.reshape(n, h, w, m * d), (0, 0, 1, 2, 1, 2)).flatten(1, 2)
        for v, (h, w) in zip(levels, spatial_shapes, strict=True)
    ]
    return torch.cat(padded, 1).reshape(n, -1, m, d)


def ms_deform_attn_gather(
    value: torch.Tensor,
    spatial_shapes: Sequence[tuple[int, int]],
    sampling_locations: torch.Tensor,
    attention_weights: torch.Tensor,
    *,
    padded: bool = False,
) -> torch.Tensor:
    """Multi-scale deformable attention core (bilinear sampling with zero padding as one gather).

    value [N, S, M, D] (``padded``: already :func:`pad_levels`'s layout); sampling_locations
    [N, Lq, M, L, P, 2] in [0, 1] (x, y); attention_weights [N, Lq, M, L, P] -> [N, Lq, M*D].

    The levels carry a zero border (one pixel before, two after), and pixel coordinates are
    clamped into [-1, size]: a clamped coordinate only moves weight between zero rows, so every
    corner index is valid and no corner needs a validity mask (a dozen ops per call instead of
    forty; the weights of real pixels are exactly those of bilinear sampling with zero padding).
    """
    if not padded:
        value = pad_levels(value, spatial_shapes)
    n, sp, m, d = value.shape
    _, lq, _, num_levels, num_points, _ = sampling_locations.shape
    dev, dt = value.device, sampling_locations.dtype
    # Coordinates first ([2 (x, y), N, Lq, M, L, P]) and per-(head, level, point) constants of
    # shape [.., M, L, P]: every elementwise op below then broadcasts over outer dimensions only,
    # which CPU kernels vectorise (broadcasts over the trailing 2- or 4-long dimensions do not).
    hw = [(h, w) for h, w in spatial_shapes]
    per_level = (1, 1, 1, num_levels, 1)
    full = (1, 1, m, num_levels, num_points)
    sizes = torch.tensor([[w for _, w in hw], [h for h, _ in hw]], dtype=dt, device=dev)
    sizes = sizes.view(2, *per_level).expand(2, *full).contiguous()
    pix = (
        sampling_locations.movedim(-1, 0)
        .clone(memory_format=torch.contiguous_format)
        .mul_(sizes)
        .sub_(0.5)
        .clamp_(min=-1.0)
    )
    pix = torch.minimum(pix, sizes)
    c0 = pix.floor()
    f1 = pix.sub_(c0)  # weight of the second corner on each axis
    wx = torch.stack((1 - f1[0], f1[0]))  # [2 (x corner), N, Lq, M, L, P]
    wy = torch.stack((1 - f1[1], f1[1])).mul_(attention_weights)
    weight = wy[:, None] * wx[None]  # [2 (y corner), 2 (x corner), N, Lq, M, L, P]
    # row of padded pixel (x, y) of level l, head h, image i in value.reshape(N*Sp*M, D)
    widths = [w + 3 for _, w in hw]
    starts = [0]
    for (h, _), wp in zip(hw[:-1], widths[:-1], strict=True):
        starts.append(starts[-1] + (h + 3) * wp)
    itype = torch.int32 if n * sp * m < 2**31 else torch.int64
    row_stride = torch.tensor([wp * m for wp in widths], dtype=itype, device=dev).view(per_level).expand(full)
    start = torch.tensor([(st + wp + 1) * m for st, wp in zip(starts, widths, strict=True)], dtype=itype, device=dev)
    corner = torch.tensor([[[0, m], [wp * m, (wp + 1) * m]] for wp in widths], dtype=itype, device=dev)  # [L, 2, 2]
    offset = (
        (start.view(per_level) + torch.arange(m, dtype=itype, device=dev).view(1, 1, m, 1, 1)).expand(full)
        + corner.permute(1, 2, 0).reshape(2, 2, *per_level)
    ).contiguous()  # [2, 2, 1, 1, M, L, P]
    ci = c0.to(itype)
    first = ci[0] * m + ci[1] * row_stride.contiguous()
    if n > 1:
        first = first + (torch.arange(n, dtype=itype, device=dev) * (sp * m)).view(n, 1, 1, 1, 1)
    index = first[None, None] + offset
    # bags of 4*L*P samples per (image, query, head), contiguous
    bags = n * lq * m
    out = F.embedding_bag(
        index.view(4, bags, -1).transpose(0, 1).reshape(bags, -1),
        value.reshape(n * sp * m, d),
        mode="sum",
        per_sample_weights=weight.view(4, bags, -1).transpose(0, 1).reshape(bags, -1).to(value.dtype),
    )
    return out.view(n, lq, m * d)


def ms_deform_attn(
    value: torch.Tensor,
    spatial_shapes: Sequence[tuple[int, int]],
    sampling_locations: torch.Tensor,
    attention_weights: torch.Tensor,
) -> torch.Tensor:
    """Multi-scale deformable attention core with ``F.grid_sample`` per level (heads folded into the
    batch): the official PyTorch reference's formulation (and the reference of
    :func:`ms_deform_attn_gather`).

    value [N, S, M, D]; sampling_locations [N, Lq, M, L, P, 2] in [0, 1] (x, y);
    attention_weights [N, Lq, M, L, P] -> [N, Lq, M*D].
    """
    n, _, m, d = value.shape
    _, lq, _, num_levels, num_points, _ = sampling_locations.shape
    values = value.split([h * w for h, w in spatial_shapes], dim=1)
    # points-major grids [N*M, L, P, Lq, 2] so that samples come out as [N*M, D, P, Lq] and the
    # attention-weighted sum runs over contiguous [N*M, D, Lq] slices (no [.., L*P] stack + reduce)
    grids = (2 * sampling_locations - 1).permute(0, 2, 3, 4, 1, 5).flatten(0, 1)
    weights = attention_weights.permute(0, 2, 3, 4, 1).reshape(n * m, 1, num_levels, num_points, lq)
    out = value.new_zeros((n * m, d, lq))
    for lvl, (h, w) in enumerate(spatial_shapes):
        v = values[lvl].flatten(2).transpose(1, 2).reshape(n * m, d, h, w)
        s = F.grid_sample(v, grids[:, lvl], mode="bilinear", padding_mode="zeros", align_corners=False)
        for p in range(num_points):  # s: [N*M, D, P, Lq]
            out.addcmul_(s[:, :, p], weights[:, :, lvl, p])
    return out.reshape(n, m * d, lq).transpose(1, 2).contiguous()


#: deformable-attention sampling formulations (see the module docstring)
SAMPLING = {"grid_sample": ms_deform_attn, "gather": ms_deform_attn_gather}


class MSDeformAttn(nn.Module):
    """Multi-scale deformable attention (Deformable DETR), 2-D reference points.

    ``sampling``: "gather" (default) or "grid_sample" (:data:`SAMPLING`), settable after construction."""

    def __init__(
        self, d_model: int = 256, n_levels: int = 3, n_heads: int = 8, n_points: int = 4, *, sampling: str = "gather"
    ):
        super().__init__()
        if sampling not in SAMPLING:
            raise ValueError(f"sampling must be one of {sorted(SAMPLING)}, got {sampling!r}")
        self.sampling = sampling
        if d_model % n_heads:
            raise ValueError(f"d_model {d_model} must be divisible by n_heads {n_heads}")
        self.d_model, self.n_levels, self.n_heads, self.n_points = d_model, n_levels, n_heads, n_points
        self.sampling_offsets = nn.Linear(d_model, n_heads * n_levels * n_points * 2)
        self.attention_weights = nn.Linear(d_model, n_heads * n_levels * n_points)
        self.value_proj = nn.Linear(d_model, d_model)
        self.output_proj = nn.Linear(d_model, d_model)

    def project_value(self, value_in: torch.Tensor, spatial_shapes: Sequence[tuple[int, int]]) -> torch.Tensor:
        """[N, S, C] -> the sampled values [N, S, M, C/M], in the layout of the sampling formulation
        (zero-bordered levels for "gather", :func:`pad_levels`)."""
        n, s, _ = value_in.shape
        value = self.value_proj(value_in).reshape(n, s, self.n_heads, self.d_model // self.n_heads)
        return pad_levels(value, spatial_shapes) if self.sampling == "gather" else value

    def attend(
        self,
        query: torch.Tensor,
        reference_points: torch.Tensor,
        value: torch.Tensor,
        spatial_shapes: Sequence[tuple[int, int]],
        offset_normalizer: torch.Tensor,
    ) -> torch.Tensor:
        """Queries [N, Lq, C] over projected ``value`` (:meth:`project_value`) -> [N, Lq, C]."""
        n, lq, _ = query.shape
        offsets = self.sampling_offsets(query).reshape(n, lq, self.n_heads, self.n_levels, self.n_points, 2)
        weights = self.attention_weights(query).reshape(n, lq, self.n_heads, self.n_levels * self.n_points)
        weights = F.softmax(weights, -1).reshape(n, lq, self.n_heads, self.n_levels, self.n_points)
        locations = reference_points[:, :, None, :, None, :] + offsets / offset_normalizer[None, None, None, :, None, :]
        if self.sampling == "gather":
            out = ms_deform_attn_gather(value, spatial_shapes, locations, weights, padded=True)
        else:
            out = ms_deform_attn(value, spatial_shapes, locations, weights)
        return self.output_proj(out)

    def forward(
        self,
        query: torch.Tensor,
        reference_points: torch.Tensor,
        value_in: torch.Tensor,
        spatial_shapes: Sequence[tuple[int, int]],
        offset_normalizer: torch.Tensor,
    ) -> torch.Tensor:
        value = self.project_value(value_in, spatial_shapes)
        return self.attend(query, reference_points, value, spatial_shapes, offset_normalizer)


#: query tokens per chunk of an encoder layer on CPU (see :class:`MSDeformAttnEncoderLayer`)
CPU_CHUNK_TOKENS = 1024


class MSDeformAttnEncoderLayer(nn.Module):
    """Post-norm encoder layer: deformable self-attention + FFN (ReLU).

    Everything after the value projection is per query, so on CPU the queries run in chunks of
    ``chunk_tokens`` (default :data:`CPU_CHUNK_TOKENS`; None: one chunk): a chunk's offsets,
    samples and FFN activations then stay in the CPU caches between ops instead of going through
    memory once per op. The same arithmetic per query."""

    chunk_tokens: int | None = CPU_CHUNK_TOKENS

    def __init__(self, d_model: int = 256, d_ffn: int = 1024, n_levels: int = 3, n_heads: int = 8, n_points: int = 4):
        super().__init__()
        self.self_attn = MSDeformAttn(d_model, n_levels, n_heads, n_points)
        self.norm1 = nn.LayerNorm(d_model)
        self.linear1 = nn.Linear(d_model, d_ffn)
        self.linear2 = nn.Linear(d_ffn, d_model)
        self.norm2 = nn.LayerNorm(d_model)

    def _queries(self, src, pos, reference_points, value, spatial_shapes, offset_normalizer):
        src2 = self.self_attn.attend(src + pos, reference_points, value, spatial_shapes, offset_normalizer)
        src = self.norm1(src + src2)
        src2 = self.linear2(F.relu(self.linear1(src)))
        return self.norm2(src + src2)

    def forward(self, src, pos, reference_points, spatial_shapes, offset_normalizer):
        value = self.self_attn.project_value(src, spatial_shapes)
        s = src.shape[1]
        chunk = self.chunk_tokens if src.device.type == "cpu" and self.chunk_tokens else s
        if chunk >= s:
            return self._queries(src, pos, reference_points, value, spatial_shapes, offset_normalizer)
        out = torch.empty_like(src)
        for q0 in range(0, s, chunk):
            q = slice(q0, q0 + chunk)
            out[:, q] = self._queries(
                src[:, q], pos[:, q], reference_points[:, q], value, spatial_shapes, offset_normalizer
            )
        return out


class ConvNorm(nn.Sequential):
    """Conv2d (no bias) + GroupNorm(32) [+ ReLU]: detectron2's ``Conv2d(..., norm=GN)``."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, *, activation: bool = False, norm: str = "GN"
    ):
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=not norm)
        ]
        if norm:
            if norm != "GN":
                raise ValueError(f"only GN normalisation is supported, got {norm!r}")
            layers.append(nn.GroupNorm(32, out_channels))
        if activation:
            layers.append(nn.ReLU(inplace=True))  # on the normalisation's own output
        super().__init__(*layers)


def _reference_points(spatial_shapes, device) -> torch.Tensor:
    refs = []
    for h, w in spatial_shapes:
        ref_y, ref_x = torch.meshgrid(
            torch.linspace(0.5, h - 0.5, h, dtype=torch.float32, device=device),
            torch.linspace(0.5, w - 0.5, w, dtype=torch.float32, device=device),
            indexing="ij",
        )
        ref_y = ref_y.reshape(-1)[None] / torch.tensor(float(h), device=device)
        ref_x = ref_x.reshape(-1)[None] / torch.tensor(float(w), device=device)
        refs.append(torch.stack((ref_x, ref_y), -1))
    ref = torch.cat(refs, 1)  # [1, S, 2]
    return ref[:, :, None].expand(-1, -1, len(spatial_shapes), -1)


class MSDeformAttnPixelDecoder(nn.Module):
    """Pixel decoder: deformable encoder over ``transformer_in_features`` + FPN down to ``common_stride``.

    Returns ``(mask_features [B, mask_dim, H/4, W/4], multi_scale_features [3 x B, conv_dim, h, w])``
    with the multi-scale features ordered from low to high resolution (res5, res4, res3).
    """

    def __init__(
        self,
        *,
        in_channels: dict[str, int],
        in_strides: dict[str, int],
        transformer_in_features: Sequence[str],
        conv_dim: int = 256,
        mask_dim: int = 256,
        norm: str = "GN",
        enc_layers: int = 6,
        dim_feedforward: int = 1024,
        nheads: int = 8,
        n_points: int = 4,
        common_stride: int = 4,
    ):
        super().__init__()
        self.in_features = sorted(in_channels, key=lambda k: in_strides[k])
        self.transformer_in_features = sorted(transformer_in_features, key=lambda k: in_strides[k])
        num_levels = len(self.transformer_in_features)
        # low to high resolution (res5 first)
        self.input_proj = nn.ModuleList(
            nn.Sequential(nn.Conv2d(in_channels[f], conv_dim, kernel_size=1), nn.GroupNorm(32, conv_dim))
            for f in self.transformer_in_features[::-1]
        )
        self.level_embed = nn.Parameter(torch.zeros(num_levels, conv_dim))
        self.encoder_layers = nn.ModuleList(
            MSDeformAttnEncoderLayer(conv_dim, dim_feedforward, num_levels, nheads, n_points) for _ in range(enc_layers)
        )
        self.pe_layer = PositionEmbeddingSine(conv_dim // 2, normalize=True)
        self.mask_features = nn.Conv2d(conv_dim, mask_dim, kernel_size=1)
        self.num_output_levels = 3
        min_stride = min(in_strides[f] for f in self.transformer_in_features)
        num_fpn = 0
        while (common_stride << num_fpn) < min_stride:
            num_fpn += 1
        self.fpn_features = self.in_features[:num_fpn]
        # FPN levels in top-down order (lowest resolution first)
        self.lateral_convs = nn.ModuleList(
            ConvNorm(in_channels[f], conv_dim, 1, norm=norm) for f in self.fpn_features[::-1]
        )
        self.output_convs = nn.ModuleList(
            ConvNorm(conv_dim, conv_dim, 3, activation=True, norm=norm) for _ in self.fpn_features[::-1]
        )

    @classmethod
    def from_config(cls, cfg, in_channels: dict[str, int], in_strides: dict[str, int]) -> MSDeformAttnPixelDecoder:
        return cls(
            in_channels={f: in_channels[f] for f in cfg.in_features},
            in_strides={f: in_strides[f] for f in cfg.in_features},
            transformer_in_features=cfg.transformer_in_features,
            conv_dim=cfg.conv_dim,
            mask_dim=cfg.mask_dim,
            norm=cfg.norm,
            enc_layers=cfg.transformer_enc_layers,
            dim_feedforward=cfg.transformer_dim_feedforward,
            nheads=cfg.transformer_nheads,
            n_points=cfg.transformer_n_points,
            common_stride=cfg.common_stride,
        )

    def forward(self, features: dict[str, torch.Tensor]):
        srcs, pos = [], []
        for idx, f in enumerate(self.transformer_in_features[::-1]):
            x = features[f].float()
            srcs.append(self.input_proj[idx](x))
            pos.append(self.pe_layer(x))
        spatial_shapes = [tuple(s.shape[-2:]) for s in srcs]
        bs = srcs[0].shape[0]
        src_flat = torch.cat([s.flatten(2).transpose(1, 2) for s in srcs], 1)
        pos_flat = torch.cat(
            [p.flatten(2).transpose(1, 2) + self.level_embed[lvl].reshape(1, 1, -1) for lvl, p in enumerate(pos)], 1
        )
        device = src_flat.device
        reference_points = _reference_points(spatial_shapes, device).expand(bs, -1, -1, -1)
        offset_normalizer = torch.tensor([[w, h] for h, w in spatial_shapes], dtype=torch.long, device=device)
        y = src_flat
        for layer in self.encoder_layers:
            y = layer(y, pos_flat, reference_points, spatial_shapes, offset_normalizer)
        out = [
            z.transpose(1, 2).reshape(bs, -1, h, w)
            for z, (h, w) in zip(y.split([h * w for h, w in spatial_shapes], dim=1), spatial_shapes, strict=False)
        ]
        del srcs, pos, src_flat, pos_flat, y  # peak memory: the FPN's full-resolution maps come next
        for idx, f in enumerate(self.fpn_features[::-1]):
            cur = self.lateral_convs[idx](features[f].float())
            # the encoder's levels are channels-last views, which CPU bilinear resizing handles 4x
            # slower than a contiguous copy of them (195 vs 50 ms at case0's res3)
            cur += F.interpolate(out[-1].contiguous(), size=cur.shape[-2:], mode="bilinear", align_corners=False)
            # the output conv's layers one by one, so that each input is freed as soon as it is read
            # (through ``nn.Sequential`` the first would live to the end: 59 MB more at case0's res2)
            for layer in self.output_convs[idx].children():
                cur = layer(cur)
            out.append(cur)
            del cur
        return self.mask_features(out[-1]), out[: self.num_output_levels]
