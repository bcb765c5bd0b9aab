"""Training augmentations of the two recipes, as numpy functions driven by a ``numpy.random.Generator``.

* :func:`lsj_panoptic` - FC-CLIP / Mask2Former "large-scale jitter" (``coco_panoptic_lsj`` mapper):
  random horizontal flip, ``ResizeScale(0.1, 2.0, 1024, 1024)``, ``FixedSizeCrop(1024)`` with the
  image padded with 128 (bottom/right); non-crowd segments become (class, binary mask) targets.
* :func:`semantic_crop` - CAT-Seg (``mask_former_semantic`` mapper): ``ResizeShortestEdge(384, max
  1333)``, random 384x384 crop, SSD colour jitter, random horizontal flip, padding to the size
  divisibility (image 128, label 255).

Every random number comes from the ``rng`` argument, so an image's augmentation is a pure
function of its seed (what makes resume and multi-process runs reproduce single-process ones).
Resizing follows detectron2: PIL bilinear for images, nearest for label maps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from PIL import Image

from ..transforms import resize_image, resize_shortest_edge_shape

__all__ = ["resize_labels", "lsj_panoptic", "semantic_crop", "color_aug_ssd", "panoptic_targets"]


def resize_labels(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Integer HxW map -> ``size``, nearest neighbour (PIL, as detectron2's segmentation resize)."""
    if labels.shape[:2] == tuple(size):
        return labels
    im = Image.fromarray(np.ascontiguousarray(labels).astype(np.int32))
    return np.asarray(im.resize((size[1], size[0]), Image.Resampling.NEAREST)).astype(labels.dtype)


def _pad(array: np.ndarray, size: tuple[int, int], value) -> np.ndarray:
    h, w = array.shape[:2]
    if (h, w) == tuple(size):
        return array
    out = np.full((size[0], size[1], *array.shape[2:]), value, dtype=array.dtype)
    out[:h, :w] = array
    return out


def panoptic_targets(
    pan_ids: np.ndarray, segments_info: Sequence[Mapping], contiguous_id: Mapping[int, int], *, drop_empty: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Non-crowd segments -> (labels [M] int64, masks [M, H, W] bool). Empty masks are kept unless
    ``drop_empty`` (the official LSJ mapper keeps them)."""
    labels, masks = [], []
    for seg in segments_info:
        if int(seg.get("iscrowd", 0)):
            continue
        m = pan_ids == int(seg["id"])
        if drop_empty and not m.any():
            continue
        labels.append(contiguous_id[int(seg["category_id"])])
        masks.append(m)
    if not masks:
        return np.zeros((0,), np.int64), np.zeros((0, *pan_ids.shape), bool)
    return np.asarray(labels, np.int64), np.stack(masks)


def lsj_panoptic(
    image: np.ndarray,
    pan_ids: np.ndarray,
    rng: np.random.Generator,
    *,
    image_size: int = 1024,
    min_scale: float = 0.1,
    max_scale: float = 2.0,
    flip: bool = True,
    pad_value: int = 128,
) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """Large-scale jitter: returns the (image_size, image_size) image, the segment-id map (0 on the
    padding) and the (h, w) of the valid (non-padded) region."""
    if flip and rng.random() < 0.5:
        image = image[:, ::-1]
        pan_ids = pan_ids[:, ::-1]
    # ResizeScale
    h, w = image.shape[:2]
    scale = rng.uniform(min_scale, max_scale)
    target = np.multiply((image_size, image_size), scale)
    out_scale = min(target[0] / h, target[1] / w)
    nh, nw = (int(v) for v in np.round(np.multiply((h, w), out_scale)))
    nh, nw = max(nh, 1), max(nw, 1)
    image = resize_image(np.ascontiguousarray(image), (nh, nw))
    pan_ids = resize_labels(np.ascontiguousarray(pan_ids), (nh, nw))
    # FixedSizeCrop: one uniform draw for both offsets, then pad bottom/right
    max_offset = np.maximum(np.subtract((nh, nw), (image_size, image_size)), 0)
    offset = np.round(np.multiply(max_offset, rng.uniform(0.0, 1.0))).astype(int)
    ch, cw = min(nh, image_size), min(nw, image_size)
    image = image[offset[0] : offset[0] + ch, offset[1] : offset[1] + cw]
    pan_ids = pan_ids[offset[0] : offset[0] + ch, offset[1] : offset[1] + cw]
    image = _pad(image, (image_size, image_size), pad_value)
    pan_ids = _pad(pan_ids, (image_size, image_size), 0)
    return np.ascontiguousarray(image), np.ascontiguousarray(pan_ids), (ch, cw)


def _rgb_to_hsv(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.float32) / 255.0
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    maxc = rgb.max(-1)
    minc = rgb.min(-1)
    v = maxc
    delta = maxc - minc
    s = np.where(maxc > 0, delta / np.maximum(maxc, 1e-12), 0.0)
    safe = np.maximum(delta, 1e-12)
    rc, gc, bc = (maxc - r) / safe, (maxc - g) / safe, (maxc - b) / safe
    h = np.where(r == maxc, bc - gc, np.where(g == maxc, 2.0 + rc - bc, 4.0 + gc - rc))
    h = np.where(delta > 0, (h / 6.0) % 1.0, 0.0)
    return np.stack([h, s, v], -1)


def _hsv_to_rgb(hsv: np.ndarray) -> np.ndarray:
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    i = np.floor(h * 6.0)
    f = h * 6.0 - i
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    i = i.astype(np.int64) % 6
    r = np.choose(i, [v, q, p, p, t, v])
    g = np.choose(i, [t, v, v, q, p, p])
    b = np.choose(i, [p, p, t, v, v, q])
    return np.clip(np.round(np.stack([r, g, b], -1) * 255.0), 0, 255).astype(np.uint8)


def color_aug_ssd(
    image: np.ndarray,
    rng: np.random.Generator,
    *,
    brightness_delta: float = 32,
    contrast: tuple[float, float] = (0.5, 1.5),
    saturation: tuple[float, float] = (0.5, 1.5),
    hue_delta: int = 18,
) -> np.ndarray:
    """SSD photometric distortion (detectron2 ``ColorAugSSDTransform``): random brightness, then
    contrast before or after saturation + hue. HSV arithmetic in float (the official uses OpenCV's
    8-bit HSV, hue in [0, 180): ``hue_delta`` is in those units)."""

    def convert(img, alpha=1.0, beta=0.0):
        return np.clip(img.astype(np.float32) * alpha + beta, 0, 255).astype(np.uint8)

    def do_contrast(img):
        return convert(img, alpha=rng.uniform(*contrast)) if rng.integers(2) else img

    def do_saturation(img):
        if rng.integers(2):
            hsv = _rgb_to_hsv(img)
            hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(*saturation), 0, 1)
            return _hsv_to_rgb(hsv)
        return img

    def do_hue(img):
        if rng.integers(2):
            hsv = _rgb_to_hsv(img)
            hsv[..., 0] = (hsv[..., 0] + rng.integers(-hue_delta, hue_delta + 1) / 180.0) % 1.0
            return _hsv_to_rgb(hsv)
        return img

    if rng.integers(2):
        image = convert(image, beta=rng.uniform(-brightness_delta, brightness_delta))
    if rng.integers(2):
        image = do_hue(do_saturation(do_contrast(image)))
    else:
        image = do_contrast(do_hue(do_saturation(image)))
    return image


def semantic_crop(
    image: np.ndarray,
    labels: np.ndarray,
    rng: np.random.Generator,
    *,
    short_edge: int = 384,
    max_size: int = 1333,
    crop: int = 384,
    color_aug: bool = True,
    flip: bool = True,
    size_divisibility: int = 384,
    ignore_index: int = 255,
    pad_value: int = 128,
) -> tuple[np.ndarray, np.ndarray]:
    """CAT-Seg training mapper: returns the padded image (uint8 HxWx3) and label map (int64)."""
    h, w = image.shape[:2]
    nh, nw = resize_shortest_edge_shape(h, w, short_edge, max_size)
    image = resize_image(image, (nh, nw))
    labels = resize_labels(labels, (nh, nw))
    ch, cw = min(crop, nh), min(crop, nw)
    y0 = int(rng.integers(nh - ch + 1))
    x0 = int(rng.integers(nw - cw + 1))
    image = image[y0 : y0 + ch, x0 : x0 + cw]
    labels = labels[y0 : y0 + ch, x0 : x0 + cw]
    if color_aug:
        image = color_aug_ssd(np.ascontiguousarray(image), rng)
    if flip and rng.random() < 0.5:
        image = image[:, ::-1]
        labels = labels[:, ::-1]
    if size_divisibility > 0:
        size = (
            (size_divisibility, size_divisibility)
            if max(ch, cw) <= size_divisibility
            else (-(-ch // size_divisibility) * size_divisibility, -(-cw // size_divisibility) * size_divisibility)
        )
        image = _pad(image, size, pad_value)
        labels = _pad(labels, size, ignore_index)
    return np.ascontiguousarray(image), np.ascontiguousarray(labels).astype(np.int64)
