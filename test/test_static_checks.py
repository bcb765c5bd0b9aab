"""Static checks are part of the suite: ruff's lint rules (pyflakes, bugbear, isort, pyupgrade),
its formatter, and mypy on ``ovseg_models``, configured in pyproject.toml. A finding fails the
test with the tool's report."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _ruff() -> str:
    exe = Path(sys.executable).with_name("ruff")
    found = str(exe) if exe.is_file() else shutil.which("ruff")
    if found is None:
        pytest.fail("ruff is not installed: it is pinned in requirements/lock.txt (run tools/setup.sh)")
    return found


@pytest.mark.parametrize("args", [["check", "."], ["format", "--check", "."]], ids=["lint", "format"])
def test_ruff(args):
    res = subprocess.run([_ruff(), *args], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr


def test_mypy():
    # the venv's mypy (pinned in requirements/lock.txt); files and options come from [tool.mypy]
    res = subprocess.run([sys.executable, "-m", "mypy"], cwd=REPO, capture_output=True, text=True, timeout=600)
    if res.returncode != 0 and "No module named mypy" in res.stderr:
        pytest.fail("mypy is not installed: it is pinned in requirements/lock.txt (run tools/setup.sh)")
    assert res.returncode == 0, res.stdout + res.stderr
