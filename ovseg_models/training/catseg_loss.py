"""CAT-Seg's training loss: per-pixel, per-class binary cross-entropy on upsampled logits.

Official (``cat_seg_model.py``): the (B, T, h, w) class logits are bilinearly resized to the label
size; the target is the one-hot label map, with *all-zero* rows on ignored pixels (they still count
as negatives for every class), and the loss is the mean over all B x H x W x T elements
(``ignore="official"``). ``ignore="exclude"`` leaves ignored pixels out of the mean instead.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["per_pixel_bce_loss"]


def per_pixel_bce_loss(
    logits: torch.Tensor, targets: torch.Tensor, *, ignore_index: int = 255, ignore: str = "official"
) -> torch.Tensor:
    """``logits`` (B, T, h, w), ``targets`` (B, H, W) int64 class ids or ``ignore_index`` -> scalar."""
    if ignore not in ("official", "exclude"):
        raise ValueError("ignore must be 'official' or 'exclude'")
    num_classes = logits.shape[1]
    if logits.shape[-2:] != targets.shape[-2:]:
        logits = F.interpolate(logits, size=targets.shape[-2:], mode="bilinear", align_corners=False)
    logits = logits.float().permute(0, 2, 3, 1)  # B, H, W, T
    valid = targets != ignore_index
    if bool(((targets < 0) | (targets >= num_classes))[valid].any()):
        raise ValueError(f"label ids must be in [0, {num_classes}) or {ignore_index}")
    onehot = torch.zeros_like(logits)
    onehot[valid] = F.one_hot(targets[valid], num_classes=num_classes).to(onehot.dtype)
    if ignore == "official":
        return F.binary_cross_entropy_with_logits(logits, onehot)
    loss = F.binary_cross_entropy_with_logits(logits[valid], onehot[valid], reduction="sum")
    return loss / max(1, int(valid.sum()) * num_classes)
