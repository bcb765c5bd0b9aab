"""The node's cameras: one model serves every camera listed in the ``cameras`` parameter.

With ``cameras`` empty (the default) the node has one camera with today's names: ``image`` (or
``image/compressed``) in, ``semantic``, ``semantic/info``, ``panoptic``, ``overlay`` out, all in
the node's namespace. With ``cameras: [front, left]`` camera ``front`` reads ``front/image`` and
publishes ``front/semantic``, ``front/semantic/info``, ``front/panoptic``, ``front/overlay``
(relative names: remap them like any topic). Per camera, optional parameters override the node's:

- ``cameras.<name>.topic``: its input topic (default ``<name>/image``; ``/compressed`` is appended
  for the compressed transport, as image_transport does);
- ``cameras.<name>.transport``: ``raw`` or ``compressed`` (default: ``input.transport``);
- ``cameras.<name>.qos.reliability``: ``reliable`` or ``best_effort`` (default: ``input.qos.*``);
- ``cameras.<name>.max_rate``: at most this many frames per second of this camera (0 = no limit of
  its own; ``max_rate`` still limits the node's steps).

The vocabulary, its services and the diagnostics topic stay the node's: every camera is
segmented with one vocabulary, switched for all of them at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .outputs import OutputBuilder
from .params import RELIABILITY, TRANSPORTS, ConfigError, NodeConfig
from .worker import Stats

__all__ = ["Camera", "MAX_CAMERAS", "camera_parameters", "cameras_from_parameters", "check_camera_names"]

#: more cameras than this on one node is refused (each adds a subscription and four publishers)
MAX_CAMERAS = 16
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


@dataclass
class Camera:
    """One camera's settings and its state on the node (subscription, publishers, counters)."""

    name: str  #: '' for the single default camera
    topic: str  #: input topic, relative to the node's namespace (raw image topic)
    transport: str = "raw"
    reliability: str = ""  #: '' = the node's input QoS
    max_rate: float = 0.0
    stats: Stats = field(default_factory=Stats)
    outputs: OutputBuilder = field(default_factory=OutputBuilder)
    pubs: dict[str, Any] = field(default_factory=dict)
    sub: Any = None
    #: with depth.enabled: the depth image and camera_info subscriptions and the synchroniser
    depth_subs: list = field(default_factory=list)
    sync: Any = None  #: ``sync(stream, msg)``: 0 colour, 1 depth, 2 camera_info
    sync_stats: Any = None  #: () -> the synchroniser's counters (pairs, dropped, unpaired, last offset)

    @property
    def prefix(self) -> str:
        """Prefix of its output names ('' or '<name>/')."""
        return f"{self.name}/" if self.name else ""

    @property
    def label(self) -> str:
        return self.name or "camera"


def check_camera_names(names: list[str]) -> list[str]:
    """The camera names, checked: ROS name tokens, unique, at most :data:`MAX_CAMERAS`."""
    names = [str(n) for n in names]
    if len(names) > MAX_CAMERAS:
        raise ConfigError(f"cameras: {len(names)} cameras, at most {MAX_CAMERAS} on one node")
    for n in names:
        if not _NAME.match(n):
            raise ConfigError(f"cameras: {n!r} is not a camera name (a letter, then letters, digits or '_')")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"cameras: {dup} listed more than once")
    return names


def camera_parameters(name: str) -> dict[str, tuple[Any, str]]:
    """The optional per-camera parameters of camera ``name``: name -> (default, description)."""
    p = f"cameras.{name}."
    return {
        p + "topic": ("", f"input topic of camera '{name}' (default '{name}/image')"),
        p + "transport": ("", "'raw' or 'compressed' (default: input.transport)"),
        p + "qos.reliability": ("", "'reliable' or 'best_effort' (default: input.qos)"),
        p + "max_rate": (0.0, "at most this many frames per second of this camera (0 = no own limit)"),
    }


def cameras_from_parameters(names: list[str], values: dict[str, Any], cfg: NodeConfig) -> list[Camera]:
    """The node's cameras from ``cameras`` and the per-camera parameter values (missing: defaults)."""
    names = check_camera_names(names)
    if not names:
        return [Camera(name="", topic="image", transport=cfg.transport, reliability=cfg.input_qos_reliability)]
    cams = []
    for n in names:
        spec = {k.rsplit(f"cameras.{n}.", 1)[1]: values.get(k, d) for k, (d, _) in camera_parameters(n).items()}
        transport = spec["transport"] or cfg.transport
        if transport not in TRANSPORTS:
            raise ConfigError(f"cameras.{n}.transport {transport!r}: use one of {list(TRANSPORTS)}")
        reliability = spec["qos.reliability"] or cfg.input_qos_reliability
        if reliability not in RELIABILITY:
            raise ConfigError(f"cameras.{n}.qos.reliability {reliability!r}: use 'reliable' or 'best_effort'")
        rate = spec["max_rate"]
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not rate >= 0 or rate == float("inf"):
            raise ConfigError(f"cameras.{n}.max_rate {rate!r}: use a number >= 0 (0 = no limit)")
        topic = str(spec["topic"]).strip() or f"{n}/image"
        cams.append(Camera(name=n, topic=topic, transport=transport, reliability=reliability, max_rate=float(rate)))
    topics = [c.topic for c in cams]
    dup = sorted({t for t in topics if topics.count(t) > 1})
    if dup:
        raise ConfigError(f"cameras: two cameras read the same topic {dup}")
    return cams
