from pathlib import Path

import pytest

COCO = Path("/work/shared/data/coco_panoptic")


def coco_panoptic_base():
    from ovseg_models.data.datasets import COCOPanopticDataset

    if not (COCO / "panoptic_val.json").is_file():
        pytest.skip(f"COCO panoptic samples not found at {COCO}")
    return COCOPanopticDataset(image_dir=COCO / "images", panoptic_dir=COCO / "panoptic_val",
                               panoptic_json=COCO / "panoptic_val.json")


def coco_data_cfg(**kw):
    coco_panoptic_base()
    return {"image_dir": str(COCO / "images"), "panoptic_dir": str(COCO / "panoptic_val"),
            "panoptic_json": str(COCO / "panoptic_val.json"), **kw}
