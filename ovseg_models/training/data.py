"""Training data: augmented dataset wrappers, a resumable global-batch sampler and collation.

Reproducibility design: the sampler decides, for every optimisation step ``s``, the *global* batch
(``global_batch`` dataset indices, from a seeded permutation per pass over the data) and a seed per
sample derived from ``(seed, s, position in the global batch)``. Each process takes its contiguous
slice of the global batch. Augmentation and the loss's random point sampling of a sample use only
that sample's seed, so a run is a pure function of ``(seed, step)``: resuming at step ``k`` needs no
data-loader state, and ``N`` processes with ``global_batch / N`` images each see exactly the
samples (and random numbers) one process with ``global_batch`` images sees.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from ..data.datasets import COCOPanopticDataset, SemanticSegmentationDataset
from ..transforms import resize_image
from .augment import lsj_panoptic, panoptic_targets, resize_labels, semantic_crop

__all__ = ["sample_seed", "GlobalBatchSampler", "PanopticTrainDataset", "SemanticTrainDataset", "collate"]


def sample_seed(seed: int, step: int, position: int) -> int:
    """A 62-bit seed for sample ``position`` of the global batch of step ``step``."""
    state = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(step), int(position)]).generate_state(2, np.uint32)
    return int((int(state[0]) << 30) ^ int(state[1]))


class GlobalBatchSampler(Sampler[list[tuple[int, int]]]):
    """Yields, per step from ``start_step`` to ``max_steps``, this rank's list of ``(index, seed)``.

    The index stream is the concatenation of seeded permutations of the dataset (one per pass);
    step ``s`` takes items ``[s * global_batch, (s + 1) * global_batch)`` of it.
    """

    def __init__(
        self,
        num_samples: int,
        *,
        global_batch: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        start_step: int = 0,
        max_steps: int,
        shuffle: bool = True,
    ):
        if num_samples <= 0:
            raise ValueError("the training set is empty")
        if global_batch % world_size:
            raise ValueError(f"global batch {global_batch} is not divisible by the {world_size} processes")
        self.n = int(num_samples)
        self.global_batch = int(global_batch)
        self.local_batch = self.global_batch // world_size
        self.seed, self.rank, self.world_size = int(seed), int(rank), int(world_size)
        self.start_step, self.max_steps = int(start_step), int(max_steps)
        self.shuffle = shuffle
        self._perm_cache: dict[int, np.ndarray] = {}

    def _perm(self, epoch: int) -> np.ndarray:
        if epoch not in self._perm_cache:
            if len(self._perm_cache) > 4:
                self._perm_cache.clear()
            if self.shuffle:
                rng = np.random.default_rng([self.seed & 0xFFFFFFFF, epoch, 0x5EED])
                self._perm_cache[epoch] = rng.permutation(self.n)
            else:
                self._perm_cache[epoch] = np.arange(self.n)
        return self._perm_cache[epoch]

    def global_indices(self, step: int) -> list[int]:
        start = step * self.global_batch
        out = []
        for pos in range(start, start + self.global_batch):
            out.append(int(self._perm(pos // self.n)[pos % self.n]))
        return out

    def batch_for_step(self, step: int) -> list[tuple[int, int]]:
        idx = self.global_indices(step)
        lo = self.rank * self.local_batch
        return [(idx[p], sample_seed(self.seed, step, p)) for p in range(lo, lo + self.local_batch)]

    def epoch_of(self, step: int) -> float:
        return step * self.global_batch / self.n

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for step in range(self.start_step, self.max_steps):
            yield self.batch_for_step(step)

    def __len__(self) -> int:
        return max(0, self.max_steps - self.start_step)


class PanopticTrainDataset(Dataset):
    """COCO panoptic for mask-classification training (FC-CLIP).

    ``augment="lsj"``: official large-scale jitter at ``image_size``; ``"resize"``: deterministic
    resize of the longer side to ``image_size`` and padding (debugging, overfitting tests).
    Items: ``image`` uint8 (3, S, S), ``labels`` int64 [M], ``masks`` bool [M, S, S], ``seed``.
    """

    def __init__(
        self,
        base: COCOPanopticDataset,
        *,
        image_size: int = 1024,
        min_scale: float = 0.1,
        max_scale: float = 2.0,
        augment: str = "lsj",
        flip: bool = True,
        filter_empty: bool = True,
        drop_empty_masks: bool = False,
    ):
        if augment not in ("lsj", "resize"):
            raise ValueError("augment must be 'lsj' or 'resize'")
        self.base = base
        self.image_size, self.min_scale, self.max_scale = int(image_size), float(min_scale), float(max_scale)
        self.augment, self.flip, self.drop_empty_masks = augment, flip, drop_empty_masks
        self.indices = [
            i
            for i, (_, ann) in enumerate(base.annotations)
            if not filter_empty or any(not int(s.get("iscrowd", 0)) for s in ann["segments_info"])
        ]
        self.num_classes = len(base.categories)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, key) -> dict:
        index, seed = key if isinstance(key, tuple) else (key, 0)
        item = self.base[self.indices[index]]
        rng = np.random.default_rng(seed)
        if self.augment == "lsj":
            image, pan, _ = lsj_panoptic(
                item["image"],
                item["pan_ids"],
                rng,
                image_size=self.image_size,
                min_scale=self.min_scale,
                max_scale=self.max_scale,
                flip=self.flip,
            )
        else:
            h, w = item["image"].shape[:2]
            s = self.image_size / max(h, w)
            size = (max(1, round(h * s)), max(1, round(w * s)))
            image = np.full((self.image_size, self.image_size, 3), 128, np.uint8)
            pan = np.zeros((self.image_size, self.image_size), np.int64)
            image[: size[0], : size[1]] = resize_image(item["image"], size)
            pan[: size[0], : size[1]] = resize_labels(item["pan_ids"], size)
        labels, masks = panoptic_targets(
            pan, item["segments_info"], self.base.contiguous_id, drop_empty=self.drop_empty_masks
        )
        return {
            "image": torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).contiguous(),
            "labels": torch.from_numpy(labels),
            "masks": torch.from_numpy(masks),
            "seed": int(seed),
            "index": int(index),
        }


class SemanticTrainDataset(Dataset):
    """Semantic segmentation training set (CAT-Seg on COCO-Stuff): items ``image`` uint8 (3, S, S),
    ``sem_seg`` int64 (S, S) with ``ignore_index``, ``seed``."""

    def __init__(
        self,
        base: SemanticSegmentationDataset,
        *,
        crop: int = 384,
        short_edge: int = 384,
        max_size: int = 1333,
        color_aug: bool = True,
        flip: bool = True,
        size_divisibility: int = 384,
    ):
        self.base = base
        self.kw: dict[str, Any] = dict(
            short_edge=short_edge,
            max_size=max_size,
            crop=crop,
            color_aug=color_aug,
            flip=flip,
            size_divisibility=size_divisibility,
            ignore_index=base.ignore_index,
        )
        self.num_classes = base.num_classes
        self.ignore_index = base.ignore_index

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, key) -> dict:
        index, seed = key if isinstance(key, tuple) else (key, 0)
        item = self.base[index]
        rng = np.random.default_rng(seed)
        image, labels = semantic_crop(item["image"], item["sem_seg"], rng, **self.kw)
        return {
            "image": torch.from_numpy(image).permute(2, 0, 1).contiguous(),
            "sem_seg": torch.from_numpy(labels),
            "seed": int(seed),
            "index": int(index),
        }


def collate(items: Sequence[Mapping]) -> dict:
    """List of items -> batch dict: ``images`` list of uint8 (3, H, W), ``seeds`` int64 tensor, and
    either ``targets`` (list of {labels, masks}) or ``sem_seg`` (stacked)."""
    batch = {
        "images": [it["image"] for it in items],
        "seeds": torch.tensor([it["seed"] for it in items], dtype=torch.int64),
        "indices": torch.tensor([it["index"] for it in items], dtype=torch.int64),
    }
    if "labels" in items[0]:
        batch["targets"] = [{"labels": it["labels"], "masks": it["masks"]} for it in items]
    if "sem_seg" in items[0]:
        batch["sem_seg"] = torch.stack([it["sem_seg"] for it in items])
    return batch
