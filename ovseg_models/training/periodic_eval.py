"""Evaluation during training and the kept best checkpoint (the FC-CLIP authors kept the checkpoint with the
best ADE20K PQ, fc-clip issue #13).

Configured in ``train``: ``eval_every`` (steps; 0 = off), ``eval_metric`` (``"<dataset>/<metric>"``, e.g.
``"ade20k_150/PQ"`` or ``"ade20k_150/mIoU"``: any key ``ovseg-eval`` reports for that benchmark, higher is
better), optionally ``eval_max_images`` and ``eval_root`` (default ``task.data.root``, ``$DETECTRON2_DATASETS``
or ``./datasets``). Test-time options come from the config's ``eval`` section as for ``ovseg-eval --config``
(:func:`ovseg_models.evaluation.cli.eval_options`: ``min_size``/``max_size``/``per_dataset``, else the paper's
sizes, for a family with a test resize; ``sliding_window`` and ``pooling_size`` for one with windows).

Each evaluation scores the checkpoint just written for that step through the same path as ``ovseg-eval``
(factory + :func:`ovseg_models.evaluation.cli.evaluate_dataset`) and appends a row to ``eval_metrics.jsonl``;
when the metric improves, the checkpoint is copied to ``checkpoints/model_best.pth`` and
``checkpoints/model_best.json`` records ``{"step", "metric", "value", "results"}``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

__all__ = ["PeriodicEvaluator"]

log = logging.getLogger("ovseg.train")


class PeriodicEvaluator:
    def __init__(self, cfg: Mapping, *, output_dir: Path, device: str):
        t = dict(cfg.get("train", {}))
        self.every = int(t.get("eval_every") or 0)
        self.metric_spec = str(t.get("eval_metric") or "")
        self.enabled = self.every > 0
        if not self.enabled:
            return
        if "/" not in self.metric_spec:
            raise ValueError(
                f"train.eval_metric must be '<dataset>/<metric>' (e.g. 'ade20k_150/PQ'), got {self.metric_spec!r}"
            )
        self.dataset, self.metric = self.metric_spec.split("/", 1)
        task = dict(cfg.get("task", {}))
        from ..families import get_family

        try:
            self.kind: str = get_family(str(task.get("kind"))).name
        except ValueError as e:
            raise ValueError(f"train.eval_every needs a model-family task: {e}") from None
        self.eval_cfg = dict(cfg.get("eval", {}))
        self.max_images = t.get("eval_max_images")
        self.root = Path(
            t.get("eval_root")
            or (task.get("data") or {}).get("root")
            or os.environ.get("DETECTRON2_DATASETS")
            or "datasets"
        )
        self.device = device
        self.ckdir = output_dir / "checkpoints"
        self.history = output_dir / "eval_metrics.jsonl"
        self.best = None
        best_json = self.ckdir / "model_best.json"
        if best_json.is_file():  # resumed run: keep improving on the best so far
            self.best = json.loads(best_json.read_text()).get("value")

    def due(self, step: int, *, last: bool) -> bool:
        return self.enabled and (step % self.every == 0 or last)

    def check_data(self) -> None:
        """Fail before training when the evaluation benchmark cannot be read (not after hours of training)."""
        if not self.enabled:
            return
        from ..data.datasets import build_panoptic_dataset, build_semantic_dataset

        try:
            if self.metric in ("PQ", "PQ_th", "PQ_st", "SQ", "RQ", "AP") or self.dataset == "coco_panoptic":
                build_panoptic_dataset(self.dataset, root=self.root)
            else:
                build_semantic_dataset(self.dataset, root=self.root)
        except (FileNotFoundError, KeyError) as e:
            raise FileNotFoundError(
                f"train.eval_metric {self.metric_spec!r}: the benchmark cannot be read under "
                f"{self.root} ({e}); prepare it (ovseg-prepare), set train.eval_root, or "
                "set train.eval_every=0 to train without periodic evaluation"
            ) from e

    def _test_options(self) -> dict:
        from ..evaluation.cli import eval_options

        return eval_options(self.kind, self.dataset, self.eval_cfg)

    def evaluate(self, step: int, checkpoint: Path) -> dict:
        """Score ``checkpoint`` (written for ``step``); keep it as the best when the metric improved."""
        from ..evaluation.cli import build_segmenter_for_eval, evaluate_dataset

        segmenter = build_segmenter_for_eval(
            self.kind,
            variant=None,
            checkpoint=str(checkpoint),
            pretrained=False,
            device=self.device,
            precision="fp32",
            **self._test_options(),
        )
        results = evaluate_dataset(segmenter, self.dataset, root=self.root, max_images=self.max_images, model=self.kind)
        if self.metric not in results:
            raise KeyError(f"train.eval_metric {self.metric_spec!r}: {self.dataset} reports {sorted(results)}")
        value = float(results[self.metric])
        row = {"step": step, "metric": self.metric_spec, "value": value, "results": results}
        with open(self.history, "a") as f:
            f.write(json.dumps(row, default=float) + "\n")
        improved = self.best is None or value > self.best
        log.info("step %d: %s = %.3f%s", step, self.metric_spec, value, " (best so far)" if improved else "")
        if improved:
            self.best = value
            tmp = self.ckdir / f".model_best.pth.tmp-{os.getpid()}"
            shutil.copyfile(checkpoint, tmp)
            os.replace(tmp, self.ckdir / "model_best.pth")
            meta = self.ckdir / f".model_best.json.tmp-{os.getpid()}"
            meta.write_text(json.dumps({**row, "checkpoint": checkpoint.name}, indent=2, default=float) + "\n")
            os.replace(meta, self.ckdir / "model_best.json")
        return row
