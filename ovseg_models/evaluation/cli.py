"""``ovseg-eval``: evaluate FC-CLIP / CAT-Seg on the open-vocabulary benchmarks and print the papers' tables.

    ovseg-eval --model fcclip --variant convnext_large_d_320 --checkpoint fcclip_cocopan.pth \\
        --root $DETECTRON2_DATASETS --output results.json
    ovseg-eval --config catseg_vitb --checkpoint output/catseg_vitb/checkpoints/model_0080000.pth
    ovseg-eval --predictions official_outputs/ --datasets ade20k_150,cityscapes

``--checkpoint`` takes an official release or a checkpoint written by ``ovseg-train`` (``--config``
then supplies model, variant, datasets and test options from the training config's ``eval`` section).
Test-time options follow the papers: FC-CLIP resizes the shortest edge to 800, max 1333 (1024, max 2560
for Cityscapes and Mapillary Vistas); CAT-Seg uses the sliding window with a global view. Metrics: mIoU on
every dataset; with FC-CLIP also PQ and mask AP on COCO panoptic, ADE20K-150, Cityscapes and Mapillary
Vistas when their panoptic ground truth is present (``ovseg_models.data.datasets.build_panoptic_dataset``;
otherwise mIoU only, with a warning). mIoU uses the datasets' semantic labels, as the official evaluators.
AP is COCO mask AP of the thing segments of the panoptic ground truth (for ADE20K identical to Mask2Former's
``ade20k_instance_val.json``; the official Cityscapes AP uses cityscapesScripts' own instance evaluator).
``--predictions DIR`` scores predictions saved by any model (the official code's too) in the papers' formats
(:mod:`ovseg_models.evaluation.predictions`) with the same metrics. A dataset that fails (missing, unreadable,
refused) is reported and the others are evaluated; the exit status is then 1.
Results are printed as the papers' tables (A-847, PC-459, A-150, PC-59, PAS-20, PAS-20b / PQ, AP, mIoU)
and written as JSON.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch

from .panoptic import PanopticQualityMetric
from .report import format_results_table, write_results_json
from .semantic import SemanticSegmentationMetric

__all__ = [
    "main",
    "build_parser",
    "build_segmenter_for_eval",
    "evaluate_dataset",
    "evaluate_saved_predictions",
    "eval_options",
    "PANOPTIC_DATASETS",
]

log = logging.getLogger("ovseg.eval")

PANOPTIC_DATASETS = ("coco_panoptic", "ade20k_150", "cityscapes", "mapillary_vistas")

#: the papers' semantic benchmarks, evaluated for every family (a family adds its ``eval_extra_datasets``)
SEMANTIC_BENCHMARKS = (
    "ade20k_847",
    "pascal_context_459",
    "ade20k_150",
    "pascal_context_59",
    "pascal_voc_20",
    "pascal_voc_21",
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ovseg-eval", description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--config", help="training config (file or shipped name): model, variant and eval options")
    from ..families import list_families

    p.add_argument("--model", choices=list_families(), help="a registered model family")
    p.add_argument("--variant")
    p.add_argument("--checkpoint", help="official checkpoint or ovseg-train checkpoint")
    p.add_argument(
        "--weights",
        help="an official release by name (ovseg_models.weights), fetched through "
        "huggingface_hub; sets model, variant and checkpoint",
    )
    p.add_argument("--pretrained", default="true", help="CLIP weights when no checkpoint: true/false/tag/path")
    p.add_argument("--datasets", help="comma-separated dataset keys (default: the config's or the paper's)")
    p.add_argument("--root", help="datasets folder (default: $DETECTRON2_DATASETS or ./datasets)")
    p.add_argument("--output", default="results.json", help="JSON results file")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--precision", default="fp32", choices=("fp32", "fp16", "bf16"))
    p.add_argument("--max-images", type=int, default=None, help="evaluate only the first N images per dataset")
    p.add_argument(
        "--min-size",
        type=int,
        help="test resize, shortest edge (default: the paper's; FC-CLIP 800, 1024 street scenes)",
    )
    p.add_argument("--max-size", type=int, help="test resize, longest-edge cap (default: the paper's)")
    p.add_argument(
        "--no-sliding-window",
        action="store_true",
        help="plain resize instead of windows (families with windows: CAT-Seg)",
    )
    p.add_argument("--name", help="model name in the table")
    p.add_argument(
        "--predictions",
        metavar="DIR",
        help="score predictions saved in DIR/<dataset>/ (the papers' PNG/JSON formats, see "
        "ovseg_models.evaluation.predictions) instead of running a model",
    )
    return p


def _parse_pretrained(value):
    if isinstance(value, bool) or value is None:
        return value
    low = str(value).lower()
    return True if low == "true" else False if low in ("false", "none", "") else value


def build_segmenter_for_eval(
    model: str, *, variant: str | None, checkpoint: str | None, pretrained, device: str, precision: str, **options
):
    """A segmenter from an official checkpoint, an ``ovseg-train`` checkpoint (the configuration it
    records is used), a model package's own save, or CLIP weights only: all through the factory."""
    from .. import create_segmenter
    from ..families import get_family

    ignored = get_family(model).ignored_options
    opts = {k: v for k, v in options.items() if v is not None and k not in ignored}
    return create_segmenter(
        model, variant=variant, checkpoint=checkpoint, pretrained=pretrained, device=device, precision=precision, **opts
    )


def _vocabulary(name: str):
    from ..data.class_names import get_categories
    from ..vocabulary import Vocabulary

    cats = get_categories(name)
    return cats, Vocabulary.from_dataset(name)  # as published (duplicate names, long synonym lists)


def _dataset(name: str, *, root: Path, panoptic: bool):
    """(reader, panoptic): the panoptic reader when PQ/AP are wanted and its ground truth exists, else the
    semantic one (a warning says PQ/AP are not evaluated)."""
    from ..data.datasets import build_panoptic_dataset, build_semantic_dataset

    if panoptic or name == "coco_panoptic":
        try:
            return build_panoptic_dataset(name, root=root), panoptic
        except FileNotFoundError as e:
            if name == "coco_panoptic":
                raise
            log.warning("%s: panoptic ground truth not found (%s); reporting mIoU only", name, e)
    return build_semantic_dataset(name, root=root), False


def _evaluate(name: str, ds, predict, *, cats, panoptic: bool, max_images: int | None, background_cap: bool) -> dict:
    """The metrics of ``predict(item) -> result`` (``semantic``; with ``panoptic`` also ``panoptic``,
    ``segments`` and ``instances`` or ``coco_instances``) over the first ``max_images`` items of ``ds``."""
    ignore = ds.ignore_index if hasattr(ds, "ignore_index") else 255
    n = len(ds) if max_images is None else min(len(ds), max_images)
    sem = SemanticSegmentationMetric(num_classes=len(cats), ignore_index=ignore)
    pq = PanopticQualityMetric(categories={c.id: c.is_thing for c in cats}) if panoptic else None
    coco_preds, gt_images, gt_anns, pan_maps = [], [], [], {}
    with_ap = panoptic
    from tqdm import tqdm

    for i in tqdm(range(n), desc=name, dynamic_ncols=True):
        item = ds[i]
        result = predict(item)
        pred = np.asarray(result.semantic).astype(np.int64)
        if background_cap:
            pred = np.minimum(pred, 20)  # CAT-Seg's PAS-20b: classes >= 20 count as background
        sem.update(prediction=pred, target=item["sem_seg"])
        if pq is not None:  # panoptic
            segs = [{"id": s.id, "category_id": cats[s.category].id} for s in result.segments]
            pq.update(
                gt_ids=item["pan_ids"], gt_segments=item["segments_info"], pred_ids=result.panoptic, pred_segments=segs
            )
            image_id = i + 1  # integer ids for pycocotools (ADE20K / Cityscapes / Mapillary use file-name ids)
            if getattr(result, "coco_instances", None) is not None:
                coco_preds += [{**d, "image_id": image_id} for d in result.coco_instances]
            elif getattr(result, "instances", None) is not None:
                from .instance import instance_predictions_to_coco

                inst = result.instances
                coco_preds += instance_predictions_to_coco(
                    image_id=image_id,
                    masks=inst["masks"],
                    scores=inst["scores"],
                    category_ids=[cats[int(c)].id for c in inst["classes"]],
                )
            else:
                with_ap = False
            gt_images.append(
                {
                    "id": image_id,
                    "height": item["image"].shape[0],
                    "width": item["image"].shape[1],
                    "file_name": item["file_name"],
                }
            )
            gt_anns.append({"image_id": image_id, "segments_info": item["segments_info"]})
            pan_maps[image_id] = item["pan_ids"]
    out = {"mIoU": 100.0 * sem.compute().miou, "images": n}
    if pq is not None:  # panoptic
        res = pq.compute()
        out.update(
            {
                "PQ": 100 * res["All"]["pq"],
                "PQ_th": 100 * res["Things"]["pq"],
                "PQ_st": 100 * res["Stuff"]["pq"],
                "SQ": 100 * res["All"]["sq"],
                "RQ": 100 * res["All"]["rq"],
            }
        )
        if with_ap:
            from .instance import evaluate_mask_ap, panoptic_to_instances

            gt = panoptic_to_instances(
                images=gt_images, panoptic_annotations=gt_anns, panoptic_maps=pan_maps, categories=ds.categories
            )
            out["AP"] = evaluate_mask_ap(ground_truth=gt, predictions=coco_preds, per_class=False)["AP"]
    return out


def evaluate_dataset(
    segmenter,
    name: str,
    *,
    root: Path,
    max_images: int | None = None,
    model: str = "fcclip",
    predict_options: dict | None = None,
) -> dict:
    """Metrics (percent) of one benchmark: ``{"mIoU"}`` (+ ``"PQ"``, ``"AP"`` on the panoptic benchmarks with
    a panoptic family when their panoptic ground truth is present)."""
    from ..families import get_family

    family = get_family(model)
    cats, vocab = _vocabulary(name)
    segmenter.set_vocabulary(vocab)
    predict_options = dict(predict_options or {})
    ds, panoptic = _dataset(name, root=root, panoptic=name in PANOPTIC_DATASETS and family.panoptic)
    if panoptic:
        predict_options.setdefault("outputs", ("semantic", "panoptic", "instance"))
    return _evaluate(
        name,
        ds,
        lambda item: segmenter.predict(item["image"], **predict_options),
        cats=cats,
        panoptic=panoptic,
        max_images=max_images,
        background_cap=name in family.background_cap_datasets,
    )


def evaluate_saved_predictions(
    name: str, *, root: Path, predictions: Path, max_images: int | None = None, background_cap: bool = False
) -> dict:
    """Metrics of predictions saved on disk (:mod:`.predictions` layout) for benchmark ``name``: mIoU from the
    semantic predictions, PQ when panoptic predictions are there, AP when instance predictions are too."""
    from ..data.class_names import get_categories
    from .predictions import SavedPredictions

    cats = get_categories(name)
    saved = SavedPredictions(Path(predictions) / name, categories=cats)
    ds, panoptic = _dataset(name, root=root, panoptic=saved.has_panoptic and name in PANOPTIC_DATASETS)
    return _evaluate(
        name, ds, saved.predict, cats=cats, panoptic=panoptic, max_images=max_images, background_cap=background_cap
    )


def eval_options(
    model: str,
    dataset: str,
    eval_cfg: dict | None = None,
    *,
    min_size: int | None = None,
    max_size: int | None = None,
    sliding_window: bool | None = None,
) -> dict:
    """The test-time builder options of family ``model`` on ``dataset``: the values given, else the
    training config's ``eval`` section (``per_dataset``, ``min_size``/``max_size``, ``sliding_window``,
    ``pooling_size``), else the paper's. Only the options the family has (its descriptor's
    ``test_size`` and ``sliding_window``) are set; None leaves the builder's default."""
    from ..families import get_family

    family = get_family(model)
    ev = eval_cfg or {}
    opts: dict = {}
    if family.test_size is not None:
        size = (ev.get("per_dataset") or {}).get(dataset, {})
        paper_min, paper_max = family.test_size(dataset)
        opts["min_size"] = min_size or size.get("min_size") or ev.get("min_size") or paper_min
        opts["max_size"] = max_size or size.get("max_size") or ev.get("max_size") or paper_max
    if family.sliding_window:
        opts["sliding_window"] = sliding_window if sliding_window is not None else ev.get("sliding_window")
        opts["pooling_size"] = tuple(ev.get("pooling_size") or ()) or None
    return opts


def main(argv: list[str] | None = None) -> int:
    import os

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    eval_cfg: dict = {}
    model, variant = args.model, args.variant
    if args.config:
        from ..training.config import load_config

        cfg = load_config(args.config)
        eval_cfg = dict(cfg.get("eval", {}))
        model = model or cfg["task"]["kind"]
        variant = variant or cfg["task"].get("variant")
    if args.predictions:
        return _main_predictions(
            args, model=model, datasets=args.datasets.split(",") if args.datasets else eval_cfg.get("datasets")
        )
    if args.weights:
        from ..weights import WeightsNotAvailableError, get_weights

        try:
            release = get_weights(args.weights)
            checkpoint = str(release.fetch())
        except (KeyError, WeightsNotAvailableError) as e:
            print(f"ovseg-eval: error: {e}", file=sys.stderr)
            return 2
        if (model or release.model) != release.model or (variant or release.variant) != release.variant:
            print(
                f"ovseg-eval: error: --weights {release.name} is {release.model}/{release.variant}, not "
                f"{model}/{variant}",
                file=sys.stderr,
            )
            return 2
        model, variant, args.checkpoint = release.model, release.variant, checkpoint
    if model is None:
        print("ovseg-eval: error: give --model, --config or --weights", file=sys.stderr)
        return 2
    from ..families import get_family

    try:
        family = get_family(model)
    except ValueError as e:  # a training config's task kind that is no registered family
        print(f"ovseg-eval: error: {e}", file=sys.stderr)
        return 2
    model = family.name
    datasets = (
        args.datasets.split(",")
        if args.datasets
        else eval_cfg.get("datasets") or [*SEMANTIC_BENCHMARKS, *family.eval_extra_datasets]
    )
    root = Path(args.root or os.environ.get("DETECTRON2_DATASETS") or "datasets")
    results: dict = {}
    name = args.name or f"{model}/{variant or 'default'}"
    segmenters: dict = {}
    for ds in datasets:
        options = eval_options(
            model,
            ds,
            eval_cfg,
            min_size=args.min_size,
            max_size=args.max_size,
            sliding_window=False if args.no_sliding_window else None,
        )
        key = tuple(sorted(options.items()))
        try:
            if key not in segmenters:
                segmenters.clear()
                segmenters[key] = build_segmenter_for_eval(
                    model,
                    variant=variant,
                    checkpoint=args.checkpoint,
                    pretrained=_parse_pretrained(args.pretrained),
                    device=args.device,
                    precision=args.precision,
                    **options,
                )
            t0 = time.perf_counter()
            results[ds] = evaluate_dataset(segmenters[key], ds, root=root, max_images=args.max_images, model=model)
            results[ds]["seconds"] = time.perf_counter() - t0
        except Exception as e:  # noqa: BLE001 - one dataset that fails must not stop the others
            log.error("%s failed: %s: %s", ds, type(e).__name__, e)
            results[ds] = {"error": f"{type(e).__name__}: {e}"}
    return _report(results, name=name, output=args.output)


def _main_predictions(args, *, model: str | None, datasets: list[str] | None) -> int:
    import os

    from .report import PANOPTIC_ROWS, SEMANTIC_COLUMNS

    folder = Path(args.predictions)
    if not folder.is_dir():
        print(f"ovseg-eval: error: predictions folder {folder} not found", file=sys.stderr)
        return 2
    known = [k for _, k in SEMANTIC_COLUMNS] + [k for _, k in PANOPTIC_ROWS if k not in dict(SEMANTIC_COLUMNS).values()]
    datasets = datasets or [k for k in known if (folder / k).is_dir()]
    if not datasets:
        print(f"ovseg-eval: error: no <dataset>/ folder in {folder} (known: {', '.join(known)})", file=sys.stderr)
        return 2
    root = Path(args.root or os.environ.get("DETECTRON2_DATASETS") or "datasets")
    from ..families import get_family

    try:
        capped = get_family(model).background_cap_datasets if model else ()
    except ValueError as e:
        print(f"ovseg-eval: error: {e}", file=sys.stderr)
        return 2
    results: dict = {}
    for ds in datasets:
        try:
            results[ds] = evaluate_saved_predictions(
                ds,
                root=root,
                predictions=folder,
                max_images=args.max_images,
                background_cap=ds in capped,
            )
        except Exception as e:  # noqa: BLE001 - one dataset that fails must not stop the others
            log.error("%s failed: %s: %s", ds, type(e).__name__, e)
            results[ds] = {"error": f"{type(e).__name__}: {e}"}
    return _report(results, name=args.name or f"predictions {folder.name}", output=args.output)


def _report(results: dict, *, name: str, output: str) -> int:
    """Print the tables (and every failed dataset with its reason), write the JSON; 1 when any dataset failed."""
    print(format_results_table({k: v for k, v in results.items() if "error" not in v}, model_name=name))
    write_results_json(output, results, model_name=name)
    print(f"\nresults written to {output}")
    failed = {k: v["error"] for k, v in results.items() if "error" in v}
    if failed:
        print(f"\novseg-eval: {len(failed)} of {len(results)} datasets failed:", file=sys.stderr)
        for k, why in failed.items():
            print(f"  {k}: {why}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
