"""The model-family registry: one :class:`ModelFamily` descriptor per family.

Each family package registers its own descriptor (``ovseg_models/<family>/family.py``); the
registry knows the built-in packages only through :data:`BUILTIN_FAMILIES`, imported on first
lookup. To add a family: a package with a ``family.py`` calling :func:`register_family`, and one
line in :data:`BUILTIN_FAMILIES` (or a ``register_family(...)`` call from user code).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BUILTIN_FAMILIES", "ModelFamily", "get_family", "list_families", "register_family", "unregister_family"]

#: modules whose import registers a built-in family (one line per family)
BUILTIN_FAMILIES: tuple[str, ...] = (
    "ovseg_models.fcclip.family",
    "ovseg_models.catseg.family",
)


@dataclass(frozen=True)
class ModelFamily:
    """What the factory, the evaluation CLI, the benchmarks and the ROS node need to know of a family."""

    name: str
    #: ``build_segmenter(*, variant, checkpoint, pretrained, device, precision, **options)``
    build_segmenter: Callable[..., Any]
    variants: Mapping[str, Any]
    default_variant: str
    panoptic: bool = False  # can produce panoptic/instance outputs (PQ/AP are evaluated)
    training_vocabulary: str = ""  # dataset whose classes the released weights were trained on
    checkpoint_hint: str = "the family's released checkpoint"  # for 'file not found' messages
    takes_prompt_templates: bool = True
    #: ``check(variant, templates) -> None``, raising ValueError for a template count the variant cannot use
    check_templates: Callable[[str | None, list[str]], None] | None = None
    #: evaluation defaults
    eval_extra_datasets: tuple[str, ...] = ()  # benchmarks beyond the common semantic six
    background_cap_datasets: tuple[str, ...] = ()  # benchmarks scored with the background cap rule
    sliding_window: bool = False  # has a sliding-window inference option
    test_size: Callable[[str], tuple[int, int]] | None = None  # dataset -> paper (min, max) test size
    #: options the family's builder does not take (dropped by the evaluation CLI)
    ignored_options: tuple[str, ...] = ()
    #: lazy hooks, "module:function"
    bench_target: str | None = None
    parity_runners: Mapping[str, str] = field(default_factory=dict)  # case-file prefix -> runner


_REGISTRY: dict[str, ModelFamily] = {}
_builtins_loaded = False


def _key(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


def register_family(family: ModelFamily) -> ModelFamily:
    """Add ``family``; a second family of the same name is refused."""
    key = _key(family.name)
    if key in _REGISTRY:
        raise ValueError(f"model family {family.name!r} is already registered")
    if family.default_variant not in family.variants:
        raise ValueError(f"family {family.name!r}: default variant {family.default_variant!r} not in its variants")
    _REGISTRY[key] = family
    return family


def unregister_family(name: str) -> None:
    _REGISTRY.pop(_key(name), None)


def _load_builtins() -> None:
    global _builtins_loaded
    if not _builtins_loaded:
        _builtins_loaded = True
        for module in BUILTIN_FAMILIES:
            importlib.import_module(module)


def list_families() -> list[str]:
    _load_builtins()
    return sorted(f.name for f in _REGISTRY.values())


def get_family(name: str) -> ModelFamily:
    _load_builtins()
    try:
        return _REGISTRY[_key(name)]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {list_families()}") from None


def resolve(ref: str) -> Callable[..., Any]:
    """The function a ``"module:function"`` hook names."""
    module, _, func = ref.partition(":")
    return getattr(importlib.import_module(module), func)
