"""Engine: torchrun (2 CPU processes, gloo) == 1 process, exact resume, atomic checkpoints, CLI."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from ovseg_models.training.config import load_config
from ovseg_models.training.engine import find_last_checkpoint, load_training_checkpoint, save_checkpoint_atomic, train

from .conftest import coco_data_cfg

ROOT = Path(__file__).resolve().parents[2]


def _toy_config(tmp_path, **train_kw):
    cfg = {
        "task": {
            "kind": "toy_maskformer",
            "data": coco_data_cfg(image_size=64, min_scale=0.5, max_scale=1.5, augment="lsj"),
            "loss": {"num_points": 256},
        },
        "train": {
            "max_steps": 6,
            "global_batch": 2,
            "num_workers": 0,
            "log_every": 1,
            "checkpoint_every": 100,
            "device": "cpu",
            "progress": False,
            "num_threads": 1,
            **train_kw,
        },
        "optimizer": {"lr": 1e-3, "weight_decay": 0.05},
        "scheduler": {"name": "multistep", "steps": [4], "gamma": 0.1},
    }
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _trainable(out_dir: Path, step: int) -> dict:
    return load_training_checkpoint(out_dir / "checkpoints" / f"model_{step:07d}.pth")["trainable"]


def _max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


@pytest.mark.slow
def test_torchrun_two_processes_equal_one_process(tmp_path):
    cfg_path = _toy_config(tmp_path)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "ovseg_models.training.cli",
        str(cfg_path),
        f"train.output_dir={tmp_path / 'two'}",
    ]
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    train(load_config(cfg_path, [f"train.output_dir={tmp_path / 'one'}"]))
    one, two = _trainable(tmp_path / "one", 6), _trainable(tmp_path / "two", 6)
    assert _max_diff(one, two) < 1e-5  # same global batch, same per-sample randomness: equal up to rounding
    assert (
        _max_diff(one, load_training_checkpoint(tmp_path / "two" / "checkpoints" / "model_0000006.pth")["trainable"])
        < 1e-5
    )
    init = load_config(cfg_path)  # and training did move the weights
    assert init["train"]["max_steps"] == 6
    rows = (tmp_path / "two" / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("step,epoch,lr") and len(rows) == 7


def test_resume_continues_exactly(tmp_path):
    cfg_path = _toy_config(tmp_path)
    full = train(load_config(cfg_path, [f"train.output_dir={tmp_path / 'full'}"]))
    part = train(load_config(cfg_path, [f"train.output_dir={tmp_path / 'res'}", "train.stop_after=3"]))
    assert part["step"] == 3 and find_last_checkpoint(tmp_path / "res").name == "model_0000003.pth"
    resumed = train(load_config(cfg_path, [f"train.output_dir={tmp_path / 'res'}"]))
    assert resumed["step"] == 6
    assert _max_diff(_trainable(tmp_path / "full", 6), _trainable(tmp_path / "res", 6)) == 0.0
    assert resumed["total_loss"] == full["total_loss"]
    a = (tmp_path / "full" / "metrics.csv").read_text().splitlines()
    b = (tmp_path / "res" / "metrics.csv").read_text().splitlines()
    strip = lambda rows: [r.split(",")[:3] + r.split(",")[6:] for r in rows]  # drop timings
    assert strip(a) == strip(b)
    ck = load_training_checkpoint(tmp_path / "res" / "checkpoints" / "model_0000006.pth")
    assert ck["step"] == 6 and ck["scheduler"]["last_epoch"] == 6 and "model" in ck and "config" in ck


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "ck.pth"
    save_checkpoint_atomic({"v": torch.ones(3)}, path)
    real_save = torch.save

    def crash(obj, f, *a, **k):
        f.write(b"partial")
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint_atomic({"v": torch.zeros(3)}, path)
    monkeypatch.setattr(torch, "save", real_save)
    assert torch.equal(torch.load(path)["v"], torch.ones(3))  # previous file intact
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pth"]  # no temporary left behind


def test_cli_print_config_and_list(capsys):
    from ovseg_models.training.cli import main

    assert main(["fcclip_convnext_large", "--print-config", "train.max_steps=7"]) == 0
    out = yaml.safe_load(capsys.readouterr().out)
    assert out["train"]["max_steps"] == 7 and out["task"]["variant"] == "convnext_large_d_320"
    assert main(["--list"]) == 0
    assert "catseg_vitl" in capsys.readouterr().out
