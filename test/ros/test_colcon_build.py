"""A ROS 2 user puts the repository into a workspace's src/ and runs `colcon build`.

Done here with colcon from PyPI against the venv's ROS wheels (../shared/notes/ros2-on-pypi.md):
the interfaces, the Python packages, the node executables, launch and config files must land
where ROS expects them, and the installed interfaces must import from the install prefix.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VENV = Path(sys.prefix)

pytestmark = pytest.mark.slow


def _copy_package(dest: Path) -> None:
    ignore = shutil.ignore_patterns(
        ".git",
        ".venv",
        ".ovseg_build",
        "build",
        "install",
        "log",
        "__pycache__",
        "*.egg-info",
        ".pytest_cache",
        "outputs",
    )
    shutil.copytree(REPO, dest, ignore=ignore, symlinks=True)


@pytest.fixture(scope="module")
def colcon_install(tmp_path_factory) -> Path:
    colcon = VENV / "bin" / "colcon"
    if not colcon.exists():
        pytest.skip("colcon is not installed in this environment (run tools/setup.sh)")
    ws = tmp_path_factory.mktemp("ws")
    _copy_package(ws / "src" / "ovseg")
    env = dict(os.environ)
    env["AMENT_PREFIX_PATH"] = str(VENV)
    env["PATH"] = f"{VENV / 'bin'}:{env.get('PATH', '')}"
    env.pop("_ROS_WHEELS_BOOTSTRAP_COMPLETE", None)
    cmd = [
        str(colcon),
        "build",
        "--base-paths",
        "src",
        "--event-handlers",
        "console_direct-",
        "--cmake-args",
        f"-DPython3_EXECUTABLE={sys.executable}",
        "-DBUILD_TESTING=OFF",
        f"-DCMAKE_PREFIX_PATH={VENV}",
    ]
    proc = subprocess.run(cmd, cwd=ws, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"colcon build failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return ws / "install" / "ovseg"


def test_colcon_installs_everything_where_ros_expects_it(colcon_install):
    prefix = colcon_install
    site = prefix / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    for exe in ("ovseg_node", "ovseg_lifecycle_node", "ovseg_bag_eval"):
        path = prefix / "lib" / "ovseg" / exe
        assert path.is_file() and os.access(path, os.X_OK), f"missing executable {path}"
    for pkg in ("ovseg_models", "ovseg_ros", "ovseg"):
        assert (site / pkg / "__init__.py").is_file(), f"{pkg} not installed in {site}"
    assert (prefix / "share" / "ovseg" / "package.xml").is_file()
    assert (prefix / "share" / "ament_index" / "resource_index" / "packages" / "ovseg").is_file()
    for folder in ("launch", "config"):
        for src in (REPO / folder).rglob("*"):
            if src.is_file():
                rel = src.relative_to(REPO)
                assert (prefix / "share" / "ovseg" / rel).is_file(), f"{rel} not installed"
    # package data of ovseg_models (JSON configs and class lists) travels with it
    for src in (REPO / "ovseg_models").rglob("*.json"):
        rel = src.relative_to(REPO)
        assert (site / rel).is_file(), f"package data {rel} not installed"


def test_installed_interfaces_import_from_the_install_prefix(colcon_install, tmp_path):
    prefix = colcon_install
    site = prefix / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    env = dict(os.environ)
    env.pop("_ROS_WHEELS_BOOTSTRAP_COMPLETE", None)
    # what `source install/setup.bash` would set for this package
    env["PYTHONPATH"] = f"{site}:{env.get('PYTHONPATH', '')}"
    env["LD_LIBRARY_PATH"] = f"{prefix / 'lib'}:{env.get('LD_LIBRARY_PATH', '')}"
    code = (
        "import ovseg.msg, ovseg.srv, ovseg_models, ovseg_ros;"
        "from rclpy.serialization import serialize_message, deserialize_message;"
        "m = ovseg.msg.PanopticSegmentation(vocabulary_version=5);"
        "assert deserialize_message(serialize_message(m), ovseg.msg.PanopticSegmentation) == m;"
        "print(ovseg.msg.__file__, ovseg_models.__file__)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    msg_file, models_file = proc.stdout.split()
    assert msg_file.startswith(str(prefix)), msg_file
    assert models_file.startswith(str(prefix)), models_file
