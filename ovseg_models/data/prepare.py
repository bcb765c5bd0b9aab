"""Convert the official raw downloads into the evaluation-ready layout (as the official ``datasets/prepare_*.py``).

All converters are idempotent (existing outputs are skipped unless ``overwrite=True``), show a tqdm progress bar,
and raise ``FileNotFoundError`` for missing inputs and ``ValueError`` for inconsistent files. Label conventions of
the outputs (contiguous class ids of :mod:`ovseg_models.data.class_names`):

- ADE20K-150 (``ADEChallengeData2016/annotations/<split>/*.png``, 0 = unlabeled, class = value - 1)
  -> ``annotations_detectron2/<split>/*.png`` uint8, 255 = ignore (official ``prepare_ade20k_sem_seg.py``).
- ADE20K-847 (full release ``*_seg.png``: class index = R // 10 * 256 + G) -> ``annotations_detectron2/<split>/*.tif``
  uint16 benchmark ids, 65535 = ignore; images and labels resized so the short side is at most 512 with OpenCV
  (``INTER_LINEAR`` / ``INTER_NEAREST``) and saved by PIL with its defaults, exactly as the official
  ``prepare_ade20k_full.py``.
- Cityscapes (``gtFine/<split>/<city>/*_gtFine_labelIds.png``) -> ``*_gtFine_labelTrainIds.png`` next to it,
  uint8 trainIds 0..18, 255 = ignore (cityscapesScripts ``createTrainIdLabelImgs``).
- PASCAL VOC 2012 (``SegmentationClass[Aug]/*.png``, 0 = background, 1..20, 255 = void) ->
  ``annotations_detectron2/<split>`` (VOC-20: class - 1, background -> 255) and ``annotations_detectron2_bg/<split>``
  (VOC-21: background at index ``0`` as in FC-CLIP's class order, or ``20`` as in CAT-Seg's ``prepare_voc.py``).
- PASCAL Context (``trainval_merged.json`` of the Detail API: RLE ``annos_segmentation`` with 459-class
  ``category_id``; 0 = unlabeled) -> ``annotations_detectron2/pc59_<split>/*.png`` (uint8, 255 ignore) and
  ``pc459_<split>/*.tif`` (uint16, 65535 ignore), as CAT-Seg's ``prepare_pascal_context_{59,459}.py``.

Panoptic ground truth (COCO panoptic format: RGB PNG with ``id = R + 256 G + 256^2 B`` + JSON with
``images``/``annotations``/``categories``), written where detectron2 / Mask2Former / FC-CLIP read it:

- ADE20K-150: ``annotations`` + ``annotations_instance`` (ADE20K instance release: R = instance class 1..100,
  G = instance id) -> ``ADEChallengeData2016/ade20k_panoptic_{val,train}{.json,/}``, category ids 0..149
  (Mask2Former ``prepare_ade20k_pan_seg.py``).
- Cityscapes: ``gtFine/<split>/*/*_gtFine_instanceIds.png`` -> ``gtFine/cityscapes_panoptic_<split>{.json,/}``,
  category ids = labelIds (cityscapesScripts ``createPanopticImgs``).
- Mapillary Vistas v1.2: the downloads ship ``<split>/v1.2/panoptic/panoptic_2018.json`` + PNGs (category ids
  1..65); :func:`prepare_mapillary_panoptic` rebuilds them from the instance PNGs when missing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import cv2
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
    "ADE20K_INSTANCE_TO_150",
    "ade20k_panoptic_from_annotations",
    "cityscapes_panoptic_from_instance_ids",
    "mapillary_panoptic_from_instances",
    "mapillary_v12_config_is_thing",
    "find_mapillary_config",
    "prepare_ade20k_panoptic",
    "prepare_cityscapes_panoptic",
    "prepare_mapillary_panoptic",
]

IGNORE_8 = 255
IGNORE_16 = 65535

# PASCAL Context: the 459-class ids (1-based, 0 = unlabeled) of the 59 benchmark classes, in benchmark order
# (CAT-Seg prepare_pascal_context_59.py ``_mapping`` without its leading 0, sorted).
PASCAL_CONTEXT_59_IN_459 = (
    2,
    9,
    18,
    19,
    22,
    23,
    25,
    31,
    33,
    34,
    44,
    45,
    46,
    59,
    65,
    68,
    72,
    80,
    85,
    98,
    104,
    105,
    113,
    115,
    144,
    158,
    159,
    162,
    187,
    189,
    207,
    220,
    232,
    258,
    259,
    260,
    284,
    295,
    296,
    308,
    324,
    326,
    347,
    349,
    354,
    355,
    360,
    366,
    368,
    397,
    415,
    416,
    420,
    424,
    427,
    440,
    445,
    454,
    458,
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
        _ADE847_LUT = _lut(dict(zip(ids, range(len(ids)), strict=False)), size=65536, fill=IGNORE_16, dtype=np.uint16)
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
        # The official script's steps (MaskFormer / FC-CLIP / CAT-Seg prepare_ade20k_full.py): the image array as
        # PIL decodes it, OpenCV INTER_LINEAR for the image and INTER_NEAREST for the int32 class mask (OpenCV's
        # nearest neighbour picks other source pixels than PIL's), the benchmark ids mapped after resizing, and
        # both files written by PIL with its defaults (JPEG quality 75, uncompressed uint16 TIFF).
        with Image.open(image_path) as im:
            img = np.asarray(im)
        class_mask = ade20k_full_class_mask(_read_image(seg_path))
        if class_mask.shape != img.shape[:2]:
            raise ValueError(f"size mismatch between {image_path} and {seg_path}")
        new_shape = _short_side_resize_shape(img.shape[0], img.shape[1], max_size)
        if new_shape is not None:
            h_new, w_new = new_shape
            img = cv2.resize(img, (w_new, h_new), interpolation=cv2.INTER_LINEAR)
            class_mask = cv2.resize(class_mask, (w_new, h_new), interpolation=cv2.INTER_NEAREST)
        if img.dtype != np.uint8:
            raise ValueError(f"{image_path}: expected an 8-bit image, got {img.dtype}")
        Image.fromarray(img).save(out_img)
        Image.fromarray(ade20k_full_to_847(class_mask)).save(out_lab)
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
        Image.fromarray(voc_label_to_train_id(label, with_background=True, background_index=background_index)).save(
            out21 / path.name
        )
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


# ------------------------------------------------------------------------------------------ panoptic ground truth
# ADE20K instance annotations (``annotations_instance``, 100 classes): the SceneParse150 class (1-based) of each
# instance class 1..100, from Mask2Former ``datasets/ade20k_instance_catid_mapping.txt`` (second column).
ADE20K_INSTANCE_TO_150 = (
    8,
    9,
    11,
    13,
    15,
    16,
    19,
    20,
    21,
    23,
    24,
    25,
    28,
    31,
    32,
    33,
    34,
    36,
    37,
    38,
    39,
    40,
    42,
    43,
    44,
    45,
    46,
    48,
    50,
    51,
    54,
    56,
    57,
    58,
    59,
    63,
    65,
    66,
    67,
    68,
    70,
    71,
    72,
    73,
    74,
    75,
    76,
    77,
    79,
    81,
    82,
    83,
    84,
    86,
    87,
    88,
    89,
    90,
    91,
    93,
    94,
    96,
    98,
    99,
    103,
    104,
    105,
    108,
    109,
    111,
    112,
    113,
    116,
    117,
    119,
    120,
    121,
    122,
    124,
    125,
    126,
    127,
    128,
    130,
    131,
    133,
    134,
    135,
    136,
    137,
    138,
    139,
    140,
    143,
    144,
    145,
    147,
    148,
    149,
    150,
)


def _bbox(mask: np.ndarray) -> list[int]:
    """COCO ``[x, y, width, height]`` of a non-empty binary mask."""
    ys = np.nonzero(mask.any(axis=1))[0]
    xs = np.nonzero(mask.any(axis=0))[0]
    return [int(xs[0]), int(ys[0]), int(xs[-1] - xs[0] + 1), int(ys[-1] - ys[0] + 1)]


def _segment(seg_id: int, category_id: int, mask: np.ndarray, iscrowd: int = 0, area: int | None = None) -> dict:
    return {
        "id": int(seg_id),
        "category_id": int(category_id),
        "area": int(mask.sum() if area is None else area),
        "bbox": _bbox(mask),
        "iscrowd": int(iscrowd),
    }


def _id2rgb(ids: np.ndarray) -> np.ndarray:
    ids = np.asarray(ids).astype(np.int64)
    return np.stack([ids % 256, ids // 256 % 256, ids // 65536 % 256], axis=-1).astype(np.uint8)


def _rgb2id(rgb: np.ndarray) -> np.ndarray:
    c = np.asarray(rgb).astype(np.int64)
    return c[..., 0] + 256 * c[..., 1] + 65536 * c[..., 2]


def ade20k_panoptic_from_annotations(semantic: np.ndarray, instance: np.ndarray) -> tuple[np.ndarray, list[dict]]:
    """ADEChallengeData2016 semantic PNG (0 = other, class = value - 1) + instance PNG (R = instance class 1..100,
    G = instance id, 0 = none) -> (segment-id map int64, ``segments_info`` with category ids 0..149).

    As Mask2Former ``prepare_ade20k_pan_seg.py``: one segment per stuff class of the semantic map (pasted first),
    then one per instance id (pasted over the stuff). Thing classes of the semantic map without an instance are
    void. Stuff ``area`` is that of the semantic mask *before* the instances are pasted, exactly as the official
    script writes it (so a stuff segment overlapped by an instance has a JSON area larger than its pixel count).
    Segment ids are 1, 2, ... in that order (the official script draws them at random; PQ does not depend on ids).
    """
    semantic = np.asarray(semantic)
    instance = np.asarray(instance)
    if semantic.ndim != 2:
        raise ValueError(f"expected a single-channel ADE20K semantic map, got shape {semantic.shape}")
    if instance.ndim != 3 or instance.shape[2] < 2:
        raise ValueError(f"expected an RGB ADE20K instance map, got shape {instance.shape}")
    if instance.shape[:2] != semantic.shape:
        raise ValueError(f"semantic {semantic.shape} and instance {instance.shape[:2]} maps differ in size")
    if semantic.max(initial=0) > 150:
        raise ValueError(f"ADE20K-150 label values must be <= 150, got {semantic.max()}")
    things = {c - 1 for c in ADE20K_INSTANCE_TO_150}
    pan = np.zeros(semantic.shape, dtype=np.int64)
    segments: list[dict] = []
    classes = semantic.astype(np.int64) - 1
    for cat in np.unique(classes).tolist():
        if cat < 0 or cat in things:
            continue
        mask = classes == cat
        segments.append(_segment(len(segments) + 1, cat, mask))
        pan[mask] = segments[-1]["id"]
    ins_cls = instance[..., 0].astype(np.int64)
    ins_ids = instance[..., 1].astype(np.int64)
    for ins in np.unique(ins_ids).tolist():
        if ins == 0:
            continue
        mask = ins_ids == ins
        cls = np.unique(ins_cls[mask])
        if len(cls) != 1 or not 1 <= int(cls[0]) <= 100:
            raise ValueError(f"instance {ins} has instance classes {cls.tolist()} (expected one value in 1..100)")
        segments.append(_segment(len(segments) + 1, ADE20K_INSTANCE_TO_150[int(cls[0]) - 1] - 1, mask))
        pan[mask] = segments[-1]["id"]
    return pan, segments


def cityscapes_panoptic_from_instance_ids(
    instance_ids: np.ndarray, *, use_train_id: bool = False
) -> tuple[np.ndarray, list[dict]]:
    """Cityscapes ``*_gtFine_instanceIds.png`` -> (segment-id map, ``segments_info``), as cityscapesScripts
    ``createPanopticImgs``: a value ``v >= 1000`` is instance ``v % 1000`` of labelId ``v // 1000``; ``v < 1000`` is
    labelId ``v`` (crowd when the class has instances); the segment id is ``v`` itself; labels ignored in evaluation
    become void. ``category_id`` is the labelId (or the trainId 0..18 with ``use_train_id``)."""
    values = np.asarray(instance_ids).astype(np.int64)
    if values.ndim != 2:
        raise ValueError(f"expected a single-channel instanceIds image, got shape {values.shape}")
    label_ids = cityscapes_label_ids()
    from .class_names import get_categories

    train_id = {lid: i for i, lid in enumerate(label_ids)}
    has_instances = {lid for lid, c in zip(label_ids, get_categories("cityscapes"), strict=False) if c.is_thing}
    pan = np.zeros(values.shape, dtype=np.int64)
    segments: list[dict] = []
    for v in np.unique(values).tolist():
        label = v if v < 1000 else v // 1000
        if label < 0 or label > 33:
            raise ValueError(f"instanceIds value {v} has no Cityscapes label (labelId {label})")
        if label not in train_id:
            continue  # ignoreInEval (incl. caravan / trailer instances) -> void
        iscrowd = int(v < 1000 and label in has_instances)
        mask = values == v
        segments.append(_segment(v, train_id[label] if use_train_id else label, mask, iscrowd))
        pan[mask] = v
    return pan, segments


def mapillary_panoptic_from_instances(
    instances: np.ndarray, *, is_thing: Iterable[bool] | None = None, num_classes: int = 65
) -> tuple[np.ndarray, list[dict]]:
    """Mapillary Vistas instance PNG (uint16, ``label * 256 + instance``; label ``num_classes`` = unlabeled) ->
    (segment-id map, ``segments_info``) in the layout of the shipped ``panoptic_2018.json``: ``category_id`` =
    label + 1 (1..65); one segment per instance of a thing class and one per stuff class (its instances merged).
    ``is_thing`` defaults to the ``instances`` flags of the v1.2 ``config.json`` (as in ``get_categories``).
    Group ("crowd") flags are not in the instance PNGs: ``iscrowd`` is 0 (the shipped json is preferred)."""
    values = np.asarray(instances).astype(np.int64)
    if values.ndim != 2:
        raise ValueError(f"expected a single-channel 16-bit instance PNG, got shape {values.shape}")
    if is_thing is None:
        from .class_names import get_categories

        is_thing = [c.is_thing for c in get_categories("mapillary_vistas")]
    is_thing = list(is_thing)
    if len(is_thing) != num_classes:
        raise ValueError(f"is_thing has {len(is_thing)} entries, expected {num_classes}")
    labels = values >> 8
    if labels.max(initial=0) > num_classes:
        raise ValueError(f"instance PNG label {labels.max()} > {num_classes} (a v2.0 annotation given as v1.2?)")
    pan = np.zeros(values.shape, dtype=np.int64)
    segments: list[dict] = []
    for label in np.unique(labels).tolist():
        if label == num_classes:
            continue
        in_class = labels == label
        if not is_thing[label]:
            segments.append(_segment(len(segments) + 1, label + 1, in_class))
            pan[in_class] = segments[-1]["id"]
            continue
        for v in np.unique(values[in_class]).tolist():
            mask = values == v
            segments.append(_segment(len(segments) + 1, label + 1, mask))
            pan[mask] = segments[-1]["id"]
    return pan, segments


def _write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)


def _existing_annotations(json_path: Path, overwrite: bool) -> dict[str, dict]:
    if overwrite or not json_path.exists():
        return {}
    try:
        data = json.loads(json_path.read_text())
    except (json.JSONDecodeError, OSError):
        return {}
    return {a["file_name"]: a for a in data.get("annotations", [])}


def _panoptic_categories(dataset: str, ids: Iterable[int] | None = None) -> list[dict]:
    from .class_names import get_categories

    cats = get_categories(dataset)
    ids = list(ids) if ids is not None else [c.id for c in cats]
    return [{"id": int(i), "name": c.name, "isthing": int(c.is_thing)} for i, c in zip(ids, cats, strict=False)]


def _convert_panoptic(
    items: Sequence[tuple[str, Path, dict, Callable[[], tuple[np.ndarray, list[dict]]]]],
    *,
    out_dir: Path,
    json_path: Path,
    categories: list[dict],
    overwrite: bool,
    desc: str,
) -> int:
    """Shared driver: ``items`` are (png name, image path, image entry, converter() -> (ids, segments)). PNGs
    already written and listed in an existing JSON are kept (idempotent, resumable); returns #PNGs written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    existing = _existing_annotations(json_path, overwrite)
    images, annotations = [], []
    written = 0
    for png_name, image_path, image_entry, convert in tqdm(items, desc=desc):
        out = out_dir / png_name
        ann = existing.get(png_name)
        if ann is None or not out.exists():
            if not image_path.exists():
                raise FileNotFoundError(f"image not found: {image_path}")
            ids, segments = convert()
            _check_same_size(image_path, ids.shape)
            Image.fromarray(_id2rgb(ids)).save(out)
            ann = {"image_id": image_entry["id"], "file_name": png_name, "segments_info": segments}
            written += 1
        if "width" not in image_entry:
            with Image.open(image_path) as im:
                image_entry = {**image_entry, "width": im.width, "height": im.height}
        images.append(image_entry)
        annotations.append(ann)
    if written or not json_path.exists():
        _write_json_atomic(json_path, {"images": images, "annotations": annotations, "categories": categories})
    return written


def prepare_ade20k_panoptic(*, root: str | Path, split: str = "validation", overwrite: bool = False) -> int:
    """``<root>/ADEChallengeData2016/{images,annotations,annotations_instance}/<split>`` ->
    ``ade20k_panoptic_{val|train}/*.png`` + ``ade20k_panoptic_{val|train}.json`` (Mask2Former
    ``prepare_ade20k_pan_seg.py``; category ids 0..149; returns #PNGs written)."""
    base = Path(root) / "ADEChallengeData2016"
    images_dir = _require_dir(base / "images" / split, "ADE20K-150 images")
    sem_dir = _require_dir(base / "annotations" / split, "ADE20K-150 annotations")
    ins_dir = _require_dir(
        base / "annotations_instance" / split,
        "ADE20K instance annotations (annotations_instance.tar of the ADE20K instance release)",
    )
    name = {"validation": "val", "training": "train"}.get(split, split)
    items = []
    for image_path in sorted(images_dir.glob("*.jpg")):
        stem = image_path.stem
        sem_path, ins_path = sem_dir / f"{stem}.png", ins_dir / f"{stem}.png"
        for p in (sem_path, ins_path):
            if not p.exists():
                raise FileNotFoundError(f"annotation for {image_path.name} not found: {p}")
        convert = lambda s=sem_path, i=ins_path: ade20k_panoptic_from_annotations(_read_image(s), _read_image(i))
        items.append((f"{stem}.png", image_path, {"id": stem, "file_name": image_path.name}, convert))
    if not items:
        raise FileNotFoundError(f"no images in {images_dir}")
    return _convert_panoptic(
        items,
        out_dir=base / f"ade20k_panoptic_{name}",
        json_path=base / f"ade20k_panoptic_{name}.json",
        categories=_panoptic_categories("ade20k_150"),
        overwrite=overwrite,
        desc=f"ADE20K panoptic {split}",
    )


def prepare_cityscapes_panoptic(
    *, root: str | Path, split: str = "val", use_train_id: bool = False, overwrite: bool = False
) -> int:
    """``<root>/gtFine/<split>/*/*_gtFine_instanceIds.png`` -> ``gtFine/cityscapes_panoptic_<split>[_trainId].json``
    + ``gtFine/cityscapes_panoptic_<split>[_trainId]/*_gtFine_panoptic.png`` (cityscapesScripts
    ``createPanopticImgs``; ``root`` is the ``cityscapes`` folder; returns #PNGs written)."""
    root = Path(root)
    gt = _require_dir(root / "gtFine" / split, "Cityscapes gtFine split")
    images_dir = root / "leftImg8bit" / split
    suffix = "_trainId" if use_train_id else ""
    items = []
    for path in sorted(gt.glob("*/*_gtFine_instanceIds.png")):
        # names as createPanopticImgs writes them: images[].file_name is "<id>_gtFine_leftImg8bit.png" (not a
        # file; readers find the image "<id>_leftImg8bit.png" by image_id, as detectron2 does)
        image_id = path.name.replace("_gtFine_instanceIds.png", "")
        convert = lambda p=path: cityscapes_panoptic_from_instance_ids(_read_image(p), use_train_id=use_train_id)
        png_name = path.name.replace("_instanceIds.png", "_panoptic.png")
        items.append(
            (
                png_name,
                images_dir / path.parent.name / f"{image_id}_leftImg8bit.png",
                {"id": image_id, "file_name": path.name.replace("_instanceIds.png", "_leftImg8bit.png")},
                convert,
            )
        )
    if not items:
        raise FileNotFoundError(f"no *_gtFine_instanceIds.png under {gt}")
    ids = range(19) if use_train_id else cityscapes_label_ids()
    return _convert_panoptic(
        items,
        out_dir=root / "gtFine" / f"cityscapes_panoptic_{split}{suffix}",
        json_path=root / "gtFine" / f"cityscapes_panoptic_{split}{suffix}.json",
        categories=_panoptic_categories("cityscapes", ids),
        overwrite=overwrite,
        desc=f"Cityscapes panoptic {split}",
    )


def mapillary_v12_config_is_thing(config_path: str | Path) -> list[bool]:
    """``instances`` flags of the 65 evaluated classes of a Mapillary Vistas v1.2 ``config.json`` /
    ``config_v1.2.json`` (``labels`` list; the 66th label, "Unlabeled", is not evaluated)."""
    config = json.loads(Path(config_path).read_text())
    labels = config.get("labels")
    if not isinstance(labels, list) or len(labels) not in (65, 66):
        raise ValueError(f"{config_path}: expected 66 v1.2 labels, got {len(labels) if labels else labels}")
    return [bool(label["instances"]) for label in labels[:65]]


def find_mapillary_config(root: str | Path) -> Path | None:
    """The v1.2 config of ``<root>/mapillary_vistas`` (``config_v1.2.json`` of the v2.0 download or the v1.2
    download's ``config.json``), or None."""
    base = Path(root) / "mapillary_vistas"
    return next((p for p in (base / "config_v1.2.json", base / "config.json") if p.exists()), None)


def prepare_mapillary_panoptic(*, root: str | Path, split: str = "validation", overwrite: bool = False) -> int:
    """``<root>/mapillary_vistas/<split>/{images,v1.2/instances}`` -> ``<split>/v1.2/panoptic/panoptic_2018.json`` +
    PNGs (the layout shipped in the downloads; only needed when the shipped panoptic files are missing). The
    v1.2 download's ``<split>/instances`` (no ``v1.2`` folder) is accepted too, output then in ``<split>/panoptic``.
    Thing flags come from the v1.2 config when present. Returns #PNGs written."""
    base = Path(root) / "mapillary_vistas" / split
    images_dir = _require_dir(base / "images", "Mapillary Vistas images")
    ann_root = base / "v1.2" if (base / "v1.2").is_dir() else base
    ins_dir = _require_dir(ann_root / "instances", "Mapillary Vistas v1.2 instance PNGs")
    config = find_mapillary_config(root)
    is_thing = mapillary_v12_config_is_thing(config) if config is not None else None
    items = []
    for ins_path in sorted(ins_dir.glob("*.png")):
        image_path = images_dir / f"{ins_path.stem}.jpg"
        convert = lambda p=ins_path: mapillary_panoptic_from_instances(_read_image(p), is_thing=is_thing)
        items.append((ins_path.name, image_path, {"id": ins_path.stem, "file_name": image_path.name}, convert))
    if not items:
        raise FileNotFoundError(f"no instance PNGs in {ins_dir}")
    return _convert_panoptic(
        items,
        out_dir=ann_root / "panoptic",
        json_path=ann_root / "panoptic" / "panoptic_2018.json",
        categories=_panoptic_categories("mapillary_vistas", range(1, 66)),
        overwrite=overwrite,
        desc=f"Mapillary panoptic {split}",
    )
