"""``create_segmenter(model, checkpoint=...)`` loads ``ovseg-train`` checkpoints (the configuration they
record, weights under ``model``) and the model packages' own saves, strictly, and predicts exactly as the
in-memory model does."""

import numpy as np
import pytest
import torch

from ovseg_models import create_segmenter
from ovseg_models.fcclip import FCCLIPConfig, FCCLIPSegmenter
from ovseg_models.fcclip import save_checkpoint as save_fcclip
from ovseg_models.training.engine import Trainer
from ovseg_models.weights_io import CheckpointError, read_checkpoint

from .conftest import coco_data_cfg, coco_panoptic_base
from .test_eval_cli import TINY

VOCAB = ["person", "tree", "grass", "sky", "horse", "truck"]


@pytest.fixture(scope="module")
def trained_fcclip(tmp_path_factory):
    out = tmp_path_factory.mktemp("fcclip_run")
    cfg = {
        "task": {
            "kind": "fcclip",
            "variant": "rn50",
            "pretrained": False,
            "overrides": TINY,
            "data": coco_data_cfg(image_size=64, augment="resize"),
            "loss": {"num_points": 0},
        },
        "train": {
            "max_steps": 2,
            "global_batch": 2,
            "num_workers": 0,
            "device": "cpu",
            "progress": False,
            "output_dir": str(out),
            "num_threads": 2,
            "resume": False,
        },
        "optimizer": {"lr": 1e-3},
        "scheduler": {"name": "constant"},
    }
    trainer = Trainer(cfg)
    trainer.train()
    net = trainer.task.model.net.eval()
    config = FCCLIPConfig.from_dict(trainer.task.info["fcclip_config"])
    return net, config, out / "checkpoints" / "model_0000002.pth"


def _same_predictions(a, b, image):
    a.set_vocabulary(VOCAB)
    b.set_vocabulary(VOCAB)
    ra, rb = a.predict(image), b.predict(image)
    assert np.array_equal(ra.semantic, rb.semantic)
    assert np.array_equal(ra.panoptic, rb.panoptic)
    return ra


def _photo():
    return coco_panoptic_base()[0]["image"][:160, :200]


def test_fcclip_training_checkpoint_through_the_factory(trained_fcclip):
    net, config, path = trained_fcclip
    sd, meta = read_checkpoint(path)
    assert meta["format"] == "ovseg-train-v1" and meta["task"]["fcclip_config"]["hidden_dim"] == 32
    seg = create_segmenter("fcclip", checkpoint=str(path), pretrained=False, min_size=64, max_size=128)
    assert seg.config == config  # the tiny architecture comes from the checkpoint, not the rn50 defaults
    for k, v in net.state_dict().items():
        assert torch.equal(seg.model.state_dict()[k], v), k
    ref = FCCLIPSegmenter(net, config=config, min_size=64, max_size=128)
    _same_predictions(seg, ref, _photo())
    with pytest.raises(CheckpointError, match="variant"):
        create_segmenter("fcclip", variant="convnext_large_d_320", checkpoint=str(path), pretrained=False)
    with pytest.raises(CheckpointError, match="not a CAT-Seg"):
        create_segmenter("catseg", checkpoint=str(path))


def test_fcclip_own_save_and_wrapped_state_dict_through_the_factory(trained_fcclip, tmp_path):
    net, config, _ = trained_fcclip
    ref = FCCLIPSegmenter(net, config=config, min_size=64, max_size=128)
    saved = tmp_path / "fcclip_tiny.pth"
    save_fcclip(net, saved, config=config, variant="rn50")
    seg = create_segmenter("fcclip", checkpoint=str(saved), pretrained=False, min_size=64, max_size=128)
    _same_predictions(seg, ref, _photo())
    # a training wrapper's state_dict (keys under "net.") inside an ovseg-train checkpoint is unwrapped
    wrapped = tmp_path / "wrapped.pth"
    torch.save(
        {
            "format": "ovseg-train-v1",
            "model": {f"net.{k}": v for k, v in net.state_dict().items()},
            "task": {"name": "fcclip", "variant": "rn50", "fcclip_config": config.to_dict()},
        },
        wrapped,
    )
    seg = create_segmenter("fcclip", checkpoint=str(wrapped), pretrained=False, min_size=64, max_size=128)
    _same_predictions(seg, ref, _photo())
    # strict: a missing weight is named
    broken = tmp_path / "broken.pth"
    sd = net.state_dict()
    sd.pop("void_embedding.weight")
    torch.save(
        {"format": "ovseg-train-v1", "model": sd, "task": {"name": "fcclip", "fcclip_config": config.to_dict()}}, broken
    )
    with pytest.raises(CheckpointError, match="void_embedding"):
        create_segmenter("fcclip", checkpoint=str(broken), pretrained=False)
