"""Image resizing as the official evaluation does it (detectron2's ``ResizeShortestEdge``), and the
nearest-neighbour index maps that expand label maps computed at a reduced output size.

Both models' test mappers and the training augmentations resize the same way: the shortest edge
to a target, the longest capped, sizes rounded with ``int(x + 0.5)``, and the uint8 image
resampled with PIL's ``BILINEAR`` (what detectron2's ``ResizeTransform`` uses). Matching it exactly
matters for parity: a different resampler changes the model input.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch
from PIL import Image

__all__ = ["nearest_indices", "resize_shortest_edge_shape", "resize_image"]

#: an image as a tensor or an array; :func:`resize_image` returns the type it was given.
ImageT = TypeVar("ImageT", torch.Tensor, np.ndarray)


def resize_shortest_edge_shape(h: int, w: int, short_edge: int | None, max_size: int | None) -> tuple[int, int]:
    """Output (h, w): shortest edge -> ``short_edge``, longest at most ``max_size``; ``int(x + 0.5)``.

    ``short_edge`` or ``max_size`` falsy: that constraint is not applied.
    """
    if not short_edge:
        newh, neww = float(h), float(w)
    else:
        scale = short_edge * 1.0 / min(h, w)
        newh, neww = (short_edge * 1.0, scale * w) if h < w else (scale * h, short_edge * 1.0)
    if max_size and max(newh, neww) > max_size:
        scale = max_size * 1.0 / max(newh, neww)
        newh, neww = newh * scale, neww * scale
    return int(newh + 0.5), int(neww + 0.5)


def resize_image(image: ImageT, size: tuple[int, int]) -> ImageT:
    """HxWx3 uint8 -> ``size`` (h, w) with PIL ``BILINEAR``; returns the input's type (tensor or array)."""
    if tuple(image.shape[:2]) == tuple(size):
        return image
    arr = np.ascontiguousarray(image.cpu().numpy() if isinstance(image, torch.Tensor) else image)
    out = np.asarray(Image.fromarray(arr).resize((size[1], size[0]), Image.Resampling.BILINEAR))
    return torch.from_numpy(out.copy()) if isinstance(image, torch.Tensor) else out


def nearest_indices(n_out: int, n_in: int) -> np.ndarray:
    """Source index of each of ``n_out`` positions when ``n_in`` are stretched to them by nearest
    neighbour (``floor(i * n_in / n_out)``, as PIL and ``F.interpolate(mode="nearest")``)."""
    return np.minimum((np.arange(n_out) * (n_in / n_out)).astype(np.intp), n_in - 1)
