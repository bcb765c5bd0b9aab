"""Convert the official raw downloads into the evaluation-ready layout (as the official ``datasets/prepare_*.py``).

All converters are idempotent (existing outputs are skipped unless ``overwrite=True``), show a tqdm progress bar,
and raise ``FileNotFoundError`` for missing inputs and ``ValueError`` for inconsistent files. Label conventions of
the outputs (contiguous class ids of :mod:`ovseg_models.data.class_names`):

- ADE20K-150 (``ADEChallengeData2016/annotations/<split>/*.png``, 0 = unlabeled, class = value - 1)
  -> ``annotations_detectron2/<split>/*.png`` uint8, 255 = ignore (official ``prepare_ade20k_sem_seg.py``).
- ADE20K-847 (full release ``*_seg.png``: class index = R // 10 * 256 + G) -> ``annotations_detectron2/<split>/*.tif``
  uint16 benchmark ids, 65535 = ignore; images and labels resized so the short side is at most 512 (bilinear /
  nearest), as the official ``prepare_ade20k_full.py``.
- Cityscapes (``gtFine/<split>/<city>/*_gtFine_labelIds.png``) -> ``*_gtFine_labelTrainIds.png`` next to it,
  uint8 trainIds 0..18, 255 = ignore (cityscapesScripts ``createTrainIdLabelImgs``).
- PASCAL VOC 2012 (``SegmentationClass[Aug]/*.png``, 0 = background, 1..20, 255 = void) ->
  ``annotations_detectron2/<split>`` (VOC-20: class - 1, background -> 255) and ``annotations_detectron2_bg/<split>``
  (VOC-21: background at index ``0`` as in FC-CLIP's class order, or ``20`` as in CAT-Seg's ``prepare_voc.py``).
- PASCAL Context (``trainval_merged.json`` of the Detail API: RLE ``annos_segmentation`` with 459-class
  ``category_id``; 0 = unlabeled) -> ``annotations_detectron2/pc59_<split>/*.png`` (uint8, 255 ignore) and
  ``pc459_<split>/*.tif`` (uint16, 65535 ignore), as CAT-Seg's ``prepare_pascal_context_{59,459}.py``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from .class_names import ade20k_847_full_ids, cityscapes_label_ids

__all__ = [
    "ade20k_150_label_to_train_id",
    "ade20k_full_class_mask",
    "ade20k_full_instance_mask",
    "find_ade20k_full_images",
    "ade20k_full_to_847",
    "cityscapes_label_ids_to_train_ids",
    "pascal_context_59_from_459",
    "voc_label_to_train_id",
    "prepare_ade20k_150",
    "prepare_ade20k_847",
    "prepare_cityscapes",
    "prepare_pascal_voc",
    "prepare_pascal_context",
    "PASCAL_CONTEXT_59_IN_459",
]

IGNORE_8 = 255
IGNORE_16 = 65535

# PASCAL Context: the 459-class ids (1-based, 0 = unlabeled) of the 59 benchmark classes, in benchmark order
# (CAT-Seg prepare_pascal_context_59.py ``_mapping`` without its leading 0, sorted).
PASCAL_CONTEXT_59_IN_459 = (
    2, 9, 18, 19, 22, 23, 25, 31, 33, 34, 44, 45, 46, 59, 65, 68, 72, 80, 85, 98, 104, 105, 113, 115, 144, 158, 159,
    162, 187, 189, 207, 220, 232, 258, 259, 260, 284, 295, 296, 308, 324, 326, 347, 349, 354, 355, 360, 366, 368,
    397, 415, 416, 420, 424, 427, 440, 445, 454, 458,
)


# ------------------------------------------------------------------------------------------ pure label mappings
def _lut(mapping: dict[int, int], *, size: int, fill: int, dtype) -> np.ndarray:
    lut = np.full(size, fill, dtype=dtype)
    for k, v in mapping.items():
        lut[k] = v
    return lut


def ade20k_150_label_to_train_id(label: np.ndarray) -> np.ndarray:
    """ADEChallengeData2016 annotation (uint8, 0 = other) -> train ids 0..149, 255 = ignore."""
    label = np.asarray(label)
    if label.ndim != 2:
        raise ValueError(f"expected a single-channel label map, got shape {label.shape}")
    if label.max(initial=0) > 150:
        raise ValueError(f"ADE20K-150 label values must be <= 150, got {label.max()}")
    return (label.astype(np.int64) - 1).astype(np.uint8)  # 0 -> 255 by wrap-around, as the official script


def ade20k_full_class_mask(seg_rgb: np.ndarray) -> np.ndarray:
    """ADE20K full-release ``*_seg.png`` (H, W, 3) uint8 -> class index map int32 (``R // 10 * 256 + G``)."""
    seg_rgb = np.asarray(seg_rgb)
    if seg_rgb.ndim != 3 or seg_rgb.shape[2] < 3:
        raise ValueError(f"expected an RGB _seg.png, got shape {seg_rgb.shape}")
    return (seg_rgb[..., 0] // 10).astype(np.int32) * 256 + seg_rgb[..., 1].astype(np.int32)


def ade20k_full_instance_mask(seg_rgb: np.ndarray) -> np.ndarray:
    """Instance index map from the B channel of ``*_seg.png`` (ADE20K toolkit: ``unique(B)`` ranks)."""
    b = np.asarray(seg_rgb)[..., 2]
    _, inverse = np.unique(b, return_inverse=True)
    return inverse.reshape(b.shape).astype(np.int32)


_ADE847_LUT: np.ndarray | None = None


def ade20k_full_to_847(class_mask: np.ndarray) -> np.ndarray:
    """ADE20K full class index map -> ADE-847 benchmark ids (uint16), 65535 for every other class."""
    global _ADE847_LUT
    if _ADE847_LUT is None:
        ids = ade20k_847_full_ids()
        _ADE847_LUT = _lut(dict(zip(ids, range(len(ids)))), size=65536, fill=IGNORE_16, dtype=np.uint16)
    class_mask = np.asarray(class_mask)
    if class_mask.min(initial=0) < 0 or class_mask.max(initial=0) > 65535:
        raise ValueError("class indices out of range")
    return _ADE847_LUT[class_mask.astype(np.int64)]


def cityscapes_label_ids_to_train_ids(label_ids: np.ndarray) -> np.ndarray:
    """Cityscapes ``labelIds`` (uint8) -> trainIds 0..18, 255 for unevaluated labels."""
    lut = _lut({lid: i for i, lid in enumerate(cityscapes_label_ids())}, size=256, fill=IGNORE_8, dtype=np.uint8)
    return lut[np.asarray(label_ids).astype(np.int64)]


def voc_label_to_train_id(label: np.ndarray, *, with_background: bool, background_index: int = 0) -> np.ndarray:
    """VOC class PNG values (0 bg, 1..20, 255 void) -> VOC-20 (0..19, bg ignored) or VOC-21 train ids."""
    label = np.asarray(label).astype(np.int64)
    if with_background and background_index not in (0, 20):
        raise ValueError("background_index must be 0 (FC-CLIP order) or 20 (CAT-Seg order)")
    mapping = {c: c - 1 for c in range(1, 21)}
    if with_background:
        mapping = {c: c for c in range(21)} if background_index == 0 else {**mapping, 0: 20}
    return _lut(mapping, size=256, fill=IGNORE_8, dtype=np.uint8)[label]


def pascal_context_59_from_459(label_459: np.ndarray) -> np.ndarray:
    """PASCAL Context 459-class ids (1-based, 0 unlabeled) -> 59-class train ids (uint8), 255 elsewhere."""
    lut = _lut({c: i for i, c in enumerate(PASCAL_CONTEXT_59_IN_459)}, size=460, fill=IGNORE_8, dtype=np.uint8)
    label_459 = np.asarray(label_459).astype(np.int64)
    if label_459.min(initial=0) < 0 or label_459.max(initial=0) > 459:
        raise ValueError("PASCAL Context 459 ids must lie in [0, 459]")
    return lut[label_459]


# ------------------------------------------------------------------------------------------ helpers
def _require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise FileNotFoundError(f"{what} not found: {path}")
    return path


def _read_image(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.array(im)


def _check_same_size(image_path: Path, label_shape: tuple[int, int]) -> None:
    with Image.open(image_path) as im:
        w, h = im.size
    if (h, w) != tuple(label_shape):
        raise ValueError(f"size mismatch: image {image_path} is {h}x{w}, label is {label_shape[0]}x{label_shape[1]}")


def _short_side_resize_shape(h: int, w: int, max_size: int) -> tuple[int, int] | None:
    """Official rule: if the short side exceeds ``max_size`` resize it to ``max_size`` (long side rounded)."""
    if w >= h > max_size:
        return max_size, round(w / float(h) * max_size)
    if h >= w > max_size:
        return round(h / float(w) * max_size), max_size
    return None


# ------------------------------------------------------------------------------------------ converters
def prepare_ade20k_150(*, root: str | Path, split: str = "validation", overwrite: bool = False) -> int:
    """``<root>/ADEChallengeData2016/annotations/<split>`` -> ``annotations_detectron2/<split>``; returns #written."""
    base = Path(root) / "ADEChallengeData2016"
    src = _require_dir(base / "annotations" / split, "ADE20K-150 annotations")
    images = _require_dir(base / "images" / split, "ADE20K-150 images")
    dst = base / "annotations_detectron2" / split
    dst.mkdir(parents=True, exist_ok=True)
    written = 0
    for path in tqdm(sorted(src.glob("*.png")), desc=f"ADE20K-150 {split}"):
        out = dst / path.name
        if out.exists() and not overwrite:
            continue
        label = _read_image(path)
        image_path = images / (path.stem + ".jpg")
        if not image_path.exists():
            raise FileNotFoundError(f"image for {path.name} not found: {image_path}")
        _check_same_size(image_path, label.shape[:2])
        Image.fromarray(ade20k_150_label_to_train_id(label)).save(out)
        written += 1
    return written


def find_ade20k_full_images(root: str | Path, *, split: str = "validation") -> list[Path]:
    """All ``*.jpg`` of the full release split (``ADE20K_2021_17_01/images/ADE/<split>/**``) with a ``_seg.png``."""
    base = _require_dir(Path(root) / "ADE20K_2021_17_01" / "images" / "ADE" / split, "ADE20K full-release split")
    return sorted(p for p in base.rglob("*.jpg") if p.with_name(p.stem + "_seg.png").exists())


def prepare_ade20k_847(
    *,
    root: str | Path,
    split: str = "validation",
    images: Iterable[str | Path] | None = None,
    max_size: int = 512,
    overwrite: bool = False,
) -> int:
    """Full release -> ``<root>/ADE20K_2021_17_01/{images,annotations}_detectron2/<split>/`` (jpg + uint16 tif).

    ``images`` defaults to :func:`find_ade20k_full_images`; each ``X.jpg`` needs ``X_seg.png`` beside it.
    """
    base = Path(root) / "ADE20K_2021_17_01"
    image_paths = [Path(p) for p in images] if images is not None else find_ade20k_full_images(root, split=split)
    out_images = base / "images_detectron2" / split
    out_labels = base / "annotations_detectron2" / split
    out_images.mkdir(parents=True, exist_ok=True)
    out_labels.mkdir(parents=True, exist_ok=True)
    written = 0
    for image_path in tqdm(image_paths, desc=f"ADE20K-847 {split}"):
        seg_path = image_path.with_name(image_path.stem + "_seg.png")
        if not image_path.exists() or not seg_path.exists():
            raise FileNotFoundError(f"missing {image_path if not image_path.exists() else seg_path}")
        out_img = out_images / image_path.name
        out_lab = out_labels / (image_path.stem + ".tif")
        if out_img.exists() and out_lab.exists() and not overwrite:
            continue
        with Image.open(image_path) as im:
            img = im.convert("RGB")
        class_mask = ade20k_full_class_mask(_read_image(seg_path))
        if class_mask.shape != (img.height, img.width):
            raise ValueError(f"size mismatch between {image_path} and {seg_path}")
        label = ade20k_full_to_847(class_mask)
        new_shape = _short_side_resize_shape(img.height, img.width, max_size)
        if new_shape is not None:
            h_new, w_new = new_shape
            img = img.resize((w_new, h_new), resample=Image.BILINEAR)
            label = np.array(Image.fromarray(label).resize((w_new, h_new), resample=Image.NEAREST))
        img.save(out_img, quality=95)
        Image.fromarray(label.astype(np.uint16)).save(out_lab)
        written += 1
    return written


def prepare_cityscapes(*, root: str | Path, split: str = "val", overwrite: bool = False) -> int:
    """Write ``*_gtFine_labelTrainIds.png`` beside every ``<root>/gtFine/<split>/*/*_gtFine_labelIds.png``."""
    src = _require_dir(Path(root) / "gtFine" / split, "Cityscapes gtFine split")
    written = 0
    for path in tqdm(sorted(src.glob("*/*_gtFine_labelIds.png")), desc=f"Cityscapes {split}"):
        out = path.with_name(path.name.replace("_labelIds.png", "_labelTrainIds.png"))
        if out.exists() and not overwrite:
            continue
        label = _read_image(path)
        if label.ndim != 2:
            raise ValueError(f"{path} is not a single-channel labelIds image")
        Image.fromarray(cityscapes_label_ids_to_train_ids(label)).save(out)
        written += 1
    return written


def prepare_pascal_voc(
    *,
    root: str | Path,
    split: str = "val",
    label_dir: str = "SegmentationClassAug",
    background_index: int = 0,
    overwrite: bool = False,
) -> int:
    """``<root>/VOCdevkit/VOC2012/<label_dir>/*.png`` listed in ``ImageSets/Segmentation/<split>.txt`` ->
    ``annotations_detectron2/<split>`` (VOC-20) and ``annotations_detectron2_bg/<split>`` (VOC-21).

    ``label_dir`` falls back to ``SegmentationClass`` when the Aug folder is absent. Palette PNGs are read as
    indices. As in the official script, VOC-20 maps with no labeled pixel left are not written.
    """
    voc = Path(root) / "VOCdevkit" / "VOC2012"
    labels = voc / label_dir
    if not labels.is_dir():
        labels = _require_dir(voc / "SegmentationClass", "VOC SegmentationClass(Aug)")
    list_file = voc / "ImageSets" / "Segmentation" / f"{split}.txt"
    if not list_file.exists():
        raise FileNotFoundError(f"VOC split list not found: {list_file}")
    names = [line.strip() for line in list_file.read_text().splitlines() if line.strip()]
    out20 = voc / "annotations_detectron2" / split
    out21 = voc / "annotations_detectron2_bg" / split
    out20.mkdir(parents=True, exist_ok=True)
    out21.mkdir(parents=True, exist_ok=True)
    written = 0
    for name in tqdm(names, desc=f"VOC {split}"):
        path = labels / f"{name}.png"
        if not path.exists():
            raise FileNotFoundError(f"VOC label not found: {path}")
        if (out21 / path.name).exists() and not overwrite:
            continue
        label = _read_image(path)
        if label.ndim != 2:
            raise ValueError(f"{path} must be an index (palette) PNG")
        image_path = voc / "JPEGImages" / f"{name}.jpg"
        if image_path.exists():
            _check_same_size(image_path, label.shape)
        voc20 = voc_label_to_train_id(label, with_background=False)
        if (voc20 != IGNORE_8).any():
            Image.fromarray(voc20).save(out20 / path.name)
        Image.fromarray(
            voc_label_to_train_id(label, with_background=True, background_index=background_index)
        ).save(out21 / path.name)
        written += 1
    return written


def prepare_pascal_context(*, root: str | Path, split: str = "val", overwrite: bool = False) -> int:
    """``<root>/VOCdevkit/VOC2010/trainval_merged.json`` -> ``annotations_detectron2/pc59_<split>/*.png`` and
    ``pc459_<split>/*.tif`` for the images whose ``phase`` is ``split``."""
    from pycocotools import mask as mask_util

    voc = Path(root) / "VOCdevkit" / "VOC2010"
    json_path = voc / "trainval_merged.json"
    if not json_path.exists():
        raise FileNotFoundError(f"PASCAL Context annotations not found: {json_path}")
    data = json.loads(json_path.read_text())
    images = {d["image_id"]: d for d in data["images"] if d.get("phase") == split}
    annos: dict[int, list[dict]] = {}
    for ann in data.get("annos_segmentation", []):
        if ann["image_id"] in images:
            annos.setdefault(ann["image_id"], []).append(ann)
    out59 = voc / "annotations_detectron2" / f"pc59_{split}"
    out459 = voc / "annotations_detectron2" / f"pc459_{split}"
    out59.mkdir(parents=True, exist_ok=True)
    out459.mkdir(parents=True, exist_ok=True)
    written = 0
    for image_id, info in tqdm(sorted(images.items()), desc=f"PASCAL Context {split}"):
        stem = Path(info["file_name"]).stem
        if (out59 / f"{stem}.png").exists() and (out459 / f"{stem}.tif").exists() and not overwrite:
            continue
        mask = np.zeros((info["height"], info["width"]), dtype=np.int64)
        for ann in annos.get(image_id, []):
            m = mask_util.decode(ann["segmentation"])
            if m.shape != mask.shape:
                raise ValueError(f"segmentation size {m.shape} != image size {mask.shape} for {info['file_name']}")
            mask[np.nonzero(m)] = int(ann["category_id"])
        Image.fromarray(pascal_context_59_from_459(mask)).save(out59 / f"{stem}.png")
        pc459 = np.where(mask == 0, IGNORE_16, mask - 1).astype(np.uint16)
        Image.fromarray(pc459).save(out459 / f"{stem}.tif")
        written += 1
    return written
