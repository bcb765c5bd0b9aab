"""Fine-tuning hooks: which parameters train, and how many.

``set_trainable(model, "attention")`` reproduces the official ``CLIP_FINETUNE: attention`` rule
(``cat_seg_model.py``): inside CLIP, only parameters under a ``transformer`` whose name contains
``attn`` *and* ``q_proj``/``v_proj`` train, i.e. every attention block's query and value
projection weights, image and text towers; the aggregator, the guidance upsamplers and a
separate guidance backbone train fully. For the arXiv v1 variants (``cfg.official_code == "v1"``)
``"attention"`` is v1's rule: every image-tower parameter whose name contains ``attn`` or
``position`` (q/k/v weights, ``in_proj_bias``, ``out_proj``, the position embedding), nothing of
the text tower; backbone parameters named ``norm0`` stay frozen (v1 freezes them). Other modes:

* ``"attention_all"``: the paper's description, every attention parameter of CLIP (q/k/v
  weights, ``in_proj_bias``, ``out_proj``) and both position embeddings;
* ``"full"``: every CLIP parameter; ``"frozen"``: none (only the head trains).

The segmentation forward never uses a few CLIP parameters (:func:`unused_parameter_names`): the
dense last image block keeps only its value projection, and ``logit_scale`` is a CLIP-training
constant. They receive no gradient, so their value cannot change the segmentation; training freezes
them (:func:`freeze_unused_parameters`) because ``DistributedDataParallel`` fails at the second step
on a trainable parameter without a gradient.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import nn

if TYPE_CHECKING:
    from .model import CATSeg

__all__ = [
    "FINETUNE_MODES",
    "count_trainable_parameters",
    "clip_parameter_trainable",
    "freeze_unused_parameters",
    "set_trainable",
    "unused_parameter_names",
]

FINETUNE_MODES = ("attention", "attention_all", "full", "frozen")


def clip_parameter_trainable(name: str, mode: str, *, official_code: str = "cvpr") -> bool:
    """Whether CLIP parameter ``name`` (relative to the CLIP module) trains under ``mode``
    (``official_code``: whose ``attention`` rule, ``"cvpr"`` or ``"v1"``)."""
    if mode == "attention" and official_code == "v1":  # v1 cat_seg_model.py, verbatim
        return name.startswith("visual.") and ("attn" in name or "position" in name)
    if mode == "attention":  # official rule, verbatim
        if "transformer" not in name:
            return False
        if "attn" in name:
            return "q_proj" in name or "v_proj" in name
        return "position" in name
    if mode == "attention_all":
        return ".attn." in name or name.endswith("positional_embedding")
    if mode == "full":
        return True
    if mode == "frozen":
        return False
    raise ValueError(f"unknown fine-tuning mode {mode!r}; choose one of {FINETUNE_MODES}")


def set_trainable(model: nn.Module, mode: str = "attention", *, head: bool = True) -> int:
    """Set ``requires_grad`` on a :class:`~ovseg_models.catseg.model.CATSeg`; returns the trainable count."""
    code = getattr(getattr(model, "cfg", None), "official_code", "cvpr")
    for name, p in model.named_parameters():
        if name.startswith("clip_model."):
            p.requires_grad_(clip_parameter_trainable(name[len("clip_model.") :], mode, official_code=code))
        elif code == "v1" and name.startswith("guidance_backbone.") and "norm0" in name:
            p.requires_grad_(False)
        else:
            p.requires_grad_(head)
    return count_trainable_parameters(model)


def count_trainable_parameters(model: nn.Module, *, by_group: bool = False):
    """Number of trainable parameter elements (or a dict per top-level module with ``by_group``)."""
    if not by_group:
        return sum(p.numel() for p in model.parameters() if p.requires_grad)
    out: dict[str, int] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            group = name.split(".", 1)[0]
            out[group] = out.get(group, 0) + p.numel()
    return out


def unused_parameter_names(model: CATSeg) -> list[str]:
    """Names of the :class:`~ovseg_models.catseg.model.CATSeg` parameters the segmentation forward never uses."""
    blocks = model.clip_model.visual.transformer.resblocks
    last = f"clip_model.visual.transformer.resblocks.{len(blocks) - 1}.attn."
    names = [last + "q_proj_weight", last + "k_proj_weight", "clip_model.logit_scale"]
    params = dict(model.named_parameters())
    return [n for n in names if n in params]


def freeze_unused_parameters(model: CATSeg) -> list[str]:
    """``requires_grad=False`` on :func:`unused_parameter_names`; returns the names that were trainable."""
    params = dict(model.named_parameters())
    frozen = [n for n in unused_parameter_names(model) if params[n].requires_grad]
    for n in frozen:
        params[n].requires_grad_(False)
    return frozen
