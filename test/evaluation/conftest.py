"""Shared fixtures: the real COCO panoptic sample in the shared data."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from shared_data import shared_path


@pytest.fixture(scope="session")
def coco_panoptic_sample():
    """``(panoptic json, categories list, {image_id: RGB-encoded panoptic PNG array})``."""
    root = shared_path("data", "coco_panoptic")
    data = json.loads((root / "panoptic_val.json").read_text())
    cats = json.loads((root / "panoptic_coco_categories.json").read_text())
    maps = {a["image_id"]: np.array(Image.open(root / "panoptic_val" / a["file_name"])) for a in data["annotations"]}
    return data, cats, maps
