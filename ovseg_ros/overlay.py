"""Colour overlays of segmentations, with the label names drawn (Pillow's default font).

The palette is stable: a class's colour is a function of its normalised name only, so "wall"
has the same colour in every frame, every vocabulary and every run.
"""

from __future__ import annotations

import colorsys
import hashlib
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from .conversions import UNLABELED

__all__ = ["class_color", "palette_for", "render_overlay"]


@lru_cache(maxsize=65536)
def class_color(name: str) -> tuple[int, int, int]:
    """Stable, well-saturated RGB colour for a class name."""
    h = hashlib.blake2b(" ".join(name.split()).lower().encode(), digest_size=8).digest()
    hue = int.from_bytes(h[:4], "little") / 2**32
    sat = 0.55 + 0.4 * (h[4] / 255)
    val = 0.7 + 0.3 * (h[5] / 255)
    r, g, b = colorsys.hsv_to_rgb(hue, sat, val)
    return int(r * 255), int(g * 255), int(b * 255)


def palette_for(names: Sequence[str]) -> np.ndarray:
    """(K + 1, 3) uint8 palette; the last row (for unlabeled) is black."""
    pal = np.zeros((len(names) + 1, 3), dtype=np.uint8)
    for i, n in enumerate(names):
        pal[i] = class_color(n)
    return pal


@lru_cache(maxsize=1)
def _font():
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=12)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def render_overlay(
    rgb: np.ndarray,
    labels: np.ndarray,
    names: Sequence[str],
    *,
    alpha: float = 0.5,
    palette: np.ndarray | None = None,
    texts: Sequence[tuple[str, int, int]] | None = None,
    draw_labels: bool = True,
    min_area_fraction: float = 0.002,
) -> np.ndarray:
    """HxWx3 uint8 blend of ``rgb`` with class colours of ``labels`` (65535 = unlabeled, left as is).

    ``texts``: (text, x, y) labels to draw; by default one per class present, at the pixel of
    the class closest to the centre of its pixels' bounding box.
    """
    lab = np.asarray(labels)
    pal = palette if palette is not None else palette_for(names)
    idx = np.where(lab == UNLABELED, len(pal) - 1, np.minimum(lab, len(pal) - 1)).astype(np.intp)
    colors = pal[idx]
    a = np.float32(alpha)
    out = rgb.astype(np.float32)
    mask = (lab != UNLABELED)[:, :, None]
    out = np.where(mask, out * (1 - a) + colors.astype(np.float32) * a, out)
    out = np.clip(out + 0.5, 0, 255).astype(np.uint8)
    if not draw_labels:
        return out
    if texts is None:
        texts = _default_texts(lab, names, min_area_fraction)
    if texts:
        from PIL import Image, ImageDraw

        im = Image.fromarray(out)
        draw = ImageDraw.Draw(im)
        font = _font()
        for text, x, y in texts:
            box = draw.textbbox((0, 0), text, font=font)
            tw, th = box[2] - box[0], box[3] - box[1]
            x0 = int(min(max(x - tw // 2, 0), max(im.width - tw, 0)))
            y0 = int(min(max(y - th // 2, 0), max(im.height - th, 0)))
            draw.text((x0, y0), text, fill=(255, 255, 255), font=font, stroke_width=1, stroke_fill=(0, 0, 0))
        out = np.asarray(im)
    return out


def _default_texts(lab: np.ndarray, names: Sequence[str], min_area_fraction: float) -> list[tuple[str, int, int]]:
    h, w = lab.shape
    # subsample for speed: label positions need no pixel precision
    s = max(1, int(max(h, w) // 160))
    sub = lab[::s, ::s]
    cats, counts = np.unique(sub, return_counts=True)
    texts = []
    min_count = max(1, int(min_area_fraction * sub.size))
    for cat, count in zip(cats.tolist(), counts.tolist(), strict=False):
        if cat == UNLABELED or cat >= len(names) or count < min_count:
            continue
        ys, xs = np.nonzero(sub == cat)
        cy, cx = (ys.min() + ys.max()) / 2, (xs.min() + xs.max()) / 2
        k = int(np.argmin((ys - cy) ** 2 + (xs - cx) ** 2))
        texts.append((names[cat], int(xs[k] * s), int(ys[k] * s)))
    return texts
