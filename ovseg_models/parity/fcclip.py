"""FC-CLIP parity runner for ``python -m ovseg_models.parity`` (see the package docstring).

``run_case``: rebuild the official-format name-seeded state_dict from the manifest (sha256-checked),
load it through :func:`ovseg_models.fcclip.convert_official_state_dict`, run this project's
preprocessing, text classifier, network, ensemble and post-processing on the case's image and
vocabulary, and compare with the official outputs stored in the case.
``run_postprocess_case``: feed the stored decoder outputs to this project's post-processing.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from . import Comparison
from .compare import compare_argmax, compare_rows
from .weights import build_state_dict, load_manifest

__all__ = ["run_case", "run_postprocess_case", "build_reference_model"]

TOL = 1e-4
# Per-query scores pooled over a binarised mask (class logits of every decoder layer, pooled CLIP features
# and what follows from them) move, for one query, when float rounding flips one of its mask pixels (logit
# within ~1e-6 of 0) or one pixel of its attention mask: on case0, over 1 and 2 threads and both head
# formulations, at most one query per layer exceeded TOL, by up to 3.5e-2, and every other query stayed
# within it (Intel Xeon). On an AMD EPYC (2026-12-08), whose CPU kernels round otherwise, layer 5 held
# three, by 1.1e-4 to 4.5e-4 (a flip moves the other queries a little through the decoder's
# self-attention) while the backbone and the pixel decoder agreed within 5e-6 and every final output
# within TOL. A wrong computation moves every query (250); so each layer may hold ROW_OUTLIERS (2% of
# 250) such queries, each within ROW_OUTLIER_CAP, all reported.
ROW_OUTLIERS = 5
ROW_OUTLIER_CAP = 0.1
# ONNX Runtime (CPU) against PyTorch: its kernels sum in other orders, which through the backbone and
# both decoders moves mask logits by up to ~6e-5 of their magnitude on case0 (1.3e-3 at |22.7|) and the
# summed semantic scores by up to ~1.3e-4; class log-probabilities stay within TOL.
ORT_MASK_RTOL = 1e-4
ORT_SEM_TOL = 2e-4


def _rows(name: str, mine, official) -> Comparison:
    mine, official = np.asarray(mine), np.asarray(official)
    if mine.ndim == 2:
        mine, official = mine[None], official[None]
    return compare_rows(
        name, mine, official, tolerance=TOL, max_outliers_per_group=ROW_OUTLIERS, outlier_cap=ROW_OUTLIER_CAP
    )


_VARIANT_BY_CLIP = {
    "RN50": "rn50",
    "RN101": "rn101",
    "RN50x4": "rn50x4",
    "RN50x16": "rn50x16",
    "RN50x64": "rn50x64",
    "convnext_large_d_320": "convnext_large_d_320",
}


def _constructed(key: str) -> torch.Tensor:
    # the official SetCriterion's class weights: ones, eos_coef 0.1 for the no-object class (COCO: 133 + 1)
    if key == "criterion.empty_weight":
        w = torch.ones(134)
        w[-1] = 0.1
        return w
    raise KeyError(key)


def build_reference_model(manifest_path: str | Path):
    """(model, config) with the reference weights loaded through the converter."""
    from ..fcclip import FCCLIP, convert_official_state_dict, get_config

    manifest = load_manifest(manifest_path)
    clip_name = manifest["config_values"]["CLIP_MODEL_NAME"]
    cfg = get_config(_VARIANT_BY_CLIP[clip_name])
    if cfg.num_queries != manifest["config_values"]["NUM_OBJECT_QUERIES"]:
        cfg = cfg.replace(num_queries=manifest["config_values"]["NUM_OBJECT_QUERIES"])
    official = build_state_dict(manifest, constructed=_constructed)
    model = FCCLIP.from_config(cfg, pretrained=False, device="meta")
    converted = convert_official_state_dict(official, model)
    model.load_state_dict(converted, strict=True, assign=True)
    model.materialize_buffers()
    return model.eval(), cfg


def _maxdiff(a, b) -> float:
    a = torch.as_tensor(np.asarray(a), dtype=torch.float64)
    b = torch.as_tensor(np.asarray(b), dtype=torch.float64)
    if a.shape != b.shape:
        return float("inf")
    if a.numel() == 0:
        return 0.0
    return float((a - b).abs().max())


def _exact(name: str, equal: bool, note: str = "") -> Comparison:
    return Comparison(name, 0.0 if equal else float("inf"), 0.0, note)


def _unpack_masks(case, prefix="instances_") -> np.ndarray:
    shape = tuple(case[prefix + "pred_masks_shape"])
    bits = np.unpackbits(case[prefix + "pred_masks_packbits"])[: int(np.prod(shape))]
    return bits.reshape(shape).astype(bool)


def _compare_panoptic(case, panoptic: np.ndarray, segments: list[dict]) -> list[Comparison]:
    ref_seg = case["panoptic_seg"]
    ref = {
        int(i): (int(c), bool(t))
        for i, c, t in zip(case["segments_id"], case["segments_category_id"], case["segments_isthing"], strict=False)
    }
    mine = {int(s["id"]): (int(s["category_id"]), bool(s["isthing"])) for s in segments}
    same_pixels = panoptic.shape == ref_seg.shape and bool((panoptic == ref_seg).all())
    out = [
        _exact("panoptic_seg", same_pixels, f"{len(segments)} segments"),
        _exact("panoptic_segments", mine == ref, "id -> (category, isthing)"),
    ]
    if len(ref) and mine.keys() == ref.keys():
        ref_scores = dict(zip(case["segments_id"].tolist(), case["segments_score"].tolist(), strict=False))
        out.append(
            Comparison("panoptic_segment_scores", max(abs(s["score"] - ref_scores[s["id"]]) for s in segments), TOL)
        )
        ref_q = dict(zip(case["segments_id"].tolist(), case["segments_query"].tolist(), strict=False))
        out.append(_exact("panoptic_segment_queries", all(s["query"] == ref_q[s["id"]] for s in segments)))
        if "segments_merged_queries_json" in case.files:
            merged = json.loads(str(case["segments_merged_queries_json"]))
            out.append(
                _exact(
                    "panoptic_merged_queries",
                    [sorted(s["merged_queries"]) for s in segments] == [sorted(m) for m in merged],
                )
            )
    return out


def _compare_instances(case, inst: dict) -> list[Comparison]:
    ref_masks = _unpack_masks(case)
    ref_cls = case["instances_pred_classes"].astype(int)
    ref_scores = case["instances_scores"].astype(np.float64)
    masks = inst["masks"].cpu().numpy().astype(bool)
    cls = inst["classes"].cpu().numpy().astype(int)
    scores = inst["scores"].cpu().numpy().astype(np.float64)

    def key(c, m):
        return (int(c), m.tobytes())

    ref_set = {key(c, m): s for c, m, s in zip(ref_cls, ref_masks, ref_scores, strict=False)}
    # several entries can share (class, mask) only if two queries predict the same mask: keep lists
    mine_keys = sorted(key(c, m) for c, m in zip(cls, masks, strict=False))
    ref_keys = sorted(key(c, m) for c, m in zip(ref_cls, ref_masks, strict=False))
    same = mine_keys == ref_keys
    out = [
        _exact("instances", same, f"{len(cls)} instances (official {len(ref_cls)}), compared as sets of (class, mask)")
    ]
    if same and len(cls):
        diffs = [abs(s - ref_set[key(c, m)]) for c, m, s in zip(cls, masks, scores, strict=False)]
        out.append(Comparison("instance_scores", max(diffs), TOL))
    elif not same:
        mine_pixels = {int(c): int(m.sum()) for c, m in zip(cls, masks, strict=False)}
        out[-1] = _exact(
            "instances", False, f"mine {len(cls)} {sorted(mine_pixels.items())[:5]} vs official {len(ref_cls)}"
        )
    return out


def run_postprocess_case(case_path, manifest_path=None) -> list[Comparison]:
    from ..fcclip.postprocess import instance_inference, panoptic_inference, semantic_inference

    case = np.load(case_path, allow_pickle=False)
    meta = json.loads(str(case["meta_json"]))
    mask_cls = torch.from_numpy(case["mask_cls"])
    mask_pred = torch.from_numpy(case["mask_pred"])
    is_thing = case["is_thing"].tolist()
    sem = semantic_inference(mask_cls, mask_pred)
    out = [Comparison("sem_seg", _maxdiff(sem, case["sem_seg"]), TOL)]
    pan = panoptic_inference(
        mask_cls,
        mask_pred,
        is_thing,
        object_mask_threshold=meta["object_mask_threshold"],
        overlap_threshold=meta["overlap_threshold"],
    )
    out += _compare_panoptic(case, pan.panoptic_seg.numpy(), pan.segments)
    inst = instance_inference(mask_cls, mask_pred, is_thing, topk=meta["test_topk_per_image"])
    out += _compare_instances(case, inst)
    return out


def run_case(case_path, manifest_path=None, *, backend: str = "torch") -> list[Comparison]:
    """``backend="onnxruntime"``: also export the case's network to ONNX (a temporary file), run it
    by ONNX Runtime on the same input and text classifier, and compare its outputs with PyTorch's
    and, through this project's post-processing, with the official ones (names ``onnxruntime/...``)."""
    if backend not in ("torch", "onnxruntime"):
        raise ValueError(f"backend must be 'torch' or 'onnxruntime', got {backend!r}")
    from ..data.class_names import seen_mask
    from ..fcclip.backbone import CLIPTextEncoder
    from ..fcclip.postprocess import resize_masks, semantic_inference
    from ..text import build_text_classifier
    from ..transforms import resize_image, resize_shortest_edge_shape

    if manifest_path is None:
        raise ValueError("a manifest is needed for this case (pass --manifest)")
    case = np.load(case_path, allow_pickle=False)
    model, cfg = build_reference_model(manifest_path)
    out: list[Comparison] = []

    # preprocessing: official test resize (PIL bilinear) + normalise + pad to 32
    image = torch.from_numpy(case["image"])
    h, w = int(case["height"]), int(case["width"])
    size = resize_shortest_edge_shape(image.shape[0], image.shape[1], cfg.min_size_test, cfg.max_size_test)
    resized = resize_image(image, size)
    out.append(Comparison("model_input", _maxdiff(resized.numpy(), case["model_input"]), 0.0, "uint8, exact"))

    # text classifier and seen mask
    synonyms = json.loads(str(case["class_synonyms_json"]))
    templates = json.loads(str(case["text_templates_json"]))
    encoder = CLIPTextEncoder(model.backbone)
    classifier = build_text_classifier(encoder, [s for syn in synonyms for s in syn], templates, batch_size=128)
    out.append(Comparison("text_classifier", _maxdiff(classifier, case["text_classifier"]), TOL))
    seen = seen_mask(synonyms, cfg.training_dataset)
    out.append(_exact("seen", seen == case["seen"].tolist(), "category_overlapping_mask"))
    num_synonyms = [len(s) for s in synonyms]
    is_thing = case["is_thing"].tolist()

    with torch.inference_mode():
        batch, sizes = model.normalize_and_pad(resized.permute(2, 0, 1))
        res = model(batch, classifier, num_synonyms, torch.tensor(seen), aux_outputs=True, return_features=True)
        probe_prefix = "probe/"

        def probe(name, tensor):
            key = f"{probe_prefix}{name}/values"
            if key not in case.files:
                return
            stride = int(case[f"{probe_prefix}{name}/stride"])
            vals = tensor.flatten()[::stride][:4096]
            ref = case[key]
            if name != "pred_masks":
                out.append(Comparison(f"probe/{name}", _maxdiff(vals, ref), 1e-3, "debug probe"))
                return
            # mask logits move per query like the class logits (see ROW_OUTLIERS): group the samples by query
            queries, per_query = tensor.shape[1], tensor[0, 0].numel()
            query = (np.arange(len(ref)) * stride // per_query) % queries
            width = int(np.bincount(query, minlength=queries).max())
            rows = np.zeros((2, 1, queries, width), np.float32)
            for q in np.unique(query):
                n = int((query == q).sum())
                rows[0, 0, q, :n], rows[1, 0, q, :n] = vals.numpy()[query == q], ref[query == q]
            out.append(
                compare_rows(
                    "probe/pred_masks",
                    rows[0],
                    rows[1],
                    tolerance=1e-3,
                    max_outliers_per_group=ROW_OUTLIERS,
                    outlier_cap=ROW_OUTLIER_CAP,
                    note="debug probe, by query",
                )
            )

        probe("backbone_input_normalized_padded", batch)
        for k in ("stem", "res2", "res3", "res4", "res5", "clip_vis_dense"):
            probe(f"backbone/{k}", res["features"][k])
        probe("pixel_decoder/mask_features", res["mask_features"])
        for i, f in enumerate(res["multi_scale_features"]):
            probe(f"pixel_decoder/multi_scale_features_{i}", f)
        probe("pred_masks", res["pred_masks"])

        out.append(_rows("pred_logits", res["pred_logits"][0], case["pred_logits"]))
        aux = torch.stack([a["pred_logits"][0] for a in res["aux_outputs"]])
        out.append(_rows("aux_pred_logits", aux, case["aux_pred_logits"]))
        valid = res["valid_masking"][0].numpy()
        out.append(
            _exact(
                "valid_masking", bool((valid == case["valid_masking"]).all()), f"{int(valid.sum())}/{len(valid)} valid"
            )
        )
        out.append(_rows("in_vocab_probs", res["in_vocab_probs"][0], case["in_vocab_probs"]))
        v = case["valid_masking"]
        out.append(_rows("out_vocab_probs[valid]", res["out_vocab_probs"][0].numpy()[v], case["out_vocab_probs"][v]))
        out.append(_rows("out_vocab_logits[valid]", res["out_vocab_logits"][0].numpy()[v], case["out_vocab_logits"][v]))
        out.append(
            _rows(
                "pooled_clip_feature[valid]", res["pooled_clip_feature"][0].numpy()[v], case["pooled_clip_feature"][v]
            )
        )
        mask_cls = res["mask_cls"][0]
        out.append(_rows("mask_cls_final_logprobs", mask_cls, case["mask_cls_final_logprobs"]))
        stats = res["pred_masks"][0].flatten(1)
        mine_stats = torch.stack([stats.mean(1), stats.std(1), stats.min(1).values, stats.max(1).values], 1)
        out.append(
            Comparison(
                "pred_masks_query_stats",
                _maxdiff(mine_stats, case["pred_masks_query_stats"]),
                1e-3,
                "per-query mean/std/min/max",
            )
        )

        masks = resize_masks(res["pred_masks"][0], tuple(batch.shape[-2:]), sizes[0], (h, w))
        sem = semantic_inference(mask_cls, masks)
        out.append(Comparison("sem_seg", _maxdiff(sem, case["sem_seg"]), TOL))
        out += _compare_segments(case, cfg, mask_cls, masks, is_thing)
    if backend == "onnxruntime":
        torch_out = {"mask_cls": mask_cls, "pred_masks": res["pred_masks"][0]}
        net = (batch, classifier, num_synonyms, torch.tensor(seen))
        out += _onnxruntime_comparisons(model, cfg, case, tuple(image.shape[:2]), net, sizes[0], torch_out)
    return out


def _onnxruntime_comparisons(model, cfg, case, image_hw, net_inputs, valid_size, torch_out) -> list[Comparison]:
    """The exported network (ONNX Runtime, CPU) against PyTorch and, post-processed, the official outputs."""
    import dataclasses
    import tempfile

    from ..export import export_onnx, use_onnxruntime
    from ..fcclip.postprocess import resize_masks, semantic_inference
    from ..fcclip.segmenter import FCCLIPSegmenter

    seg = FCCLIPSegmenter(model, config=cfg)
    batch = net_inputs[0]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "case.onnx"
        export_onnx(seg, path, image_size=image_hw)
        use_onnxruntime(seg, path)
        res = seg.network(*net_inputs)
    h, w = int(case["height"]), int(case["width"])
    mask_cls, pred = res["mask_cls"][0], res["pred_masks"][0]
    scale = float(torch_out["pred_masks"].abs().max())
    out = [
        _rows("mask_cls_vs_pytorch", mask_cls, torch_out["mask_cls"]),
        Comparison(
            "pred_masks_vs_pytorch",
            _maxdiff(pred, torch_out["pred_masks"]),
            ORT_MASK_RTOL * scale,
            f"mask logits, tolerance {ORT_MASK_RTOL:g} of their largest magnitude {scale:.1f}",
        ),
        _rows("mask_cls_final_logprobs", mask_cls, case["mask_cls_final_logprobs"]),
    ]
    with torch.inference_mode():
        masks = resize_masks(pred, tuple(batch.shape[-2:]), valid_size, (h, w))
        sem = semantic_inference(mask_cls, masks).numpy()
        out.append(
            compare_argmax(
                "sem_seg",
                sem,
                case["sem_seg"],
                axis=0,
                epsilon=ORT_SEM_TOL,
                tolerance=ORT_SEM_TOL,
                note="per-class scores; label flips reported with their margins",
            )
        )
        out += _compare_segments(case, cfg, mask_cls, masks, case["is_thing"].tolist())
    return [dataclasses.replace(c, name=f"onnxruntime/{c.name}") for c in out]


def _compare_segments(case, cfg, mask_cls, masks, is_thing) -> list[Comparison]:
    """Panoptic segments and instances from ``mask_cls`` and output-size ``masks`` against the official."""
    from ..fcclip.postprocess import instance_inference, panoptic_inference

    pan = panoptic_inference(
        mask_cls,
        masks,
        is_thing,
        object_mask_threshold=cfg.object_mask_threshold,
        overlap_threshold=cfg.overlap_threshold,
    )
    inst = instance_inference(mask_cls, masks, is_thing, topk=cfg.test_topk_per_image)
    return _compare_panoptic(case, pan.panoptic_seg.numpy(), pan.segments) + _compare_instances(case, inst)
