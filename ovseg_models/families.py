"""The model-family registry: one :class:`ModelFamily` descriptor per family.

Each family package registers its own descriptor (``ovseg_models/<family>/family.py``); the
registry knows the built-in packages only through :data:`BUILTIN_FAMILIES`, imported on first
lookup. To add a family: a package with a ``family.py`` calling :func:`register_family`, and one
line in :data:`BUILTIN_FAMILIES` (or a ``register_family(...)`` call from user code).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "BUILTIN_FAMILIES",
    "ModelFamily",
    "NodeOption",
    "get_family",
    "list_families",
    "register_family",
    "unregister_family",
]

#: modules whose import registers a built-in family (one line per family)
BUILTIN_FAMILIES: tuple[str, ...] = (
    "ovseg_models.fcclip.family",
    "ovseg_models.catseg.family",
)


@dataclass(frozen=True)
class NodeOption:
    """A builder option that front ends expose as a setting of its own (the ROS node: parameter
    ``<family>.<name>``, see ``ovseg_ros.params``)."""

    option: str  # the builder's keyword
    default: bool | int | float
    description: str
    bounds: tuple[float, float] | None = None  # inclusive range of a number
    unset: Any = None  # the value that passes nothing (the builder's own default applies), e.g. 0


@dataclass(frozen=True)
class ModelFamily:
    """What the factory, the evaluation CLI, the benchmarks and the ROS node need to know of a family."""

    name: str
    #: ``build_segmenter(*, variant, checkpoint, pretrained, device, precision, **options)``
    build_segmenter: Callable[..., Any]
    variants: Mapping[str, Any]
    default_variant: str
    #: can produce panoptic/instance outputs (PQ/AP are evaluated), chosen by the builder's ``outputs``
    #: option (a tuple of ``"semantic"``, ``"panoptic"``, ``"instance"``)
    panoptic: bool = False
    training_vocabulary: str = ""  # dataset whose classes the released weights were trained on
    checkpoint_hint: str = "the family's released checkpoint"  # for 'file not found' messages
    takes_prompt_templates: bool = True  # the builder takes ``templates`` (prompt templates, each with one '{}')
    #: ``check(variant, templates) -> None``, raising ValueError for a template count the variant cannot use
    check_templates: Callable[[str | None, list[str]], None] | None = None
    #: evaluation defaults
    eval_extra_datasets: tuple[str, ...] = ()  # benchmarks beyond the common semantic six
    background_cap_datasets: tuple[str, ...] = ()  # benchmarks scored with the background cap rule
    sliding_window: bool = False  # takes ``sliding_window`` and ``pooling_size`` (the paper's windowed inference)
    #: dataset -> the paper's test resize (shortest edge, longest-edge cap): the builder takes
    #: ``min_size``/``max_size``; None: the family has no such resize options
    test_size: Callable[[str], tuple[int, int]] | None = None
    #: options the family's builder does not take (dropped by the evaluation CLI)
    ignored_options: tuple[str, ...] = ()
    #: setting name -> builder option, exposed by the ROS node as parameter ``<name>.<setting>``
    node_options: Mapping[str, NodeOption] = field(default_factory=dict)
    #: lazy hooks, "module:function"
    bench_target: str | None = None
    parity_runners: Mapping[str, str] = field(default_factory=dict)  # case-file prefix -> runner


_REGISTRY: dict[str, ModelFamily] = {}
_builtins_loaded = False


def _key(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


def register_family(family: ModelFamily) -> ModelFamily:
    """Add ``family``; a second family of the same name is refused.

    A name is lower-case letters and digits (what lookups normalise to: ``"FC-CLIP"`` finds
    ``"fcclip"``), so it can also prefix the family's settings (``fcclip.min_size``)."""
    if not re.fullmatch(r"[a-z][a-z0-9]*", family.name):
        raise ValueError(
            f"model family name {family.name!r}: use lower-case letters and digits, e.g. {_key(family.name)!r}"
        )
    _load_builtins()
    key = family.name
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
