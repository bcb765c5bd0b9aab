"""Open vocabularies: class names with synonyms, validated once, immutable afterwards.

A vocabulary is what an operator or a benchmark asks the model to recognise. Each class has a
display name and synonyms (``"wall, walls, brick wall"`` in the official FC-CLIP notation), a
``is_thing`` flag (countable objects get instance ids in panoptic output), and optionally a
``seen`` flag (whether the class was in the training set, which selects FC-CLIP's ensemble
weight; ``None`` means "decide against the model's training vocabulary").

This module is the one place where vocabularies and prompt templates are validated (the ROS
request parser, the node's parameters and the models call it). Always refused, with a message an
operator can act on (:class:`VocabularyError`): no classes, more classes than a mono16 label
image can hold (65535 is reserved for "unlabeled"), empty names, strings over
:data:`MAX_NAME_LENGTH`, control characters, invisible format characters (Unicode category Cf:
zero-width spaces, bidi controls, soft hyphens...) and invisible fillers; templates that are not
a single plain ``{}`` placeholder whose formatted sentence contains the name.

Operator requests (the default) are held to further limits: no two classes with the same name,
no synonym shared by two classes, at most :data:`MAX_SYNONYMS` synonyms per class (duplicates
within a class are dropped). Names are compared by :func:`normalize_name` (NFKC, case-folded,
whitespace collapsed). Published benchmark class lists break these limits on purpose (ADE20K-847
has two distinct classes named "pot", PASCAL VOC's "background" has 74 synonyms) and must load
exactly as published: build them with ``Vocabulary.create(..., trusted=True)`` or
:meth:`Vocabulary.from_dataset`.
"""

from __future__ import annotations

import hashlib
import re
import string
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

__all__ = [
    "MAX_CLASSES",
    "MAX_NAME_LENGTH",
    "MAX_SYNONYMS",
    "VocabularyClass",
    "Vocabulary",
    "VocabularyError",
    "check_text",
    "normalize_name",
    "split_synonyms",
    "validate_templates",
]

#: mono16 label images reserve 65535 for "unlabeled" (vision_msgs convention), so at most
#: 65535 categories (indices 0..65534) fit.
MAX_CLASSES = 65535
#: longest accepted class name, synonym or template, in characters. CLIP's context is 77 tokens,
#: so longer strings are truncated by the tokenizer anyway; refusing them is clearer.
MAX_NAME_LENGTH = 200
#: most synonyms accepted for one class of an operator's request.
MAX_SYNONYMS = 64

#: characters that render as nothing but are not Unicode format characters (Cf): Hangul and
#: Khmer fillers, the braille blank. Names made of them look empty.
_INVISIBLE = frozenset("\u115f\u1160\u17b4\u17b5\u2800\u3164\uffa0")
_WS = re.compile(r"\s+")
#: the probe a template is formatted with to check that the sentence contains the name
_PROBE = "\u2063probe\u2063"


class VocabularyError(ValueError):
    """A vocabulary was refused; the message says why."""


def normalize_name(name: str) -> str:
    """Comparison key of a name: NFKC (full-width and compatibility forms folded), case-folded,
    format characters (Cf) removed, whitespace collapsed and stripped."""
    s = unicodedata.normalize("NFKC", name)
    s = "".join(ch for ch in s if unicodedata.category(ch) != "Cf")
    return _WS.sub(" ", s).strip().casefold()


def split_synonyms(text: str, *, exact: bool = False) -> tuple[str, ...]:
    """Split ``"wall, walls,brick wall"`` into synonyms with the official FC-CLIP rule.

    The official rule is ``text.replace(', ', ',').split(',')``: with ``exact=True`` that and
    nothing else (how the published class lists are read: order, whitespace and duplicates kept).
    By default each piece is whitespace-collapsed and stripped and empty pieces are dropped
    (how an operator's ``"cat, kitty ,"`` is read).
    """
    pieces = text.replace(", ", ",").split(",")
    if exact:
        return tuple(pieces)
    return tuple(s for s in (_WS.sub(" ", p).strip() for p in pieces) if s)


def check_text(s: object, what: str) -> str:
    """Refuse a name, synonym or template that is not a short string of visible text.

    ``what`` names it in the message (``"class 3: synonym 1"``). Returns the string unchanged.
    """
    if not isinstance(s, str):
        raise VocabularyError(f"{what} must be a string, got {type(s).__name__}")
    if len(s) > MAX_NAME_LENGTH:
        raise VocabularyError(f"{what} of {len(s)} characters exceeds {MAX_NAME_LENGTH}: {s[:40]!r}...")
    for ch in s:
        cat = unicodedata.category(ch)
        if cat == "Cc" and not ch.isspace():  # tabs and newlines are whitespace, collapsed later
            raise VocabularyError(f"{what} {s!r} contains the control character U+{ord(ch):04X}")
        if cat == "Cf" or ch in _INVISIBLE or cat in ("Zl", "Zp"):
            kind = (
                "a bidirectional control"
                if unicodedata.bidirectional(ch) in ("LRE", "RLE", "LRO", "RLO", "PDF", "LRI", "RLI", "FSI", "PDI")
                or ch in "\u200e\u200f\u061c"
                else "an invisible character"
            )
            raise VocabularyError(
                f"{what} {s!r} contains {kind}, U+{ord(ch):04X} "
                f"({unicodedata.name(ch, 'unnamed')}); use visible text only"
            )
    return s


def validate_templates(templates: Sequence[str], *, what: str = "prompt template") -> tuple[str, ...]:
    """Check prompt templates; return them as a tuple.

    Each must be a string with exactly one plain ``{}`` placeholder (no index, name, conversion
    or format spec; ``{{`` and ``}}`` are literal braces, so ``"a photo of a {{}}."`` has none),
    whose formatted sentence contains the name, within the length and character rules of names.
    """
    if isinstance(templates, str):
        raise VocabularyError(f"{what}s must be a list of strings, not a single string")
    templates = tuple(templates)
    if not templates:
        raise VocabularyError(f"at least one {what} is needed")
    for t in templates:
        check_text(t, what)
        try:
            fields = [(f, spec, conv) for _, f, spec, conv in string.Formatter().parse(t) if f is not None]
        except ValueError as e:
            raise VocabularyError(
                f"{what} {t!r} is not a valid format string ({e}); write literal braces as '{{{{' and '}}}}'"
            ) from None
        if len(fields) != 1 or fields[0] != ("", "", None):
            raise VocabularyError(
                f"{what} {t!r} must contain '{{}}' exactly once, where the class name goes: "
                f"exactly one plain placeholder (found {len(fields)}; '{{{{}}}}' is a literal "
                "'{}', not one)"
            )
        if _PROBE not in t.format(_PROBE):  # pragma: no cover - implied by the parse above
            raise VocabularyError(f"{what} {t!r} does not put the class name into the sentence")
    return templates


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
    def parse(
        cls, spec: str | Sequence[str] | VocabularyClass, *, is_thing: bool = True, seen: bool | None = None
    ) -> VocabularyClass:
        """From ``"cat, kitty"``, ``["cat", "kitty"]`` or an existing class."""
        if isinstance(spec, VocabularyClass):
            return spec
        if isinstance(spec, str):
            synonyms = list(split_synonyms(spec))
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
    #: a published class list: the operator-request limits (duplicate names, shared synonyms,
    #: synonym count, text-encoding work) do not apply.
    trusted: bool = field(default=False, compare=False)

    @classmethod
    def create(
        cls,
        classes: Iterable[str | Sequence[str] | VocabularyClass],
        *,
        is_thing: Sequence[bool] | None = None,
        seen: Sequence[bool | None] | None = None,
        templates: Sequence[str] | None = None,
        trusted: bool = False,
    ) -> Vocabulary:
        """Parse and validate. Raises :class:`VocabularyError` with the reason on bad input.

        ``trusted=True`` is for published benchmark lists: they are taken exactly as given
        (display names may repeat, synonyms are neither deduplicated nor counted).
        """
        if isinstance(classes, (str, bytes)):
            raise VocabularyError("classes must be a list of names, not a single string")
        specs = list(classes)
        if not specs:
            raise VocabularyError("the vocabulary is empty: give at least one class name")
        if len(specs) > MAX_CLASSES:
            raise VocabularyError(
                f"{len(specs)} classes exceed the limit of {MAX_CLASSES} "
                "(mono16 label images reserve 65535 for unlabeled)"
            )
        for flag_name, flags in (("is_thing", is_thing), ("seen", seen)):
            if flags is not None and len(flags) != len(specs):
                raise VocabularyError(f"{flag_name} has {len(flags)} entries for {len(specs)} classes")
        parsed = []
        for i, spec in enumerate(specs):
            # Flags given here override the parsed (or passed-in) class's own.
            c = VocabularyClass.parse(spec)
            if is_thing is not None:
                c = replace(c, is_thing=bool(is_thing[i]))
            if seen is not None:
                c = replace(c, seen=None if seen[i] is None else bool(seen[i]))
            parsed.append(_checked_class(i, c, trusted))
        if not trusted:
            _check_distinct(parsed)
        tmpl = None if templates is None else validate_templates(templates)
        vocab = cls(tuple(parsed), tmpl, trusted=trusted)
        object.__setattr__(vocab, "digest", vocab._compute_digest())
        return vocab

    @classmethod
    def from_dataset(cls, dataset: str, *, templates: Sequence[str] | None = None) -> Vocabulary:
        """A benchmark's published class list (``"ade20k_847"``, ``"pascal_voc_21"``, ...), exactly
        as :mod:`ovseg_models.data.class_names` holds it, with its thing/stuff flags."""
        from .data.class_names import get_categories

        cats = get_categories(dataset)
        return cls.create(
            [VocabularyClass(tuple(c.synonyms), is_thing=c.is_thing) for c in cats], templates=templates, trusted=True
        )

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


def _checked_class(i: int, c: VocabularyClass, trusted: bool) -> VocabularyClass:
    """One class with its synonyms checked (and, for requests, whitespace-collapsed and deduplicated)."""
    if not c.synonyms:
        raise VocabularyError(f"class {i} has an empty name")
    out: list[str] = []
    keys: set[str] = set()
    for j, s in enumerate(c.synonyms):
        what = f"class {i}: name" if j == 0 else f"class {i} ({c.synonyms[0]!r}): synonym {j}"
        check_text(s, what)
        clean = _WS.sub(" ", s).strip()
        if not clean:
            raise VocabularyError(f"class {i} has an empty name" if j == 0 else f"{what} is empty")
        if trusted:
            out.append(s)
            continue
        key = normalize_name(clean)
        if key not in keys:
            keys.add(key)
            out.append(clean)
    if not trusted and len(out) > MAX_SYNONYMS:
        raise VocabularyError(f"class {i} ({out[0]!r}) has {len(out)} synonyms; at most {MAX_SYNONYMS} are accepted")
    return c if tuple(out) == c.synonyms else VocabularyClass(tuple(out), is_thing=c.is_thing, seen=c.seen)


def _check_distinct(classes: Sequence[VocabularyClass]) -> None:
    """Operator requests: no two classes share a name or synonym (compared by :func:`normalize_name`)."""
    owner: dict[str, int] = {}
    for i, c in enumerate(classes):
        key = normalize_name(c.name)
        if key in owner:
            raise VocabularyError(
                f"duplicate class name {c.name!r} (classes {owner[key]} and {i}, compared "
                "case-, width- and whitespace-insensitively)"
            )
        owner[key] = i
    for i, c in enumerate(classes):
        for s in c.synonyms[1:]:
            key = normalize_name(s)
            j = owner.get(key)
            if j is not None and j != i:
                raise VocabularyError(
                    f"synonym {s!r} of class {i} ({c.name!r}) is also a name of class {j} "
                    f"({classes[j].name!r}): one text cannot mean two classes"
                )
            owner[key] = i
