"""Panoptic readers / converters of ADE20K-150, Cityscapes and Mapillary Vistas: synthetic fixtures built from each
format's published specification, and the real Mapillary sample (labels only: its panoptic form is built here)."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage
from shared_data import shared_path

from ovseg_models.data.class_names import cityscapes_label_ids, get_categories
from ovseg_models.data.datasets import PanopticDataset, build_panoptic_dataset, build_semantic_dataset
from ovseg_models.data.prepare import (
    ADE20K_INSTANCE_TO_150,
    ade20k_panoptic_from_annotations,
    cityscapes_panoptic_from_instance_ids,
    mapillary_panoptic_from_instances,
    prepare_ade20k_panoptic,
    prepare_cityscapes_panoptic,
    prepare_mapillary_panoptic,
)
from ovseg_models.evaluation.panoptic import PanopticQualityMetric, id2rgb


def _jpg(path: Path, h: int, w: int, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path)


def _pq_self(ds, name: str, indices=None) -> dict:
    """PQ of the ground truth against itself through the evaluation module."""
    metric = PanopticQualityMetric(categories={c.id: c.is_thing for c in get_categories(name)})
    for i in indices if indices is not None else range(len(ds)):
        item = ds[i]
        metric.update(
            gt_ids=item["pan_ids"],
            gt_segments=item["segments_info"],
            pred_ids=item["pan_ids"],
            pred_segments=[{"id": s["id"], "category_id": s["category_id"]} for s in item["segments_info"]],
        )
    return metric.compute()


def _check_consistent(item: dict) -> None:
    ids = set(np.unique(item["pan_ids"]).tolist()) - {0}
    assert ids == {s["id"] for s in item["segments_info"]}
    for s in item["segments_info"]:
        assert (item["pan_ids"] == s["id"]).sum() == s["area"]


# ------------------------------------------------------------------ ADE20K-150 panoptic (synthetic)
def test_ade20k_instance_mapping_matches_thing_flags():
    cats = get_categories("ade20k_150")
    assert len(ADE20K_INSTANCE_TO_150) == 100
    assert [c - 1 for c in ADE20K_INSTANCE_TO_150] == [i for i, c in enumerate(cats) if c.is_thing]


def _ade_fixture(tmp_path: Path) -> Path:
    """Two images. Semantic PNG: value = class + 1 (wall 1, floor 4, person 13, car 21). Instance PNG (ADE20K instance
    release): R = instance class 1..100 (person 4, car 9), G = instance id (0 = none)."""
    base = tmp_path / "ADEChallengeData2016"
    person, car = ADE20K_INSTANCE_TO_150.index(13) + 1, ADE20K_INSTANCE_TO_150.index(21) + 1
    assert (person, car) == (4, 9)
    sem = np.zeros((12, 16), np.uint8)
    sem[:4] = 1  # wall
    sem[4:] = 4  # floor
    sem[6:10, 1:4] = 13  # person 1
    sem[6:10, 5:8] = 13  # person 2
    sem[8:12, 10:15] = 21  # car
    sem[0, 15] = 13  # a person pixel without instance -> void in panoptic
    sem[11, 0] = 0  # "other" -> void
    ins = np.zeros((12, 16, 3), np.uint8)
    ins[6:10, 1:4] = (person, 1, 0)
    ins[6:10, 5:8] = (person, 2, 0)
    ins[8:12, 10:15] = (car, 3, 0)
    sem2 = np.full((8, 10), 1, np.uint8)  # image 2: a person instance pasted over wall (official overlap case)
    ins2 = np.zeros((8, 10, 3), np.uint8)
    ins2[2:5, 2:5] = (person, 1, 0)
    for stem, s, i in (("ADE_val_00000001", sem, ins), ("ADE_val_00000002", sem2, ins2)):
        _jpg(base / "images" / "validation" / f"{stem}.jpg", *s.shape)
        for sub, arr in (("annotations", s), ("annotations_instance", i)):
            (base / sub / "validation").mkdir(parents=True, exist_ok=True)
            Image.fromarray(arr).save(base / sub / "validation" / f"{stem}.png")
    return base


def test_ade20k_panoptic_prepare_and_read(tmp_path):
    base = _ade_fixture(tmp_path)
    assert prepare_ade20k_panoptic(root=tmp_path) == 2
    assert prepare_ade20k_panoptic(root=tmp_path) == 0  # idempotent
    data = json.loads((base / "ade20k_panoptic_val.json").read_text())
    assert [c["id"] for c in data["categories"]] == list(range(150))
    assert data["categories"][12] == {"id": 12, "name": "person", "isthing": 1}
    assert data["images"][0] == {
        "id": "ADE_val_00000001",
        "file_name": "ADE_val_00000001.jpg",
        "width": 16,
        "height": 12,
    }
    ds = build_panoptic_dataset("ade20k_150", root=tmp_path)
    assert len(ds) == 2
    item = ds[0]
    _check_consistent(item)
    segs = sorted((s["category_id"], s["area"], s["iscrowd"], s["isthing"]) for s in item["segments_info"])
    assert segs == [(0, 63, 0, False), (3, 83, 0, False), (12, 12, 0, True), (12, 12, 0, True), (20, 20, 0, True)]
    assert item["pan_ids"][0, 15] == 0 and item["pan_ids"][11, 0] == 0
    # sem_seg comes from the semantic annotations (as the official mIoU), not from the panoptic map
    assert item["sem_seg"][0, 15] == 12 and item["sem_seg"][11, 0] == 255
    # the overlap case keeps the official area of the stuff segment (semantic mask before pasting things)
    wall = next(s for s in ds[1]["segments_info"] if s["category_id"] == 0)
    assert wall["area"] == 80 and (ds[1]["pan_ids"] == wall["id"]).sum() == 71
    res = _pq_self(ds, "ade20k_150", indices=[0])
    assert res["All"]["pq"] == pytest.approx(1.0) and res["All"]["n"] == 4
    assert res["Things"]["n"] == 2 and res["Stuff"]["n"] == 2
    # without semantic annotations sem_seg is painted from the segments
    shutil.rmtree(base / "annotations")
    item = build_panoptic_dataset("ade20k_150", root=tmp_path)[0]
    assert item["sem_seg"][0, 15] == 255 and item["sem_seg"][7, 2] == 12


def test_ade20k_panoptic_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="annotations_instance"):
        base = _ade_fixture(tmp_path)
        shutil.rmtree(base / "annotations_instance")
        prepare_ade20k_panoptic(root=tmp_path)
    with pytest.raises(FileNotFoundError):
        build_panoptic_dataset("ade20k_150", root=tmp_path / "nowhere")
    bad = np.zeros((2, 2, 3), np.uint8)
    bad[0, 0] = (4, 1, 0)
    bad[0, 1] = (9, 1, 0)  # one instance id with two classes
    with pytest.raises(ValueError, match="instance 1"):
        ade20k_panoptic_from_annotations(np.ones((2, 2), np.uint8), bad)
    with pytest.raises(ValueError, match="differ in size"):
        ade20k_panoptic_from_annotations(np.ones((3, 2), np.uint8), bad)


# ------------------------------------------------------------------ Cityscapes panoptic (synthetic)
def _cityscapes_fixture(tmp_path: Path) -> Path:
    """``*_gtFine_instanceIds.png`` (16 bit): labelId for stuff/crowd, labelId * 1000 + k for instances."""
    base = tmp_path / "cityscapes"
    ids = np.full((10, 12), 7, np.uint16)  # road
    ids[:3] = 23  # sky
    ids[3:5, :4] = 8  # sidewalk
    ids[5:8, 0:2] = 24000  # person 0
    ids[5:8, 2:4] = 24001  # person 1
    ids[5:8, 4:6] = 24  # person crowd
    ids[6:9, 7:11] = 26000  # car
    ids[9, :3] = 1  # ego vehicle: ignored in eval -> void
    ids[9, 3:5] = 29000  # caravan: has instances but ignored in eval -> void
    ids[3, 10:12] = 25  # rider crowd
    gt = base / "gtFine" / "val" / "frankfurt"
    gt.mkdir(parents=True)
    Image.fromarray(ids).save(gt / "frankfurt_000000_000294_gtFine_instanceIds.png")
    _jpg(base / "leftImg8bit" / "val" / "frankfurt" / "frankfurt_000000_000294_leftImg8bit.png", 10, 12)
    label_ids = np.where(ids >= 1000, ids // 1000, ids).astype(np.uint8)
    Image.fromarray(label_ids).save(gt / "frankfurt_000000_000294_gtFine_labelIds.png")
    return base


def test_cityscapes_panoptic_prepare_and_read(tmp_path):
    base = _cityscapes_fixture(tmp_path)
    assert prepare_cityscapes_panoptic(root=base) == 1
    assert prepare_cityscapes_panoptic(root=base) == 0
    data = json.loads((base / "gtFine" / "cityscapes_panoptic_val.json").read_text())
    assert [c["id"] for c in data["categories"]] == list(cityscapes_label_ids())
    assert data["annotations"][0]["file_name"] == "frankfurt_000000_000294_gtFine_panoptic.png"
    # createPanopticImgs' own image entry: the file name is not an existing file, the image is found by id
    assert data["images"][0]["file_name"] == "frankfurt_000000_000294_gtFine_leftImg8bit.png"
    assert data["images"][0]["id"] == "frankfurt_000000_000294"
    png = np.array(
        Image.open(base / "gtFine" / "cityscapes_panoptic_val" / "frankfurt_000000_000294_gtFine_panoptic.png")
    )
    assert tuple(png[6, 0]) == (24000 % 256, 24000 // 256, 0)  # id = R + 256 G + 256^2 B
    raw = {s["id"]: s for s in data["annotations"][0]["segments_info"]}
    assert raw[24000]["category_id"] == 24 and raw[26000]["category_id"] == 26 and raw[7]["category_id"] == 7
    ds = build_panoptic_dataset("cityscapes", root=tmp_path)
    item = ds[0]
    _check_consistent(item)
    segs = {s["id"]: (s["category_id"], s["area"], s["iscrowd"]) for s in item["segments_info"]}
    # contiguous trainIds: road 0, sidewalk 1, sky 10, person 11, rider 12, car 13
    assert segs == {
        7: (0, 39, 0),
        8: (1, 8, 0),
        23: (10, 36, 0),
        24: (11, 6, 1),
        24000: (11, 6, 0),
        24001: (11, 6, 0),
        25: (12, 2, 1),
        26000: (13, 12, 0),
    }
    assert (item["pan_ids"][9, :5] == 0).all()
    assert item["file_name"].endswith("frankfurt/frankfurt_000000_000294_leftImg8bit.png")
    assert np.array_equal(item["sem_seg"], build_semantic_dataset("cityscapes", root=tmp_path)[0]["sem_seg"])
    res = _pq_self(ds, "cityscapes")
    assert res["All"]["pq"] == pytest.approx(1.0) and res["Things"]["n"] == 2 and res["Stuff"]["n"] == 3
    # trainId variant (createPanopticImgs --use-train-id)
    (base / "gtFine" / "cityscapes_panoptic_val.json").unlink()
    assert prepare_cityscapes_panoptic(root=base, use_train_id=True) == 1
    item2 = build_panoptic_dataset("cityscapes", root=tmp_path)[0]
    assert {s["id"]: s["category_id"] for s in item2["segments_info"]} == {k: v[0] for k, v in segs.items()}
    with pytest.raises(ValueError, match="no Cityscapes label"):
        cityscapes_panoptic_from_instance_ids(np.array([[34000]]))


# ------------------------------------------------------------------ Mapillary Vistas v1.2 panoptic (synthetic json)
def _mapillary_categories():
    return [
        {"id": k + 1, "name": c.name, "isthing": int(c.is_thing), "supercategory": "x"}
        for k, c in enumerate(get_categories("mapillary_vistas"))
    ]


def test_mapillary_panoptic_reader_from_published_json(tmp_path):
    base = tmp_path / "mapillary_vistas" / "validation"
    pan = np.zeros((6, 8), np.int64)
    pan[:2] = 7000000  # sky (id 28 -> contiguous 27); an id using the B channel
    pan[2:, :4] = 1234  # road (14 -> 13)
    pan[2:4, 4:6] = 5  # person (20 -> 19)
    pan[4:6, 4:6] = 6  # group of persons: iscrowd
    # pan[2:, 6:] stays 0: unlabeled / void
    (base / "v1.2" / "panoptic").mkdir(parents=True)
    Image.fromarray(id2rgb(pan)).save(base / "v1.2" / "panoptic" / "abc123.png")
    _jpg(base / "images" / "abc123.jpg", 6, 8)
    seg = lambda i, c, a, crowd=0: {"id": i, "category_id": c, "area": a, "bbox": [0, 0, 1, 1], "iscrowd": crowd}
    js = {
        "images": [{"id": "abc123", "file_name": "abc123.jpg", "width": 8, "height": 6}],
        "annotations": [
            {
                "image_id": "abc123",
                "file_name": "abc123.png",
                "segments_info": [seg(7000000, 28, 16), seg(1234, 14, 16), seg(5, 20, 4), seg(6, 20, 4, 1)],
            }
        ],
        "categories": _mapillary_categories(),
    }
    (base / "v1.2" / "panoptic" / "panoptic_2018.json").write_text(json.dumps(js))
    config = {
        "labels": [
            {"name": c.name, "readable": c.name, "instances": c.is_thing, "evaluate": True}
            for c in get_categories("mapillary_vistas")
        ]
        + [{"name": "void--unlabeled", "instances": False, "evaluate": False}]
    }
    (tmp_path / "mapillary_vistas" / "config_v1.2.json").write_text(json.dumps(config))
    ds = build_panoptic_dataset("mapillary_vistas", root=tmp_path)
    item = ds[0]
    _check_consistent(item)
    assert sorted((s["id"], s["category_id"], s["area"], s["iscrowd"]) for s in item["segments_info"]) == [
        (5, 19, 4, 0),
        (6, 19, 4, 1),
        (1234, 13, 16, 0),
        (7000000, 27, 16, 0),
    ]
    assert get_categories("mapillary_vistas")[19].name == "person"
    assert item["sem_seg"][0, 0] == 27 and item["sem_seg"][5, 7] == 255  # no labels: painted from segments
    res = _pq_self(ds, "mapillary_vistas")
    assert res["All"]["pq"] == pytest.approx(1.0) and res["All"]["n"] == 3
    # a config whose thing flags disagree is rejected; so is a json category flagged differently
    config["labels"][27]["instances"] = True
    (tmp_path / "mapillary_vistas" / "config_v1.2.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="instances"):
        build_panoptic_dataset("mapillary_vistas", root=tmp_path)
    (tmp_path / "mapillary_vistas" / "config_v1.2.json").unlink()
    js["categories"][19]["isthing"] = 0
    (base / "v1.2" / "panoptic" / "panoptic_2018.json").write_text(json.dumps(js))
    with pytest.raises(ValueError, match="isthing"):
        build_panoptic_dataset("mapillary_vistas", root=tmp_path)


def test_mapillary_panoptic_from_instances_rules():
    labels = np.array([[27, 27, 19, 19], [13, 13, 19, 65], [13, 13, 55, 55]], np.int64)
    inst = np.array([[0, 3, 1, 1], [0, 0, 2, 0], [0, 0, 0, 0]], np.int64)
    pan, segs = mapillary_panoptic_from_instances((labels << 8) | inst)
    got = sorted((s["category_id"], s["area"]) for s in segs)
    assert got == [(14, 4), (20, 1), (20, 2), (28, 2), (56, 2)]  # stuff instances merged, things split, 65 void
    assert pan[1, 3] == 0
    with pytest.raises(ValueError, match="v2.0"):
        mapillary_panoptic_from_instances(np.array([[120 << 8]]))


# ------------------------------------------------------------------ Mapillary Vistas (real sample, labels only)
def test_mapillary_real_sample_panoptic(tmp_path):
    src = shared_path("data", "mapillary")
    assert not (src / "v1.2" / "panoptic").exists() and not list(src.rglob("*.json"))  # labels only
    base = tmp_path / "mapillary_vistas" / "validation"
    shutil.copytree(src / "images", base / "images")
    shutil.copytree(src / "v1.2", base / "v1.2" / "labels")
    labels = np.array(Image.open(src / "v1.2" / "__CRyFzoDOXn6unQ6a3DnQ.png")).astype(np.int64)
    # instance PNG per the published format (uint16 label * 256 + instance): instances = connected components
    is_thing = [c.is_thing for c in get_categories("mapillary_vistas")]
    inst = np.zeros_like(labels)
    n_things = 0
    for label in np.unique(labels).tolist():
        if label < 65 and is_thing[label]:
            comp, n = ndimage.label(labels == label)
            inst[comp > 0] = comp[comp > 0]
            n_things += n
    (base / "v1.2" / "instances").mkdir(parents=True)
    instance_png = base / "v1.2" / "instances" / "__CRyFzoDOXn6unQ6a3DnQ.png"
    Image.fromarray(((labels << 8) | inst).astype(np.uint16)).save(instance_png)
    assert prepare_mapillary_panoptic(root=tmp_path) == 1
    assert prepare_mapillary_panoptic(root=tmp_path) == 0
    ds = build_panoptic_dataset("mapillary_vistas", root=tmp_path)
    item = ds[0]
    _check_consistent(item)
    semantic = build_semantic_dataset("mapillary_vistas", root=tmp_path)[0]["sem_seg"]
    assert np.array_equal(item["sem_seg"], semantic)
    for s in item["segments_info"]:  # every segment lies on pixels of its class in the label PNG
        assert (semantic[item["pan_ids"] == s["id"]] == s["category_id"]).all()
    assert np.array_equal(item["pan_ids"] == 0, labels == 65)
    present = set(np.unique(labels).tolist()) - {65}
    assert {s["category_id"] for s in item["segments_info"]} == present
    assert sum(s["isthing"] for s in item["segments_info"]) == n_things > 0
    assert all(s["iscrowd"] == 0 for s in item["segments_info"])
    res = _pq_self(ds, "mapillary_vistas")
    assert res["All"]["pq"] == pytest.approx(1.0) and res["All"]["n"] == len(present)


def test_generic_reader_rejects_unknown_category(tmp_path):
    (tmp_path / "pan").mkdir()
    _jpg(tmp_path / "img" / "a.jpg", 2, 2)
    Image.fromarray(id2rgb(np.ones((2, 2), np.int64))).save(tmp_path / "pan" / "a.png")
    (tmp_path / "a.json").write_text(
        json.dumps(
            {"annotations": [{"image_id": "a", "file_name": "a.png", "segments_info": [{"id": 1, "category_id": 150}]}]}
        )
    )
    ds = PanopticDataset(
        dataset="ade20k_150",
        image_dir=tmp_path / "img",
        panoptic_dir=tmp_path / "pan",
        panoptic_json=tmp_path / "a.json",
    )
    with pytest.raises(ValueError, match="unknown category_id 150"):
        ds[0]
