"""The node's ``diagnostic_msgs/DiagnosticStatus``: state, model, rates, frame counters, latency."""

from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

from .params import NodeConfig

__all__ = ["segmentation_status"]


def segmentation_status(
    name: str,
    *,
    state: str,
    cfg: NodeConfig | None,
    stats: dict,
    vocabulary_version: int,
    vocabulary_classes: int,
    vocabulary_requests_answered: int,
    last_warning: str,
    depth_sync: dict | None = None,
) -> DiagnosticStatus:
    """One status from a :meth:`ovseg_ros.worker.Stats.snapshot`: WARN without input, after failed
    frames, lost frames or an incompatible publisher, and with random weights (no checkpoint)."""
    s = stats
    status = DiagnosticStatus()
    status.name = f"{name}: segmentation"
    status.hardware_id = cfg.resolved_device if cfg else ""
    level, message = DiagnosticStatus.OK, "ok"
    if state != "active":
        level, message = DiagnosticStatus.OK, state
    elif s["received"] == 0 or s["input_rate_hz"] == 0:
        level, message = DiagnosticStatus.WARN, "no input images"
    elif s["errors"] and s["last_error"]:
        level, message = DiagnosticStatus.WARN, f"{s['errors']} frame(s) failed, last: {s['last_error']}"
    if state == "active" and (s["lost"] or s["incompatible_qos"]):
        level = DiagnosticStatus.WARN
        message = (
            f"{s['lost']} frame(s) lost below the callback" if s["lost"] else "a publisher with incompatible QoS"
        ) + f"; {message}"
    if cfg is not None and not cfg.checkpoint:
        message += " (RANDOM WEIGHTS)"
        level = max(level, DiagnosticStatus.WARN)
    status.level = level if isinstance(level, bytes) else bytes([level])
    status.message = message

    def ms(key, q):
        v = s[key]
        return f"{v[q]:.1f}" if v else "nan"

    values = {
        "state": state,
        "model": f"{cfg.model}/{cfg.variant or 'default'}" if cfg else "",
        "device": cfg.resolved_device if cfg else "",
        "precision": (cfg.precision + (", compiled" if cfg.compile else "")) if cfg else "",
        "backend": cfg.backend if cfg else "",
        "checkpoint": (cfg.checkpoint or "none (random weights)") if cfg else "",
        "vocabulary_version": str(vocabulary_version),
        "vocabulary_classes": str(vocabulary_classes),
        "input_rate_hz": f"{s['input_rate_hz']:.2f}",
        "processed_rate_hz": f"{s['processed_rate_hz']:.2f}",
        "received_frames": str(s["received"]),
        "processed_frames": str(s["processed"]),
        "dropped_frames": str(s["dropped"]),
        "invalid_frames": str(s["invalid"]),
        "failed_frames": str(s["errors"]),
        "stale_frames": str(s["stale"]),
        "lost_frames": str(s["lost"]),
        "incompatible_qos_events": str(s["incompatible_qos"]),
        "ambiguous_stamp_frames": str(s["ambiguous"]),
        "vocabulary_requests_answered": str(vocabulary_requests_answered),
        "model_latency_ms_p50": ms("model_ms", "p50"),
        "model_latency_ms_p90": ms("model_ms", "p90"),
        "end_to_end_latency_ms_p50": ms("node_ms", "p50"),
        "end_to_end_latency_ms_p90": ms("node_ms", "p90"),
        "last_warning": last_warning,
    }
    if depth_sync is not None:  # depth.enabled: how colour, depth and camera_info pair
        offset = depth_sync.get("last_offset_s")
        values.update(
            {
                "depth_pairs": str(s["depth_pairs"]),
                "depth_invalid_frames": str(s["depth_invalid"]),
                "depth_unpaired": str(depth_sync.get("unpaired", 0)),
                "depth_dropped": ",".join(str(d) for d in depth_sync.get("dropped", [])),
                "depth_last_unpaired_offset_s": "nan" if offset is None else f"{offset:.4f}",
            }
        )
    status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
    return status
