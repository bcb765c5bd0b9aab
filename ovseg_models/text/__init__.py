"""Text side shared by the models: prompt templates and cached text classifiers."""

from .classifier import EncodingCancelled, TextEmbeddingCache, TextEncoder, build_text_classifier, templates_key
from .templates import OPENAI_TEMPLATES, TEMPLATE_SETS, VILD_TEMPLATES, get_templates, validate_templates

__all__ = [
    "EncodingCancelled",
    "OPENAI_TEMPLATES",
    "TEMPLATE_SETS",
    "TextEmbeddingCache",
    "TextEncoder",
    "VILD_TEMPLATES",
    "build_text_classifier",
    "get_templates",
    "templates_key",
    "validate_templates",
]
