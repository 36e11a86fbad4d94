"""Scalar fields of a tuning file, described by table rows and read by one function.

A format lists its scalar fields as ``Field`` rows (YAML name, ``TuningSpec`` attribute,
where the field may appear, kind, default, bounds or choices, hint) and calls ``read_field``
for each: the kind decides what is accepted and how a mistake is worded, so every field of
a kind fails the same way. A default is the value assumed when the field is absent (read
like a given one), ``None`` leaves the attribute unset and ``REQUIRED`` makes absence an
error: changing a default is a one-line edit of the row. A YAML null is absence, and so is
0 in a field marked ``zero_unset`` (the services' protobuf numbers, where 0 means unset).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from flagrun.formats._source import Source
from flagrun.formats._yaml import Map, Seq
from flagrun.spec import as_number, closest


class Kind(enum.Enum):
    """What a field holds."""

    ENUM = "one of its choices"
    WHOLE = "a whole number"
    BOOLEAN = "true or false"
    TEXT = "text; empty text counts as absent"
    NAME = "non-empty text: a path or a name"
    POSITIVE = "a positive number, also written as text (1e-3)"
    DURATION = "positive seconds: a number, or text as the services write it (7200s)"
    MAPPING = "a mapping, checked further by the format"
    ARGS = "a list of command-line arguments, each kept as written"


class Place(enum.Enum):
    """Where a field may appear in the file."""

    HYPERPARAMETERS = "in the hyperparameters block"
    ANYWHERE = "anywhere: a flagrun extension"
    PARAM = "in a param"


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


@dataclass(frozen=True)
class Field:
    """One scalar field of a tuning file and how to read it."""

    name: str  # as written in the file
    attribute: str  # of TuningSpec
    place: Place
    kind: Kind
    default: Any = None  # REQUIRED, None (unset) or the value assumed when absent
    choices: Sequence[str] | Mapping[str, Any] = ()  # ENUM: words (a mapping: word -> value)
    case: str = "upper"  # ENUM: "upper" or "lower", the case words are compared in
    minimum: int | None = None  # WHOLE
    maximum: int | None = None  # WHOLE
    unit: str = ""  # POSITIVE: named in the message, e.g. "seconds"
    zero_unset: bool = False  # WHOLE: 0 means "not given" (protobuf's unset number)
    hint: str | None = None  # how to write it; each kind has a fallback


@dataclass(frozen=True)
class Found:
    """A field as found in the file (value None when absent)."""

    value: Any
    line: int  # of the key, or of the mapping that lacks it
    where: str  # the field as messages name it, e.g. trainingInput.script
    missing_line: int = 0  # where "is missing" points: the enclosing mapping (0: ``line``)


def look_up(mapping: Map, key: str, prefix: str = "") -> Found:
    """``key`` of ``mapping``, named ``prefix + key`` in messages."""
    line = mapping.lines.get(key, mapping.line)
    return Found(mapping.get(key), line, prefix + key, mapping.line)


def read_field(source: Source, field: Field, found: Found) -> Any:
    """The value of ``field`` for the spec; ``source.fail`` on a value of the wrong kind."""
    value = found.value
    if _absent(field, value):
        if field.default is REQUIRED:
            hint = field.hint
            if field.kind is Kind.ENUM and hint is None:
                hint = f"add {field.name}: one of {', '.join(field.choices)}"
            source.fail(found.missing_line or found.line, found.where, "is missing", hint=hint)
        if field.default is None:
            return None
        value = field.default

    def fail(what: str, hint: str | None) -> NoReturn:
        source.fail(found.line, found.where, what, hint=hint)

    return _READERS[field.kind](field, value, fail)


Fail = Callable[[str, "str | None"], NoReturn]  # what, hint: one line naming the field


def _absent(field: Field, value: Any) -> bool:
    return (
        value is None
        or (field.kind is Kind.TEXT and value == "")
        or (field.zero_unset and value == 0 and not isinstance(value, bool))
    )


def _read_enum(field: Field, value: Any, fail: Fail) -> Any:
    choices = ", ".join(field.choices)
    fold = str.upper if field.case == "upper" else str.lower
    text = fold(value) if isinstance(value, str) else None
    if text is None or text not in field.choices:
        near = closest(fold(str(value)), field.choices)
        fail(
            f"{value!r} is not one of {choices}",
            field.hint or (f"did you mean {near}?" if near else f"use one of {choices}"),
        )
    return field.choices[text] if isinstance(field.choices, Mapping) else text


def _read_whole(field: Field, value: Any, fail: Fail) -> int:
    name, low, high = field.name, field.minimum, field.maximum
    whole = isinstance(value, int) and not isinstance(value, bool)
    if low is not None and high is not None:  # a range: one message for every mistake
        if not whole or not low <= value <= high:
            span = f"from {_bound(low)} to {_bound(high)}"
            fail(f"{value!r} is not a whole number {span}", field.hint)
        return value
    if not whole:
        example = max(low or 0, 1)
        fail(
            f"{value!r} is not a whole number",
            field.hint or f"write {name}: as an integer such as {example}",
        )
    if low is not None and value < low:
        fail(f"{value} is less than {low}", f"set {name} to {low} or more")
    if high is not None and value > high:
        fail(f"{value} is more than {high}", f"set {name} to {high} or less")
    return value


def _read_boolean(field: Field, value: Any, fail: Fail) -> bool:
    if not isinstance(value, bool):
        name = field.name
        hint = field.hint or f"write {name}: true or {name}: false"
        fail(f"{value!r} is not true or false", hint)
    return value


def _read_text(field: Field, value: Any, fail: Fail) -> str:
    if not isinstance(value, str) or not value:
        fail(f"{value!r} is not text", field.hint or f"write {field.name}: as a path/name")
    return value


def _read_positive(field: Field, value: Any, fail: Fail) -> float:
    number = as_number(value)
    if number is None or number <= 0:
        of = f" of {field.unit}" if field.unit else ""
        fail(f"{value!r} is not a positive number{of}", field.hint)
    return float(number)


def _read_duration(field: Field, value: Any, fail: Fail) -> float:
    """Seconds: 1800, 1800.5, "1800" or a protobuf Duration as JSON writes it, "1800s"."""
    text = value.strip() if isinstance(value, str) else None
    number = as_number(text[:-1] if text and text.endswith("s") else value)
    if number is None or number <= 0:
        fail(
            f"{value!r} is not a positive number of seconds",
            field.hint or f"write {field.name}: 7200s for two hours",
        )
    return float(number)


def _read_mapping(field: Field, value: Any, fail: Fail) -> dict:
    if not isinstance(value, dict):
        fail("is not a mapping", field.hint)
    return value


def _read_args(field: Field, value: Any, fail: Fail) -> tuple[str, ...]:
    if isinstance(value, tuple):  # the default
        return value
    if not isinstance(value, Seq) or None in value.raw:
        fail("is not a list of arguments", field.hint or f"write {field.name}: [--name, value]")
    return tuple(str(raw) for raw in value.raw)


_READERS: dict[Kind, Callable[[Field, Any, Fail], Any]] = {
    Kind.ENUM: _read_enum,
    Kind.WHOLE: _read_whole,
    Kind.BOOLEAN: _read_boolean,
    Kind.TEXT: _read_text,
    Kind.NAME: _read_text,
    Kind.POSITIVE: _read_positive,
    Kind.DURATION: _read_duration,
    Kind.MAPPING: _read_mapping,
    Kind.ARGS: _read_args,
}


def _bound(n: int) -> str:
    """A bound as people write it: 2**32-1 rather than 4294967295."""
    if n > 2**16 and (n + 1) & n == 0:
        return f"2**{(n + 1).bit_length() - 1}-1"
    return str(n)
