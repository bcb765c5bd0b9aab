"""One small public factory, in the spirit of open_clip's ``create_model_and_transforms``.

``create_segmenter("fcclip", variant="convnext_large_d_320", checkpoint="fcclip_cocopan.pth")``
returns a ready :class:`~ovseg_models.segmenter.Segmenter`. Each model family provides a
builder ``build_segmenter(*, variant, checkpoint, pretrained, device, precision, **options)``;
model hyperparameters live as data in each family's ``configs`` (see ``list_variants``).
"""

from __future__ import annotations

from typing import Any

from .families import get_family as _family
from .families import list_families
from .segmenter import Segmenter

__all__ = ["create_segmenter", "list_models", "list_variants"]


def list_models() -> list[str]:
    """The registered model families (:mod:`ovseg_models.families`)."""
    return list_families()


def list_variants(model: str) -> list[str]:
    """The variants (backbone configurations) a model family offers."""
    return sorted(_family(model).variants)


def create_segmenter(
    model: str,
    *,
    variant: str | None = None,
    checkpoint: str | None = None,
    weights: Any = None,
    pretrained: str | bool | None = True,
    device: str = "cpu",
    precision: str = "fp32",
    backend: str = "torch",
    onnx: str | None = None,
    compile: bool = False,
    **options: Any,
) -> Segmenter:
    """Build a segmenter.

    Args:
        model: a registered family (:func:`list_models`), e.g. ``"fcclip"``.
        variant: backbone configuration (default: the paper's main model); see :func:`list_variants`.
        checkpoint: path of an official released checkpoint (detectron2 ``.pth``/``.pkl``) or one
            saved by this project. ``None`` leaves the head randomly initialised (a warning says so).
        weights: an official release by name (:mod:`ovseg_models.weights`, e.g. ``"catseg_vitb16_cocostuff"``):
            fetched through ``huggingface_hub`` (cached) or found in the weights folder; sets the variant.
        pretrained: CLIP weights: ``True`` for the variant's official open_clip tag, a tag or a local
            file path, or ``False``/``None`` for random CLIP weights (tests, offline machines).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
        precision: ``"fp32"``, or autocast: ``"bf16"`` (CUDA, or a CPU with native bf16:
            :func:`~ovseg_models.segmenter.cpu_has_bf16`) or ``"fp16"`` (CUDA).
        backend: ``"torch"``, or ``"onnxruntime"``: the image network runs from the file ``onnx``
            (written by :func:`ovseg_models.export.export_onnx` / ``ovseg-export`` from the same
            weights, checked); text encoding and pre/post-processing stay in PyTorch.
        onnx: the exported file (``backend="onnxruntime"``).
        compile: ``torch.compile`` the network's stages (:meth:`Segmenter.compile`, torch backend;
            each input size compiles at its first frame).
        **options: family-specific options (resizing policy, thresholds, ensemble weights...).
    """
    family = _family(model)
    if weights is not None:
        from .weights import get_weights

        if checkpoint is not None:
            raise ValueError("give either checkpoint= or weights=, not both")
        release = get_weights(weights)
        if family is not _family(release.model):
            raise ValueError(f"weights {release.name!r} are a {release.model} release, not {model}")
        if variant is not None and variant != release.variant:
            raise ValueError(f"weights {release.name!r} are variant {release.variant!r}, not {variant!r}")
        variant, checkpoint = release.variant, str(release.fetch())
    if backend not in ("torch", "onnxruntime"):
        raise ValueError(f"backend must be 'torch' or 'onnxruntime', got {backend!r}")
    if (backend == "onnxruntime") != (onnx is not None):
        raise ValueError("backend='onnxruntime' needs onnx=<exported file>, and onnx= needs that backend")
    if compile and backend != "torch":
        raise ValueError(f"compile=True applies to the torch backend, not {backend!r}")
    segmenter = family.build_segmenter(
        variant=variant, checkpoint=checkpoint, pretrained=pretrained, device=device, precision=precision, **options
    )
    if onnx is not None:
        from .export import use_onnxruntime

        use_onnxruntime(segmenter, onnx)
    if compile:
        segmenter.compile()
    return segmenter
