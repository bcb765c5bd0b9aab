"""The node's QoS profiles, from its parameters (``input.qos.*``, ``output.qos.*``)."""

from __future__ import annotations

from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
    qos_profile_system_default,
)

from .params import NodeConfig

__all__ = ["LATCHED", "input_qos", "output_qos"]

#: the vocabulary topic: a late subscriber still gets the active vocabulary
LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)


def _reliability(name: str) -> ReliabilityPolicy:
    return ReliabilityPolicy.RELIABLE if name == "reliable" else ReliabilityPolicy.BEST_EFFORT


def input_qos(cfg: NodeConfig) -> QoSProfile:
    """The camera subscription's QoS: the named profile ("default": reliable, keep last 10), then
    the depth and reliability overrides where set."""
    base = {"sensor_data": qos_profile_sensor_data, "system_default": qos_profile_system_default}.get(
        cfg.input_qos_profile
    )
    if base is None:
        qos = QoSProfile(depth=10)
    else:
        qos = QoSProfile(
            history=base.history, depth=base.depth, reliability=base.reliability, durability=base.durability
        )
    if cfg.input_qos_depth:
        qos.history = HistoryPolicy.KEEP_LAST
        qos.depth = cfg.input_qos_depth
    if cfg.input_qos_reliability:
        qos.reliability = _reliability(cfg.input_qos_reliability)
    return qos


def output_qos(cfg: NodeConfig) -> QoSProfile:
    """The segmentation outputs' QoS (semantic, semantic/info, panoptic, overlay)."""
    return QoSProfile(depth=cfg.output_qos_depth, reliability=_reliability(cfg.output_qos_reliability))
