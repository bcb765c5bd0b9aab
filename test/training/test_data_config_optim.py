"""Augmentations, the resumable sampler, configs, optimizer groups and LR schedules."""

import math

import numpy as np
import pytest
from torch import nn

from ovseg_models.training.augment import lsj_panoptic, panoptic_targets, semantic_crop
from ovseg_models.training.config import apply_overrides, list_configs, load_config
from ovseg_models.training.data import GlobalBatchSampler
from ovseg_models.training.engine import build_lr_lambda, build_optimizer

from .conftest import coco_panoptic_base


def test_lsj_is_a_pure_function_of_the_seed_and_crops_to_size():
    base = coco_panoptic_base()
    item = base[0]
    a = lsj_panoptic(item["image"], item["pan_ids"], np.random.default_rng(5), image_size=256)
    b = lsj_panoptic(item["image"], item["pan_ids"], np.random.default_rng(5), image_size=256)
    c = lsj_panoptic(item["image"], item["pan_ids"], np.random.default_rng(6), image_size=256)
    assert a[0].shape == (256, 256, 3) and a[1].shape == (256, 256)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    h, w = a[2]
    assert (a[0][h:] == 128).all() and (a[0][:, w:] == 128).all() and (a[1][h:] == 0).all()
    ids = set(np.unique(a[1]).tolist()) - {0}
    assert ids <= {s["id"] for s in item["segments_info"]}  # nearest resize keeps ids exact
    labels, masks = panoptic_targets(a[1], item["segments_info"], base.contiguous_id)
    assert masks.shape[1:] == (256, 256) and len(labels) == len(masks)
    assert len(labels) == sum(1 for s in item["segments_info"] if not s.get("iscrowd", 0))  # empties kept


def test_lsj_scale_range_matches_resize_scale():
    img = np.zeros((400, 600, 3), np.uint8)
    pan = np.zeros((400, 600), np.int64)
    for seed in range(20):
        rng = np.random.default_rng(seed)
        scale = np.random.default_rng(seed)
        flip = scale.random() < 0.5  # same draws as the function
        s = scale.uniform(0.1, 2.0)
        _, _, (h, w) = lsj_panoptic(img, pan, rng, image_size=100)
        out = min(100 * s / 400, 100 * s / 600)
        assert (h, w) == (min(100, round(400 * out)), min(100, round(600 * out))), (seed, flip)


def test_semantic_crop_shapes_and_ignore_padding():
    img = np.random.default_rng(0).integers(0, 255, (300, 500, 3), dtype=np.uint8)
    lab = np.random.default_rng(1).integers(0, 171, (300, 500)).astype(np.int64)
    im, lb = semantic_crop(img, lab, np.random.default_rng(3))
    assert im.shape == (384, 384, 3) and lb.shape == (384, 384)
    assert set(np.unique(lb).tolist()) <= set(range(171))  # 384 short edge -> full crop, no padding
    im2, lb2 = semantic_crop(img, lab, np.random.default_rng(3), short_edge=200, crop=384)
    assert (lb2[200:] == 255).all() and (im2[200:] == 128).all()
    im3, lb3 = semantic_crop(img, lab, np.random.default_rng(3))
    assert np.array_equal(im, im3) and np.array_equal(lb, lb3)


def test_global_batch_sampler_splits_the_same_global_batches_over_ranks():
    one = GlobalBatchSampler(10, global_batch=4, seed=3, max_steps=7)
    ranks = [GlobalBatchSampler(10, global_batch=4, seed=3, rank=r, world_size=2, max_steps=7) for r in range(2)]
    for s, (full, r0, r1) in enumerate(zip(one, *ranks, strict=False)):
        assert full == r0 + r1, s
    # every pass over the data visits each sample once
    idx = [i for step in range(5) for i in one.global_indices(step)]
    assert sorted(idx[:10]) == list(range(10)) and sorted(idx[10:20]) == list(range(10))
    # resuming at step k yields the tail of the uninterrupted stream
    tail = list(GlobalBatchSampler(10, global_batch=4, seed=3, start_step=4, max_steps=7))
    assert tail == list(one)[4:]
    with pytest.raises(ValueError):
        GlobalBatchSampler(10, global_batch=3, world_size=2, max_steps=1)


def test_config_inheritance_and_overrides(tmp_path):
    (tmp_path / "base.yaml").write_text("a: {b: 1, c: [1, 2]}\ntrain: {max_steps: 10, lr: 0.1}\n")
    (tmp_path / "child.yaml").write_text("_base_: base.yaml\na: {c: [3]}\ntrain: {lr: 0.2}\n")
    cfg = load_config(tmp_path / "child.yaml", ["train.max_steps=5", "x.y=[1, 2]", "a.b=null"])
    assert cfg["a"] == {"b": None, "c": [3]}
    assert cfg["train"] == {"max_steps": 5, "lr": 0.2}
    assert cfg["x"] == {"y": [1, 2]}
    (tmp_path / "loop.yaml").write_text("_base_: loop.yaml\n")
    with pytest.raises(ValueError):
        load_config(tmp_path / "loop.yaml")
    with pytest.raises(ValueError):
        apply_overrides({}, ["novalue"])


def test_shipped_configs_carry_expected_numbers_and_cost():
    names = list_configs()
    assert {
        "fcclip_convnext_large",
        "fcclip_r50",
        "fcclip_r101",
        "fcclip_r50x4",
        "fcclip_r50x16",
        "fcclip_r50x64",
        "catseg_vitb",
        "catseg_vitl",
    } <= set(names)
    for name in names:
        cfg = load_config(name)
        md = cfg["metadata"]
        assert md["expected"] and md["gpu_hours"]["estimate"] > 0, name
        assert cfg["task"]["kind"] in ("fcclip", "catseg"), name
        assert cfg["train"]["max_steps"] > 0 and cfg["train"]["global_batch"] > 0
        assert cfg["eval"]["datasets"], name
    fc = load_config("fcclip_convnext_large")
    assert fc["train"]["max_steps"] == 368750 and fc["train"]["global_batch"] == 16
    assert fc["optimizer"]["lr"] == 1e-4 and fc["optimizer"]["weight_decay"] == 0.05
    assert fc["scheduler"] == {
        "name": "multistep",
        "steps": [327778, 355092],
        "gamma": 0.1,
        "warmup_iters": 10,
        "warmup_factor": 1.0,
    }
    assert fc["task"]["loss"]["num_points"] == 12544 and fc["task"]["data"]["image_size"] == 1024
    cs = load_config("catseg_vitb")
    assert cs["train"]["max_steps"] == 80000 and cs["train"]["global_batch"] == 4
    assert cs["optimizer"]["lr"] == 2e-4 and cs["optimizer"]["weight_decay"] == 1e-4
    assert cs["task"]["clip_multiplier"] == 0.01 and cs["scheduler"]["name"] == "cosine"


def test_optimizer_groups_follow_detectron2_rules():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.clip_model = nn.Linear(2, 2)
            self.head = nn.Linear(2, 2)
            self.norm = nn.LayerNorm(2)
            self.emb = nn.Embedding(3, 2)
            self.frozen = nn.Linear(2, 2)
            self.frozen.requires_grad_(False)

    net = Net()
    opt = build_optimizer(net, {"lr": 2e-4, "weight_decay": 1e-4}, {"clip_model": 0.01})
    by_param = {id(p): (g["lr"], g["weight_decay"]) for g in opt.param_groups for p in g["params"]}
    assert by_param[id(net.clip_model.weight)] == (pytest.approx(2e-6), 1e-4)
    assert by_param[id(net.head.weight)] == (2e-4, 1e-4)
    assert by_param[id(net.norm.weight)] == (2e-4, 0.0)
    assert by_param[id(net.emb.weight)] == (2e-4, 0.0)
    assert id(net.frozen.weight) not in by_param


def test_lr_schedules_match_detectron2():
    multi = build_lr_lambda(
        {"name": "multistep", "steps": [327778, 355092], "gamma": 0.1, "warmup_iters": 10, "warmup_factor": 1.0}, 368750
    )
    assert multi(0) == 1.0 and multi(327777) == 1.0
    assert multi(327778) == pytest.approx(0.1) and multi(355092) == pytest.approx(0.01)
    warm = build_lr_lambda({"name": "multistep", "steps": [], "warmup_iters": 10, "warmup_factor": 0.001}, 100)
    assert warm(0) == pytest.approx(0.001) and warm(5) == pytest.approx(0.001 * 0.5 + 0.5) and warm(10) == 1.0
    cos = build_lr_lambda({"name": "cosine"}, 80000)
    assert cos(0) == 1.0 and cos(40000) == pytest.approx(0.5) and cos(80000) == pytest.approx(0.0, abs=1e-12)
    assert cos(20000) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))


def test_seed_paper_catseg_rows_and_sources():
    # CAT-Seg arXiv v1 (the seed paper): ViT-B/16 + ResNet-101 and ViT-L/14 + Swin-B feature backbones
    order = ["ade20k_847", "pascal_context_459", "ade20k_150", "pascal_context_59", "pascal_voc_20", "pascal_voc_21"]
    rows = {
        "catseg_v1_vitb_r101": ("vitb16_r101_384", [8.4, 16.6, 27.2, 57.5, 93.7, 78.3]),
        "catseg_v1_vitl_swinb": ("vitl14_swinb_384", [10.8, 20.4, 31.5, 62.0, 96.6, 81.8]),
        "catseg_vitb": ("vitb16_384", [12.0, 19.0, 31.8, 57.5, 94.6, 77.3]),
        "catseg_vitl": ("vitl14_336", [16.0, 23.8, 37.9, 63.3, 97.0, 82.5]),
    }
    for name, (variant, numbers) in rows.items():
        cfg = load_config(name)
        assert cfg["task"]["kind"] == "catseg" and cfg["task"]["variant"] == variant, name
        assert [cfg["metadata"]["expected"][d]["mIoU"] for d in order] == numbers, name
        assert cfg["eval"]["datasets"] == order, name
    assert "2303.11797v1" in load_config("catseg_v1_vitb_r101")["metadata"]["source"]
    assert "released code" in load_config("catseg_vitb")["metadata"]["source"]
    for name in list_configs():  # every config says where its numbers come from
        assert load_config(name)["metadata"].get("source"), name
