"""Evaluation metrics matching the reference implementations (detectron2/torchmetrics, panopticapi, pycocotools).

- :mod:`.semantic`: confusion-matrix mIoU / per-class IoU / pixel accuracy with an ignore label.
- :mod:`.panoptic`: COCO panoptic quality (PQ, SQ, RQ; things/stuff; per class).
- :mod:`.instance`: COCO mask AP through pycocotools.
- :mod:`.report`: paper-style results table and JSON.
"""

from .instance import encode_mask, evaluate_mask_ap, instance_predictions_to_coco, panoptic_to_instances
from .panoptic import PanopticQualityMetric, PanopticStat, id2rgb, pq_average, pq_single_image, rgb2id
from .report import format_results_table, write_results_json
from .semantic import (
    SemanticMetrics,
    SemanticSegmentationMetric,
    confusion_matrix,
    mean_iou_over_ground_truth_classes,
    metrics_from_confusion_matrix,
)

__all__ = [
    "PanopticQualityMetric",
    "PanopticStat",
    "SemanticMetrics",
    "SemanticSegmentationMetric",
    "confusion_matrix",
    "encode_mask",
    "evaluate_mask_ap",
    "format_results_table",
    "id2rgb",
    "instance_predictions_to_coco",
    "mean_iou_over_ground_truth_classes",
    "metrics_from_confusion_matrix",
    "panoptic_to_instances",
    "pq_average",
    "pq_single_image",
    "rgb2id",
    "write_results_json",
]
