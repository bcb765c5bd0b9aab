"""``ovseg-eval`` reads cityscapesScripts' own panoptic output, and one dataset that fails (missing, unreadable,
refused vocabulary) is reported while the others are evaluated; the exit status is then non-zero."""

import json

import numpy as np
import pytest
from test_panoptic_benchmarks_eval import OracleSegmenter, _img, _save

from ovseg_models.data.datasets import build_panoptic_dataset
from ovseg_models.evaluation import cli


def _cityscapes_as_create_panoptic_imgs(root):
    """Panoptic ground truth laid out exactly as cityscapesScripts ``createPanopticImgs`` writes it (written here
    from its published format, not with this project's converter): ``images[].file_name`` is
    ``<id>_gtFine_leftImg8bit.png``, segment id = instanceIds value, PNG colour = (id % 256, id // 256, id // 65536),
    category ids = labelIds, stuff and crowd regions keep their labelId as segment id."""
    base = root / "cityscapes"
    image_id = "munster_000001_000019"
    ids = np.full((10, 12), 7, np.int64)  # road
    ids[:3] = 23  # sky
    ids[4:8, 1:4] = 24000  # person
    ids[5:9, 8:11] = 26001  # car
    _img(base / "leftImg8bit" / "val" / "munster" / f"{image_id}_leftImg8bit.png", 10, 12, 5)
    _save(
        base / "gtFine" / "val" / "munster" / f"{image_id}_gtFine_labelIds.png",
        np.where(ids >= 1000, ids // 1000, ids).astype(np.uint8),
    )
    pan = np.stack([ids % 256, ids // 256 % 256, ids // 65536], axis=-1).astype(np.uint8)
    _save(base / "gtFine" / "cityscapes_panoptic_val" / f"{image_id}_gtFine_panoptic.png", pan)
    segments = []
    for v, cat in ((7, 7), (23, 23), (24000, 24), (26001, 26)):
        ys, xs = np.nonzero(ids == v)
        segments.append(
            {
                "id": v,
                "category_id": cat,
                "area": int(len(ys)),
                "iscrowd": 0,
                "bbox": [int(xs.min()), int(ys.min()), int(np.ptp(xs) + 1), int(np.ptp(ys) + 1)],
            }
        )
    things = {24, 25, 26, 27, 28, 31, 32, 33}
    labels = [
        (7, "road"),
        (8, "sidewalk"),
        (11, "building"),
        (12, "wall"),
        (13, "fence"),
        (17, "pole"),
        (19, "traffic light"),
        (20, "traffic sign"),
        (21, "vegetation"),
        (22, "terrain"),
        (23, "sky"),
        (24, "person"),
        (25, "rider"),
        (26, "car"),
        (27, "truck"),
        (28, "bus"),
        (31, "train"),
        (32, "motorcycle"),
        (33, "bicycle"),
    ]
    data = {
        "images": [{"id": image_id, "width": 12, "height": 10, "file_name": f"{image_id}_gtFine_leftImg8bit.png"}],
        "annotations": [
            {"image_id": image_id, "file_name": f"{image_id}_gtFine_panoptic.png", "segments_info": segments}
        ],
        "categories": [
            {"id": i, "name": n, "color": [0, 0, 0], "supercategory": "x", "isthing": int(i in things)}
            for i, n in labels
        ],
    }
    (base / "gtFine" / "cityscapes_panoptic_val.json").write_text(json.dumps(data))


def test_reads_create_panoptic_imgs_output(tmp_path):
    _cityscapes_as_create_panoptic_imgs(tmp_path)
    ds = build_panoptic_dataset("cityscapes", root=tmp_path)
    item = ds[0]
    assert item["file_name"].endswith("leftImg8bit/val/munster/munster_000001_000019_leftImg8bit.png")
    assert {s["id"] for s in item["segments_info"]} == {7, 23, 24000, 26001}
    seg = OracleSegmenter(ds)
    seg.name = "cityscapes"
    out = cli.evaluate_dataset(seg, "cityscapes", root=tmp_path, model="fcclip")
    assert out["PQ"] == pytest.approx(100.0) and out["mIoU"] == pytest.approx(100.0)


def test_failing_dataset_is_reported_and_the_others_run(tmp_path, monkeypatch, capsys):
    _cityscapes_as_create_panoptic_imgs(tmp_path)
    seg = OracleSegmenter(build_panoptic_dataset("cityscapes", root=tmp_path))
    seg.name = "cityscapes"
    monkeypatch.setattr(cli, "build_segmenter_for_eval", lambda model, **kw: seg)
    out = tmp_path / "r.json"
    # ade20k_150 is requested but absent: an error, not a silent skip; cityscapes (after it) is still evaluated
    rc = cli.main(
        [
            "--model",
            "fcclip",
            "--datasets",
            "ade20k_150,cityscapes",
            "--root",
            str(tmp_path),
            "--output",
            str(out),
            "--device",
            "cpu",
        ]
    )
    captured = capsys.readouterr()
    assert rc == 1
    res = json.loads(out.read_text())["results"]
    assert "error" in res["ade20k_150"] and "FileNotFoundError" in res["ade20k_150"]["error"]
    assert res["cityscapes"]["PQ"] == pytest.approx(100.0)
    assert "ade20k_150" in captured.err and "1 of 2 datasets failed" in captured.err
    assert "100.0" in captured.out  # the cityscapes row is printed


def test_an_exception_other_than_missing_files_does_not_stop_the_others(tmp_path, monkeypatch, capsys):
    from ovseg_models.vocabulary import VocabularyError

    _cityscapes_as_create_panoptic_imgs(tmp_path)
    seg = OracleSegmenter(build_panoptic_dataset("cityscapes", root=tmp_path))
    seg.name = "cityscapes"
    real = cli.evaluate_dataset

    def evaluate(segmenter, name, **kw):
        if name == "ade20k_847":
            raise VocabularyError("refused vocabulary")
        return real(segmenter, name, **kw)

    monkeypatch.setattr(cli, "build_segmenter_for_eval", lambda model, **kw: seg)
    monkeypatch.setattr(cli, "evaluate_dataset", evaluate)
    rc = cli.main(
        [
            "--model",
            "fcclip",
            "--datasets",
            "ade20k_847,cityscapes",
            "--root",
            str(tmp_path),
            "--output",
            str(tmp_path / "r.json"),
            "--device",
            "cpu",
        ]
    )
    assert rc == 1
    res = json.loads((tmp_path / "r.json").read_text())["results"]
    assert "VocabularyError" in res["ade20k_847"]["error"] and res["cityscapes"]["mIoU"] == pytest.approx(100.0)
