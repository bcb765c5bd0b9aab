"""Input resizing as detectron2's test ``ResizeShortestEdge`` (PIL bilinear on uint8)."""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["resize_shortest_edge_shape", "resize_image"]


def resize_shortest_edge_shape(h: int, w: int, short_edge: int | None, max_size: int | None) -> tuple[int, int]:
    """Output (h, w): shortest edge -> ``short_edge``, longest at most ``max_size``; ``int(x + 0.5)``."""
    if not short_edge:
        newh, neww = float(h), float(w)
    else:
        scale = short_edge * 1.0 / min(h, w)
        newh, neww = (short_edge * 1.0, scale * w) if h < w else (scale * h, short_edge * 1.0)
    if max_size and max(newh, neww) > max_size:
        scale = max_size * 1.0 / max(newh, neww)
        newh, neww = newh * scale, neww * scale
    return int(newh + 0.5), int(neww + 0.5)


def resize_image(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """HxWx3 uint8 -> ``size`` HxWx3 uint8 with PIL ``BILINEAR`` (what the official mapper does)."""
    if tuple(image.shape[:2]) == tuple(size):
        return image
    from PIL import Image

    arr = image.cpu().numpy()
    out = Image.fromarray(arr).resize((size[1], size[0]), Image.BILINEAR)
    return torch.from_numpy(np.asarray(out).copy())
