"""ovseg-eval on an ovseg-train checkpoint: COCO panoptic (two real samples) -> PQ, AP, mIoU table + JSON."""

import json

import pytest
import torch

from ovseg_models.evaluation.cli import main as eval_main
from ovseg_models.training.engine import train

from .conftest import coco_data_cfg, coco_dir

TINY = {
    "conv_dim": 32,
    "mask_dim": 32,
    "transformer_enc_layers": 1,
    "transformer_dim_feedforward": 64,
    "transformer_nheads": 4,
    "hidden_dim": 32,
    "num_queries": 20,
    "nheads": 4,
    "dim_feedforward": 64,
    "dec_layers": 2,
    "templates": "single",
}


@pytest.mark.slow
def test_eval_cli_reads_training_checkpoints(tmp_path, capsys):
    torch.set_num_threads(1)
    cfg = {
        "task": {
            "kind": "fcclip",
            "variant": "rn50",
            "pretrained": False,
            "overrides": TINY,
            "data": coco_data_cfg(image_size=64, augment="resize"),
            "loss": {"num_points": 0},
        },
        "train": {
            "max_steps": 2,
            "global_batch": 2,
            "num_workers": 0,
            "device": "cpu",
            "progress": False,
            "output_dir": str(tmp_path / "run"),
            "num_threads": 1,
        },
        "optimizer": {"lr": 1e-3},
        "scheduler": {"name": "constant"},
    }
    train(cfg)
    coco = coco_dir()
    root = tmp_path / "datasets"
    (root / "coco" / "annotations").mkdir(parents=True)
    (root / "coco" / "val2017").symlink_to(coco / "images")
    (root / "coco" / "panoptic_val2017").symlink_to(coco / "panoptic_val")
    (root / "coco" / "annotations" / "panoptic_val2017.json").symlink_to(coco / "panoptic_val.json")
    out = tmp_path / "results.json"
    rc = eval_main(
        [
            "--model",
            "fcclip",
            "--checkpoint",
            str(tmp_path / "run" / "checkpoints" / "model_0000002.pth"),
            "--datasets",
            "coco_panoptic,ade20k_150",
            "--root",
            str(root),
            "--device",
            "cpu",
            "--min-size",
            "64",
            "--max-size",
            "128",
            "--output",
            str(out),
        ]
    )
    assert rc == 1  # ade20k_150 is requested but absent: reported, the others evaluated, non-zero exit
    text = capsys.readouterr().out
    assert "A-847" in text and "PAS-20b" in text and "PQ" in text and "COCO" in text
    res = json.loads(out.read_text())["results"]
    assert {"PQ", "AP", "mIoU"} <= set(res["coco_panoptic"]) and res["coco_panoptic"]["images"] == 2
    assert "error" in res["ade20k_150"]  # missing dataset is reported, not fatal
