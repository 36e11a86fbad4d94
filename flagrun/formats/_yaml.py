"""Safe YAML that keeps line numbers, for the tuning-file formats.

``read_yaml`` reads a file with ``Loader`` (a ``yaml.SafeLoader``: no tags that build Python
objects) into ``Map`` and ``Seq``, a dict and a list that remember the 1-based line of
themselves and of each key or item, so a format can name ``file:line`` for any field. A
duplicate key is an error, as is any YAML or reading error: each becomes a ``SpecError``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from flagrun.errors import SpecError


class Map(dict):
    """A YAML mapping that remembers its own line and each key's line (1-based)."""

    line: int = 1
    lines: dict[str, int]


class Seq(list):
    """A YAML sequence that remembers its line, each item's line and scalar items' raw text."""

    line: int = 1
    lines: list[int]
    raw: list[str | None]


# libyaml's parser when PyYAML has it: the pure-Python one takes ~20 s over 100,000 values.
_SafeBase: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class Loader(_SafeBase):
    """SafeLoader whose mappings and sequences keep line numbers."""


def _construct_map(loader: Loader, node: yaml.MappingNode) -> Iterator[Map]:
    data = Map()
    data.line, data.lines = node.start_mark.line + 1, {}
    yield data
    own = [k for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge"]
    seen: set[Any] = set()
    for key_node in own:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"found duplicate key {key_node.value!r}", key_node.start_mark
            )
        seen.add(getattr(key_node, "value", None))
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            raise yaml.constructor.ConstructorError(
                None, None, "found a key that is not a plain name", key_node.start_mark
            )
        data[key_node.value] = loader.construct_object(value_node, deep=True)
        data.lines[key_node.value] = key_node.start_mark.line + 1


def _construct_seq(loader: Loader, node: yaml.SequenceNode) -> Iterator[Seq]:
    data = Seq()
    data.line, data.lines, data.raw = node.start_mark.line + 1, [], []
    yield data
    for child in node.value:
        data.append(loader.construct_object(child, deep=True))
        data.lines.append(child.start_mark.line + 1)
        data.raw.append(child.value if isinstance(child, yaml.ScalarNode) else None)


Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)
Loader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


def read_yaml(path: Path) -> Any:
    """The document in ``path``, its mappings and lists as ``Map`` and ``Seq``; else SpecError."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(
            f"{path}: tuning file not found", hint="check the path given to --config"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: cannot read the tuning file: {exc}") from None
    try:
        return yaml.load(text, Loader=Loader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{mark.line + 1}:{mark.column + 1}" if mark else "1"
        raise SpecError(
            f"{path}:{where}: not valid YAML: {exc.problem or exc.context}",
            hint="check the indentation, colons and quoting on that line",
        ) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML: {exc}") from None


def plain(value: Any) -> Any:
    """A YAML value as plain dicts and lists (JSON-able), without the line bookkeeping."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value
