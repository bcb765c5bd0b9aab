"""CAT-Seg parity: rebuild the reference weights, load them through the official-key converter,
run this package's pipeline on the case's photo and compare with the official outputs.

Compared (fp32 CPU): the mapper output (exact), text embeddings, the cost volume (1e-5) and the
final per-class scores ``sem_seg`` (1e-4) for the primary reference (official ``eval.sh``:
sliding window, pooling 1x1) and the secondary ``nosliding/*`` one (config defaults), plus the
aggregator logits (fp16-stored for the sliding reference of the CVPR-code cases, so compared at
fp16 resolution; fp32 in the arXiv v1 case).

The arXiv v1 case (``catseg_v1_vitb_r101_case0.npz``: official code @ af4fa0b, ViT-B/16 +
ResNet-101) runs the same way with the ``vitb16_r101_384`` variant: 80 ImageNet templates, one
cost-volume channel each, a class's synonyms averaged per template (``text_embeds`` [T, 80, C]).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from . import Comparison
from .weights import build_state_dict, load_manifest

__all__ = ["build_reference_model", "run_case"]

_VARIANTS = {
    "catseg_vitb16_384": "vitb16_384",
    "catseg_vitl14_336": "vitl14_336",
    "catseg_v1_vitb_r101": "vitb16_r101_384",
}


def build_reference_model(manifest: dict, *, device: str = "cpu"):
    """A :class:`~ovseg_models.catseg.model.CATSeg` holding the manifest's name-seeded weights.

    The state_dict is generated in the official key layout (sha256-checked; the Swin
    ``attn_mask`` buffers come from this package's constructed model, so the check proves they
    equal the official ones) and loaded through the official-checkpoint converter.
    """
    from ovseg_models.catseg.checkpoint import load_official_state_dict, to_official_state_dict
    from ovseg_models.catseg.configs import get_config
    from ovseg_models.catseg.model import CATSeg

    variant = _VARIANTS.get(manifest.get("variant", ""), None)
    if variant is None:
        raise ValueError(f"no CAT-Seg configuration for manifest variant {manifest.get('variant')!r}")
    model = CATSeg(get_config(variant))
    official = to_official_state_dict(model)
    sd = build_state_dict(manifest, constructed=official)
    load_official_state_dict(model, sd)
    return model.to(device).eval()


def _manifest_beside(case_path: Path, case) -> Path | None:
    """``manifests/<variant>.json.gz`` beside the case's folder, the variant read from its metadata."""
    try:
        variant = json.loads(str(case["meta_json"])).get("variant")
    except (KeyError, ValueError):
        return None
    path = case_path.resolve().parent.parent / "manifests" / f"{variant}.json.gz"
    return path if variant and path.is_file() else None


def _max_abs(a: torch.Tensor, b) -> float:
    b = torch.as_tensor(np.asarray(b)).to(torch.float64)
    a = a.detach().cpu().to(torch.float64)
    if tuple(a.shape) != tuple(b.shape):
        return float("nan")
    return float((a - b).abs().max()) if a.numel() else 0.0


def run_case(case_path: str | Path, manifest_path: str | Path | None) -> list[Comparison]:
    from ovseg_models.catseg.inference import InferenceOptions, run_inference
    from ovseg_models.catseg.segmenter import CATSegTextEncoder

    case = np.load(case_path)
    if manifest_path is None:
        manifest_path = _manifest_beside(Path(case_path), case)
    if manifest_path is None:
        raise ValueError("a CAT-Seg case needs its manifest")
    manifest = load_manifest(manifest_path)
    model = build_reference_model(manifest)
    names = [str(n) for n in case["class_names"]]
    templates = tuple(json.loads(str(case["prompt_templates_json"])))
    encoder = CATSegTextEncoder(model, templates=templates)  # the variant's synonym protocol
    out: list[Comparison] = []
    with torch.inference_mode():
        text = encoder.encode([n.split(", ") for n in names])  # official split of "a, b" names
        out.append(Comparison("text_embeds", _max_abs(text, case["text_embeds"]), 1e-6))
        image = torch.from_numpy(case["image"])
        h, w = int(case["height"]), int(case["width"])
        for prefix, sliding in (("", True), ("nosliding/", False)):
            inter: dict = {}
            acc = run_inference(
                model,
                image,
                text,
                InferenceOptions(sliding_window=sliding),
                height=h,
                width=w,
                keep_scores=True,
                intermediates=inter,
            )
            mi = inter["model_input"]
            out.append(
                Comparison(
                    f"{prefix}model_input",
                    _max_abs(mi.float(), case["model_input"].astype(np.float32)),
                    0.0,
                    "mapper resize, uint8",
                )
            )
            out.append(
                Comparison(f"{prefix}cost_volume", _max_abs(inter["cost_volume"], case[f"{prefix}cost_volume"]), 1e-5)
            )
            if sliding and "agg_logits" in case.files:
                out.append(Comparison("agg_logits", _max_abs(inter["logits"], case["agg_logits"]), 1e-4))
            elif sliding:
                ref = case["agg_logits_fp16"]
                half_ulp = float(np.spacing(np.abs(ref).max().astype(np.float16))) / 2
                out.append(
                    Comparison(
                        "agg_logits_fp16",
                        _max_abs(inter["logits"], ref.astype(np.float32)),
                        half_ulp + 1e-5,
                        "reference rounded to fp16: tolerance half an fp16 ulp",
                    )
                )
            else:
                out.append(
                    Comparison("nosliding/agg_logits", _max_abs(inter["logits"], case["nosliding/agg_logits"]), 1e-4)
                )
            assert acc.scores is not None  # kept: keep_scores=True
            out.append(
                Comparison(
                    f"{prefix}sem_seg",
                    _max_abs(acc.scores, case[f"{prefix}sem_seg"]),
                    1e-4,
                    "per-class sigmoid scores at the input size",
                )
            )
    return out
