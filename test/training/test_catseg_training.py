"""CAT-Seg through the training engine: a tiny CAT-Seg (tiny CLIP, small aggregator, 128 px) trains on a
real COCO photo with per-pixel BCE; the loss falls and only the parameters of the official ``attention``
fine-tuning rule change; the checkpoint it writes loads through the public factory."""

import numpy as np
import torch
from PIL import Image

from ovseg_models import create_segmenter
from ovseg_models.catseg import CATSegSegmenter
from ovseg_models.catseg.training import clip_parameter_trainable, unused_parameter_names
from ovseg_models.training.engine import Trainer

from .conftest import coco_panoptic_base

#: the photo's segments, merged into a 5-class vocabulary (COCO panoptic name -> index)
CLASSES = {
    "tree-merged": ("tree", 0),
    "grass-merged": ("grass", 1),
    "person": ("person", 2),
    "sky-other-merged": ("sky", 3),
    "sports ball": ("sports ball", 4),
}

#: a small CAT-Seg: 3-block ViT (64 wide) at 128 px (8x8 grid), one aggregator layer, small decoder
TINY = {
    "clip": {
        "embed_dim": 32,
        "vision_layers": 3,
        "vision_width": 64,
        "vision_heads": 2,
        "text_width": 32,
        "text_heads": 2,
        "text_layers": 2,
    },
    "clip_resolution": 128,
    "feature_resolution": [8, 8],
    "window_size": 4,
    "guidance_layers": [0, 1],
    "text_guidance_dim": 32,
    "text_guidance_proj_dim": 16,
    "appearance_guidance_dim": 32,
    "appearance_guidance_proj_dim": 16,
    "hidden_dim": 32,
    "num_layers": 1,
    "num_heads": 2,
    "decoder_dims": [32, 16],
    "decoder_guidance_dims": [32, 16],
    "decoder_guidance_proj_dims": [16, 8],
    "pooling_size": [2, 2],
    "size_divisibility": 128,
}


def _photo_with_labels(folder):
    """COCO photo 142238 and its panoptic ground truth as a 5-class semantic label PNG."""
    base = coco_panoptic_base()
    cats = {c["id"]: c["name"] for c in base.categories}
    item = next(base[i] for i in range(len(base)) if "142238" in base[i]["file_name"])
    labels = np.full(item["pan_ids"].shape, 255, np.uint8)
    for seg in item["segments_info"]:
        labels[item["pan_ids"] == seg["id"]] = CLASSES[cats[seg["category_id"]]][1]
    (folder / "images").mkdir(parents=True)
    (folder / "labels").mkdir()
    Image.fromarray(item["image"]).save(folder / "images" / "photo.jpg", quality=95)
    Image.fromarray(labels).save(folder / "labels" / "photo.png")
    return item["image"]


def _config(tmp_path, steps):
    return {
        "task": {
            "kind": "catseg",
            "variant": "vitb16_384",
            "overrides": TINY,
            "pretrained": False,
            "clip_finetune": "attention",
            "class_names": [name for name, _ in CLASSES.values()],
            "data": {
                "image_dir": str(tmp_path / "data" / "images"),
                "label_dir": str(tmp_path / "data" / "labels"),
                "crop": 128,
                "short_edge": 128,
                "size_divisibility": 128,
                "color_aug": False,
                "flip": False,
            },
        },
        "train": {
            "max_steps": steps,
            "global_batch": 2,
            "num_workers": 0,
            "device": "cpu",
            "progress": False,
            "output_dir": str(tmp_path / "run"),
            "num_threads": 2,
            "resume": False,
            "log_every": 1,
            "checkpoint_every": 10**6,
        },
        "optimizer": {"lr": 1e-3, "weight_decay": 1e-4},
        "scheduler": {"name": "constant"},
    }


def test_tiny_catseg_trains_only_the_attention_rule_parameters(tmp_path):
    photo = _photo_with_labels(tmp_path / "data")
    torch.manual_seed(0)
    trainer = Trainer(_config(tmp_path, steps=6))
    net = trainer.task.model.net
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    summary = trainer.train()
    assert summary["step"] == 6
    rows = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    losses = [float(r.split(",")[6]) for r in rows[1:]]
    assert len(losses) == 6 and all(np.isfinite(losses))
    assert losses[-1] < 0.85 * losses[0], losses  # per-pixel BCE falls on the photo

    after = dict(net.named_parameters())
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    clip = {n for n in before if n.startswith("clip_model.")}
    rule = {n for n in clip if clip_parameter_trainable(n[len("clip_model.") :], "attention")}
    unused = set(unused_parameter_names(net))
    # frozen CLIP parameters (k projections, biases, MLPs, norms, embeddings...) are bit-identical
    assert not (clip - rule) & changed
    # every q/v projection the forward uses changed; the dense last block's unused q projection did not
    assert rule - unused <= changed and not unused & changed
    assert "clip_model.visual.transformer.resblocks.0.attn.q_proj_weight" in changed
    assert "clip_model.transformer.resblocks.1.attn.v_proj_weight" in changed
    assert not any("k_proj" in n for n in changed)
    assert rule == {n for n in clip if n.endswith(("q_proj_weight", "v_proj_weight"))}
    # the head trains fully
    head = {n for n in before if not n.startswith("clip_model.")}
    assert len(head & changed) >= 0.9 * len(head)

    # the ovseg-train checkpoint (tiny configuration recorded in it) loads through the public factory
    ckpt = tmp_path / "run" / "checkpoints" / "model_0000006.pth"
    loaded = create_segmenter("catseg", checkpoint=str(ckpt), sliding_window=False)
    ref = CATSegSegmenter(net.eval(), sliding_window=False)
    vocab = [name for name, _ in CLASSES.values()]
    loaded.set_vocabulary(vocab)
    ref.set_vocabulary(vocab)
    a, b = loaded.predict(photo), ref.predict(photo)
    assert np.array_equal(a.semantic, b.semantic)
    for k, v in ref.model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[k], v), k
