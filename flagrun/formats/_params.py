"""Params of a tuning file: each param read and checked, then the checks between params.

The param shape is Cloud ML Engine's ``ParameterSpec`` (``parameterName``, ``type`` DOUBLE,
INTEGER, CATEGORICAL or DISCRETE, ``minValue``/``maxValue``, ``scaleType``,
``categoricalValues`` or ``discreteValues``), with conditional params as Vertex AI has them:
either a param with ``parentParameter: NAME`` plus one of ``parentCategoricalValues``,
``parentDiscreteValues``, ``parentIntValues``, or Vertex's nested form under the parent::

      conditionalParameterSpecs:
        - parameterSpec: {parameterName: units2, type: INTEGER, minValue: 16, maxValue: 256}
          parentIntValues: {values: [2, 3]}

Numbers PyYAML reads as strings (``1e-3``) are accepted where a number is expected.
``ParamReader.read`` returns the params parents first; ``check_between`` (usable by a format
whose params are written another way, once it has made a ``Raw`` of each) checks that names
are unique and that each parent exists, has the right type and has the values named;
``check_grid`` fails unless they can be searched on a grid.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from flagrun.formats._fields import REQUIRED, Field, Kind, Place, look_up, read_field
from flagrun.formats._source import Source
from flagrun.formats._yaml import Map, Seq
from flagrun.spec import LINEAR, MAX_GRID_INTEGERS, SCALES, TYPES, ParamSpec, as_number, closest

PARENT_VALUE_FIELDS = {
    "parentCategoricalValues": "CATEGORICAL",
    "parentDiscreteValues": "DISCRETE",
    "parentIntValues": "INTEGER",
}
PARAM_FIELDS = (
    "parameterName",
    "type",
    "minValue",
    "maxValue",
    "scaleType",
    "categoricalValues",
    "discreteValues",
    "parentParameter",
    *PARENT_VALUE_FIELDS,
    "conditionalParameterSpecs",
)
CONDITIONAL_FIELDS = ("parameterSpec", *PARENT_VALUE_FIELDS)
# The param fields that are words, read like the file's scalar fields.
TYPE = Field("type", "type", Place.PARAM, Kind.ENUM, REQUIRED, choices=TYPES)
SCALE_TYPE = Field("scaleType", "scale", Place.PARAM, Kind.ENUM, LINEAR, choices=SCALES)
_NAME = re.compile(r"^[A-Za-z_][\w.-]*$")

# (parent name, parent values, the field naming them, its line), or no parent.
Parent = tuple[str | None, tuple[Any, ...], str | None, int]


@dataclass
class Raw:
    """A param as read, before the whole list is cross-checked."""

    spec: ParamSpec
    label: str  # e.g. "params[1] (dropout2)"
    parent_field: str | None = None
    parent_line: int = 0


class ParamReader:
    """Reads a ``params`` list of one file; remembers where each param is for later checks."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.fail = source.fail
        self.where: dict[str, tuple[str, int]] = {}  # param name -> (label, line of its type)

    # -- params ----------------------------------------------------------------------------

    def read(self, hp: Map) -> tuple[ParamSpec, ...]:
        """The params of the hyperparameters block ``hp``, parents first."""
        if "params" not in hp:
            self.fail(
                hp.line,
                "params",
                "is missing",
                hint="list the hyperparameters to tune under params:",
            )
        seq = hp["params"]
        if not isinstance(seq, Seq) or not seq:
            self.fail(
                hp.lines["params"],
                "params",
                "is empty or not a list",
                hint="list each hyperparameter as '- parameterName: NAME'",
            )
        raws: list[Raw] = []
        for i, item in enumerate(seq):
            self._param(item, seq.lines[i], f"params[{i}]", None, raws)
        return self.check_between(raws)

    def check_between(self, raws: list[Raw]) -> tuple[ParamSpec, ...]:
        """The params parents first, once names are unique and every parent fits its child."""
        self._check_names(raws)
        by_name = {r.spec.name: r for r in raws}
        for raw in raws:
            self._check_parent(raw, by_name)
        return tuple(r.spec for r in self._parents_first(raws, by_name))

    def _param(
        self, item: Any, line: int, where: str, inherited: Parent | None, out: list[Raw]
    ) -> None:
        if not isinstance(item, Map):
            self.fail(
                line,
                where,
                "is not a mapping",
                hint="write each param as '- parameterName: NAME' with its fields below",
            )
        name = self._param_name(item, where)
        label = f"{where} ({name})"
        self.source.reject_unknown_keys(
            item, PARAM_FIELDS, label, "a param field", "a param has " + ", ".join(PARAM_FIELDS)
        )
        kind = read_field(self.source, TYPE, look_up(item, "type", f"{label}."))
        self.where[name] = (label, item.lines["type"])
        spec = self._typed(item, label, name, kind)
        parent, values, parent_field, parent_line = self._parent_of(item, label, inherited)
        spec = replace(spec, parent=parent, parent_values=values)
        out.append(Raw(spec, label, parent_field, parent_line))
        self._conditionals(item, label, name, out)

    def _param_name(self, item: Map, where: str) -> str:
        name = item.get("parameterName")
        if name is None:
            self.fail(
                item.line,
                f"{where}.parameterName",
                "is missing",
                hint="name the flag this param sets: parameterName: dropout1",
            )
        if not isinstance(name, str) or not _NAME.match(name):
            self.fail(
                item.lines["parameterName"],
                f"{where}.parameterName",
                f"{name!r} is not a flag name",
                hint="use the flag's name as declared in the script, e.g. dense_units1",
            )
        return name

    def _typed(self, item: Map, label: str, name: str, kind: str) -> ParamSpec:
        allowed = {
            "DOUBLE": ("minValue", "maxValue", "scaleType"),
            "INTEGER": ("minValue", "maxValue", "scaleType"),
            "CATEGORICAL": ("categoricalValues",),
            "DISCRETE": ("discreteValues", "scaleType"),
        }[kind]
        for key in ("minValue", "maxValue", "scaleType", "categoricalValues", "discreteValues"):
            if item.get(key) is not None and key not in allowed:  # null: not given
                self.fail(
                    item.lines[key],
                    f"{label}.{key}",
                    f"does not apply to type {kind}",
                    hint=f"type {kind} takes {' and '.join(allowed)}",
                )
        line = item.line
        if kind == "CATEGORICAL":
            return ParamSpec(name, kind, categorical_values=self.categories(item, label), line=line)
        scale = read_field(self.source, SCALE_TYPE, look_up(item, "scaleType", f"{label}."))
        if kind == "DISCRETE":
            values = self.discrete(item, label)
            return ParamSpec(name, kind, scale=scale, discrete_values=values, line=line)
        low, high = self.bounds(item, label, kind, scale)
        return ParamSpec(name, kind, low, high, scale, line=line)

    def bounds(
        self, item: Map, label: str, kind: str, scale: str
    ) -> tuple[int | float, int | float]:
        """``item``'s minValue and maxValue, checked against each other and the scale."""
        bounds = []
        for key in ("minValue", "maxValue"):
            if item.get(key) is None:
                self.fail(
                    item.line,
                    f"{label}.{key}",
                    "is missing",
                    hint=f"type {kind} needs minValue and maxValue",
                )
            value = as_number(item[key])
            if value is None:
                self.fail(
                    item.lines[key],
                    f"{label}.{key}",
                    f"{item[key]!r} is not a number",
                    hint=f"write {key}: as a number such as 0.5",
                )
            if kind == "INTEGER":
                if float(value) != int(value):
                    self.fail(
                        item.lines[key],
                        f"{label}.{key}",
                        f"{value} is not a whole number",
                        hint="INTEGER bounds are whole numbers; use type DOUBLE for fractions",
                    )
                value = int(value)
            else:
                value = float(value)
            bounds.append(value)
        low, high = bounds
        if low > high:
            self.fail(
                item.lines["minValue"],
                f"{label}.minValue",
                f"{item['minValue']} is greater than maxValue {item['maxValue']}",
                hint="swap minValue and maxValue",
            )
        if scale != LINEAR and low <= 0:
            self.fail(
                item.lines["minValue"],
                f"{label}.minValue",
                f"{item['minValue']} is not above 0, which {scale} needs",
                hint="raise minValue above 0, or use scaleType: UNIT_LINEAR_SCALE",
            )
        return low, high

    def _values(self, item: Map, key: str, label: str, example: str) -> Seq:
        seq = item.get(key)
        if seq is None:
            self.fail(item.line, f"{label}.{key}", "is missing", hint=f"write {key}: {example}")
        if not isinstance(seq, Seq) or not seq:
            self.fail(
                item.lines[key],
                f"{label}.{key}",
                "is empty or not a list",
                hint=f"write {key}: {example}",
            )
        return seq

    def categories(self, item: Map, label: str, key: str = "categoricalValues") -> tuple[str, ...]:
        """The words listed under ``key``, as written."""
        seq = self._values(item, key, label, "[relu, tanh]")
        out: list[str] = []
        seen: set[str] = set()  # a set: a list would make a long list cost its square
        for i, raw in enumerate(seq.raw):
            where = f"{label}.{key}[{i}]"
            if raw is None:
                self.fail(
                    seq.lines[i],
                    where,
                    "is not a plain value",
                    hint="list plain words: [relu, tanh, sigmoid]",
                )
            if raw in seen:
                self.fail(seq.lines[i], where, f"{raw!r} is listed twice", hint="drop one")
            seen.add(raw)
            out.append(raw)
        return tuple(out)

    def discrete(
        self, item: Map, label: str, key: str = "discreteValues"
    ) -> tuple[float | int, ...]:
        """The numbers listed under ``key``, sorted."""
        seq = self._values(item, key, label, "[16, 32, 64]")
        out: list[float | int] = []
        seen: set[float | int] = set()
        for i, value in enumerate(seq):
            where = f"{label}.{key}[{i}]"
            number = as_number(value)
            if number is None:
                self.fail(
                    seq.lines[i],
                    where,
                    f"{value!r} is not a number",
                    hint="DISCRETE takes numbers; use type CATEGORICAL for words",
                )
            if number in seen:
                self.fail(seq.lines[i], where, f"{number} is listed twice", hint="drop one")
            seen.add(number)
            out.append(number)
        return tuple(sorted(out))

    # -- conditional params ----------------------------------------------------------------

    def _parent_of(self, item: Map, label: str, inherited: Parent | None) -> Parent:
        """(parent, parent values, the field naming them, its line) for a param."""
        given = [k for k in PARENT_VALUE_FIELDS if k in item]
        if inherited is not None:
            if "parentParameter" in item or given:
                key = "parentParameter" if "parentParameter" in item else given[0]
                self.fail(
                    item.lines[key],
                    f"{label}.{key}",
                    "is set inside conditionalParameterSpecs, which already names the parent",
                    hint="put the parent values beside parameterSpec, not inside it",
                )
            return inherited
        if "parentParameter" not in item:
            if given:
                self.fail(
                    item.lines[given[0]],
                    f"{label}.{given[0]}",
                    "is given without parentParameter",
                    hint="add parentParameter: NAME of the param it depends on",
                )
            return None, (), None, 0
        parent = item["parentParameter"]
        if not isinstance(parent, str):
            self.fail(
                item.lines["parentParameter"],
                f"{label}.parentParameter",
                f"{parent!r} is not a param name",
                hint="name the parent param",
            )
        if len(given) != 1:
            self.fail(
                item.lines["parentParameter"],
                f"{label}.parentParameter",
                "needs exactly one of " + ", ".join(PARENT_VALUE_FIELDS),
                hint="say for which of the parent's values this param applies",
            )
        key = given[0]
        values = self.parent_values(item, key, f"{label}.{key}")
        return parent, values, key, item.lines[key]

    def parent_values(self, m: Map, key: str, where: str) -> tuple[Any, ...]:
        """The parent values under ``key`` (a list, or ``{values: [...]}``)."""
        value = m[key]
        if isinstance(value, Map) and set(value) == {"values"}:
            value = value["values"]
        if not isinstance(value, Seq) or not value:
            self.fail(
                m.lines[key],
                where,
                "is empty or not a list",
                hint=f"write {key}: [v1, v2] (or {{values: [v1, v2]}})",
            )
        if key == "parentCategoricalValues":
            if None in value.raw:
                self.fail(
                    m.lines[key], where, "holds a value that is not plain", hint="list plain words"
                )
            return tuple(value.raw)
        numbers = tuple(as_number(v) for v in value)
        if None in numbers:
            self.fail(
                m.lines[key],
                where,
                "holds a value that is not a number",
                hint=f"{key} lists numbers",
            )
        return numbers

    def _conditionals(self, item: Map, label: str, name: str, out: list[Raw]) -> None:
        if "conditionalParameterSpecs" not in item:
            return
        seq = item["conditionalParameterSpecs"]
        base = f"{label}.conditionalParameterSpecs"
        if not isinstance(seq, Seq) or not seq:
            self.fail(
                item.lines["conditionalParameterSpecs"],
                base,
                "is empty or not a list",
                hint="list '- parameterSpec: {...}' entries with their parent values",
            )
        for i, cond in enumerate(seq):
            where = f"{base}[{i}]"
            if not isinstance(cond, Map) or not isinstance(cond.get("parameterSpec"), Map):
                self.fail(
                    seq.lines[i],
                    f"{where}.parameterSpec",
                    "is missing or not a mapping",
                    hint="write parameterSpec: {parameterName: ..., type: ...}",
                )
            self.source.reject_unknown_keys(
                cond, CONDITIONAL_FIELDS, where, "a conditional spec field"
            )
            given = [k for k in PARENT_VALUE_FIELDS if k in cond]
            if len(given) != 1:
                self.fail(
                    cond.line,
                    where,
                    "needs exactly one of " + ", ".join(PARENT_VALUE_FIELDS),
                    hint="say for which parent values the param applies",
                )
            values = self.parent_values(cond, given[0], f"{where}.{given[0]}")
            inherited = (name, values, given[0], cond.lines[given[0]])
            self._param(
                cond["parameterSpec"],
                cond.lines["parameterSpec"],
                f"{where}.parameterSpec",
                inherited,
                out,
            )

    def _check_names(self, raws: list[Raw]) -> None:
        seen: dict[str, Raw] = {}
        for raw in raws:
            first = seen.get(raw.spec.name)
            if first is not None:
                self.fail(
                    raw.spec.line,
                    f"{raw.label}.parameterName",
                    f"{raw.spec.name!r} is already used by {first.label} at line {first.spec.line}",
                    hint="each flag may be tuned by one param only",
                )
            seen[raw.spec.name] = raw

    def _check_parent(self, raw: Raw, by_name: dict[str, Raw]) -> None:
        spec = raw.spec
        if spec.parent is None or raw.parent_field is None:
            return
        where = f"{raw.label}.{raw.parent_field}"
        parent = by_name.get(spec.parent)
        if parent is None or spec.parent == spec.name:
            near = closest(spec.parent, [n for n in by_name if n != spec.name])
            self.fail(
                raw.parent_line,
                f"{raw.label}.parentParameter",
                f"{spec.parent!r} is not another param of this file",
                hint=f"did you mean {near}?" if near else "name a param listed in params",
            )
        expected = PARENT_VALUE_FIELDS[raw.parent_field]
        if parent.spec.type != expected:
            right = {v: k for k, v in PARENT_VALUE_FIELDS.items()}.get(parent.spec.type)
            self.fail(
                raw.parent_line,
                where,
                f"does not fit parent {spec.parent} of type {parent.spec.type}",
                hint=f"use {right}"
                if right
                else "a DOUBLE param cannot be a parent; make it DISCRETE or INTEGER",
            )
        allowed = _parent_choices(parent.spec)
        for value in spec.parent_values:
            if not allowed(value):
                self.fail(
                    raw.parent_line,
                    where,
                    f"{value!r} is not a value of {spec.parent}",
                    hint=f"pick among {spec.parent}'s values: {_describe(parent.spec)}",
                )

    def _parents_first(self, raws: list[Raw], by_name: dict[str, Raw]) -> list[Raw]:
        ordered: list[Raw] = []
        state: dict[str, str] = {}

        def visit(raw: Raw) -> None:
            if state.get(raw.spec.name) == "done":
                return
            if state.get(raw.spec.name) == "visiting":
                self.fail(
                    raw.parent_line,
                    f"{raw.label}.parentParameter",
                    f"makes a cycle through {raw.spec.parent}",
                    hint="a param cannot depend, directly or not, on itself",
                )
            state[raw.spec.name] = "visiting"
            if raw.spec.parent is not None:
                visit(by_name[raw.spec.parent])
            state[raw.spec.name] = "done"
            ordered.append(raw)

        for raw in raws:
            visit(raw)
        return ordered

    def check_grid(self, params: tuple[ParamSpec, ...]) -> None:
        """Fail unless every param can be searched on a grid."""
        for p in params:
            label, type_line = self.where.get(p.name, (f"params ({p.name})", p.line))
            if p.type == "DOUBLE":
                self.fail(
                    type_line,
                    f"{label}.type",
                    "DOUBLE cannot be searched on a grid",
                    hint="use type DISCRETE with discreteValues, or algorithm RANDOM_SEARCH",
                )
            if p.type != "INTEGER" or p.min_value is None or p.max_value is None:
                continue
            span = p.max_value - p.min_value + 1
            if span > MAX_GRID_INTEGERS:
                self.fail(
                    p.line,
                    label,
                    f"spans {span} integers, too many for a grid",
                    hint="use type DISCRETE with the values to try",
                )


def _parent_choices(parent: ParamSpec) -> Callable[[Any], bool]:
    if parent.type == "CATEGORICAL":
        return lambda v: v in parent.categorical_values
    if parent.type == "DISCRETE":
        return lambda v: v in parent.discrete_values
    return lambda v: float(v).is_integer() and parent.min_value <= v <= parent.max_value


def _describe(p: ParamSpec) -> str:
    if p.type == "CATEGORICAL":
        return ", ".join(p.categorical_values)
    if p.type == "DISCRETE":
        return ", ".join(str(v) for v in p.discrete_values)
    return f"{p.min_value}..{p.max_value}"
