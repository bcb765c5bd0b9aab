"""``ovseg-eval --config`` of every paper config over a DETECTRON2_DATASETS folder holding one prepared frame of
every benchmark (built here with the project's converters from the shared samples and fixtures written in the
published formats), with tiny random weights saved for each config's variant: every column is produced.

The numbers are meaningless (random weights); the test checks that each config's datasets, vocabularies,
readers, metrics and table run end to end.
"""

import dataclasses
import json
import os

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools import mask as mask_util
from shared_data import shared_path
from test_eval_cli_failures import _cityscapes_as_create_panoptic_imgs
from test_panoptic_benchmarks_eval import _ade, _img, _mapillary

from ovseg_models.data.prepare import prepare_ade20k_847, prepare_pascal_context, prepare_pascal_voc
from ovseg_models.evaluation import cli
from ovseg_models.evaluation.report import PANOPTIC_ROWS, SEMANTIC_COLUMNS
from ovseg_models.training.config import list_configs, load_config

PANOPTIC_METRICS = {"coco_panoptic", "ade20k_150", "cityscapes", "mapillary_vistas"}


def _coco(root):
    coco = shared_path("data", "coco_panoptic")
    (root / "coco" / "annotations").mkdir(parents=True)
    (root / "coco" / "val2017").symlink_to(coco / "images")
    (root / "coco" / "panoptic_val2017").symlink_to(coco / "panoptic_val")
    data = json.loads((coco / "panoptic_val.json").read_text())  # one frame
    data["annotations"] = data["annotations"][:1]
    data["images"] = [i for i in data["images"] if i["id"] == data["annotations"][0]["image_id"]]
    (root / "coco" / "annotations" / "panoptic_val2017.json").write_text(json.dumps(data))


def _ade847(root):
    src = shared_path("data", "ade20k_full") / "ADE_train_00016869.jpg"
    prepare_ade20k_847(root=root, images=[src])


def _pascal_context(root):
    # the Detail API's trainval_merged.json (RLE annos_segmentation, 459-class ids, 0 = unlabeled)
    voc = root / "VOCdevkit" / "VOC2010"
    h, w = 24, 32
    _img(voc / "JPEGImages" / "2008_000002.jpg", h, w, 7)
    anns = []
    for cat, sl in ((284, np.s_[:12]), (259, np.s_[12:, :16]), (2, np.s_[12:, 16:])):  # person, floor, aeroplane
        m = np.zeros((h, w), np.uint8)
        m[sl] = 1
        r = mask_util.encode(np.asfortranarray(m))
        anns.append({"image_id": 1, "category_id": cat, "segmentation": {**r, "counts": r["counts"].decode()}})
    data = {
        "images": [{"image_id": 1, "file_name": "2008_000002.jpg", "height": h, "width": w, "phase": "val"}],
        "annos_segmentation": anns,
    }
    (voc / "trainval_merged.json").write_text(json.dumps(data))
    prepare_pascal_context(root=root)


def _pascal_voc(root):
    voc = root / "VOCdevkit" / "VOC2012"
    label = np.zeros((24, 32), np.uint8)
    label[4:20, 6:26] = 15  # person
    label[4:20, 6] = 255
    (voc / "SegmentationClass").mkdir(parents=True)
    Image.fromarray(label, mode="P").save(voc / "SegmentationClass" / "2007_000033.png")
    _img(voc / "JPEGImages" / "2007_000033.jpg", 24, 32, 8)
    (voc / "ImageSets" / "Segmentation").mkdir(parents=True)
    (voc / "ImageSets" / "Segmentation" / "val.txt").write_text("2007_000033\n")
    prepare_pascal_voc(root=root)


@pytest.fixture(scope="module")
def benchmarks(tmp_path_factory):
    root = tmp_path_factory.mktemp("datasets")
    _coco(root)
    _ade847(root)
    _ade(root)  # ADE20K-150 semantic + panoptic
    _pascal_context(root)
    _pascal_voc(root)
    _cityscapes_as_create_panoptic_imgs(root)
    _mapillary(root)
    return root


@pytest.fixture(scope="module")
def tiny_open_clip(tmp_path_factory):
    """A tiny ResNet CLIP registered with open_clip (FC-CLIP builds its CLIP by open_clip model name)."""
    import open_clip

    folder = tmp_path_factory.mktemp("open_clip_configs")
    (folder / "ovseg-test-tiny-rn.json").write_text(
        json.dumps(
            {
                "embed_dim": 32,
                "vision_cfg": {"image_size": 64, "layers": [1, 1, 1, 1], "width": 16, "patch_size": None},
                "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
            }
        )
    )
    open_clip.add_model_config(folder)
    return "ovseg-test-tiny-rn"


def _tiny_checkpoint(name, folder, tiny_rn) -> str:
    cfg = load_config(name)
    variant = cfg["task"]["variant"]
    torch.manual_seed(0)
    path = folder / f"{name}_tiny.pth"
    if cfg["task"]["kind"] == "fcclip":
        from ovseg_models.fcclip import FCCLIP, get_config, save_checkpoint

        fc = dataclasses.replace(
            get_config(variant),
            clip_model_name=tiny_rn,
            clip_pretrained="",
            embed_dim=32,
            feature_channels=(16, 64, 128, 256, 512),
            backbone_type="resnet",
            conv_dim=32,
            mask_dim=32,
            transformer_enc_layers=1,
            transformer_dim_feedforward=64,
            transformer_nheads=4,
            hidden_dim=32,
            num_queries=20,
            nheads=4,
            dim_feedforward=64,
            dec_layers=2,
            templates="single",
        )
        save_checkpoint(FCCLIP.from_config(fc, pretrained=False).eval(), path, config=fc, variant=variant)
    else:
        from ovseg_models.catseg import CATSeg, get_config, save_checkpoint

        base = get_config(variant)
        # a tiny tower of the variant's CLIP family (same open_clip name: same tokenizer and preprocessing)
        clip = dataclasses.replace(
            base.clip,
            embed_dim=32,
            image_resolution=224,
            vision_layers=3,
            vision_width=64,
            vision_patch_size=16,
            vision_heads=2,
            text_width=32,
            text_heads=2,
            text_layers=1,
        )
        small = (
            {"guidance_layers": (0, 1), "appearance_guidance_dim": 32}
            if base.guidance == "clip"
            else {
                "prompt_ensemble_type": "single",
                "prompt_channel": 1,  # 80 cost channels: slow on CPU
                "timm_backbone": "resnet18",
                "timm_out_indices": (1, 2, 3),
                "appearance_guidance_dim": 256,
                "decoder_guidance_dims": (128, 64),
            }
        )  # a small feature backbone at the same strides
        # a small aggregator: the tiny CLIP's embedding width, narrow projections and one layer
        small.update(
            text_guidance_dim=32,
            text_guidance_proj_dim=16,
            appearance_guidance_proj_dim=16,
            decoder_dims=(32, 16),
            decoder_guidance_proj_dims=(8, 8),
            num_layers=1,
            num_heads=2,
            hidden_dim=16,
        )
        tiny = dataclasses.replace(base, clip=clip, **small)
        save_checkpoint(CATSeg(tiny).eval(), path, variant=variant)
    return str(path)


#: configs evaluated end to end by default: one per evaluation path (FC-CLIP; CAT-Seg with CLIP guidance; CAT-Seg
#: with a separate feature backbone). The other configs differ from these only in the variant, which the tiny
#: checkpoint replaces; OVSEG_ALL_PAPER_CONFIGS=1 runs every config end to end (about 5 minutes on 2 cores).
REPRESENTATIVES = {"fcclip": "fcclip_convnext_large", "catseg": "catseg_vitb", "catseg_timm": "catseg_v1_vitb_r101"}
ALL = os.environ.get("OVSEG_ALL_PAPER_CONFIGS") == "1"


def _family(name):
    cfg = load_config(name)
    if cfg["task"]["kind"] == "fcclip":
        return "fcclip"
    from ovseg_models.catseg import get_config

    return "catseg_timm" if get_config(cfg["task"]["variant"]).guidance == "timm" else "catseg"


@pytest.mark.parametrize("name", [n for n in list_configs() if n not in REPRESENTATIVES.values()])
def test_other_configs_evaluate_as_their_representative(name, tiny_open_clip, tmp_path):
    rep = REPRESENTATIVES[_family(name)]
    assert load_config(name)["eval"] == load_config(rep)["eval"]  # the same datasets and test-time options
    from ovseg_models import create_segmenter

    cfg = load_config(name)  # a tiny checkpoint recorded as this config's variant is accepted for it
    seg = create_segmenter(
        cfg["task"]["kind"],
        variant=cfg["task"]["variant"],
        pretrained=False,
        checkpoint=_tiny_checkpoint(name, tmp_path, tiny_open_clip),
    )
    assert seg is not None


@pytest.mark.slow
@pytest.mark.parametrize("name", list_configs() if ALL else sorted(REPRESENTATIVES.values()))
def test_paper_config_evaluates_every_column(name, benchmarks, tiny_open_clip, tmp_path, capsys):
    cfg = load_config(name)
    kind = cfg["task"]["kind"]
    expected = cfg["eval"]["datasets"]
    assert {k for _, k in SEMANTIC_COLUMNS} <= set(expected)  # every config covers the six semantic columns
    if kind == "fcclip":
        assert {k for _, k in PANOPTIC_ROWS} <= set(expected)
    out = tmp_path / "results.json"
    args = [
        "--config",
        name,
        "--checkpoint",
        _tiny_checkpoint(name, tmp_path, tiny_open_clip),
        "--root",
        str(benchmarks),
        "--device",
        "cpu",
        "--output",
        str(out),
    ]
    args += ["--min-size", "128", "--max-size", "256"] if kind == "fcclip" else ["--no-sliding-window"]
    torch.set_num_threads(2)
    rc = cli.main(args)
    text = capsys.readouterr().out
    res = json.loads(out.read_text())["results"]
    errors = {k: v["error"] for k, v in res.items() if "error" in v}
    assert rc == 0 and not errors, errors
    assert set(res) == set(expected)
    for ds in expected:
        assert res[ds]["images"] == 1 and np.isfinite(res[ds]["mIoU"]), (ds, res[ds])
        if kind == "fcclip" and ds in PANOPTIC_METRICS:
            assert np.isfinite(res[ds]["PQ"]) and np.isfinite(res[ds]["AP"]), (ds, res[ds])
    semantic_row = text.split("Open-vocabulary semantic segmentation (mIoU)")[1].splitlines()[3]
    cells = [c.strip() for c in semantic_row.split("|")[1:]]
    assert len(cells) == len(SEMANTIC_COLUMNS) and "-" not in cells, semantic_row  # every column printed
