"""The one way tests find the shared data (``../shared`` beside the repository).

``OVSEG_SHARED`` names another location. A test that needs a file calls :func:`shared_path`:
where the file is absent it is skipped with the path in the reason, except in CI (``CI`` set,
as on the landing machine) or with ``OVSEG_REQUIRE_SHARED=1``, where it fails: the shared data
is part of CI's contract, and a silent skip there would count as a pass.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("OVSEG_SHARED") or REPO.parent / "shared").resolve()


def shared_required() -> bool:
    return bool(os.environ.get("CI")) or os.environ.get("OVSEG_REQUIRE_SHARED") == "1"


def shared_path(*parts: str) -> Path:
    """``SHARED/parts...`` if it exists; otherwise skip the test (fail it in CI)."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        message = f"shared data not found: {path} (set OVSEG_SHARED to the folder holding data/ and reference/)"
        if shared_required():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return path
