"""Predictions saved on disk, in the formats the papers' evaluators write, scored with this project's metrics
(``ovseg-eval --predictions DIR``): results of any model, the official code's included.

Layout of ``DIR/<dataset>/`` (``<dataset>`` a benchmark key such as ``ade20k_150``):

- semantic (required, for mIoU), either
  - ``sem_seg/<image stem>.png`` (or ``.tif`` for more than 256 classes): a label map of the image's size holding
    contiguous class indices of ``get_categories(dataset)`` (what the models' semantic output is), or
  - ``sem_seg_predictions.json``: detectron2 ``SemSegEvaluator``'s output (``output_dir`` given): a list of
    ``{"file_name", "category_id", "segmentation": RLE}``, one per image and predicted class;
- panoptic (optional, for PQ): ``panoptic.json`` in the COCO panoptic format (``annotations`` with ``image_id``,
  ``file_name``, ``segments_info`` [{``id``, ``category_id``}]) and its PNGs in ``panoptic/``
  (``id = R + 256 G + 256^2 B``), as panopticapi / detectron2's ``COCOPanopticEvaluator`` write them;
- instances (optional, for AP with panoptic): ``instances.json``, COCO results as detectron2's
  ``coco_instances_results.json`` (``image_id``, ``category_id``, ``segmentation`` RLE, ``score``).

Category ids in the JSON files are the ``id`` of ``get_categories(dataset)`` (the COCO ids for ``coco_panoptic``,
the contiguous indices for every other benchmark). A prediction is matched to its ground-truth image by
``image_id`` or by the image's file stem; a ground-truth image without a prediction is an error.
"""

from __future__ import annotations

import json
import types
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["SavedPredictions"]


def _keys(item: dict) -> list[str]:
    keys = [Path(item["file_name"]).stem]
    if item.get("image_id") is not None:
        keys.insert(0, str(item["image_id"]))
    return keys


class SavedPredictions:
    """Reader of one dataset's saved predictions; :meth:`predict` gives the result for a ground-truth item."""

    def __init__(self, folder: str | Path, *, categories):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise FileNotFoundError(f"no predictions folder {self.folder}")
        self.categories = list(categories)
        self.contiguous = {c.id: k for k, c in enumerate(self.categories)}
        self.sem_dir = self.folder / "sem_seg"
        self.sem_json: dict[str, list[dict]] = {}
        json_path = self.folder / "sem_seg_predictions.json"
        if json_path.exists():
            for entry in json.loads(json_path.read_text()):
                self.sem_json.setdefault(Path(entry["file_name"]).stem, []).append(entry)
        if not self.sem_dir.is_dir() and not self.sem_json:
            raise FileNotFoundError(f"{self.folder}: no semantic predictions (sem_seg/ or sem_seg_predictions.json)")
        self.panoptic: dict[str, dict] = {}
        pan_json = self.folder / "panoptic.json"
        if pan_json.exists():
            for ann in json.loads(pan_json.read_text())["annotations"]:
                self.panoptic[str(ann["image_id"])] = ann
                self.panoptic.setdefault(Path(ann["file_name"]).stem, ann)
        self.instances: dict[str, list[dict]] | None = None
        inst_json = self.folder / "instances.json"
        if inst_json.exists():
            self.instances = {}
            for d in json.loads(inst_json.read_text()):
                self.instances.setdefault(str(d["image_id"]), []).append(d)

    @property
    def has_panoptic(self) -> bool:
        return bool(self.panoptic)

    def _category(self, category_id: int) -> int:
        k = self.contiguous.get(int(category_id))
        if k is None:
            raise ValueError(f"{self.folder}: category_id {category_id} is not a category of this benchmark")
        return k

    def _semantic(self, item: dict, shape: tuple[int, int]) -> np.ndarray:
        stem = Path(item["file_name"]).stem
        for suffix in (".png", ".tif"):
            path = self.sem_dir / f"{stem}{suffix}"
            if path.exists():
                with Image.open(path) as im:
                    sem = np.array(im)
                break
        else:
            entries = self.sem_json.get(stem)
            if entries is None:
                raise FileNotFoundError(f"{self.folder}: no semantic prediction for {item['file_name']}")
            from pycocotools import mask as mask_util

            # detectron2 writes one RLE per predicted class of an argmax map: the masks do not overlap
            sem = np.zeros(shape, dtype=np.int64)
            for e in entries:
                rle = dict(e["segmentation"])
                if isinstance(rle["counts"], str):
                    rle["counts"] = rle["counts"].encode("ascii")
                sem[mask_util.decode(rle).astype(bool)] = self._category(e["category_id"])
        if sem.shape != shape:
            raise ValueError(
                f"{self.folder}: semantic prediction of {item['file_name']} is {sem.shape}, the image {shape}"
            )
        return sem.astype(np.int64)

    def predict(self, item: dict):
        shape = item["image"].shape[:2]
        out = types.SimpleNamespace(
            semantic=self._semantic(item, shape), panoptic=None, segments=[], coco_instances=None
        )
        if self.panoptic:
            ann = next((self.panoptic[k] for k in _keys(item) if k in self.panoptic), None)
            if ann is None:
                raise FileNotFoundError(f"{self.folder}: no panoptic prediction for {item['file_name']}")
            with Image.open(self.folder / "panoptic" / ann["file_name"]) as im:
                rgb = np.array(im.convert("RGB")).astype(np.int64)
            out.panoptic = rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2]
            if out.panoptic.shape != shape:
                raise ValueError(
                    f"{self.folder}: panoptic prediction {ann['file_name']} is {out.panoptic.shape}, the image {shape}"
                )
            out.segments = [
                types.SimpleNamespace(id=int(s["id"]), category=self._category(s["category_id"]))
                for s in ann["segments_info"]
            ]
            if self.instances is not None:
                entries = next((self.instances[k] for k in _keys(item) if k in self.instances), [])
                for d in entries:
                    self._category(d["category_id"])
                out.coco_instances = [{k: d[k] for k in ("category_id", "segmentation", "score")} for d in entries]
        return out
