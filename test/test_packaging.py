"""The Python side installs with pip alone, and ovseg_models never imports ROS.

Researchers train and evaluate on machines without ROS: every module of ovseg_models must
import without pulling in rclpy or any ROS message package, and `pip install .` must ship the
packages with their data files (model configs, training configs).
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

ROS_PREFIXES = (
    "rclpy",
    "rosidl",
    "rmw",
    "ovseg.msg",
    "ovseg.srv",
    "sensor_msgs",
    "std_msgs",
    "builtin_interfaces",
    "diagnostic_msgs",
    "lifecycle_msgs",
    "ovseg_ros",
)


def test_every_ovseg_models_module_imports_without_ros():
    code = r"""
import importlib, pkgutil, sys, json
import ovseg_models
names = [m.name for m in pkgutil.walk_packages(ovseg_models.__path__, "ovseg_models.")
         if not m.name.endswith("__main__")]
for name in names:
    importlib.import_module(name)
print(json.dumps({"modules": names, "loaded": sorted(sys.modules)}))
"""
    env = dict(os.environ)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    import json

    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(out["modules"]) > 10, out["modules"]
    ros = [m for m in out["loaded"] if m.startswith(ROS_PREFIXES)]
    assert not ros, f"ovseg_models imported ROS modules: {ros}"


def test_wheel_ships_both_packages_and_their_data(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    wheels = list(tmp_path.glob("ovseg_python-*.whl"))
    assert len(wheels) == 1, list(tmp_path.iterdir())
    names = set(zipfile.ZipFile(wheels[0]).namelist())
    assert "ovseg_models/__init__.py" in names and "ovseg_ros/__init__.py" in names
    for data in list(REPO.glob("ovseg_models/**/*.json")) + list(REPO.glob("ovseg_models/**/*.yaml")):
        rel = data.relative_to(REPO).as_posix()
        assert rel in names, f"{rel} missing from the wheel"
    assert not any(n.startswith("test/") for n in names)
