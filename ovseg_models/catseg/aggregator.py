"""CAT-Seg cost aggregation (``cat_seg/modeling/transformer/model.py``: ``Aggregator``), in plain PyTorch.

Parameter names and shapes are those of the official module, so an official state_dict loads
key for key. The computation is the official one, reorganised for speed and bounded memory:

* Internal layout is channels-last ``(B, T, H, W, C)`` (B images, T classes).
* Guidance concatenated to queries/keys is identical for every class (spatial blocks) or every
  pixel (class blocks): ``Linear([x; g]) = W_x x + (W_g g + b)`` with the second term computed
  once and broadcast. Same result up to float rounding.
* Class padding (``pad_len``, 256 in the released models): the official code appends
  ``pad_len - T`` copies of one learnable token (and guidance) before the class attention and
  drops them afterwards. The copies are identical, so their keys and values are too; with linear
  attention they enter only through ``sum_s K_s V_s^T`` and ``sum_s K_s``, which here get the
  padding term multiplied by its count instead of materialising the copies (for full attention
  the same holds with a ``log(count)`` logit offset). Work scales with T, not with ``pad_len``.
* With more than ``pad_len`` classes the official top-``pad_len`` class selection per image is
  applied; unselected classes get logit -100 as in the official code.
* Per-class stages (cost embedding, spatial Swin blocks, upsampling decoder) run in chunks of
  classes, and the per-pixel class attention in chunks of rows, so memory stays bounded for
  large vocabularies. On CPU the default chunk is cache-sized (:data:`CPU_CHUNK_CLASSES` class
  maps over all images; the class attention in chunks of :data:`CPU_CHUNK_BYTES`): a chunk's
  activations then stay in the CPU caches between the ops of a block, which made these stages
  2-2.5x faster than one chunk of 150 classes at ViT-B (2 to 16 classes per chunk all within
  10%). Elsewhere the chunk comes from a memory budget.
* The decoder's upsampling and first convolution run as one transposed convolution per class,
  the guidance's share once per image (:class:`Up`).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Sequence
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "Aggregator",
    "AggregatorLayer",
    "CPU_CHUNK_CLASSES",
    "ClassTransformerLayer",
    "SwinTransformerBlock",
    "SwinTransformerBlockWrapper",
    "shifted_window_mask",
]

#: activation budget per chunk (bytes) used when no chunk size is given (not on CPU)
DEFAULT_CHUNK_BYTES = 512 * 2**20
#: classes per chunk of the per-class stages on CPU when no chunk size is given, divided among
#: the images of a batch (cache-sized; see the module docstring)
CPU_CHUNK_CLASSES = 8
#: activation budget per chunk of the class attention on CPU when no chunk size is given
CPU_CHUNK_BYTES = 8 * 2**20


def shifted_window_mask(height: int, width: int, window: int, shift: int) -> torch.Tensor:
    """The Swin shifted-window attention mask ``(num_windows, window*window, window*window)``.

    0 where two positions of a window come from the same region before the cyclic shift,
    -100 otherwise (the official constants).
    """
    img = torch.zeros(1, height, width, 1)
    cnt = 0
    for hs in (slice(0, -window), slice(-window, -shift), slice(-shift, None)):
        for ws in (slice(0, -window), slice(-window, -shift), slice(-shift, None)):
            img[:, hs, ws, :] = cnt
            cnt += 1
    win = img.view(1, height // window, window, width // window, window, 1)
    win = win.permute(0, 1, 3, 2, 4, 5).reshape(-1, window * window)
    mask = win.unsqueeze(1) - win.unsqueeze(2)
    return mask.masked_fill(mask != 0, -100.0).masked_fill(mask == 0, 0.0)


class _Mlp(nn.Module):
    """timm ``Mlp`` (fc1, GELU, fc2); its Identity norm and dropouts hold no parameters."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class WindowAttention(nn.Module):
    """Parameters of the official guided window attention (q/k see ``[x; guidance]``, v sees x)."""

    def __init__(self, dim: int, guidance_dim: int, num_heads: int):
        super().__init__()
        self.dim, self.num_heads = dim, num_heads
        self.q = nn.Linear(dim + guidance_dim, dim)
        self.k = nn.Linear(dim + guidance_dim, dim)
        self.v = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)


def _split_linear(layer: nn.Linear, x: torch.Tensor, g_term: torch.Tensor | None) -> torch.Tensor:
    """``layer(cat([x, g]))`` given ``g_term = W_g g + b`` (None: no guidance, plain layer)."""
    if g_term is None:
        return layer(x)
    return F.linear(x, layer.weight[:, : x.shape[-1]]) + g_term


def _guidance_term(layer: nn.Linear, dim: int, g: torch.Tensor) -> torch.Tensor:
    return F.linear(g, layer.weight[:, dim:], layer.bias)


class SwinTransformerBlock(nn.Module):
    """Swin block with appearance guidance; attention within each class's cost slice."""

    def __init__(
        self,
        dim: int,
        guidance_dim: int,
        input_resolution: Sequence[int],
        *,
        num_heads: int = 4,
        window_size: int = 7,
        shift_size: int = 0,
        mlp_ratio: float = 4.0,
    ):
        super().__init__()
        self.dim, self.guidance_dim = dim, guidance_dim
        self.input_resolution = tuple(input_resolution)
        self.window_size, self.shift_size = window_size, shift_size
        if min(self.input_resolution) <= self.window_size:
            self.shift_size = 0
            self.window_size = min(self.input_resolution)
        if not 0 <= self.shift_size < self.window_size:
            raise ValueError("shift_size must be in [0, window_size)")
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, guidance_dim, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = _Mlp(dim, int(dim * mlp_ratio))
        if self.shift_size > 0:
            h, w = self.input_resolution
            self.register_buffer("attn_mask", shifted_window_mask(h, w, self.window_size, self.shift_size))
        else:
            self.attn_mask = None

    def _windows(self, t: torch.Tensor) -> torch.Tensor:
        # (B, T, H, W, C) -> (nW, B*T*heads, ws*ws, hd): windows lead so that the (nW, 1, L, L)
        # mask broadcasts and SDPA sees 4-D inputs (the fused CPU kernel)
        b, n, h, w, c = t.shape
        ws, heads = self.window_size, self.attn.num_heads
        t = t.reshape(b * n, h // ws, ws, w // ws, ws, heads, c // heads)
        t = t.permute(1, 3, 0, 5, 2, 4, 6)
        return t.reshape((h // ws) * (w // ws), b * n * heads, ws * ws, c // heads)

    def _unwindows(self, t: torch.Tensor, b: int, n: int, h: int, w: int) -> torch.Tensor:
        ws, heads = self.window_size, self.attn.num_heads
        hd = t.shape[-1]
        t = t.reshape(h // ws, w // ws, b * n, heads, ws, ws, hd).permute(2, 0, 4, 1, 5, 3, 6)
        return t.reshape(b, n, h, w, heads * hd)

    def forward(self, x: torch.Tensor, guidance: torch.Tensor | None) -> torch.Tensor:
        """``x``: (B, T, H, W, C); ``guidance``: normalised appearance guidance (B, H, W, Cg) or None."""
        b, n, h, w, c = x.shape
        if (h, w) != self.input_resolution:
            raise ValueError(f"expected a {self.input_resolution} cost volume, got {(h, w)}")
        xn = self.norm1(x)
        gq = gk = None
        if guidance is not None:
            gq = _guidance_term(self.attn.q, c, guidance)[:, None]
            gk = _guidance_term(self.attn.k, c, guidance)[:, None]
        q = _split_linear(self.attn.q, xn, gq)
        k = _split_linear(self.attn.k, xn, gk)
        v = self.attn.v(xn)
        s = self.shift_size
        if s:
            q, k, v = (torch.roll(t, shifts=(-s, -s), dims=(2, 3)) for t in (q, k, v))
        mask = None if self.attn_mask is None else self.attn_mask.to(q.dtype)[:, None]
        out = F.scaled_dot_product_attention(self._windows(q), self._windows(k), self._windows(v), attn_mask=mask)
        out = self.attn.proj(self._unwindows(out, b, n, h, w))
        if s:
            out = torch.roll(out, shifts=(s, s), dims=(2, 3))
        x = x + out
        return x + self.mlp(self.norm2(x))


class SwinTransformerBlockWrapper(nn.Module):
    """Window block then shifted-window block, sharing the normalised appearance guidance."""

    def __init__(
        self, dim: int, guidance_dim: int, input_resolution: Sequence[int], nheads: int = 4, window_size: int = 5
    ):
        super().__init__()
        self.block_1 = SwinTransformerBlock(
            dim, guidance_dim, input_resolution, num_heads=nheads, window_size=window_size, shift_size=0
        )
        self.block_2 = SwinTransformerBlock(
            dim, guidance_dim, input_resolution, num_heads=nheads, window_size=window_size, shift_size=window_size // 2
        )
        self.guidance_norm = nn.LayerNorm(guidance_dim) if guidance_dim > 0 else None

    def normalized_guidance(self, guidance: torch.Tensor | None) -> torch.Tensor | None:
        """(B, Cg, H, W) projected guidance -> (B, H, W, Cg) after ``guidance_norm``."""
        if guidance is None or self.guidance_norm is None:
            return None
        return self.guidance_norm(guidance.permute(0, 2, 3, 1))

    def forward(self, x: torch.Tensor, guidance: torch.Tensor | None) -> torch.Tensor:
        """``x``: (B, T, H, W, C); ``guidance``: output of :meth:`normalized_guidance`."""
        return self.block_2(self.block_1(x, guidance), guidance)


def _elu1(x: torch.Tensor) -> torch.Tensor:
    """``elu(x) + 1`` (the linear attention's feature map) as ``exp(min(x, 0)) + max(x, 0)``: the
    same values up to float rounding, 0.6 of ``F.elu``'s CPU time here."""
    return torch.exp(x.clamp(max=0)) + F.relu(x)


class AttentionLayer(nn.Module):
    def __init__(self, hidden_dim: int, guidance_dim: int, nheads: int = 8, attention_type: str = "linear"):
        super().__init__()
        if attention_type not in ("linear", "full"):
            raise ValueError(f"attention_type must be 'linear' or 'full', got {attention_type!r}")
        self.nheads, self.attention_type = nheads, attention_type
        self.q = nn.Linear(hidden_dim + guidance_dim, hidden_dim)
        self.k = nn.Linear(hidden_dim + guidance_dim, hidden_dim)
        self.v = nn.Linear(hidden_dim, hidden_dim)
        self.eps = 1e-6


class ClassTransformerLayer(nn.Module):
    """Class aggregation: a transformer over the class axis at every (pooled) pixel, no position
    embedding, text guidance concatenated to queries and keys."""

    def __init__(
        self,
        hidden_dim: int = 64,
        guidance_dim: int = 64,
        nheads: int = 8,
        attention_type: str = "linear",
        pad_len: int = 256,
    ):
        super().__init__()
        self.attention = AttentionLayer(hidden_dim, guidance_dim, nheads=nheads, attention_type=attention_type)
        self.MLP = nn.Sequential(
            nn.Linear(hidden_dim, hidden_dim * 4), nn.ReLU(), nn.Linear(hidden_dim * 4, hidden_dim)
        )
        self.norm1 = nn.LayerNorm(hidden_dim)
        self.norm2 = nn.LayerNorm(hidden_dim)
        self.pad_len = pad_len
        self.padding_tokens = nn.Parameter(torch.zeros(1, 1, hidden_dim)) if pad_len > 0 else None
        self.padding_guidance = (
            nn.Parameter(torch.zeros(1, 1, guidance_dim)) if pad_len > 0 and guidance_dim > 0 else None
        )

    def _padding_kv(self, c: int, n_pad: int, use_guidance: bool):
        if n_pad <= 0 or self.padding_tokens is None:
            return None
        a = self.attention
        pn = self.norm1(self.padding_tokens.reshape(1, c))
        if use_guidance and self.padding_guidance is not None:
            pg = self.padding_guidance.reshape(1, -1)
            kp = F.linear(pn, a.k.weight[:, :c]) + F.linear(pg, a.k.weight[:, c:], a.k.bias)
        else:
            kp = a.k(pn)
        vp = a.v(pn)
        heads = a.nheads
        return kp.reshape(heads, c // heads), vp.reshape(heads, c // heads)

    def _attend(self, xn: torch.Tensor, gq, gk, pad, n_pad: int) -> torch.Tensor:
        """xn: (B, T, h, W, C) normalised tokens; attention over T at every pixel."""
        a = self.attention
        b, n, hh, ww, c = xn.shape
        heads, hd = a.nheads, c // a.nheads
        q = _split_linear(a.q, xn, gq).reshape(b, n, hh, ww, heads, hd)
        k = _split_linear(a.k, xn, gk).reshape(b, n, hh, ww, heads, hd)
        v = a.v(xn).reshape(b, n, hh, ww, heads, hd)
        if a.attention_type == "linear":
            length = n + n_pad
            qf, kf = _elu1(q), _elu1(k)
            v = v / length
            kv = torch.einsum("bthwnd,bthwne->bhwnde", kf, v)
            ksum = kf.sum(dim=1)
            if pad is not None:
                kp, vp = pad
                kpf = _elu1(kp)
                kv = kv + n_pad * (kpf[:, :, None] * (vp / length)[:, None, :])
                ksum = ksum + n_pad * kpf
            z = 1.0 / (torch.einsum("bthwnd,bhwnd->bthwn", qf, ksum) + a.eps)
            out = torch.einsum("bthwnd,bhwnde->bthwne", qf, kv) * z[..., None] * length
        else:
            scale = 1.0 / math.sqrt(hd)
            logits = torch.einsum("bthwnd,bshwnd->bhwnts", q, k) * scale
            vv = v.permute(0, 2, 3, 4, 1, 5)  # b h w n s d
            if pad is not None:
                kp, vp = pad
                pl = torch.einsum("bthwnd,nd->bhwnt", q, kp)[..., None] * scale + math.log(n_pad)
                logits = torch.cat([logits, pl], dim=-1)
                vv = torch.cat([vv, vp[None, None, None, :, None, :].expand(b, hh, ww, heads, 1, hd)], dim=-2)
            attn = logits.softmax(dim=-1)
            out = (attn @ vv).permute(0, 4, 1, 2, 3, 5)
        return out.reshape(b, n, hh, ww, c)

    def forward(
        self,
        x: torch.Tensor,
        guidance: torch.Tensor | None,
        *,
        pooling_size: Sequence[int] = (1, 1),
        max_chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    ) -> torch.Tensor:
        """``x``: (B, T, H, W, C); ``guidance``: projected text guidance (B, T, Cg) or None."""
        b, n, h, w, c = x.shape
        ph, pw = pooling_size
        pooled = (ph, pw) != (1, 1)
        if pooled:
            xp = F.avg_pool2d(x.permute(0, 1, 4, 2, 3).reshape(b * n, c, h, w), (ph, pw))
            hp, wp = xp.shape[-2:]
            xp = xp.reshape(b, n, c, hp, wp).permute(0, 1, 3, 4, 2)
        else:
            xp, hp, wp = x, h, w
        n_pad = self.pad_len - n if (self.padding_tokens is not None and n < self.pad_len) else 0
        use_g = guidance is not None
        a = self.attention
        gq = _guidance_term(a.q, c, guidance)[:, :, None, None] if guidance is not None else None
        gk = _guidance_term(a.k, c, guidance)[:, :, None, None] if guidance is not None else None
        pad = self._padding_kv(c, n_pad, use_g)
        # chunks of rows, and of images when one row of all is too large: the MLP hidden layer
        # (4C) dominates
        per_row = max(1, n * wp * c * 4 * 4)
        views = b if b * per_row <= max_chunk_bytes else 1
        rows = max(1, min(hp, max_chunk_bytes // (views * per_row)))
        out = torch.empty_like(xp)
        # all images at once as a full slice: a traced graph (the ONNX export) keeps its batch dynamic
        for v in [slice(None)] if views == b else [slice(v0, v0 + 1) for v0 in range(b)]:
            gqv = gq[v] if gq is not None else None
            gkv = gk[v] if gk is not None else None
            for r0 in range(0, hp, rows):
                xr = xp[v, :, r0 : r0 + rows]
                yr = xr + self._attend(self.norm1(xr), gqv, gkv, pad, n_pad)
                out[v, :, r0 : r0 + rows] = yr + self.MLP(self.norm2(yr))
        if pooled:
            up = out.permute(0, 1, 4, 2, 3).reshape(b * n, c, hp, wp)
            up = F.interpolate(up, size=(h, w), mode="bilinear", align_corners=True)
            out = up.reshape(b, n, c, h, w).permute(0, 1, 3, 4, 2)
        return x + out


class AggregatorLayer(nn.Module):
    def __init__(
        self,
        hidden_dim: int = 64,
        text_guidance_dim: int = 512,
        appearance_guidance: int = 512,
        nheads: int = 4,
        input_resolution: Sequence[int] = (20, 20),
        window_size: int = 10,
        attention_type: str = "linear",
        pad_len: int = 256,
    ):
        super().__init__()
        self.swin_block = SwinTransformerBlockWrapper(
            hidden_dim, appearance_guidance, input_resolution, nheads, window_size
        )
        self.attention = ClassTransformerLayer(
            hidden_dim, text_guidance_dim, nheads=nheads, attention_type=attention_type, pad_len=pad_len
        )


class DoubleConv(nn.Module):
    """(conv => GN => ReLU) * 2, as the official decoder."""

    def __init__(self, in_channels: int, out_channels: int, mid_channels: int | None = None):
        super().__init__()
        mid = mid_channels or out_channels
        self.double_conv = nn.Sequential(
            nn.Conv2d(in_channels, mid, kernel_size=3, padding=1, bias=False),
            nn.GroupNorm(mid // 16, mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, out_channels, kernel_size=3, padding=1, bias=False),
            nn.GroupNorm(mid // 16, mid),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.double_conv(x)


def _phase_taps() -> torch.Tensor:
    """``S[a, dy, k, q]`` = 1 where the 3x3 tap ``dy`` (0..2 for -1..1) at output row ``2r + a``
    of a x2 upsampled map reads the transposed convolution's phase ``q`` of input row
    ``r + (a + dy - 1) // 2``, which a stride-2, padding-1 transposed convolution reaches with its
    kernel row ``k`` (0..3); the same table serves columns."""
    taps = torch.zeros(2, 3, 4, 2)
    for a in range(2):
        for dy in range(3):
            t = a + dy - 1  # upsampled row 2r + a + dy - 1 = 2 (r + t // 2) + t % 2
            taps[a, dy, a + 1 - 2 * (t // 2), t % 2] = 1.0
    return taps


_PHASE_TAPS = _phase_taps()


class Up(nn.Module):
    """x2 transposed-conv upsampling, concatenation of guidance, double conv.

    By default (``fused = True``) the transposed convolution (kernel 2, stride 2) and the first
    3x3 convolution run as one transposed convolution (kernel 4, stride 2, padding 1) on the input,
    and the guidance's share of that 3x3 convolution, identical for every class, runs once per
    image (:meth:`guidance_term`): ``conv3x3([convT(x); g]) = fused(x) +
    conv3x3_g(g) + bias map``, where the bias map carries the transposed convolution's bias
    through the 3x3 taps that fall inside the image. Same computation up to float rounding, 38%
    of the two layers' multiply-adds per class at ViT-B, no upsampled or concatenated per-class
    tensor (the decoder ran 3x faster at 150 classes).
    ``fused = False`` is the official order of operations.
    """

    fused = True

    def __init__(self, in_channels: int, out_channels: int, guidance_channels: int):
        super().__init__()
        if in_channels <= guidance_channels:
            # the official layout: the transposed convolution keeps in - guidance channels so that the
            # concatenation with the projected guidance has in_channels again; with none left, oneDNN
            # fails at the first forward ("could not create a primitive descriptor ... deconvolution")
            raise ValueError(
                f"decoder stage with {in_channels} input channels and {guidance_channels} guidance "
                f"channels: the upsampling needs in_channels > guidance_channels"
            )
        self.up = nn.ConvTranspose2d(in_channels, in_channels - guidance_channels, kernel_size=2, stride=2)
        self.conv = DoubleConv(in_channels, out_channels)

    @property
    def first_conv(self) -> nn.Conv2d:
        """The double convolution's first 3x3 convolution (no bias)."""
        return cast(nn.Conv2d, self.conv.double_conv[0])

    def guidance_term(self, guidance: torch.Tensor | None, size: Sequence[int]) -> torch.Tensor:
        """What the first convolution adds, per image, to the fused per-class convolution at the
        upsampled ``size``: the guidance's channels (B, O, 2H, 2W), or without guidance (1, O, 2H, 2W),
        plus the transposed convolution's bias through the taps inside the image."""
        conv = self.first_conv
        cu = self.up.out_channels
        if guidance is None and conv.in_channels != cu:  # the official concatenation would fail too
            raise ValueError(f"this decoder stage needs {conv.in_channels - cu} guidance channels, got none")
        tap_bias = torch.einsum("ocyx,c->oyx", conv.weight[:, :cu], self.up.bias)[:, None]
        ones = conv.weight.new_ones(1, 1, *size)
        term = F.conv2d(ones, tap_bias, padding=1)
        if guidance is not None:
            term = term + F.conv2d(guidance, conv.weight[:, cu:], padding=1)
        return term.contiguous(memory_format=torch.channels_last)

    def fused_conv(self, x: torch.Tensor) -> torch.Tensor:
        """The per-class part of ``conv3x3(convT(x))``: (N, C, H, W) -> (N, 2H, 2W, O), channels last.

        One transposed convolution (kernel 4, stride 2, padding 1): each output phase reads the
        2x2 input pixels its 3x3 taps reach, through both layers' weights combined."""
        conv = self.first_conv
        taps = _PHASE_TAPS.to(x.dtype)
        k = torch.einsum(
            "aykp,bxlq,ocyx,icpq->iokl", taps, taps, conv.weight[:, : self.up.out_channels], self.up.weight
        )
        y = F.conv_transpose2d(x.contiguous(memory_format=torch.channels_last), k, stride=2, padding=1)
        return y.permute(0, 2, 3, 1)

    def forward(
        self, x: torch.Tensor, guidance: torch.Tensor | None = None, *, term: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``x`` (N, C, H, W); ``guidance`` (N, Cg, 2H, 2W) or None. Fused, ``term`` (from
        :meth:`guidance_term`: one per row of ``x``, or one per image for images' classes in
        consecutive rows, or a single one) replaces ``guidance``."""
        if not self.fused:
            x = self.up(x)
            if guidance is not None:
                x = torch.cat([x, guidance], dim=1)
            return self.conv(x)
        if term is None:
            term = self.guidance_term(guidance, (2 * x.shape[-2], 2 * x.shape[-1]))
        y = self.fused_conv(x)
        t = term.permute(0, 2, 3, 1)  # (B, 2H, 2W, O), as y
        if t.shape[0] == y.shape[0]:
            y = y + t
        else:
            y = (y.reshape(t.shape[0], -1, *y.shape[1:]) + t[:, None]).reshape(y.shape)
        rest = cast(nn.Sequential, self.conv.double_conv[1:])
        return rest(y.permute(0, 3, 1, 2))


def _check_decoder_dims(hidden_dim: int, decoder_dims: Sequence[int], guidance_proj_dims: Sequence[int]) -> None:
    """Channel constraints of the official decoder, checked at construction with the config's field names.

    Stage ``i`` upsamples its input (``hidden_dim``, then ``decoder_dims[0]``) by a transposed
    convolution to ``input - decoder_guidance_proj_dims[i]`` channels and concatenates the projected
    guidance; its double convolution normalises with ``GroupNorm(decoder_dims[i] // 16)``.
    """
    inputs = (("hidden_dim", hidden_dim), ("decoder_dims[0]", decoder_dims[0]))
    for i, (name, cin) in enumerate(inputs):
        g = guidance_proj_dims[i]
        if cin <= g:
            raise ValueError(
                f"CAT-Seg decoder stage {i + 1}: {name}={cin} must exceed "
                f"decoder_guidance_proj_dims[{i}]={g} (the transposed convolution would have "
                f"{cin - g} output channels)"
            )
    for i, d in enumerate(decoder_dims):
        if d < 16 or d % (d // 16):
            raise ValueError(
                f"CAT-Seg decoder_dims[{i}]={d}: the decoder's GroupNorm uses {d} // 16 groups, "
                "so it must be at least 16 and divisible by that group count"
            )


def _null_timer(name: str):
    return contextlib.nullcontext()


class Aggregator(nn.Module):
    """Cost aggregation: cost volume -> embedding -> N x (spatial Swin, class transformer) -> decoder.

    ``cpu_chunks`` (default True): cache-sized chunks on CPU when no chunk size is given (see the
    module docstring); False: one chunk within the memory budget, as on other devices."""

    cpu_chunks = True

    def __init__(
        self,
        *,
        text_guidance_dim: int = 512,
        text_guidance_proj_dim: int = 128,
        appearance_guidance_dim: int = 512,
        appearance_guidance_proj_dim: int = 128,
        decoder_dims: Sequence[int] = (64, 32),
        decoder_guidance_dims: Sequence[int] = (256, 128),
        decoder_guidance_proj_dims: Sequence[int] = (32, 16),
        num_layers: int = 4,
        nheads: int = 4,
        hidden_dim: int = 128,
        pooling_size: Sequence[int] = (6, 6),
        feature_resolution: Sequence[int] = (24, 24),
        window_size: int = 12,
        attention_type: str = "linear",
        prompt_channel: int = 1,
        pad_len: int = 256,
    ):
        super().__init__()
        _check_decoder_dims(hidden_dim, decoder_dims, decoder_guidance_proj_dims)
        self.num_layers, self.hidden_dim = num_layers, hidden_dim
        self.pooling_size = tuple(pooling_size)
        self.feature_resolution = tuple(feature_resolution)
        self.prompt_channel, self.pad_len = prompt_channel, pad_len
        self.layers = nn.ModuleList(
            AggregatorLayer(
                hidden_dim=hidden_dim,
                text_guidance_dim=text_guidance_proj_dim,
                appearance_guidance=appearance_guidance_proj_dim,
                nheads=nheads,
                input_resolution=feature_resolution,
                window_size=window_size,
                attention_type=attention_type,
                pad_len=pad_len,
            )
            for _ in range(num_layers)
        )
        self.conv1 = nn.Conv2d(prompt_channel, hidden_dim, kernel_size=7, stride=1, padding=3)
        self.guidance_projection = (
            nn.Sequential(
                nn.Conv2d(appearance_guidance_dim, appearance_guidance_proj_dim, kernel_size=3, stride=1, padding=1),
                nn.ReLU(),
            )
            if appearance_guidance_dim > 0
            else None
        )
        self.text_guidance_projection = (
            nn.Sequential(nn.Linear(text_guidance_dim, text_guidance_proj_dim), nn.ReLU())
            if text_guidance_dim > 0
            else None
        )
        self.decoder_guidance_projection = (
            nn.ModuleList(
                nn.Sequential(nn.Conv2d(d, dp, kernel_size=3, stride=1, padding=1), nn.ReLU())
                for d, dp in zip(decoder_guidance_dims, decoder_guidance_proj_dims, strict=False)
            )
            if decoder_guidance_dims[0] > 0
            else None
        )
        self.decoder1 = Up(hidden_dim, decoder_dims[0], decoder_guidance_proj_dims[0])
        self.decoder2 = Up(decoder_dims[0], decoder_dims[1], decoder_guidance_proj_dims[1])
        self.head = nn.Conv2d(decoder_dims[1], 1, kernel_size=3, stride=1, padding=1)

    @classmethod
    def from_config(cls, cfg) -> Aggregator:
        """From a :class:`~ovseg_models.catseg.configs.CATSegConfig`."""
        return cls(
            text_guidance_dim=cfg.text_guidance_dim,
            text_guidance_proj_dim=cfg.text_guidance_proj_dim,
            appearance_guidance_dim=cfg.appearance_guidance_dim,
            appearance_guidance_proj_dim=cfg.appearance_guidance_proj_dim,
            decoder_dims=cfg.decoder_dims,
            decoder_guidance_dims=cfg.decoder_guidance_dims,
            decoder_guidance_proj_dims=cfg.decoder_guidance_proj_dims,
            num_layers=cfg.num_layers,
            nheads=cfg.num_heads,
            hidden_dim=cfg.hidden_dim,
            pooling_size=cfg.pooling_size,
            feature_resolution=cfg.feature_resolution,
            window_size=cfg.window_size,
            attention_type=cfg.attention_type,
            prompt_channel=cfg.prompt_channel,
            pad_len=cfg.pad_len,
        )

    # -- pieces ----------------------------------------------------------------------------
    @staticmethod
    def correlation(img_feats: torch.Tensor, text_feats: torch.Tensor) -> torch.Tensor:
        """Cosine cost volume ``(B, P, T, H, W)`` of image (B, C, H, W) and text (B, T, P, C) features."""
        img = F.normalize(img_feats, dim=1)
        txt = F.normalize(text_feats, dim=-1)
        return torch.einsum("bchw,btpc->bpthw", img, txt)

    def select_classes(self, corr: torch.Tensor) -> torch.Tensor | None:
        """Official top-``pad_len`` selection (by max cosine) when there are more classes than ``pad_len``."""
        if self.pad_len <= 0 or corr.shape[2] <= self.pad_len:
            return None
        score = corr.permute(0, 2, 1, 3, 4).flatten(-3).max(dim=-1)[0]
        return score.topk(self.pad_len, dim=-1, sorted=False)[1]

    def _chunk(self, per_item_bytes: int, total: int, chunk: int | None, budget: int) -> int:
        if chunk:
            return max(1, min(total, chunk))
        return max(1, min(total, budget // max(1, per_item_bytes)))

    def forward(
        self,
        img_feats: torch.Tensor,
        text_feats: torch.Tensor,
        guidance: Sequence[torch.Tensor | None],
        *,
        pooling_size: Sequence[int] | None = None,
        chunk_classes: int | None = None,
        max_chunk_bytes: int = DEFAULT_CHUNK_BYTES,
        timer: Callable | None = None,
        intermediates: dict | None = None,
    ) -> torch.Tensor:
        """Per-class logits ``(B, T, 4H, 4W)``.

        Args:
            img_feats: dense CLIP image features (B, C, H, W).
            text_feats: L2-normalised text embeddings (T, P, C) shared by all images, or (B, T, P, C).
            guidance: [appearance (B, Ca, H, W), decoder guidance at 2x and 4x] (entries may be None).
            pooling_size: class-attention pooling (default: the constructor's).
            chunk_classes: classes per chunk in per-class stages (default: on CPU
                :data:`CPU_CHUNK_CLASSES` over the batch, elsewhere from ``max_chunk_bytes``).
            timer: ``timer(name)`` context manager for the stages ``cost_volume``, ``aggregation``,
                ``decoder``.
            intermediates: if given, receives ``cost_volume`` (B, P, T, H, W) and ``selected``.
        """
        timer = timer or _null_timer
        pooling_size = tuple(pooling_size or self.pooling_size)
        b = img_feats.shape[0]
        class_chunk_bytes = max_chunk_bytes
        if chunk_classes is None and self.cpu_chunks and img_feats.device.type == "cpu":
            chunk_classes = max(1, CPU_CHUNK_CLASSES // b)
            class_chunk_bytes = min(max_chunk_bytes, CPU_CHUNK_BYTES)
        if text_feats.dim() == 3:
            text_feats = text_feats.unsqueeze(0).expand(b, -1, -1, -1)
        if text_feats.shape[2] != self.prompt_channel:
            raise ValueError(
                f"text embeddings have {text_feats.shape[2]} prompt channels, the model expects {self.prompt_channel}"
            )
        n_total = text_feats.shape[1]
        with timer("cost_volume"):
            corr = self.correlation(img_feats, text_feats)
            if intermediates is not None:
                intermediates["cost_volume"] = corr
            selected = self.select_classes(corr)
            if selected is not None:
                text_feats = torch.gather(
                    F.normalize(text_feats, dim=-1), 1, selected[..., None, None].expand(-1, -1, *text_feats.shape[-2:])
                )
                corr = torch.gather(
                    corr, 2, selected[:, None, :, None, None].expand(-1, corr.shape[1], -1, *corr.shape[-2:])
                )
            if intermediates is not None:
                intermediates["selected"] = selected
            n = text_feats.shape[1]
            _, p, _, h, w = corr.shape
            c = self.hidden_dim
            per_class = b * h * w * c * 4 * 2
            ct = self._chunk(per_class, n, chunk_classes, max_chunk_bytes)
            # one chunk: no slice writes (what the ONNX export traces, its class count an input)
            if ct >= n:
                e = self.conv1(corr.permute(0, 2, 1, 3, 4).reshape(b * n, p, h, w))
                x = e.reshape(b, n, c, h, w).permute(0, 1, 3, 4, 2)
            else:
                x = corr.new_empty(b, n, h, w, c)
            for t0 in range(0, n, ct) if ct < n else ():
                sl = corr[:, :, t0 : t0 + ct]
                k = sl.shape[2]
                e = self.conv1(sl.permute(0, 2, 1, 3, 4).reshape(b * k, p, h, w))
                x[:, t0 : t0 + k] = e.reshape(b, k, c, h, w).permute(0, 1, 3, 4, 2)
        with timer("aggregation"):
            proj_guidance = None
            if self.guidance_projection is not None and guidance[0] is not None:
                proj_guidance = self.guidance_projection(guidance[0])
            text_guidance = None
            if self.text_guidance_projection is not None:
                t = text_feats.mean(dim=-2)
                t = t / t.norm(dim=-1, keepdim=True)
                text_guidance = self.text_guidance_projection(t)
            per_class = b * h * w * c * 4 * 8
            ct = self._chunk(per_class, n, chunk_classes, max_chunk_bytes)
            # nn.ModuleList yields plain modules; self.layers holds AggregatorLayers
            for layer in cast("Iterable[AggregatorLayer]", self.layers):
                g = layer.swin_block.normalized_guidance(proj_guidance)
                if ct >= n:
                    y = layer.swin_block(x, g)
                else:
                    y = torch.empty_like(x)
                    for t0 in range(0, n, ct):
                        y[:, t0 : t0 + ct] = layer.swin_block(x[:, t0 : t0 + ct], g)
                x = layer.attention(y, text_guidance, pooling_size=pooling_size, max_chunk_bytes=class_chunk_bytes)
                del y
        with timer("decoder"):
            dec_guidance: list[torch.Tensor | None] = [None, None]
            if self.decoder_guidance_projection is not None:
                dec_guidance = [
                    proj(g) if g is not None else None
                    for proj, g in zip(self.decoder_guidance_projection, guidance[1:], strict=False)
                ]
            if dec_guidance[0] is not None:  # channels-last convolutions are ~30% faster on CPU
                dec_guidance = [
                    g.contiguous(memory_format=torch.channels_last) if g is not None else None for g in dec_guidance
                ]
            ups = (self.decoder1, self.decoder2)
            # fused upsampling: the guidance's share of the first convolution, once per image
            terms = [
                up.guidance_term(g, (2 ** (i + 1) * h, 2 ** (i + 1) * w)) if up.fused else None
                for i, (up, g) in enumerate(zip(ups, dec_guidance, strict=True))
            ]

            def decode(z: torch.Tensor, idx: torch.Tensor | None) -> torch.Tensor:
                for up, g, t in zip(ups, dec_guidance, terms, strict=True):
                    if t is not None:  # one term per image: rows of other chunks than whole images pick theirs
                        z = up(z, term=t if idx is None or t.shape[0] == 1 else t.index_select(0, idx))
                    else:
                        z = up(z, g.index_select(0, idx if idx is not None else row_image) if g is not None else None)
                return self.head(z)[:, 0]

            rows = x.reshape(b * n, h, w, c)
            row_image = torch.arange(b * n, device=x.device) // n
            per_item = 16 * h * w * 64 * 4 * 4
            cn = self._chunk(per_item, b * n, chunk_classes * b if chunk_classes else None, max_chunk_bytes)
            if cn >= b * n:
                logits = decode(rows.permute(0, 3, 1, 2), None).reshape(b, n, 4 * h, 4 * w)
            else:
                logits = x.new_empty(b, n, 4 * h, 4 * w)
            flat = logits.view(b * n, 4 * h, 4 * w)
            for r0 in range(0, b * n, cn) if cn < b * n else ():
                r1 = min(b * n, r0 + cn)
                # (N, C, H, W) view of channels-last data
                flat[r0:r1] = decode(rows[r0:r1].permute(0, 3, 1, 2), row_image[r0:r1])
        if selected is not None:
            full = logits.new_full((b, n_total, 4 * h, 4 * w), -100.0)
            full.scatter_(1, selected[..., None, None].expand(-1, -1, 4 * h, 4 * w), logits)
            logits = full
        return logits
