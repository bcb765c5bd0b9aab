"""Dataset readers and preparation on the real shared samples and on synthetic fixtures built from the specs."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_util
from shared_data import shared_path

from ovseg_models.data.class_names import get_categories
from ovseg_models.data.datasets import COCOPanopticDataset, build_semantic_dataset
from ovseg_models.data.prepare import (
    PASCAL_CONTEXT_59_IN_459,
    ade20k_full_class_mask,
    ade20k_full_to_847,
    cityscapes_label_ids_to_train_ids,
    prepare_ade20k_150,
    prepare_ade20k_847,
    prepare_cityscapes,
    prepare_pascal_context,
    prepare_pascal_voc,
    voc_label_to_train_id,
)


def _jpg(path: Path, h: int, w: int, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path)


# ------------------------------------------------------------------ COCO panoptic (real)
def test_coco_panoptic_reader():
    root = shared_path("data", "coco_panoptic")
    ds = COCOPanopticDataset(
        image_dir=root / "images", panoptic_dir=root / "panoptic_val", panoptic_json=root / "panoptic_val.json"
    )
    assert len(ds) == 2
    item = ds[0]
    assert item["image"].dtype == np.uint8 and item["image"].shape[2] == 3
    assert item["pan_ids"].shape == item["image"].shape[:2]
    ids_in_map = set(np.unique(item["pan_ids"]).tolist()) - {0}
    assert ids_in_map == {s["id"] for s in item["segments_info"]}
    for s in item["segments_info"]:
        assert (item["pan_ids"] == s["id"]).sum() == s["area"]
    person = [c.id for c in get_categories("coco_panoptic")].index(1)
    first_person = next(s for s in item["segments_info"] if s["category_id"] == 1)
    assert (item["sem_seg"][item["pan_ids"] == first_person["id"]] == person).all()
    assert (item["sem_seg"][item["pan_ids"] == 0] == 255).all()


# ------------------------------------------------------------------ ADE20K full -> 847 (real)
def test_ade20k_full_decoding_matches_json():
    root = shared_path("data", "ade20k_full")
    for name in ("ADE_train_00016900", "ADE_train_00016869"):
        seg = np.array(Image.open(root / f"{name}_seg.png"))
        classes = set(np.unique(ade20k_full_class_mask(seg)).tolist()) - {0}
        objects = json.loads((root / f"{name}.json").read_text())["annotation"]["object"]
        whole = {o["name_ndx"] for o in objects if o["parts"]["part_level"] == 0}
        assert classes <= whole and len(classes) >= len(whole) - 2


def test_prepare_ade20k_847(tmp_path):
    root = shared_path("data", "ade20k_full")
    images = [root / "ADE_train_00016900.jpg", root / "ADE_train_00016869.jpg"]
    assert prepare_ade20k_847(root=tmp_path, images=images) == 2
    assert prepare_ade20k_847(root=tmp_path, images=images) == 0  # idempotent
    ds = build_semantic_dataset("ade20k_847", root=tmp_path)
    assert len(ds) == 2 and ds.ignore_index == 65535
    names = [c.name for c in get_categories("ade20k_847")]
    for item, src in zip(ds, sorted(images), strict=False):
        h, w = item["image"].shape[:2]
        assert min(h, w) == 512 and item["sem_seg"].shape == (h, w)
        present = {names[v] for v in np.unique(item["sem_seg"]).tolist() if v != 65535}
        assert {"building", "sky", "tree", "road", "person", "car"} <= present
        # nearest-neighbour resize keeps the label distribution close to the full-resolution one
        full = ade20k_full_to_847(ade20k_full_class_mask(np.array(Image.open(src.with_name(src.stem + "_seg.png")))))
        sky = names.index("sky")
        assert abs((item["sem_seg"] == sky).mean() - (full == sky).mean()) < 0.01
    with pytest.raises(FileNotFoundError):
        prepare_ade20k_847(root=tmp_path, images=[tmp_path / "missing.jpg"])


def test_ade20k_full_to_847_mapping():
    mask = np.array(
        [[2978, 312, 0], [3148, 1213, 2855]]
    )  # wall, building, unlabeled, adding machine, headlight(part), tree
    out = ade20k_full_to_847(mask)
    assert out.tolist() == [[0, 1, 65535], [846, 65535, 3]]


# ------------------------------------------------------------------ Mapillary (real)
def test_mapillary_reader(tmp_path):
    root = shared_path("data", "mapillary")
    base = tmp_path / "mapillary_vistas" / "validation"
    shutil.copytree(root / "images", base / "images")
    shutil.copytree(root / "v1.2", base / "v1.2" / "labels")
    item = build_semantic_dataset("mapillary_vistas", root=tmp_path)[0]
    raw = np.array(Image.open(root / "v1.2" / "__CRyFzoDOXn6unQ6a3DnQ.png"))
    assert item["image"].shape == (100, 100, 3)
    assert np.array_equal(item["sem_seg"], np.where(raw == 65, 255, raw))
    names = [c.name for c in get_categories("mapillary_vistas")]
    assert names[17] == "building" and names[45] == "pole"
    assert set(np.unique(item["sem_seg"]).tolist()) <= set(range(65)) | {255}
    shutil.rmtree(base / "v1.2" / "labels")
    shutil.copytree(root / "v2.0", base / "v1.2" / "labels")  # a v2.0 label in the wrong place is rejected
    with pytest.raises(ValueError):
        build_semantic_dataset("mapillary_vistas", root=tmp_path)[0]


# ------------------------------------------------------------------ ADEChallengeData2016 (synthetic)
def test_ade20k_150_prepare_and_read(tmp_path):
    base = tmp_path / "ADEChallengeData2016"
    label = np.zeros((12, 16), dtype=np.uint8)
    label[:6] = 1  # wall
    label[6:, :8] = 150  # flag
    _jpg(base / "images" / "validation" / "ADE_val_00000001.jpg", 12, 16)
    (base / "annotations" / "validation").mkdir(parents=True)
    Image.fromarray(label).save(base / "annotations" / "validation" / "ADE_val_00000001.png")
    raw_item = build_semantic_dataset("ade20k_150", root=tmp_path)[0]  # raw annotations, converted on the fly
    assert prepare_ade20k_150(root=tmp_path) == 1
    assert prepare_ade20k_150(root=tmp_path) == 0
    item = build_semantic_dataset("ade20k_150", root=tmp_path)[0]
    expected = np.where(label == 0, 255, label.astype(np.int64) - 1)
    assert np.array_equal(item["sem_seg"], expected)
    assert np.array_equal(raw_item["sem_seg"], expected)
    assert get_categories("ade20k_150")[149].name == "flag"
    # wrong size -> clear error
    Image.fromarray(label[:5]).save(base / "annotations" / "validation" / "ADE_val_00000001.png")
    with pytest.raises(ValueError, match="size mismatch"):
        prepare_ade20k_150(root=tmp_path, overwrite=True)
    with pytest.raises(FileNotFoundError):
        prepare_ade20k_150(root=tmp_path / "nowhere")


# ------------------------------------------------------------------ Cityscapes (synthetic)
def test_cityscapes(tmp_path):
    base = tmp_path / "cityscapes"
    label_ids = np.array([[0, 7, 8, 11], [24, 26, 33, 255], [1, 4, 31, 32]], dtype=np.uint8)
    _jpg(base / "leftImg8bit" / "val" / "frankfurt" / "frankfurt_000000_000294_leftImg8bit.png", 3, 4)
    gt = base / "gtFine" / "val" / "frankfurt"
    gt.mkdir(parents=True)
    Image.fromarray(label_ids).save(gt / "frankfurt_000000_000294_gtFine_labelIds.png")
    expected = np.array([[255, 0, 1, 2], [11, 13, 18, 255], [255, 255, 16, 17]])
    assert np.array_equal(build_semantic_dataset("cityscapes", root=tmp_path)[0]["sem_seg"], expected)
    assert prepare_cityscapes(root=base) == 1 and prepare_cityscapes(root=base) == 0
    item = build_semantic_dataset("cityscapes", root=tmp_path)[0]
    assert item["file_name"].endswith("_leftImg8bit.png")
    assert np.array_equal(item["sem_seg"], expected)
    assert np.array_equal(cityscapes_label_ids_to_train_ids(label_ids), expected)


# ------------------------------------------------------------------ PASCAL VOC 2012 (synthetic, palette PNG)
def test_pascal_voc(tmp_path):
    voc = tmp_path / "VOCdevkit" / "VOC2012"
    label = np.array([[0, 0, 1, 15], [20, 255, 7, 0]], dtype=np.uint8)
    img = Image.fromarray(label, mode="P")
    img.putpalette([v for i in range(256) for v in (i, 255 - i, (7 * i) % 256)])
    (voc / "SegmentationClass").mkdir(parents=True)
    img.save(voc / "SegmentationClass" / "2007_000033.png")
    _jpg(voc / "JPEGImages" / "2007_000033.jpg", 2, 4)
    (voc / "ImageSets" / "Segmentation").mkdir(parents=True)
    (voc / "ImageSets" / "Segmentation" / "val.txt").write_text("2007_000033\n")
    assert prepare_pascal_voc(root=tmp_path) == 1
    assert prepare_pascal_voc(root=tmp_path) == 0
    voc20 = build_semantic_dataset("pascal_voc_20", root=tmp_path)[0]["sem_seg"]
    voc21 = build_semantic_dataset("pascal_voc_21", root=tmp_path)[0]["sem_seg"]
    assert voc20.tolist() == [[255, 255, 0, 14], [19, 255, 6, 255]]
    assert voc21.tolist() == [[0, 0, 1, 15], [20, 255, 7, 0]]
    names20 = [c.name for c in get_categories("pascal_voc_20")]
    assert names20[14] == "person" and names20[0] == "aeroplane"
    assert voc_label_to_train_id(label, with_background=True, background_index=20).tolist() == [
        [20, 20, 0, 14],
        [19, 255, 6, 20],
    ]
    (voc / "ImageSets" / "Segmentation" / "val.txt").write_text("missing_image\n")
    with pytest.raises(FileNotFoundError):
        prepare_pascal_voc(root=tmp_path)


# ------------------------------------------------------------------ PASCAL Context (synthetic Detail-API json)
def test_pascal_context(tmp_path):
    voc = tmp_path / "VOCdevkit" / "VOC2010"
    h, w = 6, 8
    _jpg(voc / "JPEGImages" / "2008_000002.jpg", h, w)
    _jpg(voc / "JPEGImages" / "2008_000003.jpg", h, w, seed=1)

    def rle(mask):
        r = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
        r["counts"] = r["counts"].decode("ascii")
        return r

    person, accordion = 284, 1  # person is one of the 59; accordion is not
    m1 = np.zeros((h, w), bool)
    m1[:3] = True
    m2 = np.zeros((h, w), bool)
    m2[3:, :4] = True
    data = {
        "images": [
            {"image_id": 1, "file_name": "2008_000002.jpg", "height": h, "width": w, "phase": "val"},
            {"image_id": 2, "file_name": "2008_000003.jpg", "height": h, "width": w, "phase": "train"},
        ],
        "annos_segmentation": [
            {"image_id": 1, "category_id": person, "segmentation": rle(m1)},
            {"image_id": 1, "category_id": accordion, "segmentation": rle(m2)},
        ],
    }
    (voc / "trainval_merged.json").write_text(json.dumps(data))
    assert prepare_pascal_context(root=tmp_path) == 1
    assert prepare_pascal_context(root=tmp_path) == 0
    pc59 = build_semantic_dataset("pascal_context_59", root=tmp_path)
    pc459 = build_semantic_dataset("pascal_context_459", root=tmp_path)
    assert len(pc59) == 1 and len(pc459) == 1  # the train image has no label file
    names59 = [c.name for c in get_categories("pascal_context_59")]
    names459 = [c.name for c in get_categories("pascal_context_459")]
    s59, s459 = pc59[0]["sem_seg"], pc459[0]["sem_seg"]
    assert names59[s59[0, 0]] == "person" and (s59[3:] == 255).all()
    assert names459[s459[0, 0]] == "person" and names459[s459[5, 0]] == "accordion"
    assert s459[5, 7] == 65535 and pc459.ignore_index == 65535
    # every 59-class entry of the 459 table names the same class (first synonyms agree up to known aliases)
    aliases = {"computer case": "computer", "street": "road", "diningtable": "table"}  # FC-CLIP's PC-59 renames
    for i, c459 in enumerate(PASCAL_CONTEXT_59_IN_459):
        assert aliases.get(names59[i], names59[i]) == names459[c459 - 1]


def test_coco_stuff_171_reader_raw_and_prepared_layouts(tmp_path):
    """COCO-Stuff (CAT-Seg's training set): the raw stuffthingmaps store ``category_id - 1`` (255 unlabeled)
    and are mapped to the 171 contiguous ids; CAT-Seg's prepared labels are read as they are."""
    from ovseg_models.data.datasets import coco_stuff_dataset
    from ovseg_models.training import tasks  # the CAT-Seg training task reads COCO-Stuff through data.datasets

    assert tasks.coco_stuff_dataset is coco_stuff_dataset
    cats = get_categories("coco_stuff_171")
    raw = np.array(
        [[0, 1, 91], [181, 255, 11]], np.uint8
    )  # person, bicycle, banner (stuff id 92), wood, unlabeled, id 12
    images = tmp_path / "raw" / "coco" / "train2017"
    labels = tmp_path / "raw" / "coco" / "stuffthingmaps_trainval2017" / "train2017"
    images.mkdir(parents=True)
    labels.mkdir(parents=True)
    Image.fromarray(np.zeros((2, 3, 3), np.uint8)).save(images / "000000000001.jpg")
    Image.fromarray(raw).save(labels / "000000000001.png")
    ds = coco_stuff_dataset(tmp_path / "raw", "train2017")
    assert len(ds) == 1 and ds.num_classes == 171 and ds.ignore_index == 255
    sem = ds[0]["sem_seg"]
    index = {c.id: i for i, c in enumerate(cats)}
    assert sem[0, 0] == index[1] == 0 and sem[0, 1] == index[2] and sem[0, 2] == index[92]
    assert sem[1, 0] == index[182] == 170 and sem[1, 1] == 255
    assert sem[1, 2] == 255  # id 12 (street sign) was dropped from COCO: no class
    # CAT-Seg's prepared layout takes precedence and is read verbatim; the val split is built the same way
    prepared = tmp_path / "raw" / "coco-stuff" / "annotations_detectron2" / "val2017"
    (tmp_path / "raw" / "coco-stuff" / "images" / "val2017").mkdir(parents=True)
    prepared.mkdir(parents=True)
    Image.fromarray(np.zeros((2, 3, 3), np.uint8)).save(
        tmp_path / "raw" / "coco-stuff" / "images" / "val2017" / "a.jpg"
    )
    Image.fromarray(np.array([[0, 170, 255], [5, 6, 7]], np.uint8)).save(prepared / "a.png")
    val = build_semantic_dataset("coco_stuff_171", root=tmp_path / "raw", split="val")
    assert val[0]["sem_seg"].tolist() == [[0, 170, 255], [5, 6, 7]]
    with pytest.raises(FileNotFoundError, match="COCO images"):
        coco_stuff_dataset(tmp_path / "nothing", "train2017")
