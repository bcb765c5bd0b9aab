"""Prompt templates used by CAT-Seg (``MODEL.PROMPT_ENSEMBLE_TYPE``).

``single`` is the released models' setting. ``imagenet`` is the 80-template list of OpenAI's
ImageNet prompt-engineering notebook and ``imagenet_select`` the 8-template subset the official
code keeps; with ``prompt_channel == 1`` an ensemble is averaged (per-template L2-normalised
embeddings, mean, L2-normalised again), otherwise each template is one cost-volume channel.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..vocabulary import VocabularyError

__all__ = [
    "SINGLE_TEMPLATE",
    "IMAGENET_TEMPLATES",
    "IMAGENET_TEMPLATES_SELECT",
    "TEMPLATE_SETS",
    "check_template_count",
    "get_templates",
]

SINGLE_TEMPLATE = ("A photo of a {} in the scene",)

IMAGENET_TEMPLATES = (
    "a bad photo of a {}.",
    "a photo of many {}.",
    "a sculpture of a {}.",
    "a photo of the hard to see {}.",
    "a low resolution photo of the {}.",
    "a rendering of a {}.",
    "graffiti of a {}.",
    "a bad photo of the {}.",
    "a cropped photo of the {}.",
    "a tattoo of a {}.",
    "the embroidered {}.",
    "a photo of a hard to see {}.",
    "a bright photo of a {}.",
    "a photo of a clean {}.",
    "a photo of a dirty {}.",
    "a dark photo of the {}.",
    "a drawing of a {}.",
    "a photo of my {}.",
    "the plastic {}.",
    "a photo of the cool {}.",
    "a close-up photo of a {}.",
    "a black and white photo of the {}.",
    "a painting of the {}.",
    "a painting of a {}.",
    "a pixelated photo of the {}.",
    "a sculpture of the {}.",
    "a bright photo of the {}.",
    "a cropped photo of a {}.",
    "a plastic {}.",
    "a photo of the dirty {}.",
    "a jpeg corrupted photo of a {}.",
    "a blurry photo of the {}.",
    "a photo of the {}.",
    "a good photo of the {}.",
    "a rendering of the {}.",
    "a {} in a video game.",
    "a photo of one {}.",
    "a doodle of a {}.",
    "a close-up photo of the {}.",
    "a photo of a {}.",
    "the origami {}.",
    "the {} in a video game.",
    "a sketch of a {}.",
    "a doodle of the {}.",
    "a origami {}.",
    "a low resolution photo of a {}.",
    "the toy {}.",
    "a rendition of the {}.",
    "a photo of the clean {}.",
    "a photo of a large {}.",
    "a rendition of a {}.",
    "a photo of a nice {}.",
    "a photo of a weird {}.",
    "a blurry photo of a {}.",
    "a cartoon {}.",
    "art of a {}.",
    "a sketch of the {}.",
    "a embroidered {}.",
    "a pixelated photo of a {}.",
    "itap of the {}.",
    "a jpeg corrupted photo of the {}.",
    "a good photo of a {}.",
    "a plushie {}.",
    "a photo of the nice {}.",
    "a photo of the small {}.",
    "a photo of the weird {}.",
    "the cartoon {}.",
    "art of the {}.",
    "a drawing of the {}.",
    "a photo of the large {}.",
    "a black and white photo of a {}.",
    "the plushie {}.",
    "a dark photo of a {}.",
    "itap of a {}.",
    "graffiti of the {}.",
    "a toy {}.",
    "itap of my {}.",
    "a photo of a cool {}.",
    "a photo of a small {}.",
    "a tattoo of the {}.",
)

IMAGENET_TEMPLATES_SELECT = (
    "itap of a {}.",
    "a bad photo of the {}.",
    "a origami {}.",
    "a photo of the large {}.",
    "a {} in a video game.",
    "art of the {}.",
    "a photo of the small {}.",
    "A photo of a {} in the scene",
)

TEMPLATE_SETS = {
    "single": SINGLE_TEMPLATE,
    "imagenet": IMAGENET_TEMPLATES,
    "imagenet_select": IMAGENET_TEMPLATES_SELECT,
}


def get_templates(kind: str) -> tuple[str, ...]:
    """Templates for an official ``PROMPT_ENSEMBLE_TYPE``."""
    try:
        return TEMPLATE_SETS[kind]
    except KeyError:
        raise ValueError(f"unknown prompt ensemble {kind!r}; choose one of {sorted(TEMPLATE_SETS)}") from None


def check_template_count(templates: Sequence[str], prompt_channel: int, *, variant: str | None = None) -> None:
    """CAT-Seg's own rule on templates (every other one is :func:`ovseg_models.vocabulary.validate_templates`'):
    a model with ``prompt_channel`` > 1 takes exactly that many, one per cost-volume channel; a
    one-channel model averages any number. Raises :class:`~ovseg_models.vocabulary.VocabularyError`."""
    if prompt_channel not in (1, len(templates)):
        model = f"CAT-Seg variant {variant}" if variant else "this CAT-Seg model"
        raise VocabularyError(
            f"{model} uses {prompt_channel} prompt templates as cost-volume channels, one each; "
            f"give exactly {prompt_channel} (or the model's default templates), got {len(templates)}"
        )
