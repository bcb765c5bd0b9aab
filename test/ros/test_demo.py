"""The main job (``ovseg``): photos -> bag -> node over DDS -> outputs, overlays and a summary,
here with one frame per photo; it must say loudly that it fell back to random weights."""
from __future__ import annotations

import json
import subprocess
import sys


def test_demo_end_to_end_with_random_weights(tmp_path, ros_env):
    env = dict(ros_env)
    env.pop("OVSEG_CHECKPOINT", None)
    env.pop("OVSEG_CHECKPOINT_URL", None)
    env["OVSEG_CACHE"] = str(tmp_path / "cache")  # nothing cached
    out = tmp_path / "demo"
    res = subprocess.run([sys.executable, "-m", "ovseg_ros.demo", "--output-dir", str(out), "--frames-per-photo", "1"],
                         env=env, capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "RANDOM WEIGHTS" in res.stderr and "RANDOM" in res.stdout
    assert "6 frames, 6 processed, 0 dropped" in res.stdout
    assert len(list((out / "overlays").glob("*.png"))) == 6
    report = json.loads((out / "report.json").read_text())
    assert report["processed"] == 6 and len(report["vocabulary"]["classes"]) == 133  # COCO panoptic
    assert (out / "segmented_bag" / "metadata.yaml").is_file() and (out / "photos_bag" / "metadata.yaml").is_file()


def test_demo_refuses_a_missing_checkpoint(tmp_path, ros_env):
    res = subprocess.run([sys.executable, "-m", "ovseg_ros.demo", "--output-dir", str(tmp_path / "d"), "--checkpoint",
                          str(tmp_path / "missing.pth")], env=ros_env, capture_output=True, text=True, timeout=60)
    assert res.returncode != 0 and "does not exist" in res.stderr
