"""ovseg_models: open-vocabulary segmentation models (FC-CLIP, CAT-Seg) in plain PyTorch.

No ROS here: researchers train and evaluate with this package alone.

    >>> import ovseg_models
    >>> seg = ovseg_models.create_segmenter("fcclip", variant="rn50", checkpoint="fcclip_cocopan_r50.pth")
    >>> seg.set_vocabulary(["cat, kitty", "wall", "floor, carpet"])
    >>> result = seg.predict(rgb_uint8_image)
    >>> result.semantic, result.segments, result.timings
"""

from . import embeddings
from .factory import create_segmenter, list_models, list_variants
from .segmenter import EncodedVocabulary, EncodingCancelled, ImageError, Segment, SegmentationResult, Segmenter
from .segments import segments_from_semantic
from .vocabulary import Vocabulary, VocabularyClass, VocabularyError

__version__ = "0.1.0"

__all__ = [
    "EncodedVocabulary",
    "EncodingCancelled",
    "ImageError",
    "Segment",
    "SegmentationResult",
    "Segmenter",
    "Vocabulary",
    "VocabularyClass",
    "VocabularyError",
    "create_segmenter",
    "embeddings",
    "list_models",
    "list_variants",
    "segments_from_semantic",
]
