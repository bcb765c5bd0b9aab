"""Hungarian matching of predicted masks to ground-truth segments (Mask2Former / FC-CLIP recipe).

Cost of assigning query ``i`` to target ``j`` (per image)::

    C[i, j] = cost_class * (-p_i[label_j]) + cost_mask * BCE(mask_i, gt_j) + cost_dice * dice(mask_i, gt_j)

where ``p_i`` is the softmax over the K+1 classes (void last), and the mask costs are computed on
``num_points`` points drawn uniformly in ``[0, 1]^2`` and shared by all masks of the image
(``num_points <= 0``: every pixel of the prediction grid, the targets resized to it). The
assignment minimising the total cost is found with ``scipy.optimize.linear_sum_assignment``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import nn

from .point_sampling import _rand, point_sample

__all__ = ["HungarianMatcher", "batch_dice_cost", "batch_sigmoid_ce_cost", "match_cost_matrix"]


def batch_dice_cost(inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Pairwise dice cost: ``inputs`` [N, P] logits, ``targets`` [M, P] in {0,1} -> [N, M]."""
    inputs = inputs.sigmoid().flatten(1)
    numerator = 2 * torch.einsum("nc,mc->nm", inputs, targets)
    denominator = inputs.sum(-1)[:, None] + targets.sum(-1)[None, :]
    return 1 - (numerator + 1) / (denominator + 1)


def batch_sigmoid_ce_cost(inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Pairwise mean binary cross-entropy: ``inputs`` [N, P] logits, ``targets`` [M, P] -> [N, M]."""
    hw = inputs.shape[1]
    pos = F.binary_cross_entropy_with_logits(inputs, torch.ones_like(inputs), reduction="none")
    neg = F.binary_cross_entropy_with_logits(inputs, torch.zeros_like(inputs), reduction="none")
    loss = torch.einsum("nc,mc->nm", pos, targets) + torch.einsum("nc,mc->nm", neg, 1 - targets)
    return loss / hw


def _sample_pair(
    pred_masks: torch.Tensor, tgt_masks: torch.Tensor, num_points: int, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Predicted [Q, h, w] and target [M, H, W] masks -> values at shared points ([Q, P], [M, P])."""
    tgt_masks = tgt_masks.to(pred_masks)
    if num_points <= 0:  # dense: every prediction pixel, targets resized to the prediction grid
        if tgt_masks.shape[-2:] != pred_masks.shape[-2:] and tgt_masks.shape[0] > 0:
            tgt_masks = F.interpolate(
                tgt_masks[:, None], size=pred_masks.shape[-2:], mode="bilinear", align_corners=False
            )[:, 0]
        return pred_masks.flatten(1), tgt_masks.flatten(1)
    coords = _rand((1, num_points, 2), device=pred_masks.device, dtype=pred_masks.dtype, generator=generator)
    tgt = point_sample(tgt_masks[:, None], coords.repeat(tgt_masks.shape[0], 1, 1), align_corners=False)[:, 0]
    out = point_sample(pred_masks[:, None], coords.repeat(pred_masks.shape[0], 1, 1), align_corners=False)[:, 0]
    return out, tgt


def match_cost_matrix(
    pred_logits: torch.Tensor,
    pred_masks: torch.Tensor,
    labels: torch.Tensor,
    masks: torch.Tensor,
    *,
    cost_class: float = 2.0,
    cost_mask: float = 5.0,
    cost_dice: float = 5.0,
    num_points: int = 12544,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The [Q, M] cost matrix of one image (float32, same device as the inputs)."""
    out_prob = pred_logits.float().softmax(-1)
    c_class = -out_prob[:, labels]
    out_mask, tgt_mask = _sample_pair(pred_masks, masks, num_points, generator)
    with torch.autocast(out_mask.device.type, enabled=False):
        out_mask = out_mask.float()
        tgt_mask = tgt_mask.float()
        c_mask = batch_sigmoid_ce_cost(out_mask, tgt_mask)
        c_dice = batch_dice_cost(out_mask, tgt_mask)
    return cost_mask * c_mask + cost_class * c_class + cost_dice * c_dice


class HungarianMatcher(nn.Module):
    """One-to-one matching of queries to targets for every image of a batch.

    ``targets[b]`` holds ``labels`` [M] (contiguous class ids) and ``masks`` [M, H, W] (0/1, padded
    to the batch's image size). Returns per image ``(query_indices, target_indices)`` int64 tensors
    (CPU) of length ``min(Q, M)``.
    """

    def __init__(
        self, cost_class: float = 2.0, cost_mask: float = 5.0, cost_dice: float = 5.0, num_points: int = 12544
    ):
        super().__init__()
        if cost_class == 0 and cost_mask == 0 and cost_dice == 0:
            raise ValueError("all matching costs are 0")
        self.cost_class, self.cost_mask, self.cost_dice = float(cost_class), float(cost_mask), float(cost_dice)
        self.num_points = int(num_points)

    @torch.no_grad()
    def forward(
        self,
        outputs: Mapping[str, torch.Tensor],
        targets: Sequence[Mapping[str, torch.Tensor]],
        generators: Sequence[torch.Generator | None] | None = None,
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        bs = outputs["pred_logits"].shape[0]
        indices = []
        for b in range(bs):
            labels = targets[b]["labels"]
            if labels.numel() == 0:
                empty = torch.empty(0, dtype=torch.int64)
                indices.append((empty, empty.clone()))
                continue
            cost = match_cost_matrix(
                outputs["pred_logits"][b],
                outputs["pred_masks"][b],
                labels,
                targets[b]["masks"],
                cost_class=self.cost_class,
                cost_mask=self.cost_mask,
                cost_dice=self.cost_dice,
                num_points=self.num_points,
                generator=generators[b] if generators is not None else None,
            )
            cost = cost.reshape(cost.shape[0], -1).cpu()
            if not torch.isfinite(cost).all():
                cost = torch.nan_to_num(cost, nan=1e8, posinf=1e8, neginf=-1e8)
            i, j = linear_sum_assignment(cost.numpy())
            indices.append((torch.as_tensor(i, dtype=torch.int64), torch.as_tensor(j, dtype=torch.int64)))
        return indices

    def extra_repr(self) -> str:
        return (
            f"cost_class={self.cost_class}, cost_mask={self.cost_mask}, cost_dice={self.cost_dice}, "
            f"num_points={self.num_points}"
        )
