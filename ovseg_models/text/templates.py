"""Prompt templates for CLIP text classifiers.

``VILD_TEMPLATES`` are the 14 templates FC-CLIP uses (``VILD_PROMPT`` in the official code, in that
order: the order matters only for reproducing the official batching, the mean is order-free).
``OPENAI_TEMPLATES`` are CLIP's 80 ImageNet templates (taken from open_clip, formatted with ``{}``).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..vocabulary import validate_templates  # the one template validator (re-exported here)

__all__ = ["VILD_TEMPLATES", "OPENAI_TEMPLATES", "TEMPLATE_SETS", "get_templates", "validate_templates"]

VILD_TEMPLATES: tuple[str, ...] = (
    "a photo of a {}.",
    "This is a photo of a {}",
    "There is a {} in the scene",
    "There is the {} in the scene",
    "a photo of a {} in the scene",
    "a photo of a small {}.",
    "a photo of a medium {}.",
    "a photo of a large {}.",
    "This is a photo of a small {}.",
    "This is a photo of a medium {}.",
    "This is a photo of a large {}.",
    "There is a small {} in the scene.",
    "There is a medium {} in the scene.",
    "There is a large {} in the scene.",
)


def _openai_templates() -> tuple[str, ...]:
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

    return tuple(t("{}") for t in OPENAI_IMAGENET_TEMPLATES)


OPENAI_TEMPLATES: tuple[str, ...] = _openai_templates()

#: named template sets accepted wherever templates can be given by name
TEMPLATE_SETS: dict[str, tuple[str, ...]] = {
    "vild": VILD_TEMPLATES,
    "openai": OPENAI_TEMPLATES,
    "single": ("a photo of a {}.",),
}


def get_templates(spec: str | Sequence[str] | None, default: str = "vild") -> tuple[str, ...]:
    """Templates from a set name (``"vild"``, ``"openai"``, ``"single"``), an explicit list, or None."""
    if spec is None:
        spec = default
    if isinstance(spec, str):
        try:
            return TEMPLATE_SETS[spec.lower()]
        except KeyError:
            raise ValueError(
                f"unknown template set {spec!r}; choose one of {sorted(TEMPLATE_SETS)} "
                "or pass a list of templates with one '{}' each"
            ) from None
    return validate_templates(spec)
