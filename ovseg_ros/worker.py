"""Latest-frame-wins processing: a one-item slot, a worker thread, and the node's statistics.

The subscription callback :meth:`LatestSlot.put`s each frame; a frame still waiting when a newer
one arrives is dropped (and counted), so nothing queues without bound and the worker always
processes the newest frame. :class:`FrameWorker` runs ``process(item)`` on its own thread,
optionally no faster than ``max_rate``; an exception in ``process`` is counted and reported
through ``on_error`` and never ends the thread.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np

__all__ = ["CameraSlots", "FrameRecord", "FrameWorker", "LatestSlot", "RateMeter", "Stats"]

T = TypeVar("T")


class _Closable:
    """``close`` wakes every waiting ``take`` (which then returns None); ``reopen`` undoes it."""

    _cond: threading.Condition
    _closed: bool

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def reopen(self) -> None:
        with self._cond:
            self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed


class LatestSlot(_Closable, Generic[T]):
    """Holds at most one item: ``put`` replaces (and returns) the waiting one; ``take`` blocks."""

    def __init__(self):
        self._cond = threading.Condition()
        self._item: T | None = None
        self._has = False
        self._closed = False

    def put(self, item: T) -> T | None:
        """Store ``item``; return the item it replaced (a dropped frame) or None."""
        with self._cond:
            dropped = self._item if self._has else None
            self._item, self._has = item, True
            self._cond.notify()
            return dropped

    def take(self, timeout: float | None = None) -> T | None:
        """The waiting item (removing it), or None after ``timeout`` or when closed."""
        with self._cond:
            if not self._has and not self._closed:
                self._cond.wait(timeout)
            if not self._has:
                return None
            item, self._item, self._has = self._item, None, False
            return item

    def wait_for_item(self, timeout: float) -> bool:
        with self._cond:
            if not self._has and not self._closed:
                self._cond.wait(timeout)
            return self._has

    def clear(self) -> T | None:
        with self._cond:
            item = self._item if self._has else None
            self._item, self._has = None, False
            return item


class CameraSlots(_Closable, Generic[T]):
    """One latest-frame slot per camera, taken as a batch.

    ``put(camera, frame)`` replaces (and returns) that camera's waiting frame. ``take`` waits until
    at least one camera has a frame that is due, then returns the newest frame of *every* camera
    with a due frame, in camera order: each step serves all waiting cameras, so none starves, and a
    camera that sends nothing (or only frames refused before this) never holds the others up. A
    camera's ``max_rate`` (Hz, 0 = none) makes its frames due no sooner than ``1 / max_rate``
    after its previous frame was taken; newer frames replace its waiting one meanwhile.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._items: dict[str, T] = {}
        self._order: dict[str, int] = {}
        self._rates: dict[str, float] = {}
        self._last: dict[str, float] = {}
        self._closed = False

    def set_cameras(self, names: list[str], rates: dict[str, float] | None = None) -> None:
        with self._cond:
            self._order = {n: i for i, n in enumerate(names)}
            self._rates = {n: float((rates or {}).get(n, 0.0)) for n in names}
            self._items = {k: v for k, v in self._items.items() if k in self._order}
            self._cond.notify_all()

    def set_rate(self, camera: str, hz: float) -> None:
        with self._cond:
            self._rates[camera] = float(hz)
            self._cond.notify_all()

    def put(self, camera: str, item: T) -> T | None:
        """Store ``item`` as ``camera``'s newest frame; return the frame it replaced or None."""
        with self._cond:
            dropped = self._items.get(camera)
            self._items[camera] = item
            self._cond.notify()
            return dropped

    def _next_due(self, camera: str) -> float:
        rate = self._rates.get(camera, 0.0)
        return self._last.get(camera, -1e18) + 1.0 / rate if rate > 0 else -1e18

    def take(self, timeout: float | None = None) -> list[tuple[str, T]] | None:
        """The due frames of every camera (removed), or None after ``timeout`` or when closed."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                now = time.monotonic()
                due = [k for k in self._items if self._next_due(k) <= now]
                if due:
                    due.sort(key=lambda k: self._order.get(k, len(self._order)))
                    for k in due:
                        self._last[k] = now
                    return [(k, self._items.pop(k)) for k in due]
                if self._closed:
                    return None
                wait = None if deadline is None else deadline - now
                if wait is not None and wait <= 0:
                    return None
                pending = [self._next_due(k) - now for k in self._items]
                if pending:
                    wait = min(pending) if wait is None else min(wait, min(pending))
                self._cond.wait(wait)

    def clear(self) -> list[T]:
        with self._cond:
            items, self._items = list(self._items.values()), {}
            return items


class RateMeter:
    """Events per second over a sliding window."""

    def __init__(self, window: float = 5.0):
        self.window = window
        self._t: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()

    def tick(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._t.append(now)
            self._trim(now)

    def _trim(self, now: float) -> None:
        while self._t and now - self._t[0] > self.window:
            self._t.popleft()
        while len(self._t) > 100_000:
            self._t.popleft()

    def rate(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._trim(now)
            if len(self._t) < 2:
                return 0.0
            span = max(now - self._t[0], 1e-9)
            return (len(self._t) - 1) / span if span > 0 else 0.0


@dataclass
class FrameRecord:
    """Timings of one processed frame (seconds)."""

    stamp_ns: int  #: the source image's header stamp
    model: float  #: Segmenter.predict wall time
    node: float  #: from receipt in the callback to the last output published
    vocabulary_version: int


@dataclass
class Stats:
    """Counters and latency histories, shared between callback, worker and diagnostics."""

    history: int = 2000
    received: int = 0
    processed: int = 0
    dropped: int = 0  #: replaced in the slot before the worker took them
    invalid: int = 0  #: refused by the subscription callback (malformed)
    errors: int = 0  #: exceptions while processing
    stale: int = 0  #: outputs discarded because the vocabulary changed during processing
    lost: int = 0  #: lost below the callback (DDS sample-lost events on the input)
    incompatible_qos: int = 0  #: publishers the input cannot match (requested-incompatible-QoS events)
    ambiguous: int = 0  #: dropped: their stamp already went out with another vocabulary version
    overlays: int = 0  #: overlays rendered (only while someone subscribes)
    depth_pairs: int = 0  #: colour frames paired with a depth image and camera_info (depth.enabled)
    depth_invalid: int = 0  #: paired frames whose depth or camera_info could not be used (warned why)
    last_error: str = ""
    input_rate: RateMeter = field(default_factory=RateMeter)
    output_rate: RateMeter = field(default_factory=RateMeter)
    records: collections.deque = field(default=None)  # type: ignore[assignment]
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self):
        if self.records is None:
            self.records = collections.deque(maxlen=self.history)

    def add(self, name: str, n: int = 1) -> None:
        with self.lock:
            setattr(self, name, getattr(self, name) + n)

    def record(self, rec: FrameRecord) -> None:
        with self.lock:
            self.processed += 1
            self.records.append(rec)
        self.output_rate.tick()

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            recs = list(self.records)
            out = {
                k: getattr(self, k)
                for k in (
                    "received",
                    "processed",
                    "dropped",
                    "invalid",
                    "errors",
                    "stale",
                    "lost",
                    "incompatible_qos",
                    "ambiguous",
                    "overlays",
                    "depth_pairs",
                    "depth_invalid",
                    "last_error",
                )
            }
        out["input_rate_hz"] = self.input_rate.rate()
        out["processed_rate_hz"] = self.output_rate.rate()
        for key in ("model", "node"):
            vals = np.array([getattr(r, key) for r in recs[-200:]], dtype=np.float64)
            if len(vals):
                p = np.percentile(vals, [50, 90, 99]) * 1e3
                out[f"{key}_ms"] = {
                    "p50": float(p[0]),
                    "p90": float(p[1]),
                    "p99": float(p[2]),
                    "last": float(vals[-1] * 1e3),
                }
            else:
                out[f"{key}_ms"] = None
        return out


class FrameWorker:
    """Runs ``process(item)`` on a daemon thread for the newest item of ``slot``.

    ``max_rate`` (Hz, 0 = unlimited): the worker waits until ``1 / max_rate`` after the previous
    start before taking a frame, so the frame it takes is the newest at that time.
    """

    def __init__(
        self,
        slot: LatestSlot,
        process: Callable[[Any], None],
        *,
        max_rate: float = 0.0,
        on_error: Callable[[BaseException], None] | None = None,
        name: str = "ovseg-worker",
    ):
        self.slot = slot
        self.process = process
        self.on_error = on_error
        self.name = name
        self._stop = threading.Event()
        self._wake = threading.Event()  # set by stop() and by a max_rate change: ends a rate wait at once
        self._max_rate = float(max_rate)
        self._thread: threading.Thread | None = None
        self._last_start = 0.0
        self.busy = threading.Event()

    @property
    def max_rate(self) -> float:
        return self._max_rate

    @max_rate.setter
    def max_rate(self, value: float) -> None:
        """Takes effect at once: a worker waiting out the old rate's interval re-reads it now."""
        self._max_rate = float(value)
        self._wake.set()

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self.slot.reopen()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop after the current frame; True if the thread ended within ``timeout``."""
        self._stop.set()
        self._wake.set()
        self.slot.close()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout)
            return not t.is_alive()
        return True

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            rate = self._max_rate
            if rate > 0:
                wait = self._last_start + 1.0 / rate - time.monotonic()
                if wait > 0:
                    self._wake.wait(wait)
                    self._wake.clear()
                    continue
            item = self.slot.take(timeout=0.2)
            if item is None or self._stop.is_set():
                continue
            self._last_start = time.monotonic()
            self.busy.set()
            try:
                self.process(item)
            except BaseException as e:  # noqa: BLE001 - the worker must survive anything
                if self.on_error is not None:
                    try:
                        self.on_error(e)
                    except Exception:  # pragma: no cover
                        pass
                if isinstance(e, (KeyboardInterrupt, SystemExit)):
                    raise
            finally:
                self.busy.clear()
