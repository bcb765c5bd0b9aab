"""Model-agnostic training loop: torch.distributed (torchrun), AMP, gradient clipping, seeds,
atomic checkpoints with exact resume, CSV / TensorBoard logs and a tqdm progress bar.

Launch with ``torchrun`` (one process per GPU; ``--nnodes``/``--node_rank``/``--rdzv_*`` for several
machines): the engine reads ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE`` from the environment and
initialises the default process group (NCCL on GPUs, gloo on CPUs). ``train.global_batch`` is the
batch over all processes; each process takes ``global_batch / WORLD_SIZE`` images.

Exactness: a step's samples and random numbers depend only on ``(train.seed, step)``
(:mod:`.data`), the global torch RNG is re-seeded from ``(seed, step, rank)`` before every step, and a
checkpoint holds model, optimizer, LR-scheduler and grad-scaler states. Resuming from the
checkpoint of step ``k`` therefore reproduces the uninterrupted run (bit-for-bit on CPU; on GPU up
to the non-determinism of CUDA kernels unless ``train.deterministic`` is set).
"""

from __future__ import annotations

import csv
import functools
import json
import logging
import math
import operator
import os
import random
import time
from bisect import bisect_right
from collections.abc import Mapping, Sized
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from ..weights_io import TRAINING_CHECKPOINT_FORMAT
from .config import dump_config, get, plain_config
from .data import GlobalBatchSampler, collate, sample_seed
from .tasks import TrainTask, build_task

__all__ = [
    "DistInfo",
    "init_distributed",
    "build_optimizer",
    "build_lr_lambda",
    "save_checkpoint_atomic",
    "find_last_checkpoint",
    "load_training_checkpoint",
    "Trainer",
    "train",
]

log = logging.getLogger("ovseg.train")

CHECKPOINT_FORMAT = TRAINING_CHECKPOINT_FORMAT  # "ovseg-train-v1"; read by ovseg_models.weights_io

_NORM_TYPES = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.SyncBatchNorm,
    nn.GroupNorm,
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
    nn.InstanceNorm3d,
    nn.LayerNorm,
    nn.LocalResponseNorm,
)


# -- distributed ------------------------------------------------------------------------------------------
@dataclass
class DistInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")
    initialized_here: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str = "auto", backend: str | None = None) -> DistInfo:
    """Initialise torch.distributed from torchrun's environment (a no-op for a single process)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda":
        dev = torch.device("cuda", local_rank if dev.index is None else dev.index)
        torch.cuda.set_device(dev)
    initialized_here = False
    if world > 1 and not torch.distributed.is_initialized():
        backend = backend or ("nccl" if dev.type == "cuda" else "gloo")
        torch.distributed.init_process_group(backend=backend, init_method="env://")
        initialized_here = True
    if torch.distributed.is_initialized():
        world, rank = torch.distributed.get_world_size(), torch.distributed.get_rank()
    return DistInfo(rank, local_rank, world, dev, initialized_here)


def _barrier(dist: DistInfo) -> None:
    if dist.distributed:
        torch.distributed.barrier()


# -- optimisation ---------------------------------------------------------------------------------------
def build_optimizer(
    model: nn.Module, opt_cfg: Mapping, multipliers: Mapping[str, float] | None = None
) -> torch.optim.Optimizer:
    """AdamW / SGD with detectron2's parameter rules: ``lr * multiplier`` for parameters under a
    module whose name contains a multiplier key (e.g. ``clip_model``: 0.01); ``weight_decay_norm`` for
    normalisation layers, ``weight_decay_embed`` for ``nn.Embedding``; frozen parameters skipped."""
    base_lr = float(opt_cfg.get("lr", 1e-4))
    wd = float(opt_cfg.get("weight_decay", 0.05))
    wd_norm = float(opt_cfg.get("weight_decay_norm", 0.0))
    wd_embed = float(opt_cfg.get("weight_decay_embed", 0.0))
    mults = dict(multipliers or {})
    mults.update(opt_cfg.get("multipliers") or {})
    groups: dict[tuple[float, float], list[nn.Parameter]] = {}
    memo: set[int] = set()
    for module_name, module in model.named_modules():
        for pname, p in module.named_parameters(recurse=False):
            if not p.requires_grad or id(p) in memo:
                continue
            memo.add(id(p))
            lr = base_lr
            for key, m in mults.items():
                if key in module_name:
                    lr = lr * float(m)
            decay = wd
            if "relative_position_bias_table" in pname or "absolute_pos_embed" in pname:
                decay = 0.0
            if isinstance(module, _NORM_TYPES):
                decay = wd_norm
            if isinstance(module, nn.Embedding):
                decay = wd_embed
            groups.setdefault((lr, decay), []).append(p)
    if not groups:
        raise ValueError("the model has no trainable parameter")
    param_groups = [
        {"params": ps, "lr": lr, "weight_decay": decay, "initial_lr": lr}
        for (lr, decay), ps in sorted(groups.items(), key=lambda kv: kv[0], reverse=True)
    ]
    name = str(opt_cfg.get("name", "adamw")).lower()
    if name == "adamw":
        betas = tuple(opt_cfg.get("betas", (0.9, 0.999)))
        return torch.optim.AdamW(param_groups, lr=base_lr, betas=betas, eps=float(opt_cfg.get("eps", 1e-8)))
    if name == "sgd":
        return torch.optim.SGD(param_groups, lr=base_lr, momentum=float(opt_cfg.get("momentum", 0.9)))
    raise ValueError(f"unknown optimizer {name!r}")


def build_lr_lambda(sched_cfg: Mapping, max_steps: int):
    """detectron2's schedules as a multiplier of the base LR at iteration ``it``:
    ``multistep`` (WarmupMultiStepLR: ``gamma ** #(milestones <= it)``), ``cosine`` (WarmupCosineLR:
    ``0.5 (1 + cos(pi it / max_steps))``), ``poly`` or ``constant``; with linear/constant warmup."""
    name = str(sched_cfg.get("name", "multistep")).lower()
    steps = sorted(int(s) for s in sched_cfg.get("steps", ()) or ())
    gamma = float(sched_cfg.get("gamma", 0.1))
    warmup_iters = int(sched_cfg.get("warmup_iters", 0))
    warmup_factor = float(sched_cfg.get("warmup_factor", 1.0))
    warmup_method = sched_cfg.get("warmup_method", "linear")
    power = float(sched_cfg.get("power", 0.9))
    end = float(sched_cfg.get("end_factor", 0.0))

    def main(it: int) -> float:
        if name == "multistep":
            return gamma ** bisect_right(steps, it)
        if name == "cosine":
            return end + (1 - end) * 0.5 * (1.0 + math.cos(math.pi * min(it, max_steps) / max_steps))
        if name == "poly":
            return (1.0 - min(it, max_steps) / max_steps) ** power
        if name == "constant":
            return 1.0
        raise ValueError(f"unknown LR schedule {name!r}")

    def fn(it: int) -> float:
        f = main(it)
        if it < warmup_iters:
            if warmup_method == "linear":
                alpha = it / warmup_iters
                f *= warmup_factor * (1 - alpha) + alpha
            else:
                f *= warmup_factor
        return f

    return fn


# -- checkpoints --------------------------------------------------------------------------------------
def save_checkpoint_atomic(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file in the same folder, fsync, then ``os.replace``: a kill at
    any moment leaves either the previous file or the complete new one, never a truncated file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    try:  # make the rename durable
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:  # pragma: no cover - platforms without directory fsync
        pass
    return path


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def find_last_checkpoint(output_dir: str | os.PathLike) -> Path | None:
    """The checkpoint named in ``output_dir/last_checkpoint`` (or the newest ``model_*.pth``)."""
    out = Path(output_dir)
    marker = out / "last_checkpoint"
    if marker.is_file():
        p = out / marker.read_text().strip()
        if p.is_file():
            return p
    cands = sorted((out / "checkpoints").glob("model_[0-9]*.pth")) if (out / "checkpoints").is_dir() else []
    return cands[-1] if cands else None


def load_training_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    ckpt = torch.load(path, map_location=map_location, weights_only=False)
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not an ovseg training checkpoint")
    return ckpt


def _rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed & 0xFFFFFFFF)
    torch.manual_seed(seed)


# -- logging --------------------------------------------------------------------------------------------
class MetricsLogger:
    """CSV (``metrics.csv``) on the main process, plus TensorBoard when installed and enabled."""

    def __init__(self, output_dir: Path, *, enabled: bool, tensorboard: bool, resume_step: int):
        self.enabled = enabled
        self.path = output_dir / "metrics.csv"
        self.fields: list[str] | None = None
        self.tb = None
        if not enabled:
            return
        if resume_step > 0 and self.path.is_file():  # drop rows the resumed run will write again
            with open(self.path, newline="") as f:
                rows = list(csv.DictReader(f))
            kept = [r for r in rows if int(float(r.get("step", 0))) <= resume_step]
            if rows:
                self.fields = list(rows[0].keys())
                with open(self.path, "w", newline="") as f:
                    w = csv.DictWriter(f, fieldnames=self.fields)
                    w.writeheader()
                    w.writerows(kept)
        elif self.path.exists():
            self.path.unlink()
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(output_dir / "tensorboard"))
            except Exception as e:  # tensorboard not installed
                log.warning("TensorBoard logging disabled (%s); writing CSV only", e)

    def log(self, row: Mapping[str, float]) -> None:
        if not self.enabled:
            return
        if self.fields is None:
            self.fields = list(row.keys())
            with open(self.path, "w", newline="") as f:
                csv.DictWriter(f, fieldnames=self.fields).writeheader()
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, fieldnames=self.fields, extrasaction="ignore").writerow(
                {k: row.get(k, "") for k in self.fields}
            )
        if self.tb is not None:
            for k, v in row.items():
                if k != "step":
                    self.tb.add_scalar(k, v, int(row["step"]))

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


# -- trainer --------------------------------------------------------------------------------------------
def _precision(cfg_value: str, device: torch.device, task_default: str) -> tuple[bool, torch.dtype | None]:
    value = (cfg_value or "auto").lower()
    if value == "auto":
        value = task_default if device.type == "cuda" else "fp32"
    if value == "fp32":
        return False, None
    if value == "fp16":
        if device.type != "cuda":
            raise ValueError("fp16 mixed precision needs CUDA; use bf16 or fp32 on CPU")
        return True, torch.float16
    if value == "bf16":
        return True, torch.bfloat16
    raise ValueError(f"unknown precision {cfg_value!r} (fp32, fp16, bf16, auto)")


class Trainer:
    """Runs ``cfg['train']`` on the task built from ``cfg['task']`` (or a given :class:`TrainTask`)."""

    def __init__(self, cfg: Mapping, *, task: TrainTask | None = None, dist: DistInfo | None = None):
        self.cfg = dict(cfg)
        t = dict(cfg.get("train", {}))
        self.dist = dist or init_distributed(t.get("device", "auto"), t.get("backend"))
        self.seed = int(t.get("seed", 0))
        self.max_steps = int(t["max_steps"])
        self.global_batch = int(t.get("global_batch", 16))
        self.output_dir = Path(t.get("output_dir", "output"))
        self.checkpoint_every = int(t.get("checkpoint_every", 5000))
        self.keep_checkpoints = int(t.get("keep_checkpoints", 3))
        self.log_every = int(t.get("log_every", 20))
        self.stop_after = t.get("stop_after")  # simulate a preemption (tests) : stop after this step
        self.clip_value = float(get(t, "clip_gradients.value", 0.01)) if get(t, "clip_gradients.enabled", True) else 0.0
        self.clip_type = get(t, "clip_gradients.type", "full_model")
        if t.get("deterministic", False):
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        elif self.dist.device.type == "cuda":
            torch.backends.cudnn.benchmark = bool(t.get("cudnn_benchmark", True))
        if t.get("num_threads"):
            torch.set_num_threads(int(t["num_threads"]))
        seed_everything(self.seed)
        self.task = task or build_task(cfg["task"], device=self.dist.device)
        self.model = self.task.model.to(self.dist.device)
        self.model.train()
        self.amp, self.amp_dtype = _precision(
            t.get("precision", "auto"), self.dist.device, t.get("amp_default", "fp16")
        )
        self.scaler = torch.amp.GradScaler(self.dist.device.type, enabled=self.amp and self.amp_dtype == torch.float16)
        self.optimizer = build_optimizer(self.model, cfg.get("optimizer", {}), self.task.param_multipliers)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, build_lr_lambda(cfg.get("scheduler", {}), self.max_steps)
        )
        self.params = [p for g in self.optimizer.param_groups for p in g["params"]]
        if self.dist.distributed:
            kwargs: dict[str, Any] = {"device_ids": [self.dist.device.index]} if self.dist.device.type == "cuda" else {}
            self.ddp: nn.Module = nn.parallel.DistributedDataParallel(
                self.model, find_unused_parameters=bool(t.get("find_unused_parameters", False)), **kwargs
            )
        else:
            self.ddp = self.model
        self.start_step = 0
        resume = t.get("resume", "auto")
        if resume:
            path = find_last_checkpoint(self.output_dir) if resume in (True, "auto") else Path(resume)
            if path is not None:
                self.load(path)
        self.num_workers = int(t.get("num_workers", 4))
        from .periodic_eval import PeriodicEvaluator

        self.evaluator = PeriodicEvaluator(self.cfg, output_dir=self.output_dir, device=str(self.dist.device))
        if self.dist.is_main:
            self.evaluator.check_data()

    # -- checkpoints ---------------------------------------------------------------------------------
    def state(self, step: int) -> dict:
        rng = _rng_state()
        if self.dist.distributed:
            all_rng: list = [None] * self.dist.world_size
            torch.distributed.all_gather_object(all_rng, rng)
        else:
            all_rng = [rng]
        return {
            "format": CHECKPOINT_FORMAT,
            "step": step,
            "model": self.task.state_dict_for_export(),
            "trainable": {n: p.detach().cpu() for n, p in self.model.named_parameters() if p.requires_grad},
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": all_rng,
            "world_size": self.dist.world_size,
            "config": plain_config(self.cfg),
            "task": {"name": self.task.name, **{k: v for k, v in self.task.info.items()}},
        }

    def save(self, step: int) -> Path | None:
        state = self.state(step)  # collective (all ranks)
        path = None
        if self.dist.is_main:
            ckdir = self.output_dir / "checkpoints"
            path = save_checkpoint_atomic(state, ckdir / f"model_{step:07d}.pth")
            _write_text_atomic(self.output_dir / "last_checkpoint", str(path.relative_to(self.output_dir)))
            olds = sorted(ckdir.glob("model_[0-9]*.pth"))  # not model_best.pth (periodic evaluation)
            for old in olds[: -self.keep_checkpoints] if self.keep_checkpoints > 0 else []:
                if old != path:
                    old.unlink(missing_ok=True)
        _barrier(self.dist)
        return path

    def load(self, path: str | os.PathLike) -> None:
        ckpt = load_training_checkpoint(path)
        missing = [n for n, p in self.model.named_parameters() if p.requires_grad and n not in ckpt["trainable"]]
        if missing:
            raise ValueError(f"checkpoint {path} lacks trainable parameters: {missing[:8]}")
        with torch.no_grad():
            named = dict(self.model.named_parameters())
            for n, v in ckpt["trainable"].items():
                named[n].copy_(v.to(named[n].device))
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.scaler.load_state_dict(ckpt["scaler"])
        if ckpt.get("world_size") == self.dist.world_size and ckpt.get("rng"):
            _set_rng_state(ckpt["rng"][self.dist.rank])
        self.start_step = int(ckpt["step"])
        if self.dist.is_main:
            log.info("resumed from %s at step %d", path, self.start_step)

    # -- loop -------------------------------------------------------------------------------------------
    def _loader(self) -> DataLoader:
        sampler = GlobalBatchSampler(
            len(cast(Sized, self.task.dataset)),  # map-style: TrainTask datasets have a length
            global_batch=self.global_batch,
            seed=self.seed,
            rank=self.dist.rank,
            world_size=self.dist.world_size,
            start_step=self.start_step,
            max_steps=self.max_steps,
        )
        self.sampler = sampler
        kw: dict[str, Any] = {}
        if self.num_workers > 0:
            kw = {"num_workers": self.num_workers, "persistent_workers": False, "prefetch_factor": 2}
        return DataLoader(
            self.task.dataset,
            batch_sampler=sampler,
            collate_fn=collate,
            pin_memory=self.dist.device.type == "cuda",
            **kw,
        )

    def _to_device(self, batch: dict) -> dict:
        dev = self.dist.device
        batch["images"] = [im.to(dev, non_blocking=True) for im in batch["images"]]
        return batch

    def _reduce(self, values: Mapping[str, float]) -> dict[str, float]:
        if not self.dist.distributed:
            return dict(values)
        keys = sorted(values)
        t = torch.tensor(
            [float(values[k]) for k in keys],
            dtype=torch.float64,
            device=self.dist.device if self.dist.device.type == "cuda" else "cpu",
        )
        torch.distributed.all_reduce(t)
        return {k: float(v) / self.dist.world_size for k, v in zip(keys, t.tolist(), strict=False)}

    def train(self) -> dict:
        from tqdm import tqdm

        if self.dist.is_main:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            (self.output_dir / "config.yaml").write_text(dump_config(self.cfg))
        logger = MetricsLogger(
            self.output_dir,
            enabled=self.dist.is_main,
            tensorboard=bool(get(self.cfg, "train.tensorboard", False)),
            resume_step=self.start_step,
        )
        last: dict[str, float] = {}
        if self.start_step >= self.max_steps:
            return {"step": self.start_step, "resumed_complete": True}
        pbar = tqdm(
            total=self.max_steps,
            initial=self.start_step,
            disable=not self.dist.is_main or not get(self.cfg, "train.progress", True),
            dynamic_ncols=True,
            desc="train",
        )
        step = self.start_step
        t_data = time.perf_counter()
        acc: dict[str, float] = {}
        n_acc = 0
        try:
            for step, batch in zip(range(self.start_step, self.max_steps), self._loader(), strict=False):
                data_time = time.perf_counter() - t_data
                t0 = time.perf_counter()
                torch.manual_seed(sample_seed(self.seed, step, 1_000_003 + self.dist.rank))
                batch = self._to_device(batch)
                autocast = torch.autocast(self.dist.device.type, dtype=self.amp_dtype) if self.amp else nullcontext()
                with autocast:
                    outputs = self.ddp(batch["images"])
                    losses = self.task.loss(outputs, batch)
                total = functools.reduce(operator.add, losses.values())
                if not torch.isfinite(total):
                    raise FloatingPointError(
                        f"loss became {float(total)} at step {step}: { {k: float(v) for k, v in losses.items()} }"
                    )
                self.optimizer.zero_grad(set_to_none=True)
                self.scaler.scale(total).backward()
                self.scaler.unscale_(self.optimizer)
                grad_norm = float("nan")
                if self.clip_value > 0:
                    if self.clip_type == "full_model":
                        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.params, self.clip_value))
                    else:  # per-parameter value clipping (detectron2 CLIP_TYPE: value)
                        torch.nn.utils.clip_grad_value_(self.params, self.clip_value)
                self.scaler.step(self.optimizer)
                self.scaler.update()
                lr = self.optimizer.param_groups[0]["lr"]
                self.scheduler.step()
                done = step + 1
                vals = {k: float(v.detach()) for k, v in losses.items()}
                vals["total_loss"] = float(total.detach())
                for k, v in vals.items():
                    acc[k] = acc.get(k, 0.0) + v
                n_acc += 1
                if (
                    done % self.log_every == 0
                    or done == self.max_steps
                    or (self.stop_after is not None and done >= int(self.stop_after))
                ):
                    mean = self._reduce({k: v / n_acc for k, v in acc.items()})
                    row = {
                        "step": done,
                        "epoch": round(self.sampler.epoch_of(done), 4),
                        "lr": lr,
                        "grad_norm": grad_norm,
                        "time": time.perf_counter() - t0,
                        "data_time": data_time,
                        "total_loss": mean.pop("total_loss"),
                        **mean,
                    }
                    logger.log(row)
                    last = row
                    acc, n_acc = {}, 0
                    pbar.set_postfix(loss=f"{row['total_loss']:.3f}", lr=f"{lr:.2e}")
                pbar.update(1)
                stop = self.stop_after is not None and done >= int(self.stop_after)
                evaluate = self.evaluator.due(done, last=done == self.max_steps or stop)
                if done % self.checkpoint_every == 0 or done == self.max_steps or stop or evaluate:
                    path = self.save(done)
                    if evaluate:
                        if path is not None:  # the main process's; the others wait: evaluation runs there
                            self.evaluator.evaluate(done, path)
                        _barrier(self.dist)
                if stop:
                    break
                t_data = time.perf_counter()
        finally:
            pbar.close()
            logger.close()
        summary = {"step": step + 1, **{k: v for k, v in last.items() if k != "step"}}
        if self.dist.is_main:
            (self.output_dir / "train_summary.json").write_text(json.dumps(summary, indent=2, default=float) + "\n")
        return summary

    def close(self) -> None:
        if self.dist.initialized_here and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def train(cfg: Mapping, *, task: TrainTask | None = None) -> dict:
    """Build a :class:`Trainer` from ``cfg`` and run it; returns the last logged metrics."""
    trainer = Trainer(cfg, task=task)
    try:
        return trainer.train()
    finally:
        trainer.close()
