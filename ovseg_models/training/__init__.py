"""Training of FC-CLIP and CAT-Seg in plain PyTorch (no detectron2): ``ovseg-train``.

- :mod:`.matcher`, :mod:`.criterion`, :mod:`.point_sampling`: Mask2Former's Hungarian matching and
  set criterion (FC-CLIP recipe); :mod:`.catseg_loss`: CAT-Seg's per-pixel BCE.
- :mod:`.augment`, :mod:`.data`: the recipes' augmentations, datasets and a resumable sampler.
- :mod:`.tasks`: model adapters (FC-CLIP, CAT-Seg, a tiny Mask2Former for tests).
- :mod:`.engine`: the training loop (torchrun/DDP, AMP, clipping, atomic checkpoints, resume, logs).
- :mod:`.config`: YAML configs with ``_base_`` inheritance; ``configs/``: one file per paper table row.

See ``README.md`` in this folder ("Reproducing the papers").
"""

from .catseg_loss import per_pixel_bce_loss
from .config import list_configs, load_config
from .criterion import SetCriterion, dice_loss, sigmoid_ce_loss
from .matcher import HungarianMatcher, batch_dice_cost, batch_sigmoid_ce_cost, match_cost_matrix
from .point_sampling import get_uncertain_point_coords_with_randomness, point_sample

__all__ = [
    "HungarianMatcher",
    "SetCriterion",
    "batch_dice_cost",
    "batch_sigmoid_ce_cost",
    "dice_loss",
    "get_uncertain_point_coords_with_randomness",
    "list_configs",
    "load_config",
    "match_cost_matrix",
    "per_pixel_bce_loss",
    "point_sample",
    "sigmoid_ce_loss",
]
