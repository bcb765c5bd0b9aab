"""Model adapters: what the model-agnostic engine trains.

A :class:`TrainTask` bundles

* ``model``: an ``nn.Module`` whose ``forward(images)`` (a list of uint8 (3, H, W) tensors already on
  the device) returns the model outputs; the engine wraps it in DDP;
* ``loss(outputs, batch)``: a dict of (weighted) loss terms whose sum is minimised;
* ``dataset``: a map-style dataset taking ``(index, seed)`` keys (see :mod:`.data`);
* ``param_multipliers``: learning-rate multipliers by module-name substring (detectron2's
  ``BACKBONE_MULTIPLIER`` / CAT-Seg's ``CLIP_MULTIPLIER``);
* ``export_state_dict()``: the network's weights for checkpoints / evaluation.

Builders: ``fcclip`` (FC-CLIP: frozen CLIP, Mask2Former head, set criterion), ``catseg`` (CAT-Seg:
CLIP attention fine-tuning, per-pixel BCE) and ``toy_maskformer`` (a tiny Mask2Former-style network
for fast engine tests: same targets and criterion as FC-CLIP).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from ..data.datasets import coco_stuff_dataset
from .catseg_loss import per_pixel_bce_loss
from .criterion import SetCriterion
from .data import PanopticTrainDataset, SemanticTrainDataset

if TYPE_CHECKING:
    from ..catseg import CATSeg
    from ..fcclip import FCCLIP

__all__ = [
    "TrainTask",
    "build_task",
    "register_task",
    "TASK_BUILDERS",
    "TinyMaskFormer",
    "FCCLIPForTraining",
    "CATSegForTraining",
    "panoptic_train_dataset",
    "pad_targets",
    "sample_generators",
]


@dataclass
class TrainTask:
    name: str
    model: nn.Module
    loss: Callable[[Any, Mapping], dict[str, torch.Tensor]]
    dataset: Dataset
    param_multipliers: dict[str, float] = field(default_factory=dict)
    export_state_dict: Callable[[], dict[str, torch.Tensor]] | None = None
    info: dict = field(default_factory=dict)

    def state_dict_for_export(self) -> dict[str, torch.Tensor]:
        if self.export_state_dict is not None:
            return self.export_state_dict()
        return self.model.state_dict()


TASK_BUILDERS: dict[str, Callable[..., TrainTask]] = {}


def register_task(name: str):
    def deco(fn):
        TASK_BUILDERS[name] = fn
        return fn

    return deco


def build_task(task_cfg: Mapping, *, device: torch.device | str = "cpu") -> TrainTask:
    kind = task_cfg.get("kind")
    if kind not in TASK_BUILDERS:
        raise ValueError(f"unknown task kind {kind!r}; choose one of {sorted(TASK_BUILDERS)}")
    return TASK_BUILDERS[kind](task_cfg, device=torch.device(device))


# -- shared helpers ---------------------------------------------------------------------------------
def data_root(data_cfg: Mapping) -> Path:
    root = data_cfg.get("root") or os.environ.get("DETECTRON2_DATASETS") or "datasets"
    return Path(os.path.expandvars(os.path.expanduser(str(root))))


def panoptic_train_dataset(data_cfg: Mapping) -> PanopticTrainDataset:
    """COCO panoptic training set: explicit ``image_dir``/``panoptic_dir``/``panoptic_json`` or the
    detectron2 layout under ``root`` (``coco/{split}``, ``coco/panoptic_{split}``,
    ``coco/annotations/panoptic_{split}.json``)."""
    from ..data.datasets import COCOPanopticDataset

    root = data_root(data_cfg)
    split = data_cfg.get("split", "train2017")
    base = COCOPanopticDataset(
        image_dir=data_cfg.get("image_dir") or root / "coco" / split,
        panoptic_dir=data_cfg.get("panoptic_dir") or root / "coco" / f"panoptic_{split}",
        panoptic_json=data_cfg.get("panoptic_json") or root / "coco" / "annotations" / f"panoptic_{split}.json",
    )
    return PanopticTrainDataset(
        base,
        image_size=int(data_cfg.get("image_size", 1024)),
        min_scale=float(data_cfg.get("min_scale", 0.1)),
        max_scale=float(data_cfg.get("max_scale", 2.0)),
        augment=data_cfg.get("augment", "lsj"),
        flip=bool(data_cfg.get("flip", True)),
        filter_empty=bool(data_cfg.get("filter_empty", True)),
        drop_empty_masks=bool(data_cfg.get("drop_empty_masks", False)),
    )


def sample_generators(batch: Mapping, device: torch.device) -> list[torch.Generator]:
    """One generator per image, seeded with the sample's seed (on the device for speed)."""
    gens = []
    for s in batch["seeds"].tolist():
        g = torch.Generator(device=device)
        g.manual_seed(int(s) ^ 0x2545F491)
        gens.append(g)
    return gens


def pad_targets(targets: Sequence[Mapping], size: tuple[int, int], device) -> list[dict]:
    """Move targets to ``device`` and zero-pad masks to the padded batch ``size``."""
    out = []
    for t in targets:
        masks = t["masks"]
        padded = torch.zeros((masks.shape[0], *size), dtype=torch.float32, device=device)
        padded[:, : masks.shape[1], : masks.shape[2]] = masks.to(device=device, dtype=torch.float32)
        out.append({"labels": t["labels"].to(device), "masks": padded})
    return out


def _criterion(loss_cfg: Mapping, num_classes: int) -> SetCriterion:
    return SetCriterion(
        num_classes,
        class_weight=float(loss_cfg.get("class_weight", 2.0)),
        mask_weight=float(loss_cfg.get("mask_weight", 5.0)),
        dice_weight=float(loss_cfg.get("dice_weight", 5.0)),
        eos_coef=float(loss_cfg.get("no_object_weight", 0.1)),
        num_points=int(loss_cfg.get("num_points", 12544)),
        oversample_ratio=float(loss_cfg.get("oversample_ratio", 3.0)),
        importance_sample_ratio=float(loss_cfg.get("importance_sample_ratio", 0.75)),
        deep_supervision=bool(loss_cfg.get("deep_supervision", True)),
        ce_normalization=loss_cfg.get("ce_normalization", "global"),
    )


def _mask_loss_fn(criterion: SetCriterion, size_divisibility: int):
    def loss(outputs, batch):
        device = outputs["pred_masks"].device
        h = max(int(im.shape[-2]) for im in batch["images"])
        w = max(int(im.shape[-1]) for im in batch["images"])
        d = size_divisibility
        if d > 1:
            h, w = (h + d - 1) // d * d, (w + d - 1) // d * d
        targets = pad_targets(batch["targets"], (h, w), device)
        return criterion(outputs, targets, sample_generators(batch, device))

    return loss


# -- toy Mask2Former ------------------------------------------------------------------------------------
class TinyMaskFormer(nn.Module):
    """A minimal Mask2Former-style network (conv pixel encoder, learnable queries refined by
    cross-attention, per-layer class/mask heads) for fast tests of the training machinery."""

    # buffers registered in __init__
    pixel_mean: torch.Tensor
    pixel_std: torch.Tensor

    def __init__(
        self,
        num_classes: int,
        *,
        dim: int = 32,
        num_queries: int = 16,
        num_layers: int = 2,
        size_divisibility: int = 32,
    ):
        super().__init__()
        self.size_divisibility = size_divisibility
        self.register_buffer("pixel_mean", torch.tensor([123.675, 116.28, 103.53]).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor([58.395, 57.12, 57.375]).view(-1, 1, 1), False)
        self.encoder = nn.Sequential(
            nn.Conv2d(3, dim, 3, 2, 1),
            nn.GroupNorm(8, dim),
            nn.ReLU(),
            nn.Conv2d(dim, dim, 3, 2, 1),
            nn.GroupNorm(8, dim),
            nn.ReLU(),
            nn.Conv2d(dim, dim, 3, 1, 1),
        )
        self.pos = nn.Parameter(torch.zeros(1, dim, 1, 1))
        self.query_feat = nn.Embedding(num_queries, dim)
        self.layers = nn.ModuleList(nn.MultiheadAttention(dim, 4, batch_first=True) for _ in range(num_layers))
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(num_layers + 1))
        self.class_embed = nn.Linear(dim, num_classes + 1)
        self.mask_embed = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim))

    def normalize_and_pad(self, images: Sequence[torch.Tensor]) -> torch.Tensor:
        h = max(int(x.shape[-2]) for x in images)
        w = max(int(x.shape[-1]) for x in images)
        d = self.size_divisibility
        h, w = (h + d - 1) // d * d, (w + d - 1) // d * d
        batch = self.pixel_mean.new_zeros((len(images), 3, h, w))
        for i, x in enumerate(images):
            batch[i, :, : x.shape[-2], : x.shape[-1]] = (x.float() - self.pixel_mean) / self.pixel_std
        return batch

    def _heads(self, q, feats, i):
        q = self.norms[i](q)
        return {
            "pred_logits": self.class_embed(q),
            "pred_masks": torch.einsum("bqc,bchw->bqhw", self.mask_embed(q), feats),
        }

    def forward(self, images: Sequence[torch.Tensor]) -> dict:
        x = self.normalize_and_pad(images)
        feats = self.encoder(x)
        mem = (feats + self.pos).flatten(2).transpose(1, 2)
        q = self.query_feat.weight.unsqueeze(0).expand(x.shape[0], -1, -1)
        aux = [self._heads(q, feats, 0)]
        for i, layer in enumerate(self.layers):
            q = q + layer(q, mem, mem, need_weights=False)[0]
            aux.append(self._heads(q, feats, i + 1))
        out = dict(aux.pop())
        out["aux_outputs"] = aux
        return out


@register_task("toy_maskformer")
def build_toy_task(cfg: Mapping, *, device: torch.device) -> TrainTask:
    dataset = panoptic_train_dataset(cfg.get("data", {}))
    m = cfg.get("model", {})
    model = TinyMaskFormer(
        dataset.num_classes,
        dim=int(m.get("dim", 32)),
        num_queries=int(m.get("num_queries", 16)),
        num_layers=int(m.get("num_layers", 2)),
    ).to(device)
    criterion = _criterion(cfg.get("loss", {}), dataset.num_classes).to(device)
    return TrainTask(
        "toy_maskformer",
        model,
        _mask_loss_fn(criterion, model.size_divisibility),
        dataset,
        info={"num_classes": dataset.num_classes},
    )


# -- FC-CLIP ----------------------------------------------------------------------------------------------
class FCCLIPForTraining(nn.Module):
    """FC-CLIP in training mode: frozen CLIP features (no autograd), trainable pixel decoder,
    transformer decoder (with auxiliary outputs) and void embedding; the in-vocabulary class logits
    use a fixed text classifier of the training vocabulary (the official ``train_text_classifier``)."""

    text_classifier: torch.Tensor  # buffer registered in __init__

    def __init__(
        self,
        net: FCCLIP,
        text_classifier: torch.Tensor,
        num_synonyms: Sequence[int],
        *,
        cache_backbone: bool = False,
    ):
        super().__init__()
        self.net = net
        self.register_buffer("text_classifier", text_classifier.float(), persistent=False)
        self.num_synonyms = [int(n) for n in num_synonyms]
        for p in self.net.backbone.parameters():
            p.requires_grad_(False)
        #: cache the frozen features per input batch (only useful without random augmentation)
        self.cache_backbone = bool(cache_backbone)
        self._cache: dict[str, dict[str, torch.Tensor]] = {}

    def backbone_features(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        key = None
        if self.cache_backbone:
            import hashlib

            key = hashlib.sha1(batch.detach().cpu().numpy().tobytes()).hexdigest()
            if key in self._cache:
                return self._cache[key]
        with torch.no_grad():
            features = {k: v.detach() for k, v in self.net.backbone(batch).items()}
        if key is not None:
            if len(self._cache) >= 64:
                self._cache.clear()
            self._cache[key] = features
        return features

    def forward(self, images: Sequence[torch.Tensor]) -> dict:
        batch, _ = self.net.normalize_and_pad(list(images))
        features = self.backbone_features(batch)
        with torch.autocast(batch.device.type, enabled=False):  # official: pixel decoder in fp32
            mask_features, multi_scale = self.net.pixel_decoder({k: v.float() for k, v in features.items()})
        classifier = self.net.text_classifier_with_void(self.text_classifier)
        return self.net.transformer_decoder(multi_scale, mask_features, classifier, self.num_synonyms, aux_outputs=True)


def fcclip_text_classifier(net: FCCLIP, dataset_key: str, templates) -> tuple[torch.Tensor, list[int]]:
    from ..data.class_names import get_categories
    from ..fcclip import CLIPTextEncoder
    from ..text import build_text_classifier, get_templates

    cats = get_categories(dataset_key)
    synonyms = [s for c in cats for s in c.synonyms]
    encoder = CLIPTextEncoder(net.backbone)
    with torch.no_grad():
        classifier = build_text_classifier(encoder, synonyms, get_templates(templates), batch_size=256)
    return classifier, [len(c.synonyms) for c in cats]


@register_task("fcclip")
def build_fcclip_task(cfg: Mapping, *, device: torch.device) -> TrainTask:
    from ..fcclip import FCCLIP, get_config

    dataset = panoptic_train_dataset(cfg.get("data", {}))
    fc_cfg = get_config(cfg.get("variant"), **dict(cfg.get("overrides") or {}))
    pretrained = cfg.get("pretrained", True)
    net = FCCLIP.from_config(
        fc_cfg, pretrained=pretrained, device=device, allow_download=bool(cfg.get("allow_download", True))
    )
    classifier, num_synonyms = fcclip_text_classifier(
        net, cfg.get("train_vocabulary", "coco_panoptic"), cfg.get("templates", fc_cfg.templates)
    )
    if len(num_synonyms) != dataset.num_classes:
        raise ValueError(f"training vocabulary has {len(num_synonyms)} classes, the dataset {dataset.num_classes}")
    model = FCCLIPForTraining(
        net, classifier.to(device), num_synonyms, cache_backbone=bool(cfg.get("cache_backbone", False))
    ).to(device)
    criterion = _criterion(cfg.get("loss", {}), dataset.num_classes).to(device)

    def export():
        return {k: v for k, v in net.state_dict().items()}

    return TrainTask(
        "fcclip",
        model,
        _mask_loss_fn(criterion, fc_cfg.size_divisibility),
        dataset,
        param_multipliers={"backbone": float(cfg.get("backbone_multiplier", 0.1))},
        export_state_dict=export,
        info={"variant": cfg.get("variant"), "fcclip_config": fc_cfg.to_dict(), "num_classes": dataset.num_classes},
    )


# -- CAT-Seg ----------------------------------------------------------------------------------------------
class CATSegForTraining(nn.Module):
    """CAT-Seg in training mode: text embeddings recomputed every step through the (partly trainable)
    CLIP text tower, images prepared as in resize inference (:func:`~ovseg_models.catseg.inference.resized_inputs`);
    returns the per-class logits (B, T, 4h, 4w)."""

    tokens: torch.Tensor  # buffer registered in __init__

    def __init__(self, net: CATSeg, tokens: torch.Tensor, num_classes: int, num_prompts: int):
        super().__init__()
        self.net = net
        self.register_buffer("tokens", tokens, persistent=False)
        self.num_classes, self.num_prompts = int(num_classes), int(num_prompts)

    def text_embeddings(self) -> torch.Tensor:
        emb = self.net.encode_text(self.tokens)  # normalised (T * P, C)
        emb = emb.reshape(self.num_classes, self.num_prompts, -1)
        if self.num_prompts != self.net.cfg.prompt_channel:  # template ensemble into one channel
            emb = F.normalize(emb.mean(1, keepdim=True), dim=-1)
        return emb

    def forward(self, images: Sequence[torch.Tensor]) -> torch.Tensor:
        from ..catseg.inference import resized_inputs

        clip, guide = resized_inputs(torch.stack([im.float() for im in images]), self.net.cfg)
        return self.net(clip, self.text_embeddings(), guidance_images=guide)


@register_task("catseg")
def build_catseg_task(cfg: Mapping, *, device: torch.device) -> TrainTask:
    from open_clip.tokenizer import SimpleTokenizer

    from ..catseg import CATSeg, CATSegConfig, get_config, set_trainable
    from ..catseg.templates import get_templates
    from ..catseg.training import freeze_unused_parameters
    from ..data.class_names import get_categories

    data_cfg = cfg.get("data", {})
    if data_cfg.get("image_dir"):
        from ..data.datasets import SemanticSegmentationDataset

        base = SemanticSegmentationDataset(
            image_dir=data_cfg["image_dir"],
            label_dir=data_cfg["label_dir"],
            num_classes=int(data_cfg.get("num_classes", len(cfg.get("class_names") or ()) or 171)),
        )
    else:
        base = coco_stuff_dataset(data_root(data_cfg), data_cfg.get("split", "train2017"))
    dataset = SemanticTrainDataset(
        base,
        crop=int(data_cfg.get("crop", 384)),
        short_edge=int(data_cfg.get("short_edge", 384)),
        max_size=int(data_cfg.get("max_size", 1333)),
        color_aug=bool(data_cfg.get("color_aug", True)),
        flip=bool(data_cfg.get("flip", True)),
        size_divisibility=int(data_cfg.get("size_divisibility", 384)),
    )
    cs_cfg = cfg.get("config_object") or get_config(cfg.get("variant"), **dict(cfg.get("overrides") or {}))
    if isinstance(cs_cfg, Mapping):
        cs_cfg = CATSegConfig.from_dict(dict(cs_cfg))
    net = CATSeg(cs_cfg)
    pretrained = cfg.get("pretrained", True)
    if pretrained:
        from ..catseg import load_clip_weights, pretrained_clip_state_dict

        load_clip_weights(net.clip_model, pretrained_clip_state_dict(cs_cfg, pretrained))
    set_trainable(net, cfg.get("clip_finetune", "attention"))
    # e.g. the last image block's query projection (official rule: trainable) gets no gradient from the
    # dense forward; freezing it changes no output and keeps DistributedDataParallel working
    freeze_unused_parameters(net)
    if cfg.get("class_names"):  # an explicit training vocabulary (custom data)
        names = [str(n) for n in cfg["class_names"]]
    else:
        vocab_key = cfg.get("train_vocabulary", "coco_stuff_171")
        names = [c.synonyms[0] for c in get_categories(vocab_key)]  # official: first synonym
    if len(names) != dataset.num_classes:
        raise ValueError(f"training vocabulary has {len(names)} classes, the dataset {dataset.num_classes}")
    templates = get_templates(cfg.get("templates") or cs_cfg.prompt_ensemble_type)
    sentences = [t.format(n) for n in names for t in templates]
    tokens = SimpleTokenizer()(sentences, context_length=net.clip_model.context_length)
    model = CATSegForTraining(net, tokens, len(names), len(templates)).to(device)
    ignore_mode = cfg.get("loss", {}).get("ignore", "official")

    def loss(outputs, batch):
        return {
            "loss_sem_seg": per_pixel_bce_loss(
                outputs, batch["sem_seg"].to(outputs.device), ignore_index=dataset.ignore_index, ignore=ignore_mode
            )
        }

    return TrainTask(
        "catseg",
        model,
        loss,
        dataset,
        param_multipliers={
            "clip_model": float(cfg.get("clip_multiplier", 0.01)),
            "guidance_backbone": float(cfg.get("backbone_multiplier", 0.0)),
        },
        export_state_dict=lambda: dict(net.state_dict()),
        info={"variant": cfg.get("variant"), "catseg_config": cs_cfg.to_dict(), "num_classes": len(names)},
    )
