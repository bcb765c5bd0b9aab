"""What the node offers open-vocabulary mappers: segment embeddings, text queries, LabelInfo.

- ``segment_embeddings`` (``ovseg/SegmentEmbeddings``, with ``publish.embeddings``): each
  segment's CLIP embedding (:mod:`ovseg_models.embeddings`) in one float32 block keyed by
  segment id, and the whole frame's CLIP embedding, with the frame's header.
- ``encode_text`` (``ovseg/EncodeText``): texts -> embeddings in that space, so a map can be
  queried later with any words.
- ``query`` (``ovseg/QuerySegments``): texts -> the similarity of every segment of a recent
  frame, and of the whole frame (by stamp, from :class:`EmbeddingCache`), without touching the
  active vocabulary.
- ``label_info`` (``vision_msgs/LabelInfo``, transient local): label value -> class name, the
  vision_msgs convention for segmentation, published with every vocabulary.

The service answers are built here (:func:`answer_encode_text`, :func:`answer_query`); the node
only routes requests to them.
"""

from __future__ import annotations

import array
import collections
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from ovseg_models.embeddings import similarities

__all__ = [
    "CachedFrame",
    "EmbeddingCache",
    "answer_encode_text",
    "answer_query",
    "label_info_msg",
    "label_info_type",
    "segment_embeddings_msg",
]


def label_info_type():
    """``vision_msgs.msg.LabelInfo`` and ``VisionClass``, or None where vision_msgs is not installed."""
    try:
        from vision_msgs.msg import LabelInfo, VisionClass
    except ImportError:
        return None
    return LabelInfo, VisionClass


def label_info_msg(names, *, threshold: float, stamp, frame_id: str = ""):
    """``vision_msgs/LabelInfo``: class id i (the label value in ``semantic``) -> ``names[i]``."""
    types = label_info_type()
    if types is None:  # pragma: no cover - the node checks first
        raise RuntimeError("vision_msgs is not installed")
    LabelInfo, VisionClass = types
    msg = LabelInfo()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.class_map = [VisionClass(class_id=i, class_name=str(n)) for i, n in enumerate(names)]
    msg.threshold = float(threshold)
    return msg


def segment_embeddings_msg(
    header, vocabulary_version: int, segment_ids, embeddings: np.ndarray, image_embedding: np.ndarray | None = None
):
    """``ovseg/SegmentEmbeddings`` of one frame: ``embeddings`` (S, D) float32, row i for
    ``segment_ids[i]``, and the whole frame's ``image_embedding`` (D,) when there is one."""
    from ovseg.msg import SegmentEmbeddings

    e = np.ascontiguousarray(embeddings, dtype=np.float32)
    if e.ndim != 2 or len(e) != len(segment_ids):
        raise ValueError(f"{len(segment_ids)} segment ids but embeddings of shape {e.shape}")
    if image_embedding is not None and np.shape(image_embedding) != (e.shape[1],):
        raise ValueError(f"image embedding of shape {np.shape(image_embedding)}, segment embeddings {e.shape}")
    msg = SegmentEmbeddings()
    msg.header = header
    msg.vocabulary_version = int(vocabulary_version)
    msg.segment_ids = np.asarray(segment_ids, dtype=np.uint32)
    msg.dimension = int(e.shape[1])
    msg.data = _float_array(e)
    if image_embedding is not None:
        msg.image_embedding = _float_array(image_embedding)
    return msg


def _float_array(a: np.ndarray) -> array.array:
    """float32 data as ``array.array('f')``: what rosidl stores a float32[] field as. Assigning a
    numpy array instead converts element by element (4 ms for 50 x 768 floats, 0.08 ms this way)."""
    out = array.array("f")
    out.frombytes(np.ascontiguousarray(a, dtype=np.float32).tobytes())
    return out


@dataclass(frozen=True)
class CachedFrame:
    """One frame's segment embeddings, as published."""

    header: Any
    vocabulary_version: int
    segment_ids: np.ndarray  #: (S,) uint32
    embeddings: np.ndarray  #: (S, D) float32, L2-normalised rows
    image_embedding: np.ndarray | None = None  #: (D,) float32 of the whole frame, L2-normalised


class EmbeddingCache:
    """The newest ``capacity`` frames' embeddings of each camera, by header stamp. Thread-safe."""

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self._frames: dict[str, collections.OrderedDict[tuple[int, int], CachedFrame]] = {}
        self._lock = threading.Lock()

    def add(self, camera: str, frame: CachedFrame) -> None:
        key = (int(frame.header.stamp.sec), int(frame.header.stamp.nanosec))
        with self._lock:
            frames = self._frames.setdefault(camera, collections.OrderedDict())
            frames[key] = frame
            frames.move_to_end(key)
            while len(frames) > self.capacity:
                frames.popitem(last=False)

    def get(self, camera: str, sec: int, nanosec: int) -> CachedFrame:
        """The frame with that stamp (0, 0: the newest); KeyError with the reason otherwise."""
        with self._lock:
            frames = self._frames.get(camera)
            if not frames:
                where = f" of camera '{camera}'" if camera else ""
                raise KeyError(f"no frame{where} with embeddings yet")
            if sec == 0 and nanosec == 0:
                return next(reversed(frames.values()))
            hit = frames.get((sec, nanosec))
            if hit is None:
                (s0, n0), (s1, n1) = next(iter(frames)), next(reversed(frames))
                raise KeyError(
                    f"no frame with stamp {sec}.{nanosec:09d} among the {len(frames)} cached "
                    f"(stamps {s0}.{n0:09d} to {s1}.{n1:09d}; embeddings.cache_frames keeps the newest "
                    f"{self.capacity}): it is older, or was never segmented"
                )
            return hit

    def clear(self) -> None:
        with self._lock:
            self._frames.clear()


def answer_encode_text(segmenter, request, response):
    """Fill an ``EncodeText`` response (refusals in ``message``)."""
    if segmenter is None:
        response.success, response.message = False, "refused: the node is not configured: configure it first"
        return response
    try:
        text = segmenter.encode_text(list(request.texts)).numpy()
    except (ValueError, NotImplementedError) as e:
        response.success, response.message = False, f"refused: {e}"
        return response
    response.success, response.message = True, ""
    response.dimension = int(text.shape[1])
    response.data = _float_array(text)
    return response


def answer_query(segmenter, cache: EmbeddingCache | None, cameras: list[str], request, response):
    """Fill a ``QuerySegments`` response from ``cache`` (refusals in ``message``)."""
    response.success = False
    if segmenter is None:
        response.message = "refused: the node is not configured: configure it first"
        return response
    if cache is None:
        response.message = "refused: publish.embeddings is false: the node keeps no segment embeddings"
        return response
    camera = request.camera
    if camera not in cameras:
        known = ", ".join(repr(c) for c in cameras)
        response.message = f"refused: no camera {camera!r} on this node (cameras: {known})"
        return response
    try:
        frame = cache.get(camera, request.stamp.sec, request.stamp.nanosec)
    except KeyError as e:
        response.message = f"refused: {e.args[0]}"
        return response
    try:
        text = segmenter.encode_text(list(request.texts)).numpy()
    except (ValueError, NotImplementedError) as e:
        response.message = f"refused: {e}"
        return response
    sims = similarities(frame.embeddings, text) if len(frame.segment_ids) else np.zeros((0, len(text)), np.float32)
    response.success, response.message = True, ""
    response.header = frame.header
    response.vocabulary_version = frame.vocabulary_version
    response.segment_ids = frame.segment_ids
    response.similarities = _float_array(sims)
    best = frame.segment_ids[sims.argmax(0)] if len(frame.segment_ids) else np.zeros(len(text), np.uint32)
    response.best_segment_ids = np.asarray(best, dtype=np.uint32)
    if frame.image_embedding is not None:
        response.image_similarities = _float_array(similarities(frame.image_embedding[None], text)[0])
    return response
