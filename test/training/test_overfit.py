"""A tiny FC-CLIP (random RN50 CLIP, small pixel/transformer decoders) overfits the two real COCO
panoptic samples: the loss falls and PQ (in-vocabulary classifier, COCO rules, original resolution)
rises from 0 at random initialisation."""

import csv

import pytest

from ovseg_models.training.engine import Trainer
from ovseg_models.training.quick_eval import panoptic_quality

from .conftest import coco_data_cfg


@pytest.mark.slow
def test_tiny_fcclip_overfits_two_coco_images(tmp_path):
    cfg = {
        "task": {
            "kind": "fcclip",
            "variant": "rn50",
            "pretrained": False,
            "templates": ["a photo of a {}."],
            "cache_backbone": True,  # frozen CLIP + deterministic inputs: compute features once
            "overrides": {
                "conv_dim": 64,
                "mask_dim": 64,
                "transformer_enc_layers": 1,
                "transformer_dim_feedforward": 128,
                "transformer_nheads": 4,
                "hidden_dim": 64,
                "num_queries": 50,
                "nheads": 4,
                "dim_feedforward": 128,
                "dec_layers": 3,
            },
            "data": coco_data_cfg(image_size=128, augment="resize", flip=False),
            "loss": {"num_points": 0},
        },
        "train": {
            "max_steps": 200,
            "global_batch": 2,
            "num_workers": 0,
            "log_every": 25,
            "checkpoint_every": 10**6,
            "device": "cpu",
            "output_dir": str(tmp_path),
            "resume": False,
            "num_threads": 1,
            "progress": False,
        },
        "optimizer": {"lr": 2e-3, "weight_decay": 0.05},
        "scheduler": {"name": "constant"},
    }
    trainer = Trainer(cfg)
    pq_init = panoptic_quality(trainer.model, trainer.task.dataset)["All"]["pq"]
    trainer.train()
    pq_final = panoptic_quality(trainer.model, trainer.task.dataset)
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    first, last = float(rows[0]["total_loss"]), float(rows[-1]["total_loss"])
    print(
        f"loss {first:.2f} -> {last:.2f}; PQ {100 * pq_init:.1f} -> {100 * pq_final['All']['pq']:.1f} "
        f"(things {100 * pq_final['Things']['pq']:.1f}, stuff {100 * pq_final['Stuff']['pq']:.1f})"
    )
    assert last < 0.7 * first
    assert pq_init < 0.05
    assert pq_final["All"]["pq"] > 0.25
