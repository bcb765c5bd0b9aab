"""``ovseg-eval --predictions DIR``: predictions saved in the papers' formats (semantic PNG label maps or
detectron2's sem_seg_predictions.json; COCO panoptic JSON + PNGs; COCO instance results) scored with the same
metrics as a live model."""

import json

import numpy as np
import pytest
from PIL import Image
from test_eval_cli_failures import _cityscapes_as_create_panoptic_imgs
from test_panoptic_benchmarks_eval import _ade

from ovseg_models.data.datasets import build_panoptic_dataset
from ovseg_models.evaluation import cli
from ovseg_models.evaluation.instance import encode_mask
from ovseg_models.evaluation.panoptic import id2rgb


def _write_oracle(folder, ds, *, semantic="png", corrupt=False):
    """The ground truth of ``ds`` written as predictions (``corrupt``: the bottom half predicted as class 0)."""
    (folder / "panoptic").mkdir(parents=True, exist_ok=True)
    anns, sem_json, inst = [], [], []
    for item in ds:
        stem = item["file_name"].rsplit("/", 1)[-1].rsplit(".", 1)[0]
        sem = np.where(item["sem_seg"] == 255, 0, item["sem_seg"]).astype(np.uint8)
        if corrupt:
            sem[sem.shape[0] // 2 :] = 0
        if semantic == "png":
            (folder / "sem_seg").mkdir(exist_ok=True)
            Image.fromarray(sem).save(folder / "sem_seg" / f"{stem}.png")
        else:
            for c in np.unique(sem).tolist():
                sem_json.append(
                    {"file_name": item["file_name"], "category_id": c, "segmentation": encode_mask(sem == c)}
                )
        Image.fromarray(id2rgb(item["pan_ids"])).save(folder / "panoptic" / f"{stem}.png")
        anns.append(
            {
                "image_id": item["image_id"],
                "file_name": f"{stem}.png",
                "segments_info": [{"id": s["id"], "category_id": s["category_id"]} for s in item["segments_info"]],
            }
        )
        inst += [
            {
                "image_id": item["image_id"],
                "category_id": s["category_id"],
                "score": 1.0,
                "segmentation": encode_mask(item["pan_ids"] == s["id"]),
            }
            for s in item["segments_info"]
            if s["isthing"] and not s["iscrowd"]
        ]
    (folder / "panoptic.json").write_text(json.dumps({"annotations": anns}))
    (folder / "instances.json").write_text(json.dumps(inst))
    if sem_json:
        (folder / "sem_seg_predictions.json").write_text(json.dumps(sem_json))


@pytest.mark.parametrize("semantic", ["png", "detectron2_json"])
def test_saved_oracle_predictions_score_100(tmp_path, semantic):
    _ade(tmp_path)
    _cityscapes_as_create_panoptic_imgs(tmp_path)
    preds = tmp_path / "preds"
    for name in ("ade20k_150", "cityscapes"):
        _write_oracle(preds / name, build_panoptic_dataset(name, root=tmp_path), semantic=semantic)
    out = tmp_path / "r.json"
    rc = cli.main(["--predictions", str(preds), "--root", str(tmp_path), "--output", str(out)])
    assert rc == 0
    res = json.loads(out.read_text())["results"]
    assert set(res) == {"ade20k_150", "cityscapes"}
    for name in res:
        for key in ("PQ", "AP", "mIoU"):
            assert res[name][key] == pytest.approx(100.0), (name, key)


def test_saved_predictions_are_scored_not_trusted(tmp_path, capsys):
    _ade(tmp_path)
    preds = tmp_path / "preds"
    ds = build_panoptic_dataset("ade20k_150", root=tmp_path)
    _write_oracle(preds / "ade20k_150", ds, corrupt=True)
    # expected mIoU, from the written maps by hand: classes with ground truth, IoU = tp / union
    gt = ds[0]["sem_seg"]
    pred = np.asarray(Image.open(next((preds / "ade20k_150" / "sem_seg").glob("*.png")))).astype(np.int64)
    valid = gt != 255
    ious = [
        ((pred == c) & (gt == c) & valid).sum() / (((pred == c) | (gt == c)) & valid).sum()
        for c in np.unique(gt[valid])
    ]
    out = tmp_path / "r.json"
    assert (
        cli.main(
            [
                "--predictions",
                str(preds),
                "--datasets",
                "ade20k_150,pascal_voc_20",
                "--root",
                str(tmp_path),
                "--output",
                str(out),
            ]
        )
        == 1
    )  # pascal_voc_20 has no predictions: reported
    res = json.loads(out.read_text())["results"]
    assert res["ade20k_150"]["mIoU"] == pytest.approx(100 * float(np.mean(ious)))
    assert res["ade20k_150"]["mIoU"] < 100
    assert "error" in res["pascal_voc_20"] and "pascal_voc_20" in capsys.readouterr().err
