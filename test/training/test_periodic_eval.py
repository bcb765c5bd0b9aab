"""Periodic evaluation during training (``train.eval_every``, ``train.eval_metric``) and the kept best
checkpoint, on a tiny FC-CLIP over the two COCO panoptic samples."""

import json

import pytest
import torch

from ovseg_models import create_segmenter
from ovseg_models.training.config import load_config
from ovseg_models.training.engine import train

from .conftest import coco_data_cfg, coco_dir
from .test_eval_cli import TINY


def _datasets(tmp_path):
    coco = coco_dir()
    root = tmp_path / "datasets"
    if root.exists():
        return root
    (root / "coco" / "annotations").mkdir(parents=True)
    (root / "coco" / "val2017").symlink_to(coco / "images")
    (root / "coco" / "panoptic_val2017").symlink_to(coco / "panoptic_val")
    (root / "coco" / "annotations" / "panoptic_val2017.json").symlink_to(coco / "panoptic_val.json")
    return root


def _cfg(tmp_path, **train):
    return {
        "task": {
            "kind": "fcclip",
            "variant": "rn50",
            "pretrained": False,
            "overrides": TINY,
            "data": coco_data_cfg(image_size=64, augment="resize"),
            "loss": {"num_points": 0},
        },
        "train": {
            "max_steps": 4,
            "global_batch": 2,
            "num_workers": 0,
            "device": "cpu",
            "progress": False,
            "output_dir": str(tmp_path / "run"),
            "num_threads": 1,
            "checkpoint_every": 100,
            "keep_checkpoints": 10,
            "eval_every": 2,
            "eval_metric": "coco_panoptic/mIoU",
            "eval_root": str(_datasets(tmp_path)),
            **train,
        },
        "optimizer": {"lr": 1e-2},
        "scheduler": {"name": "constant"},
        "eval": {"min_size": 64, "max_size": 96},
    }


@pytest.mark.slow
def test_periodic_evaluation_keeps_the_best_checkpoint(tmp_path):
    torch.set_num_threads(1)
    train(_cfg(tmp_path))
    run = tmp_path / "run"
    rows = [json.loads(line) for line in (run / "eval_metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4]  # every eval_every steps (checkpoint_every is 100)
    assert all(r["results"]["images"] == 2 and "PQ" in r["results"] for r in rows)
    best_row = max(rows, key=lambda r: r["value"])  # first of equal values: only improvements replace it
    best = json.loads((run / "checkpoints" / "model_best.json").read_text())
    assert best["step"] == best_row["step"] and best["value"] == pytest.approx(best_row["value"])
    assert best["metric"] == "coco_panoptic/mIoU" and best["checkpoint"] == f"model_{best['step']:07d}.pth"
    kept = torch.load(run / "checkpoints" / best["checkpoint"], weights_only=False)
    saved = torch.load(run / "checkpoints" / "model_best.pth", weights_only=False)
    assert saved["step"] == best["step"]
    for k, v in kept["model"].items():
        assert torch.equal(saved["model"][k], v), k
    # the best checkpoint is an ordinary training checkpoint: ovseg-eval / the factory read it
    seg = create_segmenter(
        "fcclip", checkpoint=str(run / "checkpoints" / "model_best.pth"), pretrained=False, min_size=64, max_size=96
    )
    assert seg.config.hidden_dim == 32
    # the last step's checkpoint stays "last"; model_best.pth is not rotated or resumed from
    assert (run / "last_checkpoint").read_text().strip() == "checkpoints/model_0000004.pth"


def test_periodic_evaluation_checks_its_benchmark_before_training(tmp_path):
    cfg = _cfg(tmp_path, eval_metric="ade20k_150/PQ")
    with pytest.raises(FileNotFoundError, match="ade20k_150/PQ"):
        train(cfg)
    with pytest.raises(ValueError, match="dataset>/<metric"):
        train(_cfg(tmp_path, eval_metric="PQ"))


def test_fcclip_recipe_keeps_the_best_ade20k_pq():
    cfg = load_config("fcclip_convnext_large")
    assert cfg["train"]["eval_metric"] == "ade20k_150/PQ" and cfg["train"]["eval_every"] > 0
