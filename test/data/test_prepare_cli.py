"""``ovseg-prepare DATASET [--split]``: the converters as a command, on the shared ADE20K full-release samples
(in the official download's layout) and a synthetic Cityscapes train split."""

import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from shared_data import shared_path

from ovseg_models.data.cli import main
from ovseg_models.data.datasets import build_panoptic_dataset, build_semantic_dataset

REPO = Path(__file__).resolve().parents[2]


def _ade20k_full_download(root: Path) -> None:
    """The two shared samples where the ADE20K_2021_17_01 download puts validation images (symlinks)."""
    src = shared_path("data", "ade20k_full")
    scene = root / "ADE20K_2021_17_01" / "images" / "ADE" / "validation" / "urban" / "street"
    scene.mkdir(parents=True)
    for f in src.glob("ADE_*"):
        if f.name.endswith((".jpg", "_seg.png")):
            (scene / f.name).symlink_to(f)


def test_prepare_command_ade20k_847(tmp_path, capsys):
    _ade20k_full_download(tmp_path)
    assert main(["ade20k_847", "--root", str(tmp_path)]) == 0
    assert "ade20k_847: 2 file(s) written" in capsys.readouterr().out
    ds = build_semantic_dataset("ade20k_847", root=tmp_path)
    assert len(ds) == 2 and min(ds[0]["image"].shape[:2]) == 512
    # as a process, through the module entry point (the console script runs the same main)
    proc = subprocess.run(
        [sys.executable, "-m", "ovseg_models.data.cli", "ade20k_847", "--root", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert proc.returncode == 0 and "0 file(s) written" in proc.stdout, proc.stderr[-2000:]


def test_prepare_command_split_and_failures(tmp_path, capsys):
    city = tmp_path / "cityscapes"
    ids = np.full((6, 8), 7, np.uint16)
    ids[2:5, 2:5] = 26000
    gt = city / "gtFine" / "train" / "ulm"
    gt.mkdir(parents=True)
    Image.fromarray(ids).save(gt / "ulm_000000_000019_gtFine_instanceIds.png")
    Image.fromarray(np.where(ids >= 1000, ids // 1000, ids).astype(np.uint8)).save(
        gt / "ulm_000000_000019_gtFine_labelIds.png"
    )
    img = city / "leftImg8bit" / "train" / "ulm"
    img.mkdir(parents=True)
    Image.fromarray(np.zeros((6, 8, 3), np.uint8)).save(img / "ulm_000000_000019_leftImg8bit.png")
    assert main(["cityscapes", "cityscapes_panoptic", "--root", str(tmp_path), "--split", "train"]) == 0
    assert (gt / "ulm_000000_000019_gtFine_labelTrainIds.png").exists()
    item = build_panoptic_dataset("cityscapes", root=tmp_path, split="train")[0]
    assert {s["id"] for s in item["segments_info"]} == {7, 26000}
    # a requested dataset whose files are absent: reported, the others still run, exit 1
    capsys.readouterr()
    assert main(["ade20k_150", "cityscapes", "--root", str(tmp_path), "--split", "train", "--overwrite"]) == 1
    captured = capsys.readouterr()
    assert "ade20k_150 failed" in captured.err and "cityscapes: 1 file(s) written" in captured.out
    # "all": absent datasets are listed, not failures
    assert main(["all", "--root", str(tmp_path), "--split", "train"]) == 0
    assert "ade20k_847: not present" in capsys.readouterr().out
