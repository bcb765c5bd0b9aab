"""The segmenter API shared by FC-CLIP and CAT-Seg.

A :class:`Segmenter` wraps one model (an ``nn.Module``) with its preprocessing, its text
encoder and its post-processing. It is used in two steps, which is what lets the ROS node
switch vocabularies atomically between frames:

1. ``encoded = segmenter.encode_vocabulary(vocabulary)``: computes (and caches per sentence)
   the text embeddings. Pure with respect to the segmenter's state; may run on another thread.
2. ``result = segmenter.predict(image, vocabulary=encoded)``: one forward pass with exactly
   that vocabulary. ``set_vocabulary`` makes an encoded vocabulary the default for ``predict``.

Subclasses implement ``_encode_vocabulary`` and ``_predict``; input validation, vocabulary
handling and timings live here.
"""

from __future__ import annotations

import abc
import dataclasses
import hashlib
import inspect
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .host_memory import release_free_memory
from .text.classifier import EncodingCancelled, check_cancel
from .transforms import nearest_indices, resize_shortest_edge_shape
from .vocabulary import Vocabulary, VocabularyClass, VocabularyError

__all__ = [
    "EncodedVocabulary",
    "EncodingCancelled",
    "MAX_TEXT_ENCODINGS",
    "ImageError",
    "MAX_IMAGE_PIXELS",
    "MIN_IMAGE_SIDE",
    "Segment",
    "SegmentationResult",
    "Segmenter",
    "StageTimer",
    "as_rgb_uint8",
    "check_precision",
    "cpu_has_bf16",
    "expand_result",
    "expand_segments",
    "text_tower_digest",
    "upload",
]

#: largest accepted input, in pixels (8K UHD). Larger frames are refused, not silently resized.
MAX_IMAGE_PIXELS = 7680 * 4320
#: smallest accepted side, in pixels. Any aspect ratio is accepted (the models pad what they need
#: and crop their outputs back); only a side of a single pixel, which has no 2-D structure, is refused.
MIN_IMAGE_SIDE = 2


#: most text encodings (sentences: names x templates) one vocabulary may cost, unless trusted
#: (a published benchmark list). About 3 minutes of ConvNeXt-L text tower on a CPU core pair.
MAX_TEXT_ENCODINGS = 20_000


class ImageError(ValueError):
    """An input image was refused; the message says why."""


def cpu_has_bf16() -> bool:
    """Whether this CPU computes in bf16 natively (AVX512-BF16 or AMX), as oneDNN's bf16
    convolutions and GEMMs need to be faster than fp32 (elsewhere bf16 is emulated, and slower)."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, p, lambda: False)()) for p in probes)


def check_precision(precision: str, device: torch.device | str) -> None:
    """Refuse, with what to do, a precision the device cannot run: fp16 autocast is CUDA's; bf16
    runs on CUDA and on CPUs with native bf16 (:func:`cpu_has_bf16`)."""
    device = torch.device(device)
    if precision not in ("fp32", "fp16", "bf16"):
        raise ValueError(f"precision must be fp32, fp16 or bf16, got {precision!r}")
    if precision == "fp32" or device.type == "cuda":
        return
    if precision == "bf16" and device.type == "cpu":
        if not cpu_has_bf16():
            raise ValueError(
                "bf16 on this CPU: it has no native bf16 instructions (AVX512-BF16 or AMX), so bf16 "
                "would be emulated and slower than fp32; use fp32"
            )
        return
    raise ValueError(
        f"{precision} autocast is supported on CUDA (bf16 also on CPUs with native bf16); use fp32 on {device}"
    )


def upload(tensor: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """``tensor`` on ``device``. A host tensor bound for CUDA goes through pinned (page-locked)
    memory, so the copy is asynchronous: the host goes on while it runs, and the GPU's next
    kernels wait for it on the stream (PyTorch caches the pinned blocks, so a frame of the size
    seen before allocates nothing)."""
    device = torch.device(device)
    if device.type == "cuda" and tensor.device.type == "cpu":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


def as_rgb_uint8(image: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Validate an RGB uint8 image (HxWx3 numpy/tensor, or 3xHxW tensor) and return HxWx3 uint8 tensor."""
    if isinstance(image, np.ndarray):
        a = np.ascontiguousarray(image)
        t = torch.from_numpy(a if a.flags.writeable else a.copy())  # read-only arrays (e.g. from ROS buffers)
    elif isinstance(image, torch.Tensor):
        t = image
    else:
        raise ImageError(f"expected a numpy array or torch tensor, got {type(image).__name__}")
    if t.dtype != torch.uint8:
        raise ImageError(
            f"expected dtype uint8 (RGB 0-255), got {t.dtype}; convert first, "
            "e.g. (img * 255).round().astype(np.uint8) for float images in [0, 1]"
        )
    if t.ndim != 3:
        raise ImageError(f"expected an HxWx3 RGB image, got shape {tuple(t.shape)}")
    if t.shape[-1] != 3:
        if t.shape[0] == 3 and isinstance(image, torch.Tensor):
            t = t.permute(1, 2, 0)
        else:
            raise ImageError(
                f"expected 3 channels (RGB), got shape {tuple(t.shape)}; drop alpha or expand grayscale first"
            )
    h, w = int(t.shape[0]), int(t.shape[1])
    if h == 0 or w == 0:
        raise ImageError(f"empty image ({h}x{w})")
    if min(h, w) < MIN_IMAGE_SIDE:
        raise ImageError(f"image of {h}x{w} is degenerate: both sides must be at least {MIN_IMAGE_SIDE} pixels")
    if h * w > MAX_IMAGE_PIXELS:
        raise ImageError(f"image of {h}x{w} exceeds the limit of {MAX_IMAGE_PIXELS} pixels")
    return t


def text_tower_digest(tensors: torch.nn.Module | dict[str, torch.Tensor]) -> str:
    """Digest of a text tower's weights (every parameter and buffer: names, shapes, dtypes, values).

    Two towers with the same digest map the same sentence to the same embedding, so this is what
    keys encoded vocabularies and text-embedding caches: towers of equal width but different
    weights (RN50 / RN50x64, two fine-tunings of one CLIP) get different keys.
    """
    state = tensors.state_dict() if isinstance(tensors, torch.nn.Module) else dict(tensors)
    h = hashlib.blake2b(digest_size=12)
    for name in sorted(state):
        t = state[name].detach()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        if t.device.type != "meta":
            h.update(t.cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


@dataclass(frozen=True)
class EncodedVocabulary:
    """A vocabulary with the model-specific text embeddings computed from it.

    ``tensors`` is owned by the model (e.g. FC-CLIP's synonym-row classifier and the
    class-to-row index; CAT-Seg's per-class embeddings). Immutable once built.
    """

    vocabulary: Vocabulary
    model_key: str
    tensors: dict[str, Any]
    #: monotonically increasing per segmenter; what outputs report as "vocabulary version".
    version: int = 0
    #: the prompt templates the text was encoded with (the vocabulary's, else the model's)
    templates: tuple[str, ...] = ()
    #: per class: seen in the model's training vocabulary (None: the model does not use it)
    seen: tuple[bool, ...] | None = None

    def __len__(self) -> int:
        return len(self.vocabulary)


@dataclass(frozen=True)
class Segment:
    """One panoptic segment."""

    id: int  #: value of this segment's pixels in the panoptic id map (0 = void)
    category: int  #: index into the vocabulary
    label: str
    score: float
    area: int  #: pixels
    bbox: tuple[int, int, int, int]  #: x, y, width, height in pixels
    is_thing: bool
    #: FC-CLIP: the mask queries whose masks make this segment (one thing query, or the stuff
    #: queries merged into it); what :func:`~ovseg_models.embeddings.segment_embeddings` pools
    queries: tuple[int, ...] = ()


@dataclass
class SegmentationResult:
    """What one forward pass produced, at the input image's resolution."""

    semantic: np.ndarray  #: HxW int32 category index per pixel
    #: HxW float32 probability in [0, 1] of that category at that pixel (what a score threshold
    #: compares with). FC-CLIP: the class probability averaged over the queries weighted by their
    #: mask probabilities at the pixel (``fcclip.postprocess.semantic_score``); CAT-Seg: the
    #: class's sigmoid score (the official ``sem_seg``).
    score: np.ndarray
    panoptic: np.ndarray | None = None  #: HxW int32 segment id (0 = void)
    segments: list[Segment] = field(default_factory=list)
    #: optional (K, H, W) float32 per-class score maps (what the official code calls sem_seg; for
    #: FC-CLIP a sum over queries, not a probability)
    class_scores: torch.Tensor | None = None
    #: optional instance output: dict with "masks" (N,H,W) bool, "scores" (N,), "classes" (N,)
    instances: dict[str, torch.Tensor] | None = None
    #: with ``predict(..., embeddings=True)``, FC-CLIP: (Q, D) CLIP embedding of every mask query
    #: in the text space (see :mod:`ovseg_models.embeddings`)
    query_embeddings: torch.Tensor | None = None
    #: with ``predict(..., embeddings=True)``, CAT-Seg: (D, g, g) L2-normalised dense CLIP
    #: features of the whole image in the text space
    dense_embeddings: torch.Tensor | None = None
    #: with ``predict(..., embeddings=True)`` (PyTorch backend): (D,) L2-normalised CLIP embedding
    #: of the whole image in the text space, CLIP's own image feature (FC-CLIP: its pooling of the
    #: frozen features over the unpadded image; CAT-Seg: the class token through the last block's
    #: attention); None with onnxruntime (the exported graphs do not compute it)
    image_embedding: torch.Tensor | None = None
    vocabulary_version: int = 0
    vocabulary_digest: str = ""
    #: seconds per stage (backbone, pixel_decoder, ..., total)
    timings: dict[str, float] = field(default_factory=dict)


class StageTimer:
    """Accumulates wall time per named stage; synchronises CUDA when timing a GPU model.

    ``after_stage``: called with the stage's name at the end of every stage, outside its time
    (the segmenter's :attr:`Segmenter.release_memory`)."""

    def __init__(
        self,
        device: torch.device | str | None = None,
        enabled: bool = True,
        *,
        after_stage: Callable[[str], object] | None = None,
    ):
        self.times: dict[str, float] = {}
        self.enabled = enabled
        self.after_stage = after_stage
        self._cuda = torch.device(device).type == "cuda" if device is not None else False

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        if not self.enabled:
            yield
            return
        if self._cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        try:
            yield
        finally:
            if self._cuda:
                torch.cuda.synchronize()
            self.times[name] = self.times.get(name, 0.0) + time.perf_counter() - t0
            if self.after_stage is not None:
                self.after_stage(name)


class Segmenter(abc.ABC):
    """Base class: subclasses implement the two abstract methods and :meth:`text_tower`.

    ``model_key`` names the embedding space of the vocabularies this segmenter encodes:
    ``"<family>:<digest of the text tower's weights>"``, computed at construction and again by
    :meth:`refresh_model_key` (call it after loading other weights into ``model``). An
    :class:`EncodedVocabulary` is only accepted by a segmenter with the same key.
    """

    #: model family, the first part of ``model_key``
    family: str = "base"
    model_key: str = "base"
    #: the prompt templates vocabularies without their own are encoded with
    templates: tuple[str, ...] = ()
    #: on CPU, after each call, each vocabulary encoding and the stages named in
    #: :attr:`release_after_stages`, hand the memory freed so far back to the OS
    #: (:func:`~ovseg_models.host_memory.release_free_memory`): a smaller resident set between
    #: frames, and a lower peak where a stage would otherwise start on top of what the allocator
    #: kept from the one before. Part of the call's time, not of its stages'.
    release_memory: bool = True
    #: stages whose freed working set is worth returning before the next stage (each release
    #: makes the next stage fault its pages in again: a family names the ones that pay)
    release_after_stages: frozenset[str] = frozenset()

    def __init__(self, model: torch.nn.Module, *, device: torch.device | str = "cpu", precision: str = "fp32"):
        self.device = torch.device(device)
        check_precision(precision, self.device)
        self.model = model.to(self.device).eval()
        if self.release_memory:  # what building and loading the model freed (CAT-Seg ViT-B: 0.5 GB)
            release_free_memory()
        self._network: Any = None
        self.precision = precision
        #: the ``torch.compile`` backend :meth:`compile` used (None: eager)
        self.compiled: str | None = None
        self._version = 0
        self._lock = threading.Lock()
        self._active: EncodedVocabulary | None = None

    @property
    def network(self) -> Any:
        """What ``predict`` runs between pre- and post-processing: ``model`` (PyTorch), or the
        ONNX Runtime session :func:`ovseg_models.export.use_onnxruntime` put in its place (called
        with the same arguments, returning what post-processing reads)."""
        return self.model if self._network is None else self._network

    @network.setter
    def network(self, value: Any) -> None:
        self._network = None if value is self.model else value

    @property
    def backend(self) -> str:
        """``"torch"`` or ``"onnxruntime"``: what runs :attr:`network`."""
        return "torch" if self._network is None else "onnxruntime"

    # -- compilation ----------------------------------------------------------------------------
    def compile_targets(self) -> list[torch.nn.Module]:
        """The modules :meth:`compile` compiles: the whole model unless a family names its stages
        or repeated blocks (regional compilation: one graph per block type, compiled once)."""
        return [self.model]

    def compile(self, *, backend: str = "inductor", mode: str | None = None, dynamic: bool | None = None) -> Segmenter:
        """``torch.compile`` :meth:`compile_targets` in place (``nn.Module.compile``: the weights,
        their names and so ``model_key`` stay as they are). Returns ``self``.

        Nothing is compiled here: each target compiles at its first call, and again at a new
        input shape. The families name stages whose shapes the camera's resolution sets, not the
        vocabulary, so a vocabulary switch never compiles. ``dynamic=None`` (PyTorch's default)
        compiles the first resolution static and a second one with dynamic sizes;
        ``dynamic=False`` keeps one static graph per resolution (within PyTorch's recompile
        limit, 8 per block). Warm up at every resolution before timing.
        Where it pays: the GPU (fewer kernel launches, fused element-wise work); on this
        project's 2-core CPUs the convolutions and GEMMs dominate and compiling gains little.
        """
        if self.backend != "torch":
            raise ValueError(f"compile applies to the torch backend; this segmenter runs {self.backend}")
        for module in self.compile_targets():
            module.compile(backend=backend, mode=mode, dynamic=dynamic)
        self.compiled = backend
        return self

    # -- identity of the text tower --------------------------------------------------------------
    def text_tower(self) -> torch.nn.Module | dict[str, torch.Tensor] | None:
        """The weights that turn sentences into embeddings (None: ``model_key`` stays the class's)."""
        return None

    def _model_key_extra(self) -> str:
        """Anything besides the text weights that shapes the encoded tensors (e.g. prompt channels)."""
        return ""

    def refresh_model_key(self) -> str:
        """Recompute ``model_key`` from the text tower's weights (after loading a checkpoint)."""
        tower = self.text_tower()
        if tower is not None:
            extra = self._model_key_extra()
            self.model_key = f"{self.family}:{text_tower_digest(tower)}" + (f":{extra}" if extra else "")
        return self.model_key

    def _check_key(self, encoded: EncodedVocabulary) -> None:
        if encoded.model_key != self.model_key:
            raise VocabularyError(
                f"vocabulary was encoded for {encoded.model_key}, not {self.model_key}: it was encoded by a "
                "segmenter with another text tower (other weights or variant); encode it with this one"
            )

    # -- vocabulary -------------------------------------------------------------------------
    #: limit of :meth:`text_encodings` for vocabularies that are not trusted
    max_text_encodings: int = MAX_TEXT_ENCODINGS

    def text_encodings(self, vocabulary: Vocabulary) -> int:
        """Sentences the text tower must encode for ``vocabulary`` (cached ones included): the
        work a request causes. Subclasses count what they encode; 0 means "no text tower"."""
        return 0

    def check_work(self, vocabulary: Vocabulary) -> int:
        """Refuse (:class:`VocabularyError`) a vocabulary that needs more than
        :attr:`max_text_encodings` text encodings, unless it is trusted; return the count."""
        n = self.text_encodings(vocabulary)
        if not vocabulary.trusted and n > self.max_text_encodings:
            raise VocabularyError(
                f"this vocabulary needs {n:,} text encodings (names x prompt templates); the "
                f"limit is {self.max_text_encodings:,}: use fewer classes, synonyms or templates"
            )
        return n

    def encode_vocabulary(
        self,
        vocabulary: Vocabulary | Sequence[str | Sequence[str] | VocabularyClass],
        *,
        cancel: threading.Event | None = None,
    ) -> EncodedVocabulary:
        """Compute text embeddings for a vocabulary (validated first). Thread-safe.

        Refused with :class:`VocabularyError` when it needs more than :attr:`max_text_encodings`
        text encodings (see :meth:`check_work`). ``cancel``: when set (by another thread), the
        encoding stops before its next text batch with :class:`EncodingCancelled`; the segmenter
        and its caches are left consistent and the version counter does not move.
        """
        if not isinstance(vocabulary, Vocabulary):
            vocabulary = Vocabulary.create(vocabulary)
        self.check_work(vocabulary)
        check_cancel(cancel)
        with torch.inference_mode():
            if cancel is not None and self._accepts_cancel():
                tensors = self._encode_vocabulary(vocabulary, cancel=cancel)
            else:
                tensors = self._encode_vocabulary(vocabulary)
        self._release_memory()
        check_cancel(cancel)
        with self._lock:
            self._version += 1
            version = self._version
        templates = tensors.get("templates") or vocabulary.templates or self.templates
        seen = tensors.get("seen")
        return EncodedVocabulary(
            vocabulary,
            self.model_key,
            tensors,
            version,
            templates=tuple(templates or ()),
            seen=tuple(bool(x) for x in (seen.tolist() if hasattr(seen, "tolist") else seen))
            if seen is not None
            else None,
        )

    def set_vocabulary(self, vocabulary) -> EncodedVocabulary:
        """Encode (if needed) and make it the default for :meth:`predict`."""
        encoded = vocabulary if isinstance(vocabulary, EncodedVocabulary) else self.encode_vocabulary(vocabulary)
        self._check_key(encoded)
        self._active = encoded
        return encoded

    @property
    def vocabulary(self) -> EncodedVocabulary | None:
        return self._active

    # -- text queries -----------------------------------------------------------------------
    def encode_text(self, texts: Sequence[str], *, templates: Sequence[str] | None = None) -> torch.Tensor:
        """(N, D) float32 L2-normalised embeddings of ``texts`` in the space of the segments'
        embeddings (``predict(..., embeddings=True)``), averaged over the prompt ``templates``
        (default: the model's). For queries ("red mug"), not vocabularies: at most
        :data:`~ovseg_models.embeddings.MAX_QUERY_TEXTS` texts; ValueError on empty or huge ones."""
        from .embeddings import check_texts

        texts = check_texts(texts)
        if templates is not None:
            from .vocabulary import validate_templates

            templates = validate_templates(templates)
        with torch.inference_mode():
            return self._encode_text(texts, tuple(templates) if templates else None).float().cpu()

    def _encode_text(self, texts: list[str], templates: tuple[str, ...] | None) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no text embeddings")

    # -- inference --------------------------------------------------------------------------
    def predict(
        self,
        image: np.ndarray | torch.Tensor,
        *,
        vocabulary: EncodedVocabulary | None = None,
        max_output_side: int = 0,
        **options,
    ) -> SegmentationResult:
        """Segment one RGB uint8 image with ``vocabulary`` (default: the active one).

        Resizing happens here and nowhere else: the model resizes the image once to its own input
        size (the family's test-time rule), and its scores come out at the image's size or, with
        ``max_output_side``, at that size scaled so the longer side is at most ``max_output_side``;
        the label maps (semantic, score, panoptic, instance masks) are then expanded to the image's
        size by nearest neighbour, with exact segment areas and boxes (see :func:`expand_result`).
        The result is always at the image's resolution.
        """
        return self._run([image], vocabulary, max_output_side, options, batched=False)[0]

    def predict_batch(
        self,
        images: Sequence[np.ndarray | torch.Tensor],
        *,
        vocabulary: EncodedVocabulary | None = None,
        max_output_side: int = 0,
        **options,
    ) -> list[SegmentationResult]:
        """Segment several RGB uint8 images (e.g. one frame per camera) with one vocabulary, in as
        few forward passes as the family can batch them (FC-CLIP: images with one model-input
        size; CAT-Seg: any). Each result equals :meth:`predict` of that image up to float
        rounding; all carry the one vocabulary's version, and every image is checked before any
        runs. ``timings`` are the batch's, and ``timings["batch_size"]`` says how many shared them.
        """
        if len(images) == 0:
            return []
        return self._run(list(images), vocabulary, max_output_side, options, batched=True)

    def _run(self, images, vocabulary, max_output_side, options, *, batched: bool) -> list[SegmentationResult]:
        encoded = vocabulary if vocabulary is not None else self._active
        if encoded is None:
            raise VocabularyError("no vocabulary: call set_vocabulary([...]) or pass vocabulary=")
        self._check_key(encoded)
        if isinstance(max_output_side, bool) or not isinstance(max_output_side, int) or max_output_side < 0:
            raise ValueError(f"max_output_side must be an int >= 0 (0 = the image's size), got {max_output_side!r}")
        rgbs = [as_rgb_uint8(im) for im in images]
        sizes = [(int(r.shape[0]), int(r.shape[1])) for r in rgbs]
        out_sizes = [_output_size(h, w, max_output_side) for h, w in sizes]
        timer = StageTimer(self.device, after_stage=self._after_stage if self._releases_memory else None)
        t0 = time.perf_counter()
        with torch.inference_mode(), self._autocast():
            if batched:
                results = self._predict_batch(rgbs, encoded, timer, output_sizes=out_sizes, **options)
            else:
                results = [self._predict(rgbs[0], encoded, timer, output_size=out_sizes[0], **options)]
        if len(results) != len(rgbs):  # pragma: no cover - a family's contract
            raise RuntimeError(f"{type(self).__name__} returned {len(results)} results for {len(rgbs)} images")
        if any(o != s for o, s in zip(out_sizes, sizes, strict=True)):
            with timer("expand"):
                results = [
                    r if o == s else expand_result(r, s) for r, o, s in zip(results, out_sizes, sizes, strict=True)
                ]
        self._release_memory()
        total = time.perf_counter() - t0
        for r in results:
            r.vocabulary_version = encoded.version
            r.vocabulary_digest = encoded.vocabulary.digest
            r.timings.update(timer.times)
            r.timings["total"] = total
            if batched:
                r.timings["batch_size"] = len(results)
        return results

    def _after_stage(self, name: str) -> None:
        if name in self.release_after_stages:
            release_free_memory()

    @property
    def _releases_memory(self) -> bool:
        return self.release_memory and self.device.type == "cpu"

    def _release_memory(self) -> None:
        if self._releases_memory:
            release_free_memory()

    def _predict_batch(
        self,
        images: list[torch.Tensor],
        encoded: EncodedVocabulary,
        timer: StageTimer,
        *,
        output_sizes: list[tuple[int, int]],
        **options,
    ) -> list[SegmentationResult]:
        """Several images, one vocabulary; by default one :meth:`_predict` after another (a family
        that batches its forward pass overrides this)."""
        return [
            self._predict(im, encoded, timer, output_size=size, **options)
            for im, size in zip(images, output_sizes, strict=True)
        ]

    def _autocast(self):
        if self.precision == "fp32":
            return torch.autocast(self.device.type, enabled=False)
        dtype = torch.float16 if self.precision == "fp16" else torch.bfloat16
        return torch.autocast(self.device.type, dtype=dtype)

    def _accepts_cancel(self) -> bool:
        return "cancel" in inspect.signature(self._encode_vocabulary).parameters

    @abc.abstractmethod
    def _encode_vocabulary(self, vocabulary: Vocabulary, *, cancel: threading.Event | None = None) -> dict[str, Any]:
        """Return the model-specific text tensors for ``vocabulary``; check ``cancel`` between
        text batches (:func:`ovseg_models.text.classifier.check_cancel`)."""

    @abc.abstractmethod
    def _predict(
        self,
        image: torch.Tensor,
        encoded: EncodedVocabulary,
        timer: StageTimer,
        *,
        output_size: tuple[int, int],
        **options,
    ) -> SegmentationResult:
        """Run the model on an HxWx3 uint8 tensor (CPU) and return its outputs at ``output_size``
        (h, w): the image's size or a proportionally smaller one; fill timings through ``timer``."""


def _output_size(h: int, w: int, max_output_side: int) -> tuple[int, int]:
    if max_output_side and max(h, w) > max_output_side:
        oh, ow = resize_shortest_edge_shape(h, w, 0, max_output_side)
        return max(1, oh), max(1, ow)
    return h, w


def expand_result(result: SegmentationResult, size: tuple[int, int]) -> SegmentationResult:
    """``result`` (computed at a proportionally smaller size) expanded to ``size`` (h, w) by nearest
    neighbour: semantic, score, panoptic, class scores and instance masks; segment areas and boxes
    are those of the expanded panoptic map, exactly (a segment no output pixel maps to is dropped)."""
    h, w = size
    hs, ws = np.asarray(result.semantic).shape
    yi, xi = nearest_indices(h, hs), nearest_indices(w, ws)
    grid = np.ix_(yi, xi)
    out = dataclasses.replace(
        result,
        semantic=np.asarray(result.semantic)[grid],
        score=np.asarray(result.score)[grid],
        timings=dict(result.timings),
    )
    if result.panoptic is not None:
        out.panoptic = np.asarray(result.panoptic)[grid]
        out.segments = expand_segments(result.panoptic, result.segments, yi, xi)
    tyi, txi = torch.from_numpy(yi), torch.from_numpy(xi)
    if result.class_scores is not None:
        out.class_scores = result.class_scores[:, tyi][:, :, txi]
    if result.instances is not None:
        out.instances = dict(result.instances)
        out.instances["masks"] = result.instances["masks"][:, tyi][:, :, txi]
    return out


def expand_segments(ids: np.ndarray, segments: Sequence[Segment], yi: np.ndarray, xi: np.ndarray) -> list[Segment]:
    """Exact areas and boxes of ``segments`` of the id map ``ids`` after it is expanded by the index
    maps ``yi``, ``xi`` (:func:`~ovseg_models.transforms.nearest_indices`), without building the
    expanded map: each source pixel counts as many output pixels as map to it."""
    ids = np.asarray(ids)
    hs, ws = ids.shape
    ry = np.bincount(yi, minlength=hs).astype(np.float64)  # output rows per source row
    rx = np.bincount(xi, minlength=ws).astype(np.float64)
    n = int(ids.max()) + 1 if ids.size else 1
    areas = np.bincount(ids.ravel().astype(np.intp), weights=(ry[:, None] * rx[None, :]).ravel(), minlength=n)
    first_y, last_y = np.searchsorted(yi, np.arange(hs), "left"), np.searchsorted(yi, np.arange(hs), "right") - 1
    first_x, last_x = np.searchsorted(xi, np.arange(ws), "left"), np.searchsorted(xi, np.arange(ws), "right") - 1
    out = []
    for s in segments:
        area = int(round(areas[s.id])) if 0 <= s.id < len(areas) else 0
        if area == 0:
            continue
        x, y, bw, bh = s.bbox
        inside = ids[y : y + bh, x : x + bw] == s.id
        rows = np.nonzero(inside.any(axis=1) & (ry[y : y + bh] > 0))[0] + y
        cols = np.nonzero(inside.any(axis=0) & (rx[x : x + bw] > 0))[0] + x
        y0, y1 = int(first_y[rows.min()]), int(last_y[rows.max()])
        x0, x1 = int(first_x[cols.min()]), int(last_x[cols.max()])
        out.append(dataclasses.replace(s, area=area, bbox=(x0, y0, x1 - x0 + 1, y1 - y0 + 1)))
    return out
