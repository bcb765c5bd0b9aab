"""PointRend-style point sampling used by the Mask2Former matcher and criterion (no detectron2).

Coordinates are normalised to ``[0, 1] x [0, 1]`` as ``(x, y)``; sampling is bilinear with
``F.grid_sample(..., align_corners=False)`` exactly as detectron2's ``point_sample``.
Random draws take an optional ``torch.Generator`` so that every image of a batch can have its own
reproducible stream (this is what makes training results independent of the number of processes).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

__all__ = ["point_sample", "calculate_uncertainty", "get_uncertain_point_coords_with_randomness"]


def point_sample(inputs: torch.Tensor, point_coords: torch.Tensor, **kwargs) -> torch.Tensor:
    """Sample ``inputs`` [N, C, H, W] at ``point_coords`` [N, P, 2] (or [N, Hg, Wg, 2]) in [0, 1].

    Returns [N, C, P] (or [N, C, Hg, Wg]). Same as detectron2's ``point_sample``.
    """
    add_dim = point_coords.dim() == 3
    if add_dim:
        point_coords = point_coords.unsqueeze(2)
    out = F.grid_sample(inputs, 2.0 * point_coords - 1.0, **kwargs)
    return out.squeeze(3) if add_dim else out


def calculate_uncertainty(logits: torch.Tensor) -> torch.Tensor:
    """Uncertainty of mask logits [R, 1, ...]: ``-|logit|`` (highest near the decision boundary)."""
    assert logits.shape[1] == 1
    return -(torch.abs(logits))


def _rand(shape, *, device, dtype, generator: torch.Generator | None) -> torch.Tensor:
    if generator is None:
        return torch.rand(shape, device=device, dtype=dtype)
    # draw on the generator's device, then move (a CPU generator may drive CUDA tensors)
    return torch.rand(shape, generator=generator, device=generator.device, dtype=dtype).to(device)


def get_uncertain_point_coords_with_randomness(
    coarse_logits: torch.Tensor,
    uncertainty_func: Callable[[torch.Tensor], torch.Tensor],
    num_points: int,
    oversample_ratio: float,
    importance_sample_ratio: float,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """PointRend's importance sampling (detectron2 semantics).

    Draw ``int(num_points * oversample_ratio)`` uniform points per mask, keep the
    ``int(importance_sample_ratio * num_points)`` most uncertain ones, and add uniformly drawn
    points up to ``num_points``. ``coarse_logits`` [R, 1, H, W] -> coords [R, num_points, 2].
    """
    assert oversample_ratio >= 1
    assert 0 <= importance_sample_ratio <= 1
    num_boxes = coarse_logits.shape[0]
    num_sampled = int(num_points * oversample_ratio)
    dtype = coarse_logits.dtype if coarse_logits.is_floating_point() else torch.float32
    point_coords = _rand((num_boxes, num_sampled, 2), device=coarse_logits.device, dtype=dtype, generator=generator)
    point_logits = point_sample(coarse_logits, point_coords, align_corners=False)
    point_uncertainties = uncertainty_func(point_logits)
    num_uncertain_points = int(importance_sample_ratio * num_points)
    num_random_points = num_points - num_uncertain_points
    idx = torch.topk(point_uncertainties[:, 0, :], k=num_uncertain_points, dim=1)[1]
    shift = num_sampled * torch.arange(num_boxes, dtype=torch.long, device=coarse_logits.device)
    idx = idx + shift[:, None]
    point_coords = point_coords.view(-1, 2)[idx.view(-1), :].view(num_boxes, num_uncertain_points, 2)
    if num_random_points > 0:
        extra = _rand((num_boxes, num_random_points, 2), device=coarse_logits.device, dtype=dtype, generator=generator)
        point_coords = torch.cat([point_coords, extra], dim=1)
    return point_coords
