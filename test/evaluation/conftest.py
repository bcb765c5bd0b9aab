"""Shared fixtures: the real COCO panoptic sample in ../shared/data (skipped when absent)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


@pytest.fixture(scope="session")
def coco_panoptic_sample():
    """``(panoptic json, categories list, {image_id: RGB-encoded panoptic PNG array})``."""
    root = SHARED / "coco_panoptic"
    if not root.exists():
        pytest.skip(f"shared COCO panoptic sample not found at {root}")
    data = json.loads((root / "panoptic_val.json").read_text())
    cats = json.loads((root / "panoptic_coco_categories.json").read_text())
    maps = {a["image_id"]: np.array(Image.open(root / "panoptic_val" / a["file_name"])) for a in data["annotations"]}
    return data, cats, maps
