"""Open vocabularies: class names with synonyms, validated once, immutable afterwards.

A vocabulary is what an operator or a benchmark asks the model to recognise. Each class has a
display name and synonyms (``"wall, walls, brick wall"`` in the official FC-CLIP notation), a
``is_thing`` flag (countable objects get instance ids in panoptic output), and optionally a
``seen`` flag (whether the class was in the training set, which selects FC-CLIP's ensemble
weight; ``None`` means "decide against the model's training vocabulary").

Validation is strict because a bad vocabulary must be refused before it reaches a model:
empty lists, empty names, duplicate names after normalisation, more classes than a mono16
label image can hold (65535 is reserved for "unlabeled"), and absurdly long strings all raise
:class:`VocabularyError` with a message an operator can act on.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Iterable, Sequence

__all__ = [
    "MAX_CLASSES",
    "MAX_NAME_LENGTH",
    "MAX_SYNONYMS",
    "VocabularyClass",
    "Vocabulary",
    "VocabularyError",
    "normalize_name",
    "split_synonyms",
]

#: mono16 label images reserve 65535 for "unlabeled" (vision_msgs convention), so at most
#: 65535 categories (indices 0..65534) fit.
MAX_CLASSES = 65535
#: longest accepted class name or synonym, in characters. CLIP's context is 77 tokens, so
#: longer strings are truncated by the tokenizer anyway; refusing them is clearer.
MAX_NAME_LENGTH = 200
#: most synonyms accepted for one class.
MAX_SYNONYMS = 64


class VocabularyError(ValueError):
    """A vocabulary was refused; the message says why."""


_WS = re.compile(r"\s+")


def normalize_name(name: str) -> str:
    """Whitespace-collapsed, stripped, lower-cased form used to detect duplicates."""
    return _WS.sub(" ", name).strip().lower()


def split_synonyms(text: str) -> list[str]:
    """Split ``"wall, walls,brick wall"`` into synonyms, as the official FC-CLIP code does.

    The official rule is ``text.replace(', ', ',').split(',')``; here, additionally, each
    piece is whitespace-stripped and empty pieces are dropped.
    """
    return [s for s in (_WS.sub(" ", p).strip() for p in text.replace(", ", ",").split(",")) if s]


@dataclass(frozen=True)
class VocabularyClass:
    """One class: ``synonyms[0]`` is the display name; all synonyms are prompted."""

    synonyms: tuple[str, ...]
    is_thing: bool = True
    seen: bool | None = None

    @property
    def name(self) -> str:
        return self.synonyms[0]

    @classmethod
    def parse(cls, spec: "str | Sequence[str] | VocabularyClass", *, is_thing: bool = True,
              seen: bool | None = None) -> "VocabularyClass":
        """From ``"cat, kitty"``, ``["cat", "kitty"]`` or an existing class."""
        if isinstance(spec, VocabularyClass):
            return spec
        if isinstance(spec, str):
            synonyms = split_synonyms(spec)
        else:
            synonyms = []
            for s in spec:
                if not isinstance(s, str):
                    raise VocabularyError(f"class synonyms must be strings, got {type(s).__name__}")
                synonyms.extend(split_synonyms(s))
        return cls(tuple(synonyms), is_thing=is_thing, seen=seen)


@dataclass(frozen=True)
class Vocabulary:
    """An immutable, validated list of classes. Construct with :meth:`create`."""

    classes: tuple[VocabularyClass, ...]
    #: prompt templates (``"a photo of a {}."``); ``None`` means the model's default.
    templates: tuple[str, ...] | None = None
    #: fingerprint of names, flags and templates; stable across processes.
    digest: str = field(default="", compare=False)

    @classmethod
    def create(cls, classes: Iterable["str | Sequence[str] | VocabularyClass"], *,
               is_thing: Sequence[bool] | None = None, seen: Sequence[bool | None] | None = None,
               templates: Sequence[str] | None = None) -> "Vocabulary":
        """Parse and validate. Raises :class:`VocabularyError` with the reason on bad input."""
        if isinstance(classes, (str, bytes)):
            raise VocabularyError("classes must be a list of names, not a single string")
        specs = list(classes)
        for flag_name, flags in (("is_thing", is_thing), ("seen", seen)):
            if flags is not None and len(flags) != len(specs):
                raise VocabularyError(f"{flag_name} has {len(flags)} entries for {len(specs)} classes")
        parsed = []
        for i, spec in enumerate(specs):
            kwargs = {}
            if is_thing is not None:
                kwargs["is_thing"] = bool(is_thing[i])
            if seen is not None:
                kwargs["seen"] = None if seen[i] is None else bool(seen[i])
            c = VocabularyClass.parse(spec, **kwargs)
            if kwargs and isinstance(spec, VocabularyClass):
                c = VocabularyClass(c.synonyms, **{"is_thing": c.is_thing, "seen": c.seen, **kwargs})
            parsed.append(c)
        vocab = cls(tuple(parsed), None if templates is None else tuple(templates))
        vocab._validate()
        object.__setattr__(vocab, "digest", vocab._compute_digest())
        return vocab

    def _validate(self) -> None:
        if not self.classes:
            raise VocabularyError("the vocabulary is empty: give at least one class name")
        if len(self.classes) > MAX_CLASSES:
            raise VocabularyError(f"{len(self.classes)} classes exceed the limit of {MAX_CLASSES} "
                                  "(mono16 label images reserve 65535 for unlabeled)")
        first_seen: dict[str, int] = {}
        for i, c in enumerate(self.classes):
            if not c.synonyms:
                raise VocabularyError(f"class {i} has an empty name")
            if len(c.synonyms) > MAX_SYNONYMS:
                raise VocabularyError(f"class {i} ({c.name!r}) has {len(c.synonyms)} synonyms; "
                                      f"at most {MAX_SYNONYMS} are accepted")
            for s in c.synonyms:
                if len(s) > MAX_NAME_LENGTH:
                    raise VocabularyError(f"class {i}: name of {len(s)} characters exceeds "
                                          f"{MAX_NAME_LENGTH}: {s[:40]!r}...")
                if any(ord(ch) < 32 for ch in s):
                    raise VocabularyError(f"class {i}: name {s!r} contains control characters")
            key = normalize_name(c.name)
            if key in first_seen:
                raise VocabularyError(f"duplicate class name {c.name!r} (classes {first_seen[key]} "
                                      f"and {i}, compared case- and whitespace-insensitively)")
            first_seen[key] = i
        if self.templates is not None:
            if not self.templates:
                raise VocabularyError("templates given but empty")
            for t in self.templates:
                if t.count("{}") != 1:
                    raise VocabularyError(f"prompt template {t!r} must contain exactly one '{{}}'")
                if len(t) > MAX_NAME_LENGTH:
                    raise VocabularyError(f"prompt template of {len(t)} characters is too long")

    def _compute_digest(self) -> str:
        h = hashlib.sha256()
        for c in self.classes:
            h.update(("\x1f".join(c.synonyms) + f"\x1e{int(c.is_thing)}{c.seen}\x1d").encode())
        h.update(repr(self.templates).encode())
        return h.hexdigest()[:16]

    # -- convenience -----------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.classes)

    def __iter__(self):
        return iter(self.classes)

    def __getitem__(self, i: int) -> VocabularyClass:
        return self.classes[i]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.classes]

    @property
    def synonyms(self) -> list[tuple[str, ...]]:
        return [c.synonyms for c in self.classes]

    @property
    def is_thing(self) -> list[bool]:
        return [c.is_thing for c in self.classes]
