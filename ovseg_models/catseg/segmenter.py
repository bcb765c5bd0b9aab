"""CAT-Seg behind the shared :class:`~ovseg_models.segmenter.Segmenter` API.

CAT-Seg is a semantic segmenter: ``SegmentationResult.semantic`` is the per-pixel argmax of the
per-class scores (the official ``sem_seg``, sigmoid probabilities), ``score`` their maximum,
``class_scores`` the (K, H, W) maps when they fit the memory budget; no panoptic output.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..segmenter import EncodedVocabulary, SegmentationResult, Segmenter, StageTimer
from ..text.classifier import check_cancel
from ..vocabulary import Vocabulary, validate_templates
from .inference import InferenceOptions, run_inference_batch
from .templates import check_template_count, get_templates

if TYPE_CHECKING:
    from .model import CATSeg

__all__ = ["CATSegSegmenter", "CATSegTextEncoder"]


class CATSegTextEncoder:
    """Class-name embeddings with a cache per (template set, name).

    ``encode(names)`` returns L2-normalised embeddings ``(T, P, C)``: one row per template when
    the model has ``P`` prompt channels, or the normalised mean over the templates when it has one
    channel (the official ensembling). Only names not seen before with the same templates are
    run through the text tower; :attr:`encoded_names` counts them.
    """

    def __init__(
        self, model, *, templates: Sequence[str] | None = None, synonyms: str | None = None, batch_size: int = 256
    ):
        from open_clip.tokenizer import SimpleTokenizer

        synonyms = synonyms or getattr(model.cfg, "text_synonyms", "first")  # the variant's official protocol
        if synonyms not in ("first", "mean"):
            raise ValueError(f"synonyms must be 'first' (official) or 'mean', got {synonyms!r}")
        self.model = model
        self.templates = validate_templates(templates) if templates else get_templates(model.cfg.prompt_ensemble_type)
        check_template_count(self.templates, model.cfg.prompt_channel)
        self.synonyms = synonyms
        self.batch_size = batch_size
        self._tokenizer = SimpleTokenizer()
        self._cache: dict[tuple[tuple[str, ...], str], torch.Tensor] = {}
        self._lock = threading.Lock()
        self.encoded_names = 0

    def clear_cache(self) -> None:
        """Forget cached embeddings (needed after the text tower's weights change)."""
        with self._lock:
            self._cache.clear()

    clear = clear_cache  # what ovseg_models.bench calls on ``segmenter.text_cache``

    def sentences(self, names: Sequence[str] | Sequence[Sequence[str]], templates: Sequence[str] | None = None) -> int:
        """Sentences :meth:`encode` runs through the text tower for these classes (cache ignored)."""
        templates = tuple(templates) if templates else self.templates
        classes = [[n] if isinstance(n, str) else list(n) for n in names]
        if self.synonyms == "first":
            classes = [c[:1] for c in classes]
        return len({s for c in classes for s in c}) * len(templates)

    def _encode_missing(self, names: list[str], templates: tuple[str, ...], cancel=None) -> None:
        dev = next(self.model.parameters()).device
        with self._lock:
            missing = [n for n in dict.fromkeys(names) if (templates, n) not in self._cache]
        per = max(1, self.batch_size // len(templates))
        for i in range(0, len(missing), per):
            check_cancel(cancel)
            chunk = missing[i : i + per]
            sentences = [t.format(n) for n in chunk for t in templates]
            tokens = self._tokenizer(sentences, context_length=self.model.clip_model.context_length).to(dev)
            emb = self.model.encode_text(tokens).float().reshape(len(chunk), len(templates), -1).cpu()
            with self._lock:
                for n, e in zip(chunk, emb, strict=False):
                    self._cache[(templates, n)] = e
                self.encoded_names += len(chunk)

    def encode(
        self,
        names: Sequence[str] | Sequence[Sequence[str]],
        templates: Sequence[str] | None = None,
        *,
        cancel: threading.Event | None = None,
    ) -> torch.Tensor:
        """Embeddings for class names (a name, or a list of synonyms per class).

        ``cancel`` is checked before every text batch (:class:`~ovseg_models.text.EncodingCancelled`)."""
        templates = tuple(templates) if templates else self.templates
        check_template_count(templates, self.model.cfg.prompt_channel)  # before any text is encoded
        classes = [[n] if isinstance(n, str) else list(n) for n in names]
        if self.synonyms == "first":
            classes = [c[:1] for c in classes]
        self._encode_missing([s for c in classes for s in c], templates, cancel)
        with self._lock:
            rows = []
            for c in classes:
                e = torch.stack([self._cache[(templates, s)] for s in c])  # (S, P, C)
                if len(c) > 1:
                    e = e.mean(dim=0)
                    e = e / e.norm(dim=-1, keepdim=True)
                else:
                    e = e[0]
                rows.append(e)
        text = torch.stack(rows)  # (T, P, C)
        if text.shape[1] != self.model.cfg.prompt_channel:  # one channel: the templates' ensemble
            text = text.mean(dim=1, keepdim=True)
            text = text / text.norm(dim=-1, keepdim=True)
        return text


class CATSegSegmenter(Segmenter):
    """CAT-Seg segmenter. Options (constructor defaults, overridable per ``predict`` call):

    * ``sliding_window`` (True: the official evaluation protocol; False: plain resize, ~5x faster)
    * ``pooling_size`` (None: (1, 1) with the sliding window as ``eval.sh``, config default otherwise)
    * ``chunk_classes`` (None: automatic from a memory budget)
    * ``class_scores``: ``True``/``False``/``"auto"`` (keep (K, H, W) maps when they take at most
      ``max_class_score_bytes``)
    * ``min_size`` / ``max_size``: test-mapper shortest edge / longest-edge limit (default 640 / 2560)
    """

    family = "catseg"
    model: CATSeg

    _OPTIONS = (
        "sliding_window",
        "pooling_size",
        "chunk_classes",
        "class_scores",
        "max_class_score_bytes",
        "min_size",
        "max_size",
        "embeddings",
    )

    def __init__(
        self,
        model,
        *,
        device: str | torch.device = "cpu",
        precision: str = "fp32",
        templates: Sequence[str] | None = None,
        synonyms: str | None = None,
        sliding_window: bool = True,
        pooling_size: tuple[int, int] | None = None,
        chunk_classes: int | None = None,
        class_scores: bool | str = "auto",
        max_class_score_bytes: int = 512 * 2**20,
        min_size: int | None = None,
        max_size: int | None = None,
    ):
        super().__init__(model, device=device, precision=precision)
        self.text_encoder = CATSegTextEncoder(self.model, templates=templates, synonyms=synonyms)
        self.refresh_model_key()
        self.text_cache = self.text_encoder  # ``.clear()`` empties the per-name embedding cache
        self.defaults = {
            "sliding_window": sliding_window,
            "pooling_size": pooling_size,
            "chunk_classes": chunk_classes,
            "class_scores": class_scores,
            "max_class_score_bytes": max_class_score_bytes,
            "min_size": min_size,
            "max_size": max_size,
        }

    def text_tower(self) -> dict[str, torch.Tensor]:
        """CLIP's text weights (everything but ``visual.*``; CAT-Seg fine-tunes them)."""
        return {k: v for k, v in self.model.clip_model.state_dict().items() if not k.startswith("visual.")}

    def _model_key_extra(self) -> str:
        return f"p{self.model.cfg.prompt_channel}"  # the encoded tensors are (T, prompt_channel, C)

    def refresh_model_key(self) -> str:
        old = self.model_key
        key = super().refresh_model_key()
        if key != old and hasattr(self, "text_encoder"):
            self.text_encoder.clear_cache()  # its cache holds embeddings of the previous weights
        return key

    def text_encodings(self, vocabulary: Vocabulary) -> int:
        return self.text_encoder.sentences(vocabulary.synonyms, vocabulary.templates)

    def _encode_vocabulary(self, vocabulary: Vocabulary, *, cancel=None) -> dict[str, Any]:
        text = self.text_encoder.encode(vocabulary.synonyms, vocabulary.templates, cancel=cancel)
        return {"text": text, "templates": vocabulary.templates or self.text_encoder.templates}

    def _encode_text(self, texts: list[str], templates: tuple[str, ...] | None) -> torch.Tensor:
        """Each text as a class name, averaged over the templates' prompt channels: the space of the
        dense features the cost volume compares with the text."""
        from ..embeddings import normalize

        return normalize(self.text_encoder.encode(texts, templates).mean(dim=1))

    def compile_targets(self) -> list[torch.nn.Module]:
        """CLIP's image transformer blocks (the last one runs its dense variant, uncompiled):
        their shapes are the 384x384 views', whatever the camera and the vocabulary, so they
        compile once. Not the aggregator: its shapes follow the vocabulary's size and the
        class chunks, and each new size compiled again (the tiny model: four vocabulary sizes,
        four compilations of its Swin and class-attention blocks, 20-40 s each on this CPU), which
        would stall a robot at every vocabulary switch."""
        blocks = self.model.clip_model.visual.transformer.resblocks
        return list(blocks)[:-1]

    def _inference_options(self, options: dict, sizes: list[tuple[int, int]], k: int) -> tuple[InferenceOptions, bool]:
        unknown = sorted(set(options) - set(self._OPTIONS))
        if unknown:
            raise TypeError(f"unknown CAT-Seg option(s) {unknown}; known: {list(self._OPTIONS)}")
        o = {**self.defaults, **options}
        keep = o["class_scores"]
        if keep == "auto":
            keep = all(k * h * w * 4 <= o["max_class_score_bytes"] for h, w in sizes)
        elif not isinstance(keep, bool):
            raise ValueError(f"class_scores must be True, False or 'auto', got {keep!r}")
        o.pop("embeddings", None)
        opts = InferenceOptions(
            sliding_window=bool(o["sliding_window"]),
            pooling_size=tuple(o["pooling_size"]) if o["pooling_size"] else None,
            chunk_classes=o["chunk_classes"],
            min_size=o["min_size"],
            max_size=o["max_size"],
        )
        return opts, keep

    @staticmethod
    def _result(acc) -> SegmentationResult:
        return SegmentationResult(
            semantic=acc.label.to(torch.int32).cpu().numpy(),
            score=acc.best.float().cpu().numpy().astype(np.float32),
            class_scores=acc.scores.cpu() if acc.scores is not None else None,
            dense_embeddings=acc.dense.float().cpu() if acc.dense is not None else None,
            image_embedding=acc.image_embedding.cpu() if acc.image_embedding is not None else None,
        )

    def _predict(
        self,
        image: torch.Tensor,
        encoded: EncodedVocabulary,
        timer: StageTimer,
        *,
        output_size: tuple[int, int],
        **options,
    ) -> SegmentationResult:
        return self._predict_batch([image], encoded, timer, output_sizes=[output_size], **options)[0]

    def _predict_batch(
        self,
        images: list[torch.Tensor],
        encoded: EncodedVocabulary,
        timer: StageTimer,
        *,
        output_sizes: list[tuple[int, int]],
        **options,
    ) -> list[SegmentationResult]:
        opts, keep = self._inference_options(options, output_sizes, len(encoded))
        accs = run_inference_batch(
            self.model,
            images,
            encoded.tensors["text"],
            opts,
            sizes=output_sizes,
            keep_scores=keep,
            timer=timer,
            embeddings=bool(options.get("embeddings", False)),
            network=self.network,
        )
        return [self._result(a) for a in accs]
