"""The main job (``ovseg``): photos -> bag -> node over DDS -> outputs, overlays and a summary,
here with one frame per photo; it must say loudly that it fell back to random weights."""

from __future__ import annotations

import json
import subprocess
import sys


def test_demo_end_to_end_with_random_weights(tmp_path, ros_env):
    env = dict(ros_env)
    env.pop("OVSEG_CHECKPOINT", None)
    env.pop("OVSEG_WEIGHTS", None)
    env["OVSEG_WEIGHTS_DIR"] = str(tmp_path / "weights")  # nothing downloaded by hand
    env["HF_HUB_CACHE"] = str(tmp_path / "hf")  # nothing in the Hugging Face cache
    out = tmp_path / "demo"
    res = subprocess.run(
        [sys.executable, "-m", "ovseg_ros.demo", "--output-dir", str(out), "--frames-per-photo", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "RANDOM WEIGHTS" in res.stderr and "RANDOM" in res.stdout
    assert "6 frames, 6 processed, 0 dropped" in res.stdout
    assert len(list((out / "overlays").glob("*.png"))) == 6
    report = json.loads((out / "report.json").read_text())
    assert report["processed"] == 6 and len(report["vocabulary"]["classes"]) == 133  # COCO panoptic
    assert (out / "segmented_bag" / "metadata.yaml").is_file() and (out / "photos_bag" / "metadata.yaml").is_file()


def test_demo_refuses_a_missing_checkpoint(tmp_path, ros_env):
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "ovseg_ros.demo",
            "--output-dir",
            str(tmp_path / "d"),
            "--checkpoint",
            str(tmp_path / "missing.pth"),
        ],
        env=ros_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode != 0 and "does not exist" in res.stderr


def test_demo_weights_by_name_offline_names_the_file(tmp_path, ros_env):
    env = dict(ros_env, HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(tmp_path / "hf"), OVSEG_WEIGHTS_DIR=str(tmp_path / "w"))
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "ovseg_ros.demo",
            "--output-dir",
            str(tmp_path / "d"),
            "--weights",
            "catseg_vitb16_cocostuff",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode != 0
    assert "model_base.pth" in res.stderr and str(tmp_path / "w" / "model_base.pth") in res.stderr
    assert str(tmp_path / "hf") in res.stderr


def test_demo_uses_a_release_already_in_the_hugging_face_cache(tmp_path, monkeypatch):
    import argparse

    from huggingface_hub import constants

    from ovseg_ros.demo import _find_checkpoint

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("OVSEG_WEIGHTS_DIR", str(tmp_path / "w"))
    for k in ("OVSEG_CHECKPOINT", "OVSEG_WEIGHTS"):
        monkeypatch.delenv(k, raising=False)
    args = argparse.Namespace(checkpoint=None, weights=None, model="", variant="")
    assert _find_checkpoint(args)[0] is None  # nothing anywhere: the random fallback
    repo = tmp_path / "hf" / "spaces--hamacojr--CAT-Seg-weights"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("a" * 40)
    (repo / "snapshots" / ("a" * 40)).mkdir(parents=True)
    (repo / "snapshots" / ("a" * 40) / "model_base.pth").write_bytes(b"tiny")
    path, (model, variant), _ = _find_checkpoint(args)
    assert path.name == "model_base.pth" and (model, variant) == ("catseg", "vitb16_384")
