"""``prepare_*`` against the official preparation scripts, pixel for pixel.

Each reference below re-states the few lines of the official script (MaskFormer / FC-CLIP / CAT-Seg
``datasets/prepare_ade20k_full.py``, Mask2Former ``prepare_ade20k_sem_seg.py``, CAT-Seg ``prepare_voc.py``)
with the same library calls (OpenCV where the script uses OpenCV, PIL where it uses PIL), independently of
``ovseg_models.data.prepare``, and the written files are compared with it exactly.
"""

import cv2
import numpy as np
from PIL import Image
from shared_data import shared_path

from ovseg_models.data.prepare import prepare_ade20k_150, prepare_ade20k_847, prepare_pascal_voc


def _official_ade20k_full(image_path, id_map, tmp):
    """prepare_ade20k_full.py: loadAde20K + resize + id_map loop + PIL saves (into ``tmp``)."""
    with Image.open(str(image_path).replace(".jpg", "_seg.png")) as io:
        seg = np.array(io)
    lab = (seg[:, :, 0] / 10).astype(np.int32) * 256 + (seg[:, :, 1].astype(np.int32))
    img = np.asarray(Image.open(image_path))
    h, w = img.shape[0], img.shape[1]
    max_size = 512
    resize = True
    if w >= h > max_size:
        h_new, w_new = max_size, round(w / float(h) * max_size)
    elif h >= w > max_size:
        h_new, w_new = round(h / float(w) * max_size), max_size
    else:
        resize = False
    if resize:
        img = cv2.resize(img, (w_new, h_new), interpolation=cv2.INTER_LINEAR)
        lab = cv2.resize(lab, (w_new, h_new), interpolation=cv2.INTER_NEAREST)
    output = np.zeros_like(lab, dtype=np.uint16) + 65535
    for obj_id in np.unique(lab):
        if obj_id in id_map:
            output[lab == obj_id] = id_map[obj_id]
    Image.fromarray(img).save(tmp / "official.jpg")
    Image.fromarray(output).save(tmp / "official.tif")
    return np.asarray(Image.open(tmp / "official.jpg")), np.asarray(Image.open(tmp / "official.tif"))


def test_prepare_ade20k_847_matches_official_script(tmp_path):
    from ovseg_models.data.class_names import ade20k_847_full_ids

    root = shared_path("data", "ade20k_full")
    images = sorted(root.glob("ADE_*.jpg"))
    assert len(images) == 2
    id_map = {full_id: train_id for train_id, full_id in enumerate(ade20k_847_full_ids())}
    assert prepare_ade20k_847(root=tmp_path / "out", images=images) == 2
    out = tmp_path / "out" / "ADE20K_2021_17_01"
    for image_path in images:
        ref_img, ref_lab = _official_ade20k_full(image_path, id_map, tmp_path)
        lab = np.asarray(Image.open(out / "annotations_detectron2" / "validation" / (image_path.stem + ".tif")))
        img = np.asarray(Image.open(out / "images_detectron2" / "validation" / image_path.name))
        assert lab.dtype == np.uint16 and lab.shape == ref_lab.shape
        assert np.array_equal(lab, ref_lab), f"{image_path.name}: {(lab != ref_lab).mean():.4%} label pixels differ"
        assert img.shape == ref_img.shape and np.array_equal(img, ref_img), image_path.name
        assert len(np.unique(lab)) > 10  # a real street scene, not an all-ignore map


def test_prepare_ade20k_150_matches_official_script(tmp_path):
    # prepare_ade20k_sem_seg.py: img = np.asarray(Image.open(input)); img = img - 1; Image.fromarray(img).save(out)
    base = tmp_path / "ADEChallengeData2016"
    rng = np.random.default_rng(0)
    label = rng.integers(0, 151, (37, 53), dtype=np.uint8)
    (base / "annotations" / "validation").mkdir(parents=True)
    (base / "images" / "validation").mkdir(parents=True)
    Image.fromarray(label).save(base / "annotations" / "validation" / "ADE_val_00000007.png")
    Image.fromarray(rng.integers(0, 255, (37, 53, 3), dtype=np.uint8)).save(
        base / "images" / "validation" / "ADE_val_00000007.jpg"
    )
    assert prepare_ade20k_150(root=tmp_path) == 1
    ref = np.asarray(Image.open(base / "annotations" / "validation" / "ADE_val_00000007.png"))
    ref = ref - 1
    ours = np.asarray(Image.open(base / "annotations_detectron2" / "validation" / "ADE_val_00000007.png"))
    assert ours.dtype == ref.dtype == np.uint8 and np.array_equal(ours, ref)


def test_prepare_pascal_voc_matches_catseg_script(tmp_path):
    # CAT-Seg prepare_voc.py convert_to_trainID with clsID_to_trID (VOC-20) and clsID_to_trID_bg (background 20)
    voc = tmp_path / "VOCdevkit" / "VOC2012"
    rng = np.random.default_rng(1)
    values = np.array(list(range(21)) + [255], dtype=np.uint8)
    label = values[rng.integers(0, len(values), (29, 31))]
    (voc / "SegmentationClassAug").mkdir(parents=True)
    Image.fromarray(label, mode="P").save(voc / "SegmentationClassAug" / "2008_000001.png")
    # an image with background and void only: VOC-20 would be all-ignore and is not written by the script
    Image.fromarray(np.array([[0, 255], [0, 0]], dtype=np.uint8), mode="P").save(
        voc / "SegmentationClassAug" / "2008_000002.png"
    )
    (voc / "ImageSets" / "Segmentation").mkdir(parents=True)
    (voc / "ImageSets" / "Segmentation" / "val.txt").write_text("2008_000001\n2008_000002\n")
    prepare_pascal_voc(root=tmp_path, background_index=20)
    cls_to_tr = {0: 255, **{c: c - 1 for c in range(1, 21)}, 255: 255}
    cls_to_tr_bg = {**cls_to_tr, 0: 20}
    for name in ("2008_000001", "2008_000002"):
        mask = np.array(Image.open(voc / "SegmentationClassAug" / f"{name}.png"))
        for folder, table in (("annotations_detectron2", cls_to_tr), ("annotations_detectron2_bg", cls_to_tr_bg)):
            ref = np.ones_like(mask, dtype=np.uint8) * 255
            for c, t in table.items():
                ref[mask == c] = t
            path = voc / folder / "val" / f"{name}.png"
            if len(np.unique(ref)) == 1 and np.unique(ref)[0] == 255:
                assert not path.exists(), path
                continue
            assert np.array_equal(np.asarray(Image.open(path)), ref), path
