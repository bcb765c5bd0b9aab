"""Mask2Former's set criterion as trained in FC-CLIP: class cross-entropy + mask BCE + dice, with
Hungarian matching, PointRend importance sampling and deep supervision.

Defaults are the official ones (``maskformer2_R50_bs16_50ep.yaml``): class weight 2.0, mask 5.0,
dice 5.0, no-object weight 0.1, 12544 points, oversample 3.0, importance 0.75; the same weights are
the matching costs. ``forward`` returns the *weighted* terms (``loss_ce``, ``loss_mask``,
``loss_dice`` and ``loss_*_{i}`` for the auxiliary layers); the training loss is their sum.

Normalisation: mask and dice losses are summed over matched masks and divided by the number of
ground-truth masks averaged over processes (official). The class loss is a weighted mean over
queries; with ``ce_normalization="global"`` (default) the weight sum is taken over the whole global
batch, so that the gradient does not depend on how the batch is split over processes (official
detectron2 = ``"local"``: weighted mean per process; identical on one process).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .matcher import HungarianMatcher
from .point_sampling import calculate_uncertainty, get_uncertain_point_coords_with_randomness, point_sample

__all__ = ["SetCriterion", "dice_loss", "sigmoid_ce_loss", "build_weight_dict"]


def dice_loss(inputs: torch.Tensor, targets: torch.Tensor, num_masks: float) -> torch.Tensor:
    """Sum over masks of ``1 - (2|X∩Y| + 1) / (|X| + |Y| + 1)`` divided by ``num_masks``."""
    inputs = inputs.sigmoid().flatten(1)
    numerator = 2 * (inputs * targets).sum(-1)
    denominator = inputs.sum(-1) + targets.sum(-1)
    loss = 1 - (numerator + 1) / (denominator + 1)
    return loss.sum() / num_masks


def sigmoid_ce_loss(inputs: torch.Tensor, targets: torch.Tensor, num_masks: float) -> torch.Tensor:
    """Per-mask mean binary cross-entropy, summed over masks, divided by ``num_masks``."""
    loss = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    return loss.mean(1).sum() / num_masks


def build_weight_dict(
    class_weight: float = 2.0, mask_weight: float = 5.0, dice_weight: float = 5.0, num_aux: int = 0
) -> dict[str, float]:
    weights = {"loss_ce": class_weight, "loss_mask": mask_weight, "loss_dice": dice_weight}
    for i in range(num_aux):
        weights.update({f"{k}_{i}": v for k, v in list(weights.items())[:3]})
    return weights


def _dist() -> tuple[bool, int]:
    ok = torch.distributed.is_available() and torch.distributed.is_initialized()
    return ok, (torch.distributed.get_world_size() if ok else 1)


def _all_reduce_mean(value: torch.Tensor) -> torch.Tensor:
    ok, world = _dist()
    if ok:
        value = value.clone()
        torch.distributed.all_reduce(value)
        value = value / world
    return value


class SetCriterion(nn.Module):
    """Matching-based loss of mask-classification models (outputs ``pred_logits`` [B, Q, K+1] with
    void last, ``pred_masks`` [B, Q, h, w] and optionally ``aux_outputs``: a list of such dicts).

    ``targets[b]``: ``labels`` [M] int64, ``masks`` [M, H, W] (0/1). ``generators`` (one
    ``torch.Generator`` per image, optional) drive every random draw of that image: the result
    is then reproducible and independent of batch composition.
    """

    empty_weight: torch.Tensor  # buffer registered in __init__

    def __init__(
        self,
        num_classes: int,
        *,
        matcher: HungarianMatcher | None = None,
        class_weight: float = 2.0,
        mask_weight: float = 5.0,
        dice_weight: float = 5.0,
        eos_coef: float = 0.1,
        num_points: int = 12544,
        oversample_ratio: float = 3.0,
        importance_sample_ratio: float = 0.75,
        deep_supervision: bool = True,
        ce_normalization: str = "global",
    ):
        super().__init__()
        if ce_normalization not in ("global", "local"):
            raise ValueError("ce_normalization must be 'global' or 'local'")
        self.num_classes = int(num_classes)
        self.matcher = (
            matcher
            if matcher is not None
            else HungarianMatcher(
                cost_class=class_weight, cost_mask=mask_weight, cost_dice=dice_weight, num_points=num_points
            )
        )
        self.class_weight, self.mask_weight, self.dice_weight = class_weight, mask_weight, dice_weight
        self.eos_coef = float(eos_coef)
        self.num_points = int(num_points)
        self.oversample_ratio = float(oversample_ratio)
        self.importance_sample_ratio = float(importance_sample_ratio)
        self.deep_supervision = bool(deep_supervision)
        self.ce_normalization = ce_normalization
        empty_weight = torch.ones(self.num_classes + 1)
        empty_weight[-1] = self.eos_coef
        self.register_buffer("empty_weight", empty_weight, persistent=False)

    # -- individual losses ------------------------------------------------------------------
    def loss_labels(self, outputs, targets, indices) -> dict[str, torch.Tensor]:
        src_logits = outputs["pred_logits"].float()
        if src_logits.shape[-1] != self.num_classes + 1:
            raise ValueError(f"pred_logits has {src_logits.shape[-1]} classes, expected {self.num_classes} + void")
        target_classes = torch.full(src_logits.shape[:2], self.num_classes, dtype=torch.int64, device=src_logits.device)
        for b, (src, tgt) in enumerate(indices):
            if len(src):
                target_classes[b, src.to(src_logits.device)] = targets[b]["labels"][tgt.to(src_logits.device)]
        weight = self.empty_weight.to(src_logits.device)
        if self.ce_normalization == "local":
            loss = F.cross_entropy(src_logits.transpose(1, 2), target_classes, weight)
        else:
            ce = F.cross_entropy(src_logits.transpose(1, 2), target_classes, reduction="none")
            w = weight[target_classes]
            denom = _all_reduce_mean(w.sum().detach())
            loss = (w * ce).sum() / denom.clamp(min=1e-12)
        return {"loss_ce": loss}

    def loss_masks(
        self, outputs, targets, indices, num_masks: float, generators: Sequence[torch.Generator | None] | None
    ) -> dict[str, torch.Tensor]:
        pred_masks = outputs["pred_masks"]
        logits_parts, label_parts = [], []
        for b, (src, tgt) in enumerate(indices):
            if len(src) == 0:
                continue
            src_masks = pred_masks[b][src.to(pred_masks.device)][:, None]  # [n, 1, h, w]
            tgt_masks = targets[b]["masks"][tgt.to(pred_masks.device)].to(src_masks)[:, None]
            gen = generators[b] if generators is not None else None
            if self.num_points <= 0:  # dense variant (tests, tiny models)
                if tgt_masks.shape[-2:] != src_masks.shape[-2:]:
                    tgt_masks = F.interpolate(
                        tgt_masks, size=src_masks.shape[-2:], mode="bilinear", align_corners=False
                    )
                logits_parts.append(src_masks.flatten(1))
                label_parts.append(tgt_masks.flatten(1))
                continue
            with torch.no_grad():
                coords = get_uncertain_point_coords_with_randomness(
                    src_masks.detach(),
                    calculate_uncertainty,
                    self.num_points,
                    self.oversample_ratio,
                    self.importance_sample_ratio,
                    generator=gen,
                )
                labels = point_sample(tgt_masks, coords, align_corners=False).squeeze(1)
            logits_parts.append(point_sample(src_masks, coords, align_corners=False).squeeze(1))
            label_parts.append(labels)
        if not logits_parts:  # no ground truth in the batch: zero loss that still touches the graph
            zero = pred_masks.sum() * 0.0
            return {"loss_mask": zero, "loss_dice": zero.clone()}
        point_logits = torch.cat(logits_parts).float()
        point_labels = torch.cat(label_parts).float()
        return {
            "loss_mask": sigmoid_ce_loss(point_logits, point_labels, num_masks),
            "loss_dice": dice_loss(point_logits, point_labels, num_masks),
        }

    # -- forward ------------------------------------------------------------------------------
    def num_masks(self, targets, device) -> float:
        n = torch.as_tensor([float(sum(len(t["labels"]) for t in targets))], device=device)
        return float(torch.clamp(_all_reduce_mean(n), min=1).item())

    def layer_losses(self, outputs, targets, num_masks, generators) -> dict[str, torch.Tensor]:
        indices = self.matcher(outputs, targets, generators)
        losses = self.loss_labels(outputs, targets, indices)
        losses.update(self.loss_masks(outputs, targets, indices, num_masks, generators))
        return losses

    def forward(
        self,
        outputs: Mapping,
        targets: Sequence[Mapping[str, torch.Tensor]],
        generators: Sequence[torch.Generator | None] | None = None,
        *,
        weighted: bool = True,
    ) -> dict[str, torch.Tensor]:
        device = outputs["pred_logits"].device
        num_masks = self.num_masks(targets, device)
        main = {k: v for k, v in outputs.items() if k != "aux_outputs"}
        losses = self.layer_losses(main, targets, num_masks, generators)
        if self.deep_supervision:
            for i, aux in enumerate(outputs.get("aux_outputs") or []):
                for k, v in self.layer_losses(aux, targets, num_masks, generators).items():
                    losses[f"{k}_{i}"] = v
        if weighted:
            w = {"loss_ce": self.class_weight, "loss_mask": self.mask_weight, "loss_dice": self.dice_weight}
            losses = {k: v * w[k.rsplit("_", 1)[0] if k[-1].isdigit() else k] for k, v in losses.items()}
        return losses
