"""CAT-Seg's image network as an ONNX graph, and the adapter that runs it in place of ``CATSeg``.

Graph inputs: ``clip_images`` [V, 3, R, R] (CLIP-normalised views at ``clip_resolution``: the
sliding-window views and the global view, or one view), ``text`` [T, P, C] (normalised class
embeddings, one per prompt channel) and, for variants with a separate guidance backbone,
``guidance_images`` [V, 3, R, R]. V and T are dynamic (T up to the model's ``pad_len`` classes:
beyond it the official code selects the top classes per view, a data-dependent shape the graph
does not hold). Outputs: ``logits`` [V, T, 4g, 4g] and ``dense`` [V, D, g, g] (the dense CLIP
features the embeddings pool). The class-attention pooling (sliding window or not) is a constant
of the graph, stated in the file.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext

import torch
from torch import nn

OUTPUTS = ("logits", "dense")


class CATSegGraph(nn.Module):
    """``CATSeg.forward`` on prepared views, all classes in one chunk (what is exported)."""

    def __init__(self, model: nn.Module, pooling_size: tuple[int, int]):
        super().__init__()
        self.model = model
        self.pooling_size = tuple(pooling_size)

    def forward(self, clip_images, text, guidance_images=None):
        inter: dict = {}
        logits = self.model(
            clip_images,
            text,
            guidance_images=guidance_images,
            pooling_size=self.pooling_size,
            chunk_classes=1 << 30,  # one chunk: the class count is an input
            intermediates=inter,
        )
        return logits, inter["dense"]


def _pooling(segmenter) -> tuple[int, int]:
    cfg = segmenter.model.cfg
    d = segmenter.defaults
    if d["pooling_size"]:
        return tuple(d["pooling_size"])
    return tuple(cfg.sliding_pooling_size if d["sliding_window"] else cfg.pooling_size)


def max_classes(segmenter) -> int:
    pad = int(segmenter.model.aggregator.pad_len)
    return pad if pad > 0 else 4096


def graph(segmenter, image_size):
    model = segmenter.model
    cfg = model.cfg
    r = int(cfg.clip_resolution)
    p = int(model.aggregator.prompt_channel)
    c = int(cfg.clip.embed_dim)
    views, k = 2, 3
    text = torch.nn.functional.normalize(torch.randn(k, p, c), dim=-1)
    example: tuple = (torch.zeros((views, 3, r, r)), text)
    dynamic: dict = {"clip_images": {0: "views"}, "text": {0: "classes"}}
    if cfg.guidance != "clip":
        example = (*example, torch.zeros((views, 3, r, r)))
        dynamic["guidance_images"] = {0: "views"}
    pooling = _pooling(segmenter)
    options = {"pooling_size": list(pooling), "max_classes": max_classes(segmenter)}
    return CATSegGraph(model, pooling).eval(), example, dynamic, (r, r), options


@contextmanager
def exportable(segmenter):
    yield


class CATSegOnnx:
    """Runs the exported graph with ``CATSeg.forward``'s signature."""

    def __init__(self, network, segmenter):
        self.network = network
        self.info = network.info
        self.cfg = segmenter.model.cfg

    def __call__(
        self,
        clip_images,
        text,
        *,
        guidance_images=None,
        pooling_size=None,
        chunk_classes=None,
        timer=None,
        intermediates=None,
    ):
        from . import ExportError

        self.network.check_shape(clip_images)
        baked = tuple(self.info.options["pooling_size"])
        if pooling_size is not None and tuple(pooling_size) != baked:
            raise ExportError(
                f"{self.info.path} was exported with class-attention pooling {baked}, this call asks "
                f"{tuple(pooling_size)} (sliding_window on one side and off on the other?): export it with "
                "the segmenter's setting"
            )
        most = int(self.info.options["max_classes"])
        if text.shape[0] > most:
            raise ExportError(
                f"{self.info.path} takes at most {most} classes (the model's pad_len), the vocabulary has "
                f"{text.shape[0]}: use the PyTorch backend for larger vocabularies"
            )
        feed = {"clip_images": clip_images.float(), "text": text.float()}
        if "guidance_images" in self.info.inputs:
            feed["guidance_images"] = guidance_images.float()
        ctx = timer("onnxruntime") if timer is not None else nullcontext()
        with ctx:
            out = self.network.run(**feed)
        if intermediates is not None:
            intermediates["dense"] = out["dense"].to(clip_images.device)
        return out["logits"].to(clip_images.device)


def adapter(network, segmenter):
    return CATSegOnnx(network, segmenter)
