"""Torch ``Dataset`` readers of the prepared benchmarks (layouts of the official downloads / prepare scripts).

Every item is a dict with ``image``: uint8 numpy (H, W, 3) RGB, ``file_name`` and targets:

- semantic datasets: ``sem_seg`` int64 (H, W) contiguous class ids, ``ignore_index`` (255, or 65535 for the
  847/459-class benchmarks whose ids exceed 255);
- COCO panoptic: ``pan_ids`` int64 (H, W) segment ids (``R + 256 G + 256^2 B``, 0 = void), ``segments_info``
  (COCO dicts), ``sem_seg`` (contiguous class ids of the 133 categories, 255 on void/crowd-free unlabeled).
- panoptic ADE20K-150 / Cityscapes / Mapillary Vistas (:class:`PanopticDataset`, :func:`build_panoptic_dataset`):
  the same keys; ``segments_info[i]["category_id"]`` is ``get_categories(name)[k].id`` of its contiguous class
  ``k`` (for these datasets ``id == k``, like the semantic readers' label values); ``sem_seg`` comes from the
  dataset's semantic labels (as the official mIoU evaluation) when present, else from the panoptic map.

Panoptic layouts (FC-CLIP / Mask2Former registrations; build them with :mod:`ovseg_models.data.prepare`):

================  ==========================================================================================
coco_panoptic     coco/panoptic_val2017/*.png + coco/annotations/panoptic_val2017.json
ade20k_150        ADEChallengeData2016/ade20k_panoptic_val/*.png + ade20k_panoptic_val.json (ids 0..149)
cityscapes        cityscapes/gtFine/cityscapes_panoptic_val/*.png + cityscapes_panoptic_val.json (labelIds;
                  ``cityscapes_panoptic_val_trainId.json`` with trainIds 0..18 is read too)
mapillary_vistas  mapillary_vistas/validation/v1.2/panoptic/{panoptic_2018.json,*.png} (v2.0 download) or
                  mapillary_vistas/validation/panoptic/ (v1.2 download); ids 1..65; things from config_v1.2.json
================  ==========================================================================================

Layouts (``root`` is the datasets folder, as ``DETECTRON2_DATASETS``):

==================  =====================================================  ==========================================
dataset             images                                                 labels
==================  =====================================================  ==========================================
coco_panoptic       coco/val2017/*.jpg                                     coco/panoptic_val2017/*.png +
                                                                           coco/annotations/panoptic_val2017.json
ade20k_150          ADEChallengeData2016/images/validation/*.jpg           .../annotations_detectron2/validation/*.png
                                                                           (or raw annotations/validation, value-1)
ade20k_847          ADE20K_2021_17_01/images_detectron2/validation/*.jpg   .../annotations_detectron2/validation/*.tif
pascal_context_59   VOCdevkit/VOC2010/JPEGImages/*.jpg                     .../annotations_detectron2/pc59_val/*.png
pascal_context_459  VOCdevkit/VOC2010/JPEGImages/*.jpg                     .../annotations_detectron2/pc459_val/*.tif
pascal_voc_20       VOCdevkit/VOC2012/JPEGImages/*.jpg                     .../annotations_detectron2/val/*.png
pascal_voc_21       VOCdevkit/VOC2012/JPEGImages/*.jpg                     .../annotations_detectron2_bg/val/*.png
cityscapes          cityscapes/leftImg8bit/val/*/*_leftImg8bit.png         gtFine/val/*/*_gtFine_labelTrainIds.png
                                                                           (or *_labelIds.png, converted on the fly)
mapillary_vistas    mapillary_vistas/validation/images/*.jpg               .../validation/v1.2/labels/*.png (65 = void;
                                                                           or validation/labels, v1.2 download)
coco_stuff_171      coco-stuff/images/{split}/*.jpg or coco/{split}/*.jpg  coco-stuff/annotations_detectron2/{split}/*.png
                    (split: train2017 / val2017; CAT-Seg's training set)   (0..170, 255), or the raw
                                                                           coco/stuffthingmaps_trainval2017/{split}
                                                                           (category_id - 1, converted on the fly)
==================  =====================================================  ==========================================
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from .class_names import _canonical, cityscapes_label_ids, get_categories
from .prepare import (
    ade20k_150_label_to_train_id,
    cityscapes_label_ids_to_train_ids,
    find_mapillary_config,
    mapillary_v12_config_is_thing,
)

__all__ = [
    "SemanticSegmentationDataset",
    "COCOPanopticDataset",
    "PanopticDataset",
    "PANOPTIC_DATASETS",
    "mapillary_v12_label_to_train_id",
    "build_semantic_dataset",
    "build_panoptic_dataset",
    "coco_stuff_dataset",
]


def _load_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.array(im.convert("RGB"), dtype=np.uint8)


def _load_label(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.array(im)  # palette PNGs give indices, tif gives uint16


def mapillary_v12_label_to_train_id(label: np.ndarray) -> np.ndarray:
    """Mapillary Vistas v1.2 label PNG (indices 0..64, 65 = unlabeled) -> 0..64, 255 = ignore."""
    label = np.asarray(label).astype(np.int64)
    if label.max(initial=0) > 65:
        raise ValueError(f"Mapillary v1.2 labels must be <= 65, got {label.max()} (is this a v2.0 label?)")
    return np.where(label == 65, 255, label)


class SemanticSegmentationDataset(Dataset):
    """Pairs ``image_dir/**/<stem><image_suffix>`` with ``label_dir/**/<stem><label_suffix>`` (same relative dir).

    ``label_transform`` maps the stored label array to contiguous ids (default: identity).
    """

    def __init__(
        self,
        *,
        image_dir: str | Path,
        label_dir: str | Path,
        num_classes: int,
        image_suffix: str = ".jpg",
        label_suffix: str = ".png",
        ignore_index: int = 255,
        label_transform: Callable[[np.ndarray], np.ndarray] | None = None,
        require_all_labels: bool = False,
    ):
        self.image_dir = Path(image_dir)
        self.label_dir = Path(label_dir)
        for d, what in ((self.image_dir, "image"), (self.label_dir, "label")):
            if not d.is_dir():
                raise FileNotFoundError(f"{what} directory not found: {d}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.label_transform = label_transform
        self.items: list[tuple[Path, Path]] = []
        for image_path in sorted(self.image_dir.rglob(f"*{image_suffix}")):
            rel = image_path.relative_to(self.image_dir)
            stem = image_path.name[: -len(image_suffix)]
            label_path = self.label_dir / rel.parent / f"{stem}{label_suffix}"
            if label_path.exists():
                self.items.append((image_path, label_path))
            elif require_all_labels:
                raise FileNotFoundError(f"label for {image_path} not found: {label_path}")
        if not self.items:
            raise FileNotFoundError(f"no image/label pairs under {self.image_dir} and {self.label_dir}")

    def __len__(self) -> int:
        return len(self.items)

    def load_label(self, index: int) -> np.ndarray:
        """Contiguous class ids (int64) of item ``index`` without reading its image."""
        label = _load_label(self.items[index][1])
        if self.label_transform is not None:
            label = self.label_transform(label)
        return np.asarray(label).astype(np.int64)

    def __getitem__(self, index: int) -> dict:
        image_path, label_path = self.items[index]
        image = _load_rgb(image_path)
        label = self.load_label(index)
        if label.shape != image.shape[:2]:
            raise ValueError(f"size mismatch: {image_path} {image.shape[:2]} vs {label_path} {label.shape}")
        return {
            "image": image,
            "sem_seg": label,
            "ignore_index": self.ignore_index,
            "file_name": str(image_path),
        }


class COCOPanopticDataset(Dataset):
    """COCO panoptic: ``image_dir/<file>.jpg``, ``panoptic_dir/<file>.png`` and the panoptic JSON."""

    def __init__(self, *, image_dir: str | Path, panoptic_dir: str | Path, panoptic_json: str | Path):
        self.image_dir = Path(image_dir)
        self.panoptic_dir = Path(panoptic_dir)
        json_path = Path(panoptic_json)
        for p in (self.image_dir, self.panoptic_dir, json_path):
            if not p.exists():
                raise FileNotFoundError(f"COCO panoptic input not found: {p}")
        data = json.loads(json_path.read_text())
        images = {img["id"]: img for img in data["images"]}
        self.annotations = [(images[a["image_id"]], a) for a in data["annotations"]]
        self.categories = data.get("categories") or [
            {"id": c.id, "isthing": int(c.is_thing), "name": c.name} for c in get_categories("coco_panoptic")
        ]
        self.contiguous_id = {c["id"]: i for i, c in enumerate(self.categories)}

    def __len__(self) -> int:
        return len(self.annotations)

    def __getitem__(self, index: int) -> dict:
        image_info, ann = self.annotations[index]
        image = _load_rgb(self.image_dir / image_info["file_name"])
        rgb = _load_label(self.panoptic_dir / ann["file_name"]).astype(np.int64)
        pan_ids = rgb[..., 0] + 256 * rgb[..., 1] + 256 * 256 * rgb[..., 2]
        if pan_ids.shape != image.shape[:2]:
            raise ValueError(f"size mismatch between image {image_info['file_name']} and {ann['file_name']}")
        sem = np.full(pan_ids.shape, 255, dtype=np.int64)
        for seg in ann["segments_info"]:
            sem[pan_ids == seg["id"]] = self.contiguous_id[seg["category_id"]]
        return {
            "image": image,
            "pan_ids": pan_ids,
            "segments_info": ann["segments_info"],
            "sem_seg": sem,
            "ignore_index": 255,
            "image_id": image_info["id"],
            "file_name": image_info["file_name"],
        }


class PanopticDataset(Dataset):
    """COCO-format panoptic ground truth (JSON + RGB PNGs) of a benchmark, categories mapped to the contiguous
    classes of ``get_categories(dataset)``.

    ``category_map`` maps the JSON's category ids to contiguous indices (default: identity); a segment of an
    unmapped category raises ``ValueError``. When the JSON lists ``categories`` with ``isthing``, the flags must
    agree with ``get_categories``. ``image_path(image_entry, annotation)`` locates the image (default:
    ``image_dir / images[image_id]["file_name"]``, else the annotation's PNG stem + ``.jpg``). ``semantic`` (a
    :class:`SemanticSegmentationDataset` of the same images) supplies ``sem_seg``; without it (or for an image it
    lacks) ``sem_seg`` is painted from the panoptic segments (crowd included, 255 elsewhere).
    """

    def __init__(
        self,
        *,
        dataset: str,
        image_dir: str | Path,
        panoptic_dir: str | Path,
        panoptic_json: str | Path,
        category_map: dict[int, int] | None = None,
        image_path: Callable[[dict, dict], Path] | None = None,
        semantic: SemanticSegmentationDataset | None = None,
    ):
        self.dataset = _canonical(dataset)
        self.image_dir = Path(image_dir)
        self.panoptic_dir = Path(panoptic_dir)
        json_path = Path(panoptic_json)
        for p in (self.image_dir, self.panoptic_dir, json_path):
            if not p.exists():
                raise FileNotFoundError(f"{self.dataset} panoptic input not found: {p}")
        cats = get_categories(self.dataset)
        data = json.loads(json_path.read_text())
        if category_map is None:
            category_map = {i: i for i in range(len(cats))}
        self.category_map = {int(k): int(v) for k, v in category_map.items()}
        if any(not 0 <= v < len(cats) for v in self.category_map.values()):
            raise ValueError(f"category_map values must lie in [0, {len(cats)})")
        for c in data.get("categories") or []:
            k = self.category_map.get(int(c["id"]))
            if k is not None and "isthing" in c and bool(c["isthing"]) != cats[k].is_thing:
                raise ValueError(
                    f"{json_path}: category {c['id']} ({c.get('name')}) isthing={c['isthing']} but "
                    f"{cats[k].name!r} is_thing={cats[k].is_thing} in get_categories({self.dataset!r})"
                )
        self.categories = [{"id": c.id, "name": c.name, "isthing": int(c.is_thing)} for c in cats]
        self._cats = cats
        images = {img["id"]: img for img in data.get("images", [])}
        self.annotations = [(images.get(a["image_id"], {"id": a["image_id"]}), a) for a in data["annotations"]]
        if not self.annotations:
            raise FileNotFoundError(f"no annotations in {json_path}")
        self._image_path = image_path or self._default_image_path
        self.semantic = semantic
        self._semantic_index = (
            {str(Path(img).resolve()): i for i, (img, _) in enumerate(semantic.items)} if semantic is not None else {}
        )

    def _default_image_path(self, image_info: dict, ann: dict) -> Path:
        if "file_name" in image_info:
            return self.image_dir / image_info["file_name"]
        return self.image_dir / (Path(ann["file_name"]).stem + ".jpg")

    def __len__(self) -> int:
        return len(self.annotations)

    def segments(self, ann: dict) -> list[dict]:
        """``segments_info`` of one annotation with ``category_id`` mapped and ``iscrowd``/``isthing`` filled."""
        out = []
        for seg in ann["segments_info"]:
            k = self.category_map.get(int(seg["category_id"]))
            if k is None:
                raise ValueError(
                    f"{ann['file_name']}: segment {seg['id']} has unknown category_id {seg['category_id']}"
                )
            out.append(
                {
                    **seg,
                    "category_id": self._cats[k].id,
                    "iscrowd": int(seg.get("iscrowd", 0)),
                    "isthing": self._cats[k].is_thing,
                }
            )
        return out

    def __getitem__(self, index: int) -> dict:
        image_info, ann = self.annotations[index]
        image_path = Path(self._image_path(image_info, ann))
        image = _load_rgb(image_path)
        rgb = _load_label(self.panoptic_dir / ann["file_name"]).astype(np.int64)
        if rgb.ndim != 3:
            raise ValueError(f"{self.panoptic_dir / ann['file_name']} is not an RGB panoptic PNG")
        pan_ids = rgb[..., 0] + 256 * rgb[..., 1] + 256 * 256 * rgb[..., 2]
        if pan_ids.shape != image.shape[:2]:
            raise ValueError(f"size mismatch between image {image_path} and {ann['file_name']}")
        segments = self.segments(ann)
        sem_index = self._semantic_index.get(str(image_path.resolve()))
        if sem_index is not None and self.semantic is not None:  # indexed only when there is one
            sem = self.semantic.load_label(sem_index)
            if sem.shape != pan_ids.shape:
                raise ValueError(f"size mismatch between {image_path} and its semantic label")
        else:
            contiguous = {c.id: k for k, c in enumerate(self._cats)}
            sem = np.full(pan_ids.shape, 255, dtype=np.int64)
            for seg in segments:
                sem[pan_ids == seg["id"]] = contiguous[seg["category_id"]]
        return {
            "image": image,
            "pan_ids": pan_ids,
            "segments_info": segments,
            "sem_seg": sem,
            "ignore_index": 255,
            "image_id": image_info["id"],
            "file_name": str(image_path),
        }


PANOPTIC_DATASETS: tuple[str, ...] = ("coco_panoptic", "ade20k_150", "cityscapes", "mapillary_vistas")


def _semantic_or_none(name: str, root: Path, split: str) -> SemanticSegmentationDataset | None:
    try:
        return build_semantic_dataset(name, root=root, split=split)
    except FileNotFoundError:
        return None


def _cityscapes_image_path(image_dir: Path) -> Callable[[dict, dict], Path]:
    """The image of a Cityscapes panoptic annotation, found by its ``image_id`` as detectron2 does
    (``leftImg8bit/<split>/<city>/<image_id>_leftImg8bit.png``): cityscapesScripts' ``createPanopticImgs``
    writes ``images[].file_name`` as ``<image_id>_gtFine_leftImg8bit.png``, a name no file has."""

    def image_path(info: dict, ann: dict) -> Path:
        image_id = str(ann.get("image_id", info.get("id")))
        path = image_dir / image_id.split("_")[0] / f"{image_id}_leftImg8bit.png"
        if not path.exists():
            raise FileNotFoundError(f"Cityscapes image of panoptic annotation {image_id!r} not found: {path}")
        return path

    return image_path


def build_panoptic_dataset(name: str, *, root: str | Path, split: str = "val"):
    """Panoptic reader of ``name`` (one of :data:`PANOPTIC_DATASETS`) under ``root`` with the layouts of the module
    docstring; raises ``FileNotFoundError`` when the panoptic files are absent."""
    root = Path(root)
    name = _canonical(name)
    if name == "coco_panoptic":
        base = root / "coco"
        sub = "val2017" if split == "val" else split
        return COCOPanopticDataset(
            image_dir=base / sub,
            panoptic_dir=base / f"panoptic_{sub}",
            panoptic_json=base / "annotations" / f"panoptic_{sub}.json",
        )
    if name == "ade20k_150":
        base = root / "ADEChallengeData2016"
        sub = "validation" if split == "val" else split
        short = {"validation": "val", "training": "train"}.get(sub, sub)
        return PanopticDataset(
            dataset=name,
            image_dir=base / "images" / sub,
            panoptic_dir=base / f"ade20k_panoptic_{short}",
            panoptic_json=base / f"ade20k_panoptic_{short}.json",
            semantic=_semantic_or_none(name, root, split),
        )
    if name == "cityscapes":
        base = root / "cityscapes"
        gt = base / "gtFine"
        label_ids = base / "gtFine" / f"cityscapes_panoptic_{split}.json"
        train_ids = base / "gtFine" / f"cityscapes_panoptic_{split}_trainId.json"
        if label_ids.exists() or not train_ids.exists():
            json_path, folder = label_ids, gt / f"cityscapes_panoptic_{split}"
            category_map = {lid: k for k, lid in enumerate(cityscapes_label_ids())}
        else:
            json_path, folder = train_ids, gt / f"cityscapes_panoptic_{split}_trainId"
            category_map = {k: k for k in range(19)}
        image_dir = base / "leftImg8bit" / split
        return PanopticDataset(
            dataset=name,
            image_dir=image_dir,
            panoptic_dir=folder,
            panoptic_json=json_path,
            category_map=category_map,
            image_path=_cityscapes_image_path(image_dir),
            semantic=_semantic_or_none(name, root, split),
        )
    if name == "mapillary_vistas":
        base = root / "mapillary_vistas" / ("validation" if split == "val" else split)
        folders = [base / "v1.2" / "panoptic", base / "panoptic"]
        found = next((f for f in folders if (f / "panoptic_2018.json").exists()), None)
        if found is None:
            raise FileNotFoundError(
                f"Mapillary Vistas v1.2 panoptic_2018.json not found in any of {[str(f) for f in folders]}"
            )
        config = find_mapillary_config(root)
        if config is not None:
            flags = mapillary_v12_config_is_thing(config)
            ours = [c.is_thing for c in get_categories(name)]
            if flags != ours:
                bad = [
                    get_categories(name)[i].name for i, (a, b) in enumerate(zip(flags, ours, strict=False)) if a != b
                ]
                raise ValueError(f"{config}: 'instances' flags disagree with get_categories for {bad}")
        return PanopticDataset(
            dataset=name,
            image_dir=base / "images",
            panoptic_dir=found,
            panoptic_json=found / "panoptic_2018.json",
            category_map={k + 1: k for k in range(65)},
            semantic=_semantic_or_none(name, root, split),
        )
    raise KeyError(f"no panoptic reader for {name!r}; known: {', '.join(PANOPTIC_DATASETS)}")


def build_semantic_dataset(name: str, *, root: str | Path, split: str = "val") -> SemanticSegmentationDataset:
    """Semantic dataset ``name`` (class-name key) under ``root`` with the layout of the module table."""
    root = Path(root)
    num_classes = len(get_categories(name))
    if name == "ade20k_150":
        base = root / "ADEChallengeData2016"
        sub = "validation" if split == "val" else split
        prepared = base / "annotations_detectron2" / sub
        if prepared.is_dir():
            return SemanticSegmentationDataset(
                image_dir=base / "images" / sub, label_dir=prepared, num_classes=num_classes
            )
        return SemanticSegmentationDataset(
            image_dir=base / "images" / sub,
            label_dir=base / "annotations" / sub,
            num_classes=num_classes,
            label_transform=ade20k_150_label_to_train_id,
        )
    if name == "ade20k_847":
        base = root / "ADE20K_2021_17_01"
        sub = "validation" if split == "val" else split
        return SemanticSegmentationDataset(
            image_dir=base / "images_detectron2" / sub,
            label_dir=base / "annotations_detectron2" / sub,
            num_classes=num_classes,
            label_suffix=".tif",
            ignore_index=65535,
        )
    if name in ("pascal_context_59", "pascal_context_459"):
        base = root / "VOCdevkit" / "VOC2010"
        is59 = name == "pascal_context_59"
        return SemanticSegmentationDataset(
            image_dir=base / "JPEGImages",
            label_dir=base / "annotations_detectron2" / (f"pc59_{split}" if is59 else f"pc459_{split}"),
            num_classes=num_classes,
            label_suffix=".png" if is59 else ".tif",
            ignore_index=255 if is59 else 65535,
        )
    if name in ("pascal_voc_20", "pascal_voc_21"):
        base = root / "VOCdevkit" / "VOC2012"
        folder = "annotations_detectron2" if name.endswith("20") else "annotations_detectron2_bg"
        return SemanticSegmentationDataset(
            image_dir=base / "JPEGImages", label_dir=base / folder / split, num_classes=num_classes
        )
    if name == "cityscapes":
        base = root / "cityscapes"
        gt = base / "gtFine" / split
        has_train_ids = any(gt.glob("*/*_gtFine_labelTrainIds.png")) if gt.is_dir() else False
        return SemanticSegmentationDataset(
            image_dir=base / "leftImg8bit" / split,
            label_dir=gt,
            num_classes=num_classes,
            image_suffix="_leftImg8bit.png",
            label_suffix="_gtFine_labelTrainIds.png" if has_train_ids else "_gtFine_labelIds.png",
            label_transform=None if has_train_ids else cityscapes_label_ids_to_train_ids,
        )
    if name == "mapillary_vistas":
        base = root / "mapillary_vistas" / ("validation" if split == "val" else split)
        labels = base / "v1.2" / "labels"
        if not labels.is_dir() and (base / "labels").is_dir():
            labels = base / "labels"  # v1.2 download layout (Mask2Former)
        return SemanticSegmentationDataset(
            image_dir=base / "images",
            label_dir=labels,
            num_classes=num_classes,
            label_transform=mapillary_v12_label_to_train_id,
        )
    if name == "coco_stuff_171":
        return coco_stuff_dataset(root, "val2017" if split == "val" else split)
    raise KeyError(f"no semantic reader for {name!r}")


def _coco_stuff_raw_to_171() -> np.ndarray:
    lut = np.full(256, 255, np.int64)
    for i, c in enumerate(get_categories("coco_stuff_171")):
        lut[int(c.id) - 1] = i  # stuffthingmaps store category_id - 1, 255 = unlabeled
    return lut


def coco_stuff_dataset(root: str | Path, split: str = "train2017") -> SemanticSegmentationDataset:
    """COCO-Stuff-171 under ``root`` (``DETECTRON2_DATASETS``): ``coco/{split}/*.jpg`` or
    ``coco-stuff/images/{split}`` with labels in ``coco-stuff/annotations_detectron2/{split}`` (CAT-Seg's
    prepare script: 0..170, 255) or the raw ``coco/stuffthingmaps_trainval2017/{split}`` (converted on
    the fly)."""
    root = Path(root)
    image_dirs = [root / "coco-stuff" / "images" / split, root / "coco" / split]
    image_dir = next((d for d in image_dirs if d.is_dir()), None)
    if image_dir is None:
        raise FileNotFoundError(f"COCO images not found in any of {[str(d) for d in image_dirs]}")
    prepared = [
        root / "coco-stuff" / "annotations_detectron2" / split,
        root / "coco" / "stuffthingmaps_detectron2" / split,
    ]
    for d in prepared:
        if d.is_dir():
            return SemanticSegmentationDataset(image_dir=image_dir, label_dir=d, num_classes=171)
    raw = [root / "coco-stuff" / "annotations" / split, root / "coco" / "stuffthingmaps_trainval2017" / split]
    raw_dir = next((d for d in raw if d.is_dir()), None)
    if raw_dir is not None:
        lut = _coco_stuff_raw_to_171()
        return SemanticSegmentationDataset(
            image_dir=image_dir,
            label_dir=raw_dir,
            num_classes=171,
            label_transform=lambda x: lut[np.asarray(x).astype(np.int64)],
        )
    raise FileNotFoundError(f"COCO-Stuff labels not found in any of {[str(d) for d in prepared + raw]}")
