"""``ovseg-eval`` on the panoptic benchmarks (ADE20K-150, Cityscapes, Mapillary Vistas): an oracle segmenter that
returns the ground truth gives PQ = AP = mIoU = 100 on small fixtures built with the data package's converters;
the paper's FC-CLIP test sizes are used per dataset."""

import types

import numpy as np
import pytest
from PIL import Image

from ovseg_models.data.class_names import get_categories
from ovseg_models.data.datasets import build_panoptic_dataset
from ovseg_models.data.prepare import (
    prepare_ade20k_150,
    prepare_ade20k_panoptic,
    prepare_cityscapes,
    prepare_cityscapes_panoptic,
    prepare_mapillary_panoptic,
)
from ovseg_models.evaluation import cli


def _img(path, h, w, seed):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path)


def _save(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def _ade(root):
    base = root / "ADEChallengeData2016"
    sem = np.full((12, 16), 1, np.uint8)  # wall
    sem[6:] = 4  # floor
    sem[2:8, 2:6] = 13  # person
    sem[7:11, 9:14] = 21  # car
    ins = np.zeros((12, 16, 3), np.uint8)
    ins[2:8, 2:6] = (4, 1, 0)
    ins[7:11, 9:14] = (9, 2, 0)
    _img(base / "images" / "validation" / "ADE_val_00000001.jpg", 12, 16, 1)
    _save(base / "annotations" / "validation" / "ADE_val_00000001.png", sem)
    _save(base / "annotations_instance" / "validation" / "ADE_val_00000001.png", ins)
    prepare_ade20k_150(root=root)
    prepare_ade20k_panoptic(root=root)


def _cityscapes(root):
    base = root / "cityscapes"
    ids = np.full((10, 12), 7, np.uint16)
    ids[:3] = 23
    ids[4:8, 1:4] = 24000
    ids[4:8, 5:7] = 24001
    ids[5:9, 8:11] = 26000
    gt = base / "gtFine" / "val" / "aachen"
    _save(gt / "aachen_000000_000019_gtFine_instanceIds.png", ids)
    _save(gt / "aachen_000000_000019_gtFine_labelIds.png", np.where(ids >= 1000, ids // 1000, ids).astype(np.uint8))
    _img(base / "leftImg8bit" / "val" / "aachen" / "aachen_000000_000019_leftImg8bit.png", 10, 12, 2)
    prepare_cityscapes(root=base)
    prepare_cityscapes_panoptic(root=base)


def _mapillary(root):
    base = root / "mapillary_vistas" / "validation"
    labels = np.full((8, 10), 27, np.int64)  # sky
    labels[4:] = 13  # road
    labels[5:8, 1:4] = 55  # car 1
    labels[5:8, 6:9] = 55  # car 2
    labels[0, :2] = 65  # unlabeled
    inst = np.zeros_like(labels)
    inst[5:8, 6:9] = 1
    _save(base / "v1.2" / "labels" / "k1.png", labels.astype(np.uint8))
    _save(base / "v1.2" / "instances" / "k1.png", ((labels << 8) | inst).astype(np.uint16))
    _img(base / "images" / "k1.jpg", 8, 10, 3)
    prepare_mapillary_panoptic(root=root)


class OracleSegmenter:
    """Returns the ground truth of the dataset's images (looked up by pixels) as an FC-CLIP result."""

    def __init__(self, dataset):
        self.gt = {}
        for item in dataset:
            self.gt[item["image"].tobytes()] = item
        self.calls = []

    def set_vocabulary(self, vocab):
        self.vocab = vocab

    def predict(self, image, **options):
        self.calls.append(options)
        item = self.gt[image.tobytes()]
        cats = get_categories(self.name)
        contiguous = {c.id: k for k, c in enumerate(cats)}
        sem = np.where(item["sem_seg"] == 255, 0, item["sem_seg"]).astype(np.int32)
        segments = [
            types.SimpleNamespace(id=s["id"], category=contiguous[s["category_id"]]) for s in item["segments_info"]
        ]
        things = [s for s in item["segments_info"] if s["isthing"] and not s["iscrowd"]]
        import torch

        instances = {
            "masks": torch.as_tensor(np.stack([item["pan_ids"] == s["id"] for s in things])),
            "scores": torch.ones(len(things)),
            "classes": torch.tensor([contiguous[s["category_id"]] for s in things]),
        }
        return types.SimpleNamespace(
            semantic=sem, panoptic=item["pan_ids"].astype(np.int32), segments=segments, instances=instances
        )


@pytest.mark.parametrize(
    "name,build", [("ade20k_150", _ade), ("cityscapes", _cityscapes), ("mapillary_vistas", _mapillary)]
)
def test_oracle_gives_perfect_pq_ap_miou(tmp_path, name, build):
    build(tmp_path)
    seg = OracleSegmenter(build_panoptic_dataset(name, root=tmp_path))
    seg.name = name
    out = cli.evaluate_dataset(seg, name, root=tmp_path, model="fcclip")
    assert out["images"] == 1
    for key in ("PQ", "PQ_th", "PQ_st", "AP", "mIoU"):
        assert out[key] == pytest.approx(100.0), key
    assert seg.calls[0]["outputs"] == ("semantic", "panoptic", "instance")
    # CAT-Seg (semantic only) reads the semantic labels and reports mIoU only
    out = cli.evaluate_dataset(seg, name, root=tmp_path, model="catseg")
    assert set(out) == {"mIoU", "images"} and out["mIoU"] == pytest.approx(100.0)


def test_missing_panoptic_data_falls_back_to_miou(tmp_path, caplog):
    _ade(tmp_path)
    seg = OracleSegmenter(build_panoptic_dataset("ade20k_150", root=tmp_path))
    seg.name = "ade20k_150"
    (tmp_path / "ADEChallengeData2016" / "ade20k_panoptic_val.json").unlink()
    out = cli.evaluate_dataset(seg, "ade20k_150", root=tmp_path, model="fcclip")
    assert set(out) == {"mIoU", "images"} and out["mIoU"] == pytest.approx(100.0)
    assert "panoptic ground truth not found" in caplog.text


def test_paper_test_sizes(tmp_path, monkeypatch):
    from ovseg_models.families import get_family

    test_size = get_family("fcclip").test_size
    assert test_size("ade20k_150") == (800, 1333)
    assert test_size("cityscapes") == test_size("mapillary_vistas") == (1024, 2560)
    built, evaluated = [], []
    monkeypatch.setattr(cli, "build_segmenter_for_eval", lambda model, **kw: built.append(kw) or object())
    monkeypatch.setattr(cli, "evaluate_dataset", lambda seg, ds, **kw: evaluated.append(ds) or {"mIoU": 1.0})
    rc = cli.main(
        [
            "--model",
            "fcclip",
            "--datasets",
            "ade20k_150,cityscapes,mapillary_vistas",
            "--root",
            str(tmp_path),
            "--output",
            str(tmp_path / "r.json"),
            "--device",
            "cpu",
        ]
    )
    assert rc == 0 and evaluated == ["ade20k_150", "cityscapes", "mapillary_vistas"]
    assert [(b["min_size"], b["max_size"]) for b in built] == [(800, 1333), (1024, 2560)]  # street scenes share one
    built.clear()
    cli.main(
        [
            "--model",
            "fcclip",
            "--datasets",
            "cityscapes",
            "--min-size",
            "64",
            "--root",
            str(tmp_path),
            "--output",
            str(tmp_path / "r.json"),
            "--device",
            "cpu",
        ]
    )
    assert built[0]["min_size"] == 64
