"""Benchmark data: class vocabularies, dataset readers and preparation of the official downloads.

Pure PyTorch/numpy (no ROS). Submodules:

- :mod:`ovseg_models.data.class_names`: class-name lists with synonyms (FC-CLIP format).
- :mod:`ovseg_models.data.datasets`: torch ``Dataset`` readers of prepared benchmarks.
- :mod:`ovseg_models.data.prepare`: converters from the raw downloads to the evaluation layout.
"""

from .class_names import (
    DATASET_KEYS,
    CategoryInfo,
    get_categories,
    get_class_names,
    get_synonyms,
    seen_mask,
    split_synonyms,
)

__all__ = [
    "DATASET_KEYS",
    "CategoryInfo",
    "get_categories",
    "get_class_names",
    "get_synonyms",
    "seen_mask",
    "split_synonyms",
]
