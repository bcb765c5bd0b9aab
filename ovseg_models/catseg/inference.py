"""CAT-Seg inference as the official evaluation runs it, with class-chunked post-processing.

Pre-processing (detectron2's default test mapper): ``ResizeShortestEdge(640, max 2560)`` with
PIL bilinear on uint8. Then one of:

* **sliding window** (official ``eval.sh``: ``TEST.SLIDING_WINDOW True``, ``POOLING_SIZES [1,1]``):
  the mapper image is resized (bilinear) to 640x640 (aspect not kept), cut into 2x2 windows of
  384 with stride 256, plus a global view (mapper image resized to 384x384); all five views are
  CLIP-normalised, resized to the CLIP resolution and run as one batch. Per-class logits (96x96)
  are resized to 384, passed through a sigmoid, overlap-averaged back onto 640x640 and averaged
  with the global view resized to 640; finally resized to the input image size.
* **resize** (config default, ``SLIDING_WINDOW False``, ``POOLING_SIZES [2,2]``): the CLIP-normalised
  mapper image is zero-padded to a multiple of 32, resized to the CLIP resolution, and the
  96x96 sigmoid map is resized to the input image size (the padded border included: official
  behaviour).

Post-processing is per class, so it runs in chunks of classes: peak memory does not grow with
``T x H x W`` unless the caller keeps every class map (``class_scores``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..embeddings import normalize
from ..segmenter import upload
from ..transforms import resize_image, resize_shortest_edge_shape

__all__ = [
    "InferenceOptions",
    "ScoreAccumulator",
    "mapper_resize",
    "mapper_output_size",
    "prepare_views",
    "resized_inputs",
    "run_inference",
    "run_inference_batch",
    "score_chunks",
]


@dataclass(frozen=True)
class InferenceOptions:
    sliding_window: bool = True
    #: class-attention pooling; None: (1, 1) with the sliding window (eval.sh), config default otherwise
    pooling_size: tuple[int, int] | None = None
    kernel: int = 384
    overlap: float = 0.333
    out_res: tuple[int, int] = (640, 640)
    #: classes per chunk in per-class stages and post-processing (None: from a memory budget)
    chunk_classes: int | None = None
    #: apply the test mapper's shortest-edge resize first (False: the input is already mapped)
    mapper: bool = True
    #: mapper shortest edge / longest-edge limit (None: the config's 640 / 2560)
    min_size: int | None = None
    max_size: int | None = None


def mapper_output_size(h: int, w: int, short: int = 640, max_size: int = 2560) -> tuple[int, int]:
    """The official CAT-Seg test mapper's output size (``ResizeShortestEdge(640, 2560)``)."""
    return resize_shortest_edge_shape(h, w, short, max_size)


def mapper_resize(image: torch.Tensor, short: int = 640, max_size: int = 2560) -> torch.Tensor:
    """HxWx3 uint8 -> the official test mapper's resized HxWx3 uint8 (PIL bilinear)."""
    return resize_image(image, mapper_output_size(int(image.shape[0]), int(image.shape[1]), short, max_size))


def _window_origins(size: tuple[int, int], kernel: int, stride: int) -> list[tuple[int, int]]:
    nh = (size[0] - kernel) // stride + 1
    nw = (size[1] - kernel) // stride + 1
    return [(i * stride, j * stride) for i in range(nh) for j in range(nw)]  # nn.Unfold order


def prepare_views(image: torch.Tensor, cfg, opts: InferenceOptions) -> tuple[torch.Tensor, torch.Tensor | None, dict]:
    """CLIP inputs (V, 3, R, R), guidance-backbone inputs (or None) and geometry for one image.

    ``image``: the mapper's output as a float (3, H, W) tensor with values 0-255.
    """
    dev = image.device
    clip_mean = torch.tensor(cfg.clip_pixel_mean, device=dev).view(-1, 1, 1)
    clip_std = torch.tensor(cfg.clip_pixel_std, device=dev).view(-1, 1, 1)
    mean = torch.tensor(cfg.pixel_mean, device=dev).view(-1, 1, 1)
    std = torch.tensor(cfg.pixel_std, device=dev).view(-1, 1, 1)
    res = cfg.clip_resolution
    want_guidance = cfg.guidance != "clip"
    h, w = image.shape[-2:]
    if opts.sliding_window:
        k = opts.kernel
        stride = int(k * (1 - opts.overlap))
        big = F.interpolate(image[None], size=opts.out_res, mode="bilinear", align_corners=False)[0]
        origins = _window_origins(opts.out_res, k, stride)
        wins = [big[:, y : y + k, x : x + k] for y, x in origins]
        glob = F.interpolate(image[None], size=(k, k), mode="bilinear", align_corners=False)
        views = torch.cat([torch.stack(wins), glob], dim=0)
        clip = (views - clip_mean) / clip_std
        if (res, res) != (k, k):
            clip = F.interpolate(clip, size=(res, res), mode="bilinear", align_corners=False)
        guide = (views - mean) / std if want_guidance else None
        geom = {
            "mode": "sliding",
            "stride": stride,
            "kernel": k,
            "out_res": tuple(opts.out_res),
            "num_windows": len(origins),
        }
    else:
        clip, guide = resized_inputs(image[None], cfg)
        geom = {"mode": "resize", "image_size": (int(h), int(w))}
    return clip, guide, geom


def resized_inputs(images: torch.Tensor, cfg) -> tuple[torch.Tensor, torch.Tensor | None]:
    """CLIP inputs (B, 3, R, R) and guidance-backbone inputs (or None) of the "resize" protocol.

    What the official ``forward`` does in training and in inference without the sliding window:
    ``images`` (a (B, 3, H, W) float batch, values 0-255) CLIP-normalised, zero-padded to a
    multiple of ``size_divisibility`` and resized to ``clip_resolution``; the guidance input
    ImageNet-normalised and padded the same way (the model resizes it to ``timm_resolution``).
    """
    dev, dtype = images.device, images.dtype

    def normalised(mean, std):
        m = torch.tensor(mean, device=dev, dtype=dtype).view(1, -1, 1, 1)
        return (images - m) / torch.tensor(std, device=dev, dtype=dtype).view(1, -1, 1, 1)

    h, w = images.shape[-2:]
    div = cfg.size_divisibility
    ph = (h + div - 1) // div * div if div > 0 else h
    pw = (w + div - 1) // div * div if div > 0 else w

    def pad(t):
        return F.pad(t, (0, pw - w, 0, ph - h), value=0.0) if (ph, pw) != (h, w) else t

    res = cfg.clip_resolution
    clip = pad(normalised(cfg.clip_pixel_mean, cfg.clip_pixel_std))
    clip = F.interpolate(clip, size=(res, res), mode="bilinear", align_corners=False)
    guide = pad(normalised(cfg.pixel_mean, cfg.pixel_std)) if cfg.guidance != "clip" else None
    return clip, guide


#: logit the official code gives classes left out by the top-``pad_len`` selection
UNSELECTED_LOGIT = -100.0


def score_chunks(
    logits: torch.Tensor, geom: dict, height: int, width: int, *, chunk: int = 16
) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield ``(first_class, scores (tc, height, width))``: the official sigmoid score maps, per chunk.

    Classes left out by the class selection in every view (logit -100 everywhere) have the
    constant score ``sigmoid(-100)`` (about 4e-44) at every pixel; it is filled in directly.
    """
    n = logits.shape[1]
    active = (logits != UNSELECTED_LOGIT).flatten(2).any(-1).any(0)
    if bool(active.all()):
        yield from _score_chunks(logits, geom, height, width, chunk=chunk)
        return
    const = torch.sigmoid(torch.tensor(UNSELECTED_LOGIT, dtype=logits.dtype))
    for c0 in range(0, n, chunk):
        c1 = min(n, c0 + chunk)
        maps = logits.new_full((c1 - c0, height, width), float(const))
        idx = torch.nonzero(active[c0:c1]).flatten()
        if idx.numel():
            for _, sub in _score_chunks(logits[:, c0:c1].index_select(1, idx), geom, height, width, chunk=chunk):
                maps[idx] = sub
        yield c0, maps


def _score_chunks(
    logits: torch.Tensor, geom: dict, height: int, width: int, *, chunk: int = 16
) -> Iterator[tuple[int, torch.Tensor]]:
    n = logits.shape[1]
    if geom["mode"] == "sliding":
        k, stride, out_res = geom["kernel"], geom["stride"], geom["out_res"]
        ones = torch.ones([1, *out_res], device=logits.device, dtype=logits.dtype)
        count = F.fold(F.unfold(ones, kernel_size=k, stride=stride), out_res, kernel_size=k, stride=stride)
        for c0 in range(0, n, chunk):
            o = F.interpolate(logits[:, c0 : c0 + chunk], size=k, mode="bilinear", align_corners=False).sigmoid()
            g = F.interpolate(o[-1:], size=out_res, mode="bilinear", align_corners=False)
            win = o[:-1]
            folded = F.fold(win.flatten(1).T, out_res, kernel_size=k, stride=stride) / count
            s = ((folded + g) / 2.0)[0]
            s = s[:, : out_res[0], : out_res[1]]
            yield c0, F.interpolate(s[None], size=(height, width), mode="bilinear", align_corners=False)[0]
    else:
        ih, iw = geom["image_size"]
        for c0 in range(0, n, chunk):
            s = logits[0, c0 : c0 + chunk].sigmoid()[:, :ih, :iw]
            yield c0, F.interpolate(s[None], size=(height, width), mode="bilinear", align_corners=False)[0]


class ScoreAccumulator:
    """Running per-pixel argmax / max over class chunks; optionally keeps every class map."""

    def __init__(self, num_classes: int, height: int, width: int, *, keep: bool, device=None):
        self.best = torch.full((height, width), -1.0, device=device)
        self.label = torch.zeros((height, width), dtype=torch.int64, device=device)
        self.scores = torch.empty((num_classes, height, width), device=device) if keep else None
        #: (D, g, g) L2-normalised dense CLIP features of the image's global view (with ``embeddings``)
        self.dense: torch.Tensor | None = None
        #: (D,) L2-normalised CLIP image embedding of the global view (with ``embeddings``, PyTorch)
        self.image_embedding: torch.Tensor | None = None

    def add(self, c0: int, maps: torch.Tensor) -> None:
        if self.scores is not None:
            self.scores[c0 : c0 + maps.shape[0]] = maps
        val, idx = maps.max(dim=0)  # first maximum within the chunk
        better = val > self.best  # strict: earlier classes win ties, as argmax over all classes
        self.best = torch.where(better, val, self.best)
        self.label = torch.where(better, idx + c0, self.label)


def run_inference(
    model,
    image: torch.Tensor,
    text: torch.Tensor,
    opts: InferenceOptions,
    *,
    height: int | None = None,
    width: int | None = None,
    keep_scores: bool = True,
    timer: Callable | None = None,
    intermediates: dict | None = None,
) -> ScoreAccumulator:
    """Run CAT-Seg on one HxWx3 uint8 image with normalised text embeddings (T, P, C).

    Scores are produced at (``height``, ``width``), by default the input image's size.
    """
    timer = timer or (lambda name: contextlib.nullcontext())
    cfg = model.cfg
    dev = next(model.parameters()).device
    h0, w0 = int(image.shape[0]), int(image.shape[1])
    height, width = height or h0, width or w0
    with timer("preprocess"):
        mapped = _mapped(image, cfg, opts)
        if intermediates is not None:
            intermediates["model_input"] = mapped
        img = upload(mapped, dev).permute(2, 0, 1).to(torch.float32)
        clip, guide, geom = prepare_views(img, cfg, opts)
    logits = _forward(model, clip, text, guide, opts, timer=timer, intermediates=intermediates)
    if intermediates is not None:
        intermediates["logits"] = logits
    with timer("postprocess"):
        return _accumulate(logits, geom, height, width, keep=keep_scores, chunk_classes=opts.chunk_classes)


def _forward(
    model, clip, text, guide, opts: InferenceOptions, *, timer, intermediates=None, network=None
) -> torch.Tensor:
    """``network`` (default ``model``): what runs the views, e.g. an ONNX Runtime session
    (:mod:`ovseg_models.export`) with the model's signature."""
    cfg = model.cfg
    pooling = opts.pooling_size or (cfg.sliding_pooling_size if opts.sliding_window else cfg.pooling_size)
    return (network or model)(
        clip,
        text.to(clip.device),
        guidance_images=guide,
        pooling_size=pooling,
        chunk_classes=opts.chunk_classes,
        timer=timer,
        intermediates=intermediates,
    )


def _mapped(image: torch.Tensor, cfg, opts: InferenceOptions) -> torch.Tensor:
    """The test mapper's resize (when ``opts.mapper``)."""
    if not opts.mapper:
        return image
    return mapper_resize(image, opts.min_size or cfg.min_size_test, opts.max_size or cfg.max_size_test)


def _accumulate(logits, geom, height: int, width: int, *, keep: bool, chunk_classes: int | None) -> ScoreAccumulator:
    acc = ScoreAccumulator(logits.shape[1], height, width, keep=keep, device=logits.device)
    # classes per chunk from a budget of elements: cache-sized on CPU (4 classes of the sliding
    # window's five views; 2.3x faster than one chunk of 150 classes), larger elsewhere
    budget = 2**22 if logits.device.type == "cpu" else 2**27
    chunk = chunk_classes or max(1, int(budget // max(1, logits.shape[0] * 384 * 384 + 2 * height * width)))
    for c0, maps in score_chunks(logits, geom, height, width, chunk=chunk):
        acc.add(c0, maps)
    return acc


def run_inference_batch(
    model,
    images: list[torch.Tensor],
    text: torch.Tensor,
    opts: InferenceOptions,
    *,
    sizes: list[tuple[int, int]] | None = None,
    keep_scores: bool = True,
    timer: Callable | None = None,
    embeddings: bool = False,
    network=None,
) -> list[ScoreAccumulator]:
    """:func:`run_inference` for several HxWx3 uint8 images with one text: the views of all images
    whose views have one shape (with the sliding window: every image; CAT-Seg's views are a fixed
    size) run as one forward pass. Each view is processed on its own (the class selection is per
    view too), so each image's scores equal :func:`run_inference`'s up to float rounding.
    ``sizes``: (height, width) of each image's scores, by default its own size. ``embeddings``:
    keep each image's dense CLIP features (its last view: the global view with the sliding
    window, the only view without) in ``ScoreAccumulator.dense``, and, when the network is the
    model itself (not an exported graph), that view's CLIP image embedding in
    ``ScoreAccumulator.image_embedding``."""
    timer = timer or (lambda name: contextlib.nullcontext())
    cfg = model.cfg
    dev = next(model.parameters()).device
    sizes = sizes or [(int(im.shape[0]), int(im.shape[1])) for im in images]
    if len(sizes) != len(images):
        raise ValueError(f"{len(images)} images but {len(sizes)} output sizes")
    prepared = []
    with timer("preprocess"):
        for image in images:
            prepared.append(
                prepare_views(upload(_mapped(image, cfg, opts), dev).permute(2, 0, 1).to(torch.float32), cfg, opts)
            )
    groups: dict[tuple, list[int]] = {}
    for i, (clip, guide, _) in enumerate(prepared):
        groups.setdefault((tuple(clip.shape[1:]), None if guide is None else tuple(guide.shape[1:])), []).append(i)
    results: list[ScoreAccumulator | None] = [None] * len(images)
    for members in groups.values():
        clip = torch.cat([prepared[i][0] for i in members])
        guides = [prepared[i][1] for i in members]
        # a group's views all have guidance images or none (the group key holds their shape or None)
        guide = None if guides[0] is None else torch.cat([g for g in guides if g is not None])
        inter: dict | None = None
        if embeddings:  # the key asks the model for the image embedding (the exported graphs have none)
            inter = {"image_embedding": None} if network is None or network is model else {}
        logits = _forward(model, clip, text, guide, opts, timer=timer, intermediates=inter, network=network)
        with timer("postprocess"):
            start = 0
            for i in members:
                n = prepared[i][0].shape[0]
                h, w = sizes[i]
                acc = _accumulate(
                    logits[start : start + n], prepared[i][2], h, w, keep=keep_scores, chunk_classes=opts.chunk_classes
                )
                results[i] = acc
                if inter is not None:
                    dense = inter["dense"][start + n - 1]
                    acc.dense = dense / dense.norm(dim=0, keepdim=True).clamp_min(1e-12)
                    if inter.get("image_embedding") is not None:
                        acc.image_embedding = normalize(inter["image_embedding"][start + n - 1])
                start += n
    return [r for r in results if r is not None]
