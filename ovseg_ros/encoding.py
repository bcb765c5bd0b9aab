"""Vocabulary encodings off the executor: one at a time, the newest request wins, every request answered.

:class:`VocabularyEncoder` runs ``encode(vocabulary, cancel)`` on a thread of its own for the
node's ``set_vocabulary`` service. Each request is a :class:`EncodingJob` whose ``answer`` is
called exactly once:

- with the result (``commit`` made it the active vocabulary), or a refusal when encoding failed;
- ``superseded`` as soon as a newer request arrives (while it waits or while it encodes: a
  running encoding is told to stop through its ``cancel`` event, and its result is discarded
  even when the model cannot stop early);
- ``cancelled`` when the encoder is closed (lifecycle cleanup, shutdown, destruction).

Whether a job is superseded or committed is decided under one lock, so a superseded
encoding can never become active, and a committed one is never answered "superseded".

:class:`CallWorker` runs the text services' calls (``encode_text``, ``query``) in turn on a
daemon thread of its own.
"""

from __future__ import annotations

import concurrent.futures
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CallWorker", "EncodingJob", "VocabularyEncoder", "SUPERSEDED", "CANCELLED"]

SUPERSEDED = "superseded: a newer set_vocabulary request replaced this one before it took effect"
CANCELLED = "cancelled: the node left the configured state before the encoding finished"


@dataclass(eq=False)
class EncodingJob:
    """One request: the validated vocabulary and how to answer the caller (once)."""

    vocabulary: Any
    answer: Callable[[bool, str, int], None]  #: (success, message, version now active)
    cancel: threading.Event = field(default_factory=threading.Event)
    done: bool = False  #: answered (under VocabularyEncoder's lock)


class VocabularyEncoder:
    """See the module docstring.

    ``encode(vocabulary, cancel)``: the encoded vocabulary (may raise); ``commit(encoded)``:
    make it active and return its version (called under the encoder's lock, so a newer request
    waits for it); ``current_version()``: the active version, for refusals.
    """

    def __init__(
        self,
        encode: Callable[[Any, threading.Event], Any],
        commit: Callable[[Any], int],
        *,
        current_version: Callable[[], int],
        on_error: Callable[[str], None] | None = None,
        name: str = "ovseg-set-vocabulary",
    ):
        self._encode = encode
        self._commit = commit
        self._current_version = current_version
        self._on_error = on_error
        self._name = name
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._waiting: EncodingJob | None = None
        self._running: EncodingJob | None = None
        self._closed = False
        self._thread: threading.Thread | None = None
        self.answered = {"success": 0, "superseded": 0, "cancelled": 0, "failed": 0}

    # -- callers ----------------------------------------------------------------------------
    def submit(self, job: EncodingJob) -> None:
        """Queue ``job``; every older unanswered job is answered "superseded" now."""
        with self._lock:
            if self._closed:
                self._finish(job, False, CANCELLED, "cancelled")
                return
            for old in (self._waiting, self._running):
                if old is not None and not old.done:
                    old.cancel.set()
                    self._finish(old, False, SUPERSEDED, "superseded")
            self._waiting = job
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._wake.notify_all()

    def close(self, timeout: float = 10.0) -> bool:
        """Answer every pending job "cancelled", stop the thread; True if it ended within ``timeout``."""
        with self._lock:
            self._closed = True
            for old in (self._waiting, self._running):
                if old is not None and not old.done:
                    old.cancel.set()
                    self._finish(old, False, CANCELLED, "cancelled")
            self._waiting = None
            self._wake.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            return not thread.is_alive()
        return True

    @property
    def busy(self) -> bool:
        """An encoding (possibly a superseded one) is still running."""
        return self._running is not None

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread

    # -- the thread ---------------------------------------------------------------------------
    def _finish(self, job: EncodingJob, ok: bool, message: str, kind: str) -> None:
        """Answer ``job`` once (caller holds the lock)."""
        if job.done:
            return
        job.done = True
        self.answered[kind] += 1
        version = int(self._current_version()) if not ok else 0
        try:
            job.answer(ok, message, version)
        except Exception:  # noqa: BLE001 - a caller that went away must not stop the encoder
            pass

    def _run(self) -> None:
        while True:
            with self._lock:
                while self._waiting is None and not self._closed:
                    self._wake.wait(1.0)
                if self._closed and self._waiting is None:
                    self._running = None
                    return
                job, self._waiting = self._waiting, None
                self._running = job
            try:
                encoded, error = self._encode(job.vocabulary, job.cancel), None
            except Exception as e:  # noqa: BLE001 - reported to the caller
                encoded, error = None, e
            with self._lock:
                self._running = None
                if job.done:  # superseded or cancelled meanwhile: the result is discarded
                    continue
                if error is not None:
                    msg = f"refused: encoding the vocabulary failed ({type(error).__name__}: {error})"
                    self._finish(job, False, msg, "failed")
                    if self._on_error is not None:
                        self._on_error(msg)
                    continue
                try:
                    version = int(self._commit(encoded))
                except Exception as e:  # noqa: BLE001
                    self._finish(job, False, f"refused: could not activate the vocabulary ({e})", "failed")
                    continue
                job.done = True
                self.answered["success"] += 1
                try:
                    job.answer(True, "", version)
                except Exception:  # noqa: BLE001
                    pass


class CallWorker:
    """Runs submitted calls one after the other on a daemon thread (``encode_text`` and ``query``).

    Not a ``concurrent.futures.ThreadPoolExecutor``: its worker threads are joined when the
    interpreter exits, so a text encoding of seconds would hold the process after Ctrl-C. Here
    :meth:`close` cancels every waiting call at once (its future's callbacks run, so its caller
    is answered) and lets the running one end on its own; ``run()`` leaves without finalising
    while it still runs, as for a vocabulary encoding.
    """

    def __init__(self, name: str):
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def submit(self, fn: Callable[..., Any], *args: Any) -> concurrent.futures.Future:
        """``fn(*args)``'s future; RuntimeError once closed."""
        future: concurrent.futures.Future = concurrent.futures.Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the call worker is closed")
            self._queue.put((future, fn, args))
        return future

    def close(self) -> None:
        """Cancel the waiting calls (their callbacks run here) and stop after the running one."""
        waiting = []
        with self._lock:
            if self._closed:
                return
            self._closed = True
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    waiting.append(item)
            self._queue.put(None)
        for future, _, _ in waiting:
            future.cancel()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            future, fn, args = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args))
            except BaseException as e:  # noqa: BLE001 - handed to the caller through the future
                future.set_exception(e)
