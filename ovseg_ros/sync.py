"""Approximate-time pairing of colour, depth and camera_info streams without ``message_filters``.

:class:`ApproximateSync` pairs messages exactly as ``message_filters.ApproximateTimeSynchronizer``
(the rclpy port) does, so the node behaves the same with or without that package installed:

- every stream keeps a queue of at most ``queue_size`` messages keyed by stamp (nanoseconds); a
  message with a stamp already queued replaces it, and the oldest stamp is evicted when the queue
  overflows (the new message itself, if it is the oldest);
- on each arrival on stream i, every other stream's queued stamps within ``slop`` of the new
  stamp (``|delta| <= slop``) are candidates, closest first (ties: queue order); if some stream
  has none, nothing is emitted;
- otherwise the combinations of candidates are tried in ``itertools.product`` order (first
  stream's closest first), and the first whose spread ``max - min`` is strictly below ``slop`` and
  whose messages are all still queued is emitted and removed from the queues.

On top of that it counts what a diagnostic needs (:meth:`ApproximateSync.stats`): sets emitted,
messages evicted unpaired per stream, arrivals that found another stream with messages but none
within the slop, and the signed offset to that stream's nearest message at the last such arrival
(a constant offset there means a clock or stamp problem, not jitter).

The callback is called after the internal lock is released, so it may call :meth:`add` again.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["ApproximateSync", "message_filters_available", "stamp_ns"]

_NS = 1_000_000_000


def message_filters_available() -> bool:
    """Whether ``message_filters`` (and its ``ApproximateTimeSynchronizer``) can be imported."""
    try:
        from message_filters import ApproximateTimeSynchronizer  # noqa: F401
    except Exception:  # ImportError, or a broken install failing at import time
        return False
    return True


def stamp_ns(msg: Any) -> int | None:
    """``msg.header.stamp`` in nanoseconds, or ``None`` for a message without a header stamp."""
    stamp = getattr(getattr(msg, "header", None), "stamp", None)
    if stamp is None:
        return None
    if hasattr(stamp, "nanoseconds"):  # an rclpy Time
        return int(stamp.nanoseconds)
    return int(stamp.sec) * _NS + int(stamp.nanosec)


class ApproximateSync:
    """Approximate-time synchroniser of ``n_streams`` streams, calling ``callback(*msgs)`` per set."""

    def __init__(self, slop: float, queue_size: int, callback: Callable[..., Any], n_streams: int = 3) -> None:
        if slop < 0:
            raise ValueError(f"slop must be >= 0 seconds, got {slop}")
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        if n_streams < 2:
            raise ValueError(f"need at least 2 streams to synchronise, got {n_streams}")
        # the same rounding as rclpy's Duration(seconds=slop)
        self.slop_ns = int(slop * _NS)
        self.queue_size = int(queue_size)
        self.callback = callback
        self.n_streams = int(n_streams)
        # dicts keep insertion order, which decides ties between equally close candidates
        self._queues: list[dict[int, Any]] = [{} for _ in range(self.n_streams)]
        self._lock = threading.Lock()
        self._pairs = 0
        self._dropped = [0] * self.n_streams
        self._headerless = 0
        self._unpaired = 0
        self._last_offset_ns: int | None = None
        self._last_offset_streams: tuple[int, int] | None = None

    def add(self, index: int, msg: Any) -> bool:
        """Queue ``msg`` of stream ``index``; returns whether a set was emitted."""
        if not 0 <= index < self.n_streams:
            raise IndexError(f"stream index {index} out of range 0..{self.n_streams - 1}")
        t = stamp_ns(msg)
        if t is None:
            with self._lock:
                self._headerless += 1
            return False
        with self._lock:
            found = self._insert_and_match(index, t, msg)
            if found is not None:
                self._pairs += 1
        if found is None:
            return False
        self.callback(*found)
        return True

    def _insert_and_match(self, index: int, t: int, msg: Any) -> list[Any] | None:
        queue = self._queues[index]
        if t in queue:
            self._dropped[index] += 1  # replaced, as message_filters does
        queue[t] = msg
        while len(queue) > self.queue_size:
            del queue[min(queue)]
            self._dropped[index] += 1
        candidates: list[list[int]] = []
        for j, other in enumerate(self._queues):
            if j == index:
                continue
            near = [s for s in other if abs(s - t) <= self.slop_ns]
            if not near:
                if other:
                    nearest = min(other, key=lambda s: abs(s - t))
                    self._unpaired += 1
                    self._last_offset_ns = nearest - t
                    self._last_offset_streams = (index, j)
                return None
            near.sort(key=lambda s: abs(s - t))  # stable: queue order breaks ties
            candidates.append(near)
        for combo in itertools.product(*candidates):
            stamps = list(combo)
            stamps.insert(index, t)
            if max(stamps) - min(stamps) >= self.slop_ns:
                continue
            if any(s not in q for q, s in zip(self._queues, stamps, strict=True)):
                continue  # only the new message can be missing: evicted as the oldest
            return [q.pop(s) for q, s in zip(self._queues, stamps, strict=True)]
        return None

    def stats(self) -> dict[str, Any]:
        """Counters: ``pairs`` (sets emitted), ``dropped`` (per stream: evicted or replaced unpaired),
        ``queued`` (per stream), ``unpaired`` (arrivals that found a stream with messages, none within
        the slop), ``last_offset_s`` (signed: that stream's nearest stamp minus the new one, at the
        last such arrival; ``None`` if never), ``last_offset_streams`` ((new, other) stream indices),
        ``headerless`` (messages ignored for want of a stamp)."""
        with self._lock:
            return {
                "pairs": self._pairs,
                "dropped": list(self._dropped),
                "queued": [len(q) for q in self._queues],
                "unpaired": self._unpaired,
                "last_offset_s": None if self._last_offset_ns is None else self._last_offset_ns / _NS,
                "last_offset_streams": self._last_offset_streams,
                "headerless": self._headerless,
            }
