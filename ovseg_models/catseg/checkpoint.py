"""Loading CAT-Seg weights: official detectron2 checkpoints, CLIP checkpoints, this project's files.

* Official checkpoints (``model_base.pth``, ``model_large.pth``; detectron2 format, a dict with a
  ``"model"`` state_dict, or ``.pkl`` with numpy arrays): keys are mapped by prefix
  (:data:`OFFICIAL_PREFIXES`) and loaded strictly: any missing or unexpected key, or a shape
  mismatch, raises :class:`CheckpointError` naming them.
* arXiv v1 checkpoints (official code @ af4fa0b; variants ``vitb16_r101_384``, ``vitl14_swinb_384``):
  the same prefixes for CLIP (fused ``in_proj_weight``, split here) and the aggregator; the
  detectron2 ResNet-101 / Swin-B ``backbone.*`` names are mapped by the model's guidance backbone
  (:mod:`~ovseg_models.catseg.feature_backbone`), and Swin's constant ``relative_position_index``
  entries are checked against the constructed ones.
* CLIP weights in OpenAI format (state dict or TorchScript archive, with ``input_resolution`` /
  ``context_length`` / ``vocab_size`` entries) or open_clip format (same names without those) store
  a fused ``attn.in_proj_weight``; it is split into ``q/k/v_proj_weight``. A position table of a
  different grid (open_clip ViT-H/G at 224 for a 336 model) is resized bicubically.
* Files saved by :func:`save_checkpoint` (``{"format": "ovseg_catseg", ...}``) and ``ovseg-train``
  checkpoints; both record the model configuration (:func:`stored_config`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .. import weights_io
from ..weights_io import TRAINING_CHECKPOINT_FORMAT, CheckpointError, format_keys, strict_load

__all__ = [
    "CheckpointError",
    "OFFICIAL_PREFIXES",
    "convert_clip_state_dict",
    "convert_official_state_dict",
    "load_checkpoint",
    "match_official_keys",
    "load_clip_weights",
    "load_official_state_dict",
    "pretrained_clip_state_dict",
    "read_checkpoint",
    "read_state_dict",
    "save_checkpoint",
    "stored_config",
    "to_official_state_dict",
]

#: official key prefix -> this package's module prefix
OFFICIAL_PREFIXES = {
    "sem_seg_head.predictor.clip_model.": "clip_model.",
    "sem_seg_head.predictor.transformer.": "aggregator.",
    "upsample1.": "upsample1.",
    "upsample2.": "upsample2.",
    "backbone.": "guidance_backbone.body.",
}
_CLIP_EXTRAS = ("input_resolution", "context_length", "vocab_size")
_FORMAT = "ovseg_catseg"


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a weights file into a flat ``{key: tensor}`` (detectron2 ``model`` wrapper removed)."""
    return weights_io.read_state_dict(path, scalar_keys=_CLIP_EXTRAS)


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """A weights file's state_dict and metadata (see :func:`ovseg_models.weights_io.read_checkpoint`)."""
    return weights_io.read_checkpoint(path, scalar_keys=_CLIP_EXTRAS)


def stored_config(meta: Mapping) -> dict | None:
    """The CAT-Seg configuration (a dict for :meth:`CATSegConfig.from_dict`) that a checkpoint's
    metadata records: ``ovseg-train`` checkpoints (``task.catseg_config``; older ones: the task's
    ``variant`` and ``overrides``) and :func:`save_checkpoint` files. None for other files."""
    if meta.get("format") == TRAINING_CHECKPOINT_FORMAT:
        task = meta.get("task") or {}
        if task.get("name") not in (None, "catseg"):
            raise CheckpointError(f"this is a {task.get('name')!r} training checkpoint, not a CAT-Seg one")
        if task.get("catseg_config"):
            return dict(task["catseg_config"])
        from .configs import get_config

        tcfg = (meta.get("config") or {}).get("task") or {}
        if isinstance(tcfg.get("config_object"), Mapping):
            return dict(tcfg["config_object"])
        return get_config(tcfg.get("variant") or task.get("variant"), **dict(tcfg.get("overrides") or {})).to_dict()
    if meta.get("format") == _FORMAT and isinstance(meta.get("config"), Mapping):
        return dict(meta["config"])
    return None


def _flatten(obj, where: str) -> dict[str, torch.Tensor]:
    return weights_io.unwrap_state_dict(obj, where, scalar_keys=_CLIP_EXTRAS)


# -- key conversion -----------------------------------------------------------------------------
def _split_in_proj(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in sd.items():
        if k.endswith("attn.in_proj_weight"):
            q, kk, vv = v.chunk(3, dim=0)
            base = k[: -len("in_proj_weight")]
            out[base + "q_proj_weight"], out[base + "k_proj_weight"], out[base + "v_proj_weight"] = q, kk, vv
        else:
            out[k] = v
    return out


def _backbone_names(model: nn.Module | None):
    """The model's guidance backbone if it maps official (detectron2) names itself, else None."""
    gb = getattr(model, "guidance_backbone", None) if model is not None else None
    return gb if gb is not None and hasattr(gb, "from_official_key") else None


def _local_key(key: str, gb) -> str | None:
    """This package's name for official ``key`` (None: no known prefix; ``KeyError``: a backbone
    name the backbone does not have)."""
    if gb is not None and key.startswith("backbone."):
        return "guidance_backbone." + gb.from_official_key(key[len("backbone.") :])
    for src, dst in OFFICIAL_PREFIXES.items():
        if key.startswith(src):
            return dst + key[len(src) :]
    return None


def _official_constants(gb) -> dict[str, torch.Tensor]:
    """Constant buffers official checkpoints store but this package rebuilds (Swin
    ``relative_position_index``), under their official names."""
    if gb is None or not hasattr(gb, "relative_position_indices"):
        return {}
    return {"backbone." + gb.to_official_key(n): b for n, b in gb.relative_position_indices().items()}


def _convert(sd: Mapping[str, torch.Tensor], model, *, check_constants: bool) -> dict[str, torch.Tensor]:
    gb = _backbone_names(model)
    constants = _official_constants(gb)
    # backbone names are mapped by pattern; one the backbone does not have is reported by its official name
    backbone_keys = {k for k in model.state_dict() if k.startswith("guidance_backbone.")} if gb is not None else set()
    out, unknown, wrong = {}, [], []
    for k, v in sd.items():
        if k in constants:  # consumed: checked against the constructed value, not loaded
            c = constants[k]
            if check_constants and (tuple(v.shape) != tuple(c.shape) or not torch.equal(v.cpu().to(c.dtype), c.cpu())):
                wrong.append(k)
            continue
        try:
            nk = _local_key(k, gb)
        except KeyError:
            nk = None
        if nk is not None and nk.startswith("guidance_backbone.") and gb is not None and nk not in backbone_keys:
            nk = None
        if nk is not None:
            out[nk] = v
        elif k in ("pixel_mean", "pixel_std", "clip_pixel_mean", "clip_pixel_std"):
            continue  # non-persistent in the official model; harmless if an export kept them
        else:
            unknown.append(k)
    if unknown:
        raise CheckpointError(f"{len(unknown)} unexpected keys in the official checkpoint: {format_keys(unknown)}")
    if wrong:
        raise CheckpointError(
            f"{len(wrong)} constant buffers differ from the ones this configuration constructs "
            f"(different window size?): {format_keys(wrong)}"
        )
    return _split_in_proj(out)


def convert_official_state_dict(
    official: Mapping[str, torch.Tensor], model: nn.Module | None = None
) -> dict[str, torch.Tensor]:
    """Official detectron2 CAT-Seg keys -> this package's keys (the signature of FC-CLIP's converter:
    ``(official, model)``). Unknown keys raise, naming them.

    ``model``: the :class:`~.model.CATSeg` to load into; needed for the arXiv v1 variants, whose
    detectron2 ResNet / Swin names its guidance backbone maps (without it, ``backbone.*`` is
    only re-prefixed to ``guidance_backbone.body.*``, the timm guidance layout). Constant Swin
    ``relative_position_index`` entries are compared with the constructed ones and dropped.
    """
    return _convert(official, model, check_constants=True)


def to_official_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """This package's state_dict under the official key names (inverse of the converter).

    For ``official_code="v1"`` configurations the CLIP attention weights are fused into
    ``in_proj_weight`` (v1's ``nn.MultiheadAttention``) and Swin guidance adds its constant
    ``relative_position_index`` buffers, as v1 checkpoints store them.
    """
    inv = {dst: src for src, dst in OFFICIAL_PREFIXES.items()}
    gb = _backbone_names(model)
    out = {}
    for k, v in model.state_dict().items():
        if gb is not None and k.startswith("guidance_backbone."):
            out["backbone." + gb.to_official_key(k[len("guidance_backbone.") :])] = v
            continue
        for dst, src in inv.items():
            if k.startswith(dst):
                out[src + k[len(dst) :]] = v
                break
    if getattr(getattr(model, "cfg", None), "official_code", "cvpr") == "v1":
        fused = {}
        for k, v in out.items():
            if k.endswith("attn.q_proj_weight"):
                base = k[: -len("q_proj_weight")]
                fused[base + "in_proj_weight"] = torch.cat(
                    [v, out[base + "k_proj_weight"], out[base + "v_proj_weight"]]
                )
            elif not (k.endswith("attn.k_proj_weight") or k.endswith("attn.v_proj_weight")):
                fused[k] = v
        out = fused
    out.update(_official_constants(gb))
    return out


def convert_clip_state_dict(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """OpenAI / open_clip / official-vendored CLIP keys -> :class:`~.clip_dense.CLIP` keys."""
    out = {}
    for k, v in sd.items():
        for prefix in ("sem_seg_head.predictor.clip_model.", "clip_model.", "model."):
            if k.startswith(prefix):
                k = k[len(prefix) :]
                break
        if k in _CLIP_EXTRAS or k == "attn_mask":
            continue
        out[k] = v
    return _split_in_proj(out)


def _check_masks(model: nn.Module, sd: Mapping[str, torch.Tensor]) -> None:
    for k, v in model.state_dict().items():
        if k.endswith("attn_mask") and k in sd and not torch.equal(sd[k].to(v.dtype).cpu(), v.cpu()):
            raise CheckpointError(
                f"{k}: the checkpoint's shifted-window mask differs from the one this "
                "configuration constructs (different feature resolution or window size?)"
            )


def match_official_keys(model: nn.Module, shapes: Mapping[str, Sequence[int]]) -> dict[str, list]:
    """Compare official keys and shapes (e.g. a manifest's) with ``model`` without loading anything.

    Returns ``{"missing": [...], "unexpected": [...], "shape_mismatch": [...]}`` (all empty when
    every official key is consumed with the right shape and the model needs nothing else).
    """
    try:
        converted = _convert({k: torch.empty(0) for k in shapes}, model, check_constants=False)
    except CheckpointError as e:
        return {"missing": [], "unexpected": [str(e)], "shape_mismatch": []}
    gb = _backbone_names(model)
    constants = _official_constants(gb)
    back = {}  # converted key -> expected shape (q/k/v split from in_proj when present)
    for k, shape in shapes.items():
        if k in constants:
            continue
        nk = _local_key(k, gb)
        if nk is None:  # a key _convert skips (normalisation constants an export kept): nothing to compare
            continue
        if nk.endswith("attn.in_proj_weight"):
            base = nk[: -len("in_proj_weight")]
            for part in ("q", "k", "v"):
                back[f"{base}{part}_proj_weight"] = (shape[0] // 3, *shape[1:])
        else:
            back[nk] = tuple(shape)
    bad_constants = sorted(
        f"{k}: {tuple(shapes[k])} vs {tuple(c.shape)}"
        for k, c in constants.items()
        if k in shapes and tuple(shapes[k]) != tuple(c.shape)
    )
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    return {
        "missing": sorted(k for k in expected if k not in converted),
        "unexpected": sorted(k for k in converted if k not in expected),
        "shape_mismatch": sorted(
            f"{k}: {back[k]} vs {expected[k]}" for k in expected if k in back and tuple(back[k]) != expected[k]
        )
        + bad_constants,
    }


def load_official_state_dict(model: nn.Module, sd: Mapping[str, torch.Tensor]) -> None:
    """Strictly load an official-format state_dict into a :class:`~.model.CATSeg`."""
    converted = convert_official_state_dict(sd, model)
    _check_masks(model, converted)
    strict_load(model, converted, "official checkpoint")


def load_clip_weights(clip: nn.Module, sd: Mapping[str, torch.Tensor]) -> None:
    """Strictly load OpenAI- or open_clip-format CLIP weights into a :class:`~.clip_dense.CLIP`."""
    sd = convert_clip_state_dict(sd)
    key = "visual.positional_embedding"
    if key in sd and key in clip.state_dict() and sd[key].shape != clip.state_dict()[key].shape:
        sd[key] = _resize_pos(sd[key], clip.state_dict()[key].shape[0])
    strict_load(clip, sd, "CLIP checkpoint")


def pretrained_clip_state_dict(cfg, pretrained: bool | str | Path = True) -> dict[str, torch.Tensor]:
    """The CLIP weights a CAT-Seg variant starts from, ready for :func:`load_clip_weights`.

    ``cfg``: a :class:`~.configs.CATSegConfig`. ``pretrained``: ``True`` for the variant's open_clip
    tag (``cfg.clip.open_clip_pretrained``), another open_clip tag, or a local weights file (OpenAI /
    open_clip format). Raises :class:`CheckpointError` when open_clip cannot provide the weights
    (offline machine without a cache) with the way out in the message.
    """
    if isinstance(pretrained, (str, Path)) and Path(pretrained).is_file():
        return read_state_dict(pretrained)
    tag = cfg.clip.open_clip_pretrained if pretrained is True else str(pretrained)
    try:
        import open_clip

        pcfg = open_clip.get_pretrained_cfg(cfg.clip.open_clip_name, tag)
        if not pcfg:
            raise ValueError(f"open_clip has no pretrained tag {tag!r} for {cfg.clip.open_clip_name}")
        path = open_clip.download_pretrained(pcfg)
    except Exception as e:
        raise CheckpointError(
            f"could not obtain CLIP weights {cfg.clip.open_clip_name}/{tag} through open_clip "
            f"({type(e).__name__}: {e}); pass a local file as pretrained=, or pretrained=False"
        ) from e
    return read_state_dict(path)


def _resize_pos(pos: torch.Tensor, length: int) -> torch.Tensor:
    src, dst = int(round(math.sqrt(pos.shape[0] - 1))), int(round(math.sqrt(length - 1)))
    if src * src + 1 != pos.shape[0] or dst * dst + 1 != length:
        raise CheckpointError(f"cannot resize a position table of {pos.shape[0]} entries to {length}")
    grid = pos[1:].float().reshape(1, src, src, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=(dst, dst), mode="bicubic", align_corners=False)
    return torch.cat([pos[:1].float(), grid[0].reshape(pos.shape[1], -1).T], 0).to(pos.dtype)


def _is_official(sd: Mapping[str, torch.Tensor]) -> bool:
    return any(k.startswith("sem_seg_head.") for k in sd)


def load_checkpoint(model: nn.Module, source: str | Path | Mapping[str, torch.Tensor]) -> str:
    """Load an official checkpoint or one saved by :func:`save_checkpoint`, strictly.

    Returns ``"official"`` or ``"ovseg"`` (the detected format).
    """
    sd = read_state_dict(source) if isinstance(source, (str, Path)) else _flatten(source, "state_dict")
    if _is_official(sd):
        load_official_state_dict(model, sd)
        return "official"
    _check_masks(model, sd)
    strict_load(model, sd, "checkpoint")
    return "ovseg"


def save_checkpoint(model: nn.Module, path: str | Path, *, variant: str = "") -> None:
    """Save ``model``'s state_dict with a format marker and its configuration (loadable by
    :func:`load_checkpoint`; ``create_segmenter("catseg", checkpoint=path)`` rebuilds the same network)."""
    cfg = getattr(model, "cfg", None)
    weights_io.save_state_dict(
        model.state_dict(),
        path,
        format=_FORMAT,
        variant=variant or getattr(cfg, "name", ""),
        config=cfg.to_dict() if cfg is not None else None,
    )
