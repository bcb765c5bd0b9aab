"""The node's outputs of one frame, built from a :class:`~ovseg_models.segmenter.SegmentationResult`.

One frame's way through the node reads: decode (:mod:`ovseg_ros.conversions`) -> predict (the
segmenter, at the frame's resolution) -> build the outputs (here) -> publish (``node.py``). This
module owns the third step; it only builds messages and publishes nothing:

- ``semantic``: ``ovseg/SemanticInfo`` (the frame's vocabulary version) and the mono16 label image;
- ``panoptic``: ``ovseg/PanopticSegmentation``; a semantic-only model (CAT-Seg) gets one segment
  per class present (:func:`ovseg_models.segments.segments_from_semantic`);
- ``overlay``: the frame blended with the label colours, with segment or class names.

Each output is built into the previous frame's message buffers (see
:func:`ovseg_ros.conversions.label_image`), so a frame allocates no image-sized buffer; a builder
therefore belongs to one thread (the node's worker).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ovseg.msg import SemanticInfo
from ovseg_models.segmenter import SegmentationResult
from ovseg_models.segments import segments_from_semantic

from . import conversions, messages
from .overlay import render_overlay

__all__ = ["FrameOutputs", "OutputBuilder", "segment_texts"]

#: segments smaller than this share of the frame get no name on the overlay
MIN_LABELLED_AREA = 0.002


@dataclass
class FrameOutputs:
    """What :class:`OutputBuilder` made of one frame (``None``: not asked for)."""

    labels: np.ndarray  #: (H, W) uint16 label map, a view of ``semantic``'s buffer
    semantic_info: Any = None
    semantic: Any = None
    panoptic: Any = None
    segments: list | None = None
    ids: np.ndarray | None = None  #: (H, W) segment id map of ``segments``


class OutputBuilder:
    """Builds one frame's output messages, reusing the previous frame's buffers (one thread only)."""

    def __init__(self) -> None:
        self._reuse: dict[str, Any] = {}

    def semantic(
        self, result: SegmentationResult, header, *, vocabulary_version: int, num_classes: int, score_threshold: float
    ) -> FrameOutputs:
        """The label image (and its ``SemanticInfo``) of ``result``; always built, since the panoptic
        output of a semantic-only model and the overlay read its labels."""
        h, w = np.asarray(result.semantic).shape
        msg, labels = conversions.label_image(h, w, header=header, msg=self._reuse.get("semantic"))
        messages.semantic_labels(result, score_threshold, out=labels)
        self._reuse["semantic"] = msg
        info = SemanticInfo(header=header, vocabulary_version=vocabulary_version, num_classes=num_classes)
        return FrameOutputs(labels=labels, semantic_info=info, semantic=msg)

    def segments(self, out: FrameOutputs, result: SegmentationResult, *, vocabulary) -> list:
        """The frame's segments and id map into ``out`` (the model's, or one segment per class
        present in the published labels); computed once per frame."""
        if out.segments is None:
            if result.panoptic is not None:
                out.ids, out.segments = result.panoptic, list(result.segments)
            else:
                out.ids, out.segments = segments_from_semantic(out.labels, result.score, vocabulary)
        return out.segments

    def panoptic(self, out: FrameOutputs, result: SegmentationResult, header, *, vocabulary, vocabulary_version: int):
        """``ovseg/PanopticSegmentation`` into ``out`` (the model's, or one segment per class present)."""
        segments = self.segments(out, result, vocabulary=vocabulary)
        out.panoptic = messages.panoptic_to_msg(
            out.ids, segments, header, vocabulary_version, msg=self._reuse.get("panoptic")
        )
        self._reuse["panoptic"] = out.panoptic
        return out.panoptic

    def embeddings(self, out: FrameOutputs, result: SegmentationResult, header, *, vocabulary, vocabulary_version: int):
        """``ovseg/SegmentEmbeddings`` of the frame's segments (as in its panoptic message) and
        the whole frame, and the (segment ids, embeddings, image embedding or None) it holds."""
        from ovseg_models.embeddings import segment_embeddings

        from .embeddings import segment_embeddings_msg

        segments = self.segments(out, result, vocabulary=vocabulary)
        emb = segment_embeddings(result, out.ids, segments)
        ids = np.asarray([s.id for s in segments], dtype=np.uint32)
        image = None if result.image_embedding is None else result.image_embedding.numpy().astype(np.float32)
        return segment_embeddings_msg(header, vocabulary_version, ids, emb, image), ids, emb, image

    def geometry(
        self,
        out: FrameOutputs,
        result: SegmentationResult,
        header,
        depth,
        camera_info,
        *,
        vocabulary,
        vocabulary_version: int,
        cfg,
    ):
        """``ovseg/Segments3D`` and the labelled ``PointCloud2`` (None with ``points.max_points`` 0)
        of the frame's segments over its depth image; :class:`~ovseg_ros.geometry3d.GeometryError`
        with the reason for depth or camera_info it cannot use."""
        from geometry_msgs.msg import Point, Vector3

        from ovseg.msg import SegmentGeometry, Segments3D
        from ovseg_models.transforms import nearest_indices

        from . import geometry3d as g3

        if depth.header.frame_id != header.frame_id:
            raise g3.GeometryError(
                f"depth frame_id {depth.header.frame_id!r} is not the colour image's {header.frame_id!r}: "
                "give the depth image aligned to the colour camera (e.g. aligned_depth_to_color)"
            )
        intr = g3.Intrinsics.from_camera_info(camera_info)
        dh, dw = int(depth.height), int(depth.width)
        if (intr.width, intr.height) != (dw, dh):
            intr = intr.scaled_to(dw, dh)
        segments = self.segments(out, result, vocabulary=vocabulary)
        ids, labels = np.asarray(out.ids), out.labels
        if ids.shape != (dh, dw):  # depth at another resolution: the label maps sampled at its pixels
            if abs((dw / ids.shape[1]) / (dh / ids.shape[0]) - 1.0) > 0.01:
                raise g3.GeometryError(
                    f"depth image {dw}x{dh} has another aspect ratio than the colour image "
                    f"{ids.shape[1]}x{ids.shape[0]}: it is not aligned to it"
                )
            grid = np.ix_(nearest_indices(dh, ids.shape[0]), nearest_indices(dw, ids.shape[1]))
            ids, labels = ids[grid], labels[grid]
        # only the depth.stride grid is decoded and used: the same as frame_geometry(stride=) of the
        # whole image, without converting the pixels it skips
        s = cfg.depth_stride
        depth_m = g3.depth_image_to_metres(depth, min_depth=cfg.depth_min, max_depth=cfg.depth_max, stride=s)
        seg_ids = [seg.id for seg in segments]
        geo, points = g3.frame_geometry(
            depth_m,
            ids[::s, ::s],
            labels[::s, ::s],
            {seg.id: seg.score for seg in segments},
            seg_ids,
            intr.strided(s),
            min_points=cfg.depth_min_points,
            max_points=cfg.points_max_points,
        )
        msg = Segments3D(header=header, vocabulary_version=int(vocabulary_version))
        msg.segments = [
            SegmentGeometry(
                id=int(sid),
                point_count=int(geo.counts[i]),
                inlier_count=int(geo.inliers[i]),
                centroid=Point(
                    x=float(geo.centroids[i, 0]), y=float(geo.centroids[i, 1]), z=float(geo.centroids[i, 2])
                ),
                extent=Vector3(x=float(geo.extents[i, 0]), y=float(geo.extents[i, 1]), z=float(geo.extents[i, 2])),
            )
            for i, sid in enumerate(seg_ids)
        ]
        cloud = g3.labelled_cloud(points, header=header) if cfg.points_max_points > 0 else None
        return msg, cloud

    def overlay(
        self,
        out: FrameOutputs,
        rgb: np.ndarray,
        result: SegmentationResult,
        header,
        *,
        names,
        palette,
        alpha: float,
        draw_labels: bool,
    ):
        """The overlay image: segment names where the model gave segments, else one name per class."""
        texts = None
        if out.segments is not None and result.panoptic is not None:
            texts = segment_texts(out.segments, rgb.shape[0] * rgb.shape[1]) or None
        img = render_overlay(rgb, out.labels, names, alpha=alpha, palette=palette, texts=texts, draw_labels=draw_labels)
        return conversions.numpy_to_image(img, "rgb8", header=header)


def segment_texts(segments, total_pixels: int) -> list[tuple[str, int, int]]:
    """(label, x, y) at the centre of each segment's box, for segments of at least
    :data:`MIN_LABELLED_AREA` of the frame."""
    texts = []
    for s in segments:
        get = s.get if isinstance(s, dict) else (lambda k, _s=s: getattr(_s, k))
        if get("area") < MIN_LABELLED_AREA * total_pixels:
            continue
        x, y, w, h = get("bbox")
        texts.append((get("label"), x + w // 2, y + h // 2))
    return texts
