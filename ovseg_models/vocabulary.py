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

A class's ``thing`` and ``seen`` are given as in ``ovseg/VocabularyClass`` (:meth:`VocabularyClass.from_fields`):
0 is "auto" (``thing``: :func:`resolve_thing`; ``seen``: decided against the model's training
vocabulary), 1 thing / seen, 2 stuff / unseen. Vocabulary files (:meth:`Vocabulary.from_file`,
:func:`parse_vocabulary_text`) are operator requests with the same fields.
"""

from __future__ import annotations

import hashlib
import json
import re
import string
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = [
    "MAX_CLASSES",
    "MAX_NAME_LENGTH",
    "MAX_SYNONYMS",
    "MAX_VOCABULARY_FILE_BYTES",
    "SEEN",
    "SEEN_AUTO",
    "STUFF",
    "THING",
    "THING_AUTO",
    "THING_DATASETS",
    "UNSEEN",
    "VOCABULARY_SUFFIXES",
    "VocabularyClass",
    "Vocabulary",
    "VocabularyError",
    "check_text",
    "normalize_name",
    "parse_vocabulary_text",
    "resolve_thing",
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
#: the formats of a vocabulary file, by suffix (see :func:`parse_vocabulary_text`)
VOCABULARY_SUFFIXES = (".txt", ".yaml", ".yml", ".json")
#: the largest vocabulary file read: 65535 classes of about 30 characters fit in 2 MiB
MAX_VOCABULARY_FILE_BYTES = 4 * 1024 * 1024

#: values of a class's ``thing`` and ``seen`` (those of ``ovseg/VocabularyClass``)
THING_AUTO, THING, STUFF = 0, 1, 2
SEEN_AUTO, SEEN, UNSEEN = 0, 1, 2
#: datasets whose thing/stuff flags decide THING_AUTO classes, first match wins (the ones with
#: real flags: ADE20K-847 and Pascal Context-459 mark every class stuff)
THING_DATASETS = ("coco_panoptic", "ade20k_150", "cityscapes", "mapillary_vistas", "pascal_context_59", "pascal_voc_21")

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


@lru_cache(maxsize=1)
def _thing_flags() -> tuple[dict[str, bool], ...]:
    from .data.class_names import get_categories

    tables = []
    for dataset in THING_DATASETS:
        flags: dict[str, bool] = {}
        for c in get_categories(dataset):
            for name in c.synonyms:
                flags.setdefault(normalize_name(name), bool(c.is_thing))
        tables.append(flags)
    return tuple(tables)


def resolve_thing(synonyms: Sequence[str]) -> bool:
    """THING_AUTO: the flag of the first built-in dataset (:data:`THING_DATASETS`) naming one of
    ``synonyms`` (compared by :func:`normalize_name`); a class no dataset names is a thing."""
    keys = [normalize_name(s) for s in synonyms if isinstance(s, str)]
    for flags in _thing_flags():
        for k in keys:
            if k in flags:
                return flags[k]
    return True


_THING_WORDS = {"auto": THING_AUTO, "thing": THING, "stuff": STUFF}
_SEEN_WORDS = {"auto": SEEN_AUTO, "seen": SEEN, "unseen": UNSEEN}


def _tri_state(value: object, words: dict[str, int], field_name: str, what: str) -> int:
    """``value`` as 0, 1 or 2: the integer or its word (``"auto"``, ...); booleans are refused
    (``false`` would read as 0, "auto")."""
    if isinstance(value, str) and value.strip().lower() in words:
        return words[value.strip().lower()]
    if isinstance(value, int) and not isinstance(value, bool) and value in words.values():
        return value
    names = list(words)
    raise VocabularyError(
        f"{what}: {field_name} must be 0 ({names[0]}), 1 ({names[1]}) or 2 ({names[2]}), got {value!r}"
    )


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

    @classmethod
    def from_fields(
        cls,
        name: str,
        synonyms: Sequence[str] = (),
        *,
        thing: object = THING_AUTO,
        seen: object = SEEN_AUTO,
        what="class",
    ) -> VocabularyClass:
        """A class from the fields of ``ovseg/VocabularyClass`` (a request, an item of a vocabulary file).

        ``thing``: THING_AUTO (resolved by :func:`resolve_thing`), THING or STUFF; ``seen``:
        SEEN_AUTO (``None``: decided against the model's training vocabulary), SEEN or UNSEEN.
        Each may also be given by its word (``"auto"``, ``"thing"``, ``"stuff"``; ``"auto"``,
        ``"seen"``, ``"unseen"``). ``what`` names the class in the messages. The names are checked
        by :meth:`Vocabulary.create`.
        """
        thing_v = _tri_state(thing, _THING_WORDS, "thing", what)
        seen_v = _tri_state(seen, _SEEN_WORDS, "seen", what)
        if isinstance(synonyms, str):
            raise VocabularyError(f"{what}: synonyms must be a list of strings, not a single string")
        names = (name, *synonyms)
        is_thing = resolve_thing(names) if thing_v == THING_AUTO else thing_v == THING
        return cls(names, is_thing=is_thing, seen=None if seen_v == SEEN_AUTO else seen_v == SEEN)


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

    @classmethod
    def from_file(cls, path: str | Path, *, templates: Sequence[str] | None = None) -> Vocabulary:
        """An operator's vocabulary from a file (format by suffix, see :func:`parse_vocabulary_text`).

        At most :data:`MAX_VOCABULARY_FILE_BYTES` of UTF-8 text. Refusals (:class:`VocabularyError`)
        name the file and the rule, never what the file holds: a quoted name is replaced by
        ``'...'`` and a YAML/JSON syntax error gives only its kind and line (so a service that
        reports them cannot be used to read other files).
        """
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in VOCABULARY_SUFFIXES:
            raise VocabularyError(f"{path}: not a vocabulary file: use one of {', '.join(VOCABULARY_SUFFIXES)}")
        try:
            with open(path, "rb") as f:
                raw = f.read(MAX_VOCABULARY_FILE_BYTES + 1)
        except OSError as e:
            raise VocabularyError(f"{path}: cannot be read ({e.strerror or type(e).__name__})") from None
        if len(raw) > MAX_VOCABULARY_FILE_BYTES:
            raise VocabularyError(f"{path}: more than {MAX_VOCABULARY_FILE_BYTES} bytes, more than a vocabulary has")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise VocabularyError(f"{path}: not a vocabulary file (not UTF-8 text, byte {e.start})") from None
        try:
            return parse_vocabulary_text(text, suffix, templates=templates)
        except VocabularyError as e:
            raise VocabularyError(f"{path}: not a valid vocabulary ({_withheld(e)})") from None
        except Exception as e:  # noqa: BLE001 - parser errors quote the content: only their kind and place
            mark = getattr(e, "problem_mark", None)
            where = (
                f", line {mark.line + 1}"
                if mark is not None
                else (f", line {e.lineno}" if isinstance(e, json.JSONDecodeError) else "")
            )
            raise VocabularyError(f"{path}: not a vocabulary file ({type(e).__name__}{where})") from None

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


# -- vocabulary files -------------------------------------------------------------------------------

_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_ITEM_KEYS = ("name", "synonyms", "thing", "seen")


def _withheld(e: BaseException) -> str:
    """``e``'s message with every quoted part replaced: file content is never repeated."""
    return _QUOTED.sub("'...'", str(e))


def parse_vocabulary_text(text: str, format: str, *, templates: Sequence[str] | None = None) -> Vocabulary:
    """An operator's vocabulary from the text of a vocabulary file; ``format``: its suffix
    (``".txt"``, ``".yaml"``, ``".yml"``, ``".json"``, with or without the dot).

    ``.txt``: one class per line, synonyms separated by commas (``wall, walls, brick wall``), ``#``
    starts a comment, an optional ``[thing]`` or ``[stuff]`` at the end of the line; without one
    the class is THING_AUTO (:func:`resolve_thing`), as a service request without ``thing``.

    ``.yaml``/``.yml``/``.json``: a list of classes, or a mapping ``{classes: [...]}``. A class is a
    string (``"wall, walls"``, THING_AUTO) or a mapping with the fields of ``ovseg/VocabularyClass``:
    ``name``, ``synonyms`` (a list), ``thing`` and ``seen`` (0/``auto``, 1/``thing``/``seen``,
    2/``stuff``/``unseen``; default auto), see :meth:`VocabularyClass.from_fields`.

    The classes are validated as a request (:meth:`Vocabulary.create`). YAML and JSON syntax errors
    are raised as the parser's exception.
    """
    fmt = "." + format.lower().lstrip(".")
    if fmt not in VOCABULARY_SUFFIXES:
        raise VocabularyError(f"unknown vocabulary file format {format!r}: use one of {', '.join(VOCABULARY_SUFFIXES)}")
    bad = next((i for i, ch in enumerate(text) if ch < " " and ch not in "\t\n\r"), None)
    if bad is not None:
        raise VocabularyError(f"not a vocabulary file (control character on line {text.count(chr(10), 0, bad) + 1})")
    classes: list[VocabularyClass] = []
    if fmt == ".txt":
        for n, line in enumerate(text.splitlines(), 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            thing = THING_AUTO
            for tag, value in (("[stuff]", STUFF), ("[thing]", THING)):
                if line.lower().endswith(tag):
                    line, thing = line[: -len(tag)].strip(), value
            if len(line) > MAX_NAME_LENGTH * 8:
                raise VocabularyError(f"line {n} has {len(line)} characters, more than a class has")
            names = split_synonyms(line)
            if not names:
                raise VocabularyError(f"line {n}: class {len(classes)} has an empty name")
            classes.append(VocabularyClass.from_fields(names[0], names[1:], thing=thing, what=f"line {n}"))
        return Vocabulary.create(classes, templates=templates)
    if fmt == ".json":
        items: Any = json.loads(text)
    else:
        import yaml

        items = yaml.safe_load(text)
    if isinstance(items, dict):
        unknown = [str(k) for k in items if k != "classes"]
        if "classes" not in items or unknown:
            raise VocabularyError("expected a list of classes, or a mapping with the one key 'classes'")
        items = items["classes"]
    if not isinstance(items, list):
        raise VocabularyError("expected a list of classes")
    for i, item in enumerate(items):
        what = f"item {i}"
        if isinstance(item, str):
            names = split_synonyms(item)
            classes.append(VocabularyClass.from_fields(names[0], names[1:]) if names else VocabularyClass(()))
        elif isinstance(item, dict) and "name" in item:
            unknown = [str(k) for k in item if k not in _ITEM_KEYS]
            if unknown:
                raise VocabularyError(f"{what} has {len(unknown)} unknown key(s); a class has {', '.join(_ITEM_KEYS)}")
            synonyms = item.get("synonyms") or []
            if not isinstance(synonyms, list):
                raise VocabularyError(f"{what}: synonyms must be a list")
            classes.append(
                VocabularyClass.from_fields(
                    str(item["name"]),
                    [str(x) for x in synonyms],
                    thing=item.get("thing", THING_AUTO),
                    seen=item.get("seen", SEEN_AUTO),
                    what=what,
                )
            )
        else:
            raise VocabularyError(f"{what} must be a string or a mapping with 'name'")
    return Vocabulary.create(classes, templates=templates)
