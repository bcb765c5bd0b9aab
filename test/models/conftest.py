"""Shared fixtures for model tests: the shared reference data."""

from pathlib import Path

import pytest
from shared_data import shared_path


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    return shared_path("reference")


def shared_file(reference_dir: Path, rel: str) -> Path:
    return shared_path("reference", *rel.split("/"))
