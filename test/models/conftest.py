"""Shared fixtures for model tests: repository root on sys.path, shared reference data."""
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SHARED = ROOT.parent / "shared" / "reference"


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    if not (SHARED / "cases").is_dir():
        pytest.skip(f"shared reference data not found at {SHARED} (expected ../shared/reference from the repo root)")
    return SHARED


def shared_file(reference_dir: Path, rel: str) -> Path:
    p = reference_dir / rel
    if not p.is_file():
        pytest.skip(f"shared reference file missing: {p}")
    return p
