"""FC-CLIP's image network as an ONNX graph, and the adapter that runs it in place of ``FCCLIP``.

Graph inputs: ``images`` [B, 3, H, W] (normalised, padded: ``FCCLIP.normalize_and_pad``),
``text_classifier`` [S, C] (one normalised row per synonym, void excluded), ``synonym_class`` [S]
int64 (each row's class) and ``seen`` [K] bool; B, S and K are dynamic, H and W static. Outputs:
``mask_cls`` [B, Q, K + 1], ``pred_masks`` [B, Q, H/4, W/4], ``pooled_clip_feature`` [B, Q, D]: what
:meth:`~ovseg_models.fcclip.segmenter.FCCLIPSegmenter.postprocess` and the embeddings read.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext

import torch
from torch import nn

from ..fcclip.transformer_decoder import SynonymClasses

OUTPUTS = ("mask_cls", "pred_masks", "pooled_clip_feature")


class FCCLIPGraph(nn.Module):
    """``FCCLIP.forward`` with the vocabulary as tensors (what is exported)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, images, text_classifier, synonym_class, seen):
        out = self.model(images, text_classifier, SynonymClasses(synonym_class, seen.shape[0]), seen)
        return tuple(out[k] for k in OUTPUTS)


def network_input_shape(segmenter, image_size: tuple[int, int]) -> tuple[int, int]:
    """The padded network input of a ``image_size`` frame under the segmenter's test resize."""
    from ..fcclip.segmenter import MIN_MODEL_SIDE

    h, w = (int(s) for s in image_size)
    resized = segmenter.preprocess(torch.zeros((h, w, 3), dtype=torch.uint8))
    d = segmenter.model.size_divisibility
    ph, pw = (-(-int(s) // d) * d if d > 1 else int(s) for s in resized.shape[-2:])
    return max(ph, MIN_MODEL_SIDE), max(pw, MIN_MODEL_SIDE)


def graph(segmenter, image_size):
    if image_size is None:
        raise ValueError("FC-CLIP needs image_size=(height, width): its network input depends on the frame size")
    h, w = network_input_shape(segmenter, image_size)
    model = segmenter.model
    dim = model.void_embedding.weight.shape[1]
    k = 3
    example = (
        torch.zeros((2, 3, h, w)),  # 2: a size-1 dimension would be specialised to 1
        torch.nn.functional.normalize(torch.randn(k + 1, dim), dim=-1),
        torch.tensor([0, 1, 2, 2]),
        torch.tensor([True, False, True]),
    )
    dynamic = {
        "images": {0: "batch"},
        "text_classifier": {0: "synonyms"},
        "synonym_class": {0: "synonyms"},
        "seen": {0: "classes"},
    }
    return FCCLIPGraph(model).eval(), example, dynamic, (h, w), {"image_size": list(image_size)}


@contextmanager
def exportable(segmenter):
    """Export with the deformable attention as ``grid_sample`` (ONNX GridSample); the default
    gather formulation is ``embedding_bag`` with per-sample weights, which has no ONNX op. The
    encoder layers run their queries as one chunk (a graph without slice writes), and the batch
    keeps its memory order (ONNX tensors have none)."""
    from ..fcclip.pixel_decoder import MSDeformAttn, MSDeformAttnEncoderLayer

    decoder = segmenter.model.pixel_decoder
    mods = [m for m in decoder.modules() if isinstance(m, MSDeformAttn)]
    layers = [m for m in decoder.modules() if isinstance(m, MSDeformAttnEncoderLayer)]
    before = [m.sampling for m in mods]
    chunks = [m.chunk_tokens for m in layers]
    for m in mods:
        m.sampling = "grid_sample"
    for m in layers:
        m.chunk_tokens = None
    model, channels_last = segmenter.model, segmenter.model.channels_last
    model.channels_last = False
    try:
        yield
    finally:
        model.channels_last = channels_last
        for m, s in zip(mods, before, strict=True):
            m.sampling = s
        for m, c in zip(layers, chunks, strict=True):
            m.chunk_tokens = c


class FCCLIPOnnx:
    """Runs the exported graph with ``FCCLIP.forward``'s signature (the outputs postprocessing reads)."""

    def __init__(self, network, segmenter):
        self.network = network
        self.info = network.info

    def __call__(self, images, text_classifier, num_synonyms, seen, *, timer=None, **_):
        self.network.check_shape(images)
        counts = torch.as_tensor([int(n) for n in num_synonyms])
        synonym_class = torch.repeat_interleave(torch.arange(len(counts)), counts)
        stage = timer("onnxruntime") if timer is not None else nullcontext()
        with stage:
            out = self.network.run(
                images=images.float(),
                text_classifier=text_classifier.float(),
                synonym_class=synonym_class,
                seen=seen.bool(),
            )
        return {k: v.to(images.device) for k, v in out.items()}


def adapter(network, segmenter):
    return FCCLIPOnnx(network, segmenter)
