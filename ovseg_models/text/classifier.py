"""Text classifiers built from prompt templates, with a per-synonym embedding cache.

A *text encoder* is any object with

* ``cache_key: str`` - identifies the text tower's weights (two encoders with the same key must
  produce the same embeddings), and
* ``encode(sentences: list[str]) -> Tensor[N, C]`` - un-normalised sentence embeddings.

:func:`build_text_classifier` turns a list of synonyms into one row per synonym, the way FC-CLIP
does it (and OpenSeg/ODISE before it): every sentence embedding is L2-normalised, the rows of one
synonym are averaged over the templates, and the mean is L2-normalised again. Rows are cached in a
:class:`TextEmbeddingCache` keyed by ``(encoder.cache_key, templates, synonym)``, so switching
vocabularies only encodes the synonyms not seen before. Sentences are encoded in batches.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Protocol

import torch
import torch.nn.functional as F

__all__ = [
    "EncodingCancelled",
    "TextEncoder",
    "TextEmbeddingCache",
    "build_text_classifier",
    "check_cancel",
    "templates_key",
]


class EncodingCancelled(RuntimeError):
    """A pending text encoding was cancelled (its ``cancel`` event was set); nothing was changed."""


def check_cancel(cancel: threading.Event | None) -> None:
    """Raise :class:`EncodingCancelled` when ``cancel`` is set (called between text batches)."""
    if cancel is not None and cancel.is_set():
        raise EncodingCancelled("the vocabulary encoding was cancelled")


class TextEncoder(Protocol):
    cache_key: str

    def encode(self, sentences: list[str]) -> torch.Tensor: ...


def templates_key(templates: Sequence[str]) -> str:
    """Short stable digest of an ordered template list."""
    return hashlib.sha256("\x1f".join(templates).encode()).hexdigest()[:16]


class TextEmbeddingCache:
    """Thread-safe LRU cache of per-synonym classifier rows.

    Keys are ``(encoder_key, templates_key, synonym)``; values are 1-D float tensors.
    ``max_entries=None`` means unbounded. ``hits``/``misses`` count lookups; ``encoded_sentences``
    counts sentences sent to encoders through :func:`build_text_classifier`.
    """

    def __init__(self, max_entries: int | None = 65536):
        self.max_entries = max_entries
        self._data: OrderedDict[tuple[str, str, str], torch.Tensor] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.encoded_sentences = 0

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key) -> bool:
        return key in self._data

    def get(self, key: tuple[str, str, str]) -> torch.Tensor | None:
        with self._lock:
            value = self._data.get(key)
            if value is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: tuple[str, str, str], value: torch.Tensor) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            if self.max_entries is not None:
                while len(self._data) > self.max_entries:
                    self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def build_text_classifier(
    encoder: TextEncoder,
    synonyms: Sequence[str],
    templates: Sequence[str],
    *,
    cache: TextEmbeddingCache | None = None,
    batch_size: int = 256,
    cancel: threading.Event | None = None,
) -> torch.Tensor:
    """One L2-normalised row per synonym (``[len(synonyms), C]``), in the given order.

    Only synonyms absent from ``cache`` are encoded, ``batch_size`` sentences per encoder call.
    ``cancel`` is checked before every call; once set, :class:`EncodingCancelled` is raised and
    the cache is left as it was.
    """
    templates = tuple(templates)
    if not templates:
        raise ValueError("at least one prompt template is needed")
    tkey = templates_key(templates)
    rows: dict[str, torch.Tensor] = {}
    missing: list[str] = []
    for s in _unique(synonyms):
        hit = cache.get((encoder.cache_key, tkey, s)) if cache is not None else None
        if hit is None:
            missing.append(s)
        else:
            rows[s] = hit
    if missing:
        sentences = [t.format(s) for s in missing for t in templates]
        feats = []
        for i in range(0, len(sentences), batch_size):
            check_cancel(cancel)
            feats.append(encoder.encode(sentences[i : i + batch_size]).float())
        if cache is not None:
            cache.encoded_sentences += len(sentences)
        emb = F.normalize(torch.cat(feats, 0), dim=-1)
        emb = F.normalize(emb.reshape(len(missing), len(templates), emb.shape[-1]).mean(1), dim=-1)
        for s, row in zip(missing, emb, strict=False):
            row = row.clone()
            rows[s] = row
            if cache is not None:
                cache.put((encoder.cache_key, tkey, s), row)
    return torch.stack([rows[s] for s in synonyms], 0)
