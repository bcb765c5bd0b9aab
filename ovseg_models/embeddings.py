"""Per-segment CLIP embeddings in the text space, and text queries against them.

What an open-vocabulary map stores per segment is its CLIP embedding: a vector in the space of
the text embeddings, so that any words can be compared with it later. Both models compute such
features on the way to their labels, and ``predict(..., embeddings=True)`` keeps them in the
result:

* **FC-CLIP**: the out-of-vocabulary branch pools the frozen CLIP features over each mask query
  and maps the pooled vector through CLIP's own head (ConvNeXt: norm + projection; ResNet:
  attention pooling restricted to the mask): ``SegmentationResult.query_embeddings`` (Q, D). A
  panoptic segment is one thing query or the stuff queries merged into it
  (``Segment.queries``); its embedding is the normalised mean of theirs (one query: exactly
  that query's).
* **CAT-Seg**: its cost volume compares dense CLIP ViT features (projected into the text space)
  with the text embeddings: ``SegmentationResult.dense_embeddings`` (D, g, g) of the whole image
  (the global view with the sliding window). A segment's embedding is the mean of the grid
  features weighted by how much of each cell the segment's pixels cover (:func:`pool_embeddings`).

The whole image's CLIP embedding comes with them (``SegmentationResult.image_embedding``, PyTorch
backend): CLIP's own image feature (FC-CLIP: :meth:`~ovseg_models.fcclip.backbone.CLIPBackbone.image_embedding`;
CAT-Seg: the class token through the last block's regular attention).

Every embedding is L2-normalised, so a cosine similarity is a dot product
(:func:`similarities`); :meth:`~ovseg_models.segmenter.Segmenter.encode_text` gives the text side.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

__all__ = [
    "MAX_QUERY_TEXT_CHARS",
    "MAX_QUERY_TEXTS",
    "SAMPLES_PER_CELL_SIDE",
    "check_texts",
    "normalize",
    "pool_embeddings",
    "query_segment_embeddings",
    "segment_embeddings",
    "similarities",
]

#: most texts one ``encode_text`` call accepts (a query, not a vocabulary: use encode_vocabulary)
MAX_QUERY_TEXTS = 256
#: longest text accepted, in characters (CLIP reads 77 tokens; longer text would be cut silently)
MAX_QUERY_TEXT_CHARS = 300


def check_texts(texts: Sequence[str]) -> list[str]:
    """``texts`` as a list of stripped strings, or ValueError saying what is wrong with them."""
    if isinstance(texts, str):
        raise ValueError("texts must be a list of strings, not one string")
    texts = list(texts)
    if not texts:
        raise ValueError("no texts given: at least one is needed")
    if len(texts) > MAX_QUERY_TEXTS:
        raise ValueError(f"{len(texts)} texts: at most {MAX_QUERY_TEXTS} per call")
    out = []
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise ValueError(f"text {i} is a {type(t).__name__}, not a string")
        s = " ".join(t.split())
        if not s:
            raise ValueError(f"text {i} is empty")
        if len(s) > MAX_QUERY_TEXT_CHARS:
            raise ValueError(f"text {i} has {len(s)} characters: at most {MAX_QUERY_TEXT_CHARS}")
        out.append(s)
    return out


def normalize(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """L2-normalised along ``dim``; an all-zero vector stays zero (no NaN)."""
    x = x.float()
    return x / x.norm(dim=dim, keepdim=True).clamp_min(1e-12)


def query_segment_embeddings(query_embeddings: torch.Tensor, segments: Sequence) -> np.ndarray:
    """(S, D) float32: per segment, the normalised mean of its queries' normalised embeddings.

    ``query_embeddings`` (Q, D); each segment names its queries in ``.queries``."""
    q = normalize(query_embeddings)
    member = np.zeros((len(segments), q.shape[0]), np.float32)  # filled in numpy: torch indexing costs 10 us a call
    for i, s in enumerate(segments):
        if not s.queries:
            raise ValueError(f"segment {s.id} names no queries: it was not made by FC-CLIP's panoptic inference")
        member[i, list(s.queries)] = 1.0 / len(s.queries)
    return normalize(torch.from_numpy(member) @ q).numpy()  # one matrix product for all segments


#: pixels sampled per feature cell side by :func:`pool_embeddings` (at least; all when cells are small)
SAMPLES_PER_CELL_SIDE = 4


def pool_embeddings(
    dense: torch.Tensor,
    ids: np.ndarray,
    segment_ids: Sequence[int],
    *,
    samples_per_cell_side: int | None = SAMPLES_PER_CELL_SIDE,
) -> np.ndarray:
    """Mask pooling of a feature grid by an id map: (S, D) float32, L2-normalised rows.

    ``dense`` (D, gh, gw) covers the same image as ``ids`` (H, W), each cell an equal share of
    it. Row i is the mean of the cell features weighted by the number of pixels of
    ``segment_ids[i]`` in each cell, counted on a regular sample of the pixels with at least
    ``samples_per_cell_side`` per cell side (default 4, 16 per cell: a 640x480 frame over
    CAT-Seg's 24x24 grid is sampled every 5th pixel, 25x less work, 0.8 ms instead of 4 ms for 50
    segments; on uncorrelated random cell features, a worst case, the pooled direction stays
    within cosine 0.95 of counting every pixel, tested; CLIP's dense features are smooth). None
    counts every pixel. A segment the sample misses is counted on every pixel; one with no pixels
    at all gets a zero row.
    """
    ids = np.asarray(ids)
    if ids.ndim != 2:
        raise ValueError(f"id map must be 2-D, got shape {ids.shape}")
    d, gh, gw = dense.shape
    h, w = ids.shape
    seg = np.asarray(list(segment_ids), dtype=np.int64)
    if len(seg) == 0 or ids.size == 0:
        return np.zeros((len(seg), d), np.float32)
    lut = np.full(int(max(int(ids.max()), int(seg.max()))) + 1, -1, np.int64)
    lut[seg] = np.arange(len(seg))
    stride = max(1, min(h // gh, w // gw) // samples_per_cell_side) if samples_per_cell_side else 1
    counts = _cell_counts(ids, lut, len(seg), gh, gw, stride)
    missed = counts.sum(1) == 0
    if stride > 1 and missed.any():  # small segments between the samples: count them exactly
        only = np.where(np.isin(np.arange(len(lut)), seg[missed]), lut, -1)
        counts[missed] = _cell_counts(ids, only, len(seg), gh, gw, 1)[missed]
    weights = torch.from_numpy(counts.astype(np.float32))
    pooled = weights @ dense.reshape(d, gh * gw).float().cpu().T
    return normalize(pooled).numpy()


def _cell_counts(ids: np.ndarray, lut: np.ndarray, n: int, gh: int, gw: int, stride: int) -> np.ndarray:
    """(n, gh*gw) pixel counts of each segment row (``lut``: id -> row or -1) per cell, on the
    pixels at the centres of ``stride`` x ``stride`` blocks."""
    h, w = ids.shape
    ys = np.arange(stride // 2, h, stride)
    xs = np.arange(stride // 2, w, stride)
    cell = ((ys * gh // h)[:, None] * gw + (xs * gw // w)[None, :]).ravel()
    row = lut[ids[np.ix_(ys, xs)].ravel()]
    ok = row >= 0
    # one bincount over (segment row, cell) pairs: np.bincount, no torch scatter needed
    return np.bincount(row[ok] * (gh * gw) + cell[ok], minlength=n * gh * gw).reshape(n, gh * gw)


def segment_embeddings(result, ids: np.ndarray | None = None, segments: Sequence | None = None) -> np.ndarray:
    """(S, D) float32 embeddings of ``segments`` (default: ``result.segments`` over ``result.panoptic``).

    Uses FC-CLIP's query embeddings when the segments are the model's own (they name their
    queries; no segments: an empty (0, D) block), else pools the dense embeddings over ``ids``. ``result`` comes from
    ``predict(..., embeddings=True)``.
    """
    if segments is None:
        segments, ids = result.segments, result.panoptic
    segments = list(segments)
    if result.query_embeddings is not None and all(getattr(s, "queries", ()) for s in segments):
        return query_segment_embeddings(result.query_embeddings, segments)
    if result.dense_embeddings is not None:
        if ids is None:
            raise ValueError("pooling dense embeddings needs the segments' id map")
        return pool_embeddings(result.dense_embeddings, ids, [s.id for s in segments])
    raise ValueError("the result holds no embeddings: call predict(..., embeddings=True)")


def similarities(embeddings: np.ndarray, text_embeddings: np.ndarray | torch.Tensor) -> np.ndarray:
    """Cosine similarities (S, N) of normalised segment embeddings (S, D) and text embeddings (N, D)."""
    e = np.asarray(embeddings, np.float32)
    t = np.asarray(text_embeddings.cpu() if isinstance(text_embeddings, torch.Tensor) else text_embeddings, np.float32)
    if e.ndim != 2 or t.ndim != 2 or (len(e) and e.shape[1] != t.shape[1]):
        raise ValueError(f"embeddings {e.shape} and text embeddings {t.shape} do not share a dimension")
    return e @ t.T
