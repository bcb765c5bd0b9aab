from shared_data import shared_path


def coco_dir():
    return shared_path("data", "coco_panoptic")


def coco_panoptic_base():
    from ovseg_models.data.datasets import COCOPanopticDataset

    coco = coco_dir()
    return COCOPanopticDataset(
        image_dir=coco / "images", panoptic_dir=coco / "panoptic_val", panoptic_json=coco / "panoptic_val.json"
    )


def coco_data_cfg(**kw):
    coco = coco_dir()
    return {
        "image_dir": str(coco / "images"),
        "panoptic_dir": str(coco / "panoptic_val"),
        "panoptic_json": str(coco / "panoptic_val.json"),
        **kw,
    }
