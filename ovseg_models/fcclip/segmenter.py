"""FC-CLIP behind the shared :class:`~ovseg_models.segmenter.Segmenter` API."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..embeddings import normalize
from ..segmenter import EncodedVocabulary, Segment, SegmentationResult, Segmenter, StageTimer, upload
from ..text import TextEmbeddingCache, build_text_classifier, get_templates
from ..transforms import resize_image, resize_shortest_edge_shape
from ..vocabulary import Vocabulary
from .backbone import CLIPTextEncoder
from .config import FCCLIPConfig
from .model import FCCLIP
from .postprocess import instance_inference, panoptic_inference, resize_masks, semantic_inference, semantic_score

__all__ = ["FCCLIPSegmenter"]

log = logging.getLogger(__name__)

OUTPUTS = ("semantic", "panoptic", "instance")

#: smallest network input side: the backbone's output stride (one feature row or column)
MIN_MODEL_SIDE = 32


def pad_to_min_side(batch: torch.Tensor, side: int) -> torch.Tensor:
    """Zero-pad a normalised (B, 3, H, W) batch at the bottom/right to at least ``side`` per side
    (zeros after normalisation, as the official padding)."""
    h, w = batch.shape[-2:]
    if h >= side and w >= side:
        return batch
    return torch.nn.functional.pad(batch, (0, max(0, side - w), 0, max(0, side - h)))


class FCCLIPSegmenter(Segmenter):
    """FC-CLIP: ``set_vocabulary([...])`` then ``predict(rgb_uint8)``.

    Args:
        model: an :class:`FCCLIP` network with weights loaded.
        config: its configuration (thresholds, resize policy defaults, templates).
        min_size / max_size: test resize (shortest edge, longest-edge cap); official 800 / 1333.
            ``min_size=None`` keeps the input resolution (still capped by ``max_size``).
        templates: prompt template set name or list (default: the config's, ViLD's 14).
        outputs: subset of ("semantic", "panoptic", "instance") computed by ``predict``.
        text_cache: shared :class:`TextEmbeddingCache` (a private one by default).
        class_agnostic: prompt-free panoptic segments (see
            :func:`~ovseg_models.fcclip.postprocess.panoptic_inference`): each segment one mask
            query scored by its objectness, nothing merged by class; overridable per ``predict``.

    ``separable_resize`` (default True): masks reach the output size by the composed separable
    resize of :func:`~ovseg_models.fcclip.postprocess.resize_masks`; False: the official steps.
    """

    family = "fcclip"
    model: FCCLIP
    separable_resize = True
    #: what the backbone, the pixel decoder and the mask classification freed, returned before the
    #: next stage allocates on top of it: RN50 case0's peak 1.81 -> 1.75 GB (medians of 8) for
    #: 3-5% of the call's time (the next stage faults its pages in again); releasing after every
    #: stage cost 5-6%. ``frozenset()``: only after the call, which costs nothing measurable.
    release_after_stages = frozenset({"backbone", "pixel_decoder", "classifiers"})

    def __init__(
        self,
        model: FCCLIP,
        *,
        config: FCCLIPConfig,
        device="cpu",
        precision="fp32",
        min_size: int | None = None,
        max_size: int | None = None,
        templates: str | Sequence[str] | None = None,
        outputs: Sequence[str] = ("semantic", "panoptic"),
        text_cache: TextEmbeddingCache | None = None,
        text_batch_size: int = 256,
        class_agnostic: bool = False,
    ):
        super().__init__(model, device=device, precision=precision)
        self.class_agnostic = bool(class_agnostic)
        self.config = config
        self.min_size = config.min_size_test if min_size is None else (min_size or None)
        self.max_size = config.max_size_test if max_size is None else (max_size or None)
        self.templates = get_templates(templates if templates is not None else config.templates)
        bad = set(outputs) - set(OUTPUTS)
        if bad:
            raise ValueError(f"unknown outputs {sorted(bad)}; choose from {OUTPUTS}")
        self.outputs = tuple(outputs)
        self.text_cache = text_cache if text_cache is not None else TextEmbeddingCache()
        self.text_encoder = CLIPTextEncoder(self.model.backbone)
        self.text_batch_size = text_batch_size
        self.refresh_model_key()

    def text_tower(self) -> dict[str, torch.Tensor]:
        """CLIP's text weights (everything but ``visual.*``): they define the embedding space."""
        return {k: v for k, v in self.model.backbone.clip_model.state_dict().items() if not k.startswith("visual.")}

    def refresh_model_key(self) -> str:
        key = super().refresh_model_key()
        self.text_encoder.cache_key = key  # the embedding cache is keyed by the same identity
        return key

    # -- vocabulary -------------------------------------------------------------------------------
    def _templates_for(self, vocabulary: Vocabulary) -> tuple[str, ...]:
        return get_templates(vocabulary.templates) if vocabulary.templates else self.templates

    def text_encodings(self, vocabulary: Vocabulary) -> int:
        """Distinct synonyms x templates: one sentence each."""
        return len({s for c in vocabulary for s in c.synonyms}) * len(self._templates_for(vocabulary))

    def _encode_vocabulary(self, vocabulary: Vocabulary, *, cancel=None) -> dict[str, Any]:
        templates = self._templates_for(vocabulary)
        synonyms = [s for c in vocabulary for s in c.synonyms]
        classifier = build_text_classifier(
            self.text_encoder,
            synonyms,
            templates,
            cache=self.text_cache,
            batch_size=self.text_batch_size,
            cancel=cancel,
        )
        unknown = [i for i, c in enumerate(vocabulary) if c.seen is None]
        seen = [bool(c.seen) for c in vocabulary]
        if unknown:
            from ..data.class_names import seen_mask

            auto = seen_mask([vocabulary[i].synonyms for i in unknown], self.config.training_dataset)
            for i, s in zip(unknown, auto, strict=False):
                seen[i] = bool(s)
        return {
            "text_classifier": classifier.to(self.device),
            "num_synonyms": [len(c.synonyms) for c in vocabulary],
            "seen": torch.tensor(seen, dtype=torch.bool, device=self.device),
            "is_thing": [bool(c.is_thing) for c in vocabulary],
            "templates": templates,
        }

    def _encode_text(self, texts: list[str], templates: tuple[str, ...] | None) -> torch.Tensor:
        """The classifier rows these texts would get as synonyms: the text side of the
        out-of-vocabulary branch, whose pooled mask features are the segments' embeddings."""
        return build_text_classifier(
            self.text_encoder,
            texts,
            templates or self.templates,
            cache=self.text_cache,
            batch_size=self.text_batch_size,
        )

    def compile_targets(self) -> list[torch.nn.Module]:
        """The backbone and the pixel decoder: most of the arithmetic, and shapes set by the
        camera's resolution alone, so each resolution compiles once. Not the transformer decoder
        and the classifiers: they take the vocabulary (its size and its synonym counts, plain
        ints that compiled code is specialised on), and each new vocabulary compiled parts of
        them again (the tiny model: a new graph at every vocabulary size, up to PyTorch's
        recompile limit), which would stall a robot at every vocabulary switch."""
        return [self.model.backbone, self.model.pixel_decoder]

    # -- inference --------------------------------------------------------------------------------
    def preprocess(self, image: torch.Tensor) -> torch.Tensor:
        """HxWx3 uint8 -> resized 3xhxw uint8 (official test resize policy).

        An extreme aspect ratio can make the short side of the resized image a few pixels (or
        round to 0): it is kept at least 1 pixel, and :meth:`_predict` pads the network input up to
        :data:`MIN_MODEL_SIDE`, so any image :func:`~ovseg_models.segmenter.as_rgb_uint8` accepts runs.
        """
        h, w = int(image.shape[0]), int(image.shape[1])
        size = resize_shortest_edge_shape(h, w, self.min_size, self.max_size)
        return resize_image(image, (max(1, size[0]), max(1, size[1]))).permute(2, 0, 1)

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
        outputs: Sequence[str] | None = None,
        return_class_scores: bool = False,
        embeddings: bool = False,
        class_agnostic: bool | None = None,
        **options,
    ) -> list[SegmentationResult]:
        """Images whose model inputs have one size run as one batch (no padding between images,
        so each result equals :meth:`_predict`'s up to float rounding); others on their own.
        ``embeddings``: keep each query's CLIP embedding (``result.query_embeddings``) and the
        whole image's (``result.image_embedding``, PyTorch backend)."""
        if options:
            raise TypeError(f"unknown predict options: {sorted(options)}")
        outputs = self.outputs if outputs is None else tuple(outputs)
        t = encoded.tensors
        with timer("preprocess"):
            resized = [self.preprocess(im) for im in images]
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, r in enumerate(resized):
            groups.setdefault(tuple(r.shape), []).append(i)
        results: list[SegmentationResult | None] = [None] * len(images)
        for members in groups.values():
            with timer("preprocess"):
                batch, sizes = self.model.normalize_and_pad([upload(resized[i], self.device) for i in members])
                batch = pad_to_min_side(batch, MIN_MODEL_SIDE)
            # the whole image's embedding: PyTorch only (the exported graph has no such output)
            extra = {"image_size": sizes[0]} if embeddings and self.network is self.model else {}
            out = self.network(batch, t["text_classifier"], t["num_synonyms"], t["seen"], timer=timer, **extra)
            with timer("postprocess"), torch.autocast(self.device.type, enabled=False):
                for j, i in enumerate(members):
                    result = self.postprocess(
                        out["mask_cls"][j].float(),
                        out["pred_masks"][j].float(),
                        padded_size=tuple(batch.shape[-2:]),
                        image_size=sizes[j],
                        output_size=output_sizes[i],
                        vocabulary=encoded.vocabulary,
                        is_thing=t["is_thing"],
                        outputs=outputs,
                        return_class_scores=return_class_scores,
                        class_agnostic=self.class_agnostic if class_agnostic is None else class_agnostic,
                    )
                    if embeddings:
                        result.query_embeddings = out["pooled_clip_feature"][j].float().cpu()
                        if "image_embedding" in out:
                            result.image_embedding = normalize(out["image_embedding"][j]).cpu()
                    results[i] = result
        return [r for r in results if r is not None]

    def postprocess(
        self,
        mask_cls: torch.Tensor,
        pred_masks: torch.Tensor,
        *,
        padded_size,
        image_size,
        output_size,
        vocabulary: Vocabulary,
        is_thing: Sequence[bool],
        outputs: Sequence[str] = OUTPUTS,
        return_class_scores: bool = False,
        class_agnostic: bool = False,
    ) -> SegmentationResult:
        cfg = self.config
        masks = resize_masks(pred_masks, padded_size, image_size, output_size, separable=self.separable_resize)
        masks = masks.sigmoid_()  # once for every output below (``probabilities=True``)
        sem = semantic_inference(mask_cls, masks, probabilities=True)
        semantic, score = semantic_score(sem, masks, probabilities=True)
        result = SegmentationResult(semantic=semantic.to(torch.int32).cpu().numpy(), score=score.float().cpu().numpy())
        if return_class_scores:
            result.class_scores = sem.float().cpu()
        if "panoptic" in outputs:
            pan = panoptic_inference(
                mask_cls,
                masks,
                is_thing,
                object_mask_threshold=cfg.object_mask_threshold,
                overlap_threshold=cfg.overlap_threshold,
                class_agnostic=class_agnostic,
                probabilities=True,
            )
            pan_np = pan.panoptic_seg.cpu().numpy()
            result.panoptic = pan_np
            result.segments = [_segment(s, pan_np, vocabulary) for s in pan.segments]
        if "instance" in outputs:
            inst = instance_inference(mask_cls, masks, is_thing, topk=cfg.test_topk_per_image, probabilities=True)
            result.instances = {k: v.cpu() for k, v in inst.items()}
        return result


def _segment(s: dict, panoptic: np.ndarray, vocabulary: Vocabulary) -> Segment:
    ys, xs = np.nonzero(panoptic == s["id"])
    if len(ys):
        bbox = (int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1))
    else:  # pragma: no cover - official rule guarantees pixels
        bbox = (0, 0, 0, 0)
    return Segment(
        id=int(s["id"]),
        category=int(s["category_id"]),
        label=vocabulary[s["category_id"]].name,
        score=float(s["score"]),
        area=int(len(ys)),
        bbox=bbox,
        is_thing=bool(s["isthing"]),
        queries=(int(s["query"]), *(int(q) for q in s["merged_queries"])),
    )
