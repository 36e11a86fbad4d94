"""Script-side flags: declarations, typed parsing, resolution order, ``--help``.

A training script declares its knobs once::

    FLAGS = flags(flag_integer("dense_units1", 128), flag_numeric("dropout1", 0.4))

Values resolve, later wins: declared defaults < ``flags.yml`` beside the script
< ``--name value`` / ``--name=value`` on the command line (the way Cloud ML
Engine passes hyperparameters). This module runs inside every trial, so it
imports only the stdlib, and yaml only when a flags file exists.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator, Mapping

from flagrun.errors import FlagError

# typing and pathlib cost milliseconds that every trial would pay: annotations only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

__all__ = [
    "FLAG_TYPES",
    "Flag",
    "Flags",
    "HelpRequested",
    "coerce",
    "flag_boolean",
    "flag_integer",
    "flag_numeric",
    "flag_string",
    "flags",
    "flags_record",
    "format_help",
    "parse_flags",
    "read_flags_file",
    "run_dir",
]

FLAG_TYPES = ("integer", "numeric", "string", "boolean")
RUN_DIR_ENV = "FLAGRUN_RUN_DIR"
SCRIPT_DIR_ENV = "FLAGRUN_SCRIPT_DIR"
PROFILE_ENV = "FLAGRUN_CONFIG"
FLAGS_JSON = "flags.json"

_TRUE = ("true", "yes", "1")
_FALSE = ("false", "no", "0")
# Attribute names of a Flags object; a flag by one of these names could not be read as FLAGS.x.
_RESERVED = frozenset({"get", "items", "keys", "values"})


# -- declarations ------------------------------------------------------------------------------


class Flag:
    """One declared flag: its name, type (one of FLAG_TYPES), default and description.

    ``line`` is where the declaration is in the script when it was read from
    the source (see ``flagrun.introspect``); it takes no part in equality.
    Immutable. (Written by hand rather than as a dataclass: ``dataclasses``
    pulls in ``inspect``, ~10 ms that every training process would pay.)
    """

    __slots__ = ("name", "type", "default", "description", "line")
    name: str
    type: str
    default: Any
    description: str
    line: int | None

    def __init__(
        self, name: str, type: str, default: Any, description: str = "", line: int | None = None
    ) -> None:
        for slot, value in zip(
            self.__slots__, (name, type, default, description, line), strict=True
        ):
            object.__setattr__(self, slot, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Flag is read-only: cannot set {name}")

    def _key(self) -> tuple[Any, ...]:
        return (self.name, self.type, self.default, self.description)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Flag) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return "Flag(name={!r}, type={!r}, default={!r}, description={!r})".format(*self._key())

    def __reduce__(self) -> tuple[Any, ...]:
        return (Flag, (self.name, self.type, self.default, self.description, self.line))

    def with_default(self, default: Any) -> Flag:
        """A copy of this flag with another default."""
        return Flag(self.name, self.type, default, self.description, self.line)


def flag_integer(name: str, default: int | None, description: str = "") -> Flag:
    """Declare a whole-number flag."""
    return Flag(name, "integer", default, description)


def flag_numeric(name: str, default: float | None, description: str = "") -> Flag:
    """Declare a floating-point flag (accepts ``1e-3`` and whole numbers)."""
    return Flag(name, "numeric", default, description)


def flag_string(name: str, default: str | None, description: str = "") -> Flag:
    """Declare a text flag; values are taken literally."""
    return Flag(name, "string", default, description)


def flag_boolean(name: str, default: bool | None, description: str = "") -> Flag:
    """Declare a boolean flag (true/false/yes/no/1/0 in any case)."""
    return Flag(name, "boolean", default, description)


# -- typed values ------------------------------------------------------------------------------


def _is_flag_name(name: str) -> bool:
    """Letters, digits, underscores and hyphens, starting with a letter (ASCII)."""
    return name.isascii() and _spelling(name).isidentifier() and name[:1].isalpha()


def _spelling(name: str) -> str:
    """One spelling for first-layer-size and first_layer_size: they name one flag."""
    return name.replace("-", "_")


def _is_integer_text(word: str) -> bool:
    """``12``, ``-3``, ``+4``, and ``64.0`` (what str() gives for a whole float)."""
    digits = word[1:] if word[:1] in ("+", "-") else word
    whole, dot, fraction = digits.partition(".")
    return whole.isascii() and whole.isdigit() and (not dot or not fraction.strip("0"))


def coerce(flag: Flag, raw: object) -> Any:
    """``raw`` (argv text or a native YAML value) as ``flag``'s type; FlagError if it is not."""
    value = _convert(flag.type, raw)
    if value is _BAD:
        raise FlagError(
            f"flag {flag.name}: {raw!r} is not {_EXPECTED[flag.type]}",
            hint=f"{flag.name} is declared {flag.type}: e.g. --{flag.name} {_EXAMPLE[flag.type]}",
        )
    return value


_BAD = object()
_EXPECTED = {
    "integer": "a whole number",
    "numeric": "a number",
    "string": "text",
    "boolean": "true or false",
}
_EXAMPLE = {"integer": "128", "numeric": "0.001", "string": "relu", "boolean": "true"}


def _convert(flag_type: str, raw: object) -> Any:
    if isinstance(raw, str):
        return _from_text(flag_type, raw)
    if isinstance(raw, bool):  # before int: a YAML true is not a number
        return raw if flag_type == "boolean" else _BAD
    if isinstance(raw, int):
        return {"integer": raw, "numeric": float(raw), "string": str(raw)}.get(flag_type, _BAD)
    if isinstance(raw, float):
        if flag_type == "integer":
            return int(raw) if raw.is_integer() else _BAD
        return {"numeric": raw, "string": str(raw)}.get(flag_type, _BAD)
    return _BAD


def _from_text(flag_type: str, text: str) -> Any:
    if flag_type == "string":
        return text
    word = text.strip()
    if flag_type == "integer":
        return int(word.partition(".")[0]) if _is_integer_text(word) else _BAD
    if flag_type == "numeric":
        try:
            return float(word)
        except ValueError:
            return _BAD
    if word.lower() in _TRUE:
        return True
    return False if word.lower() in _FALSE else _BAD


# -- the resolved flags ------------------------------------------------------------------------


class Flags(Mapping):
    """Resolved flag values, read-only: ``FLAGS.name``, ``FLAGS["name"]`` and ``dict(FLAGS)``."""

    __slots__ = ("_values", "_declared", "_sources")

    def __init__(
        self, values: dict[str, Any], declared: dict[str, Flag], sources: dict[str, str]
    ) -> None:
        object.__setattr__(self, "_values", dict(values))
        object.__setattr__(self, "_declared", dict(declared))
        object.__setattr__(self, "_sources", dict(sources))

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # keeps copy/pickle probing away from the flag values
            raise AttributeError(name)
        for declared in (name, *(n for n in self._values if _spelling(n) == name)):
            if declared in self._values:
                return self._values[declared]
        listing = ", ".join(self._values) or "none"
        raise AttributeError(f"no flag {name!r} (declared: {listing})")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"flags are read-only: set {name} with --{name} VALUE or flags.yml")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("flags are read-only")

    def __repr__(self) -> str:
        return f"Flags({self._values!r})"

    def __reduce__(self) -> tuple:
        # pickle/copy would restore the slots with setattr, which is refused
        return (Flags, (self._values, self._declared, self._sources))


def flags_record(resolved: Flags) -> dict[str, Any]:
    """What ``flags.json`` holds: resolved values, declarations and where each value came from."""
    return {
        "flags": dict(resolved._values),
        "declared": {
            f.name: {"type": f.type, "default": f.default, "description": f.description}
            for f in resolved._declared.values()
        },
        "sources": dict(resolved._sources),
    }


# -- resolution --------------------------------------------------------------------------------


class HelpRequested(Exception):
    """``--help``/``-h`` was on the command line; ``flags()`` prints ``format_help`` and exits 0."""

    def __init__(self, declared: dict[str, Flag]) -> None:
        super().__init__("help requested")
        self.declared = declared


def parse_flags(
    declarations: Iterable[Flag],
    argv: list[str],
    file: str | os.PathLike[str] | None = None,
    profile: str | None = None,
) -> Flags:
    """Resolve declarations < ``file`` (when it exists) < ``argv``; FlagError on any problem.

    Raises HelpRequested when ``argv`` asks for ``--help``.
    """
    declared = _check_declarations(declarations)
    given = _parse_argv(argv, declared)
    from_file = _file_values(file, profile, declared)
    values, sources = {}, {}
    for name, flag in declared.items():
        values[name], sources[name] = flag.default, "default"
        if name in from_file:
            values[name], sources[name] = _coerce_from(flag, from_file[name], f"in {file}"), "file"
        if name in given:
            values[name], sources[name] = (
                _coerce_from(flag, given[name], "on the command line"),
                "argv",
            )
    return Flags(values, declared, sources)


def _check_declarations(declarations: Iterable[Flag]) -> dict[str, Flag]:
    declared: dict[str, Flag] = {}
    for item in declarations:
        if not isinstance(item, Flag):
            raise FlagError(
                f"flags() got {item!r}, not a flag declaration",
                hint="declare flags with flag_integer, flag_numeric, flag_string or flag_boolean",
            )
        _check_name(item.name)
        if any(_spelling(item.name) == _spelling(name) for name in declared):
            raise FlagError(f"flag {item.name} is declared twice", hint="declare each flag once")
        if item.type not in FLAG_TYPES:
            raise FlagError(f"flag {item.name}: unknown type {item.type!r}", hint=str(FLAG_TYPES))
        declared[item.name] = _checked_default(item)
    return declared


def _check_name(name: object) -> None:
    if not isinstance(name, str) or not _is_flag_name(name):
        raise FlagError(
            f"bad flag name {name!r}",
            hint="use letters, digits, underscores and hyphens, starting with a letter "
            "(dense_units1, first-layer-size)",
        )
    if name in _RESERVED:
        raise FlagError(
            f"flag name {name!r} clashes with FLAGS.{name}", hint=f"rename it, e.g. {name}_"
        )


def _checked_default(flag: Flag) -> Flag:
    if flag.default is None:
        return flag
    value = _convert(flag.type, flag.default)
    if value is _BAD or isinstance(flag.default, str) and flag.type != "string":
        raise FlagError(
            f"flag {flag.name}: default {flag.default!r} is not {_EXPECTED[flag.type]}",
            hint=f"declare it with a {flag.type} default, e.g. {_EXAMPLE[flag.type]}",
        )
    return flag.with_default(value)


def _coerce_from(flag: Flag, raw: object, where: str) -> Any:
    try:
        return coerce(flag, raw)
    except FlagError as exc:
        raise FlagError(f"{exc.message} ({where})", hint=exc.hint) from None


def _parse_argv(argv: list[str], declared: dict[str, Flag]) -> dict[str, str]:
    """``--name value`` / ``--name=value`` pairs as raw text; a value may start with -."""
    given: dict[str, str] = {}
    items = iter(argv)
    for item in items:
        if item in ("-h", "--help"):
            raise HelpRequested(declared)
        if not item.startswith("--") or item == "--":
            raise FlagError(
                f"unexpected argument {item!r}",
                hint="flags are given as --name value or --name=value",
            )
        name, eq, value = item[2:].partition("=")
        name = _known_name(name, declared)
        if not eq:
            following = next(items, None)
            if following is None:
                raise FlagError(f"flag {name}: missing value", hint=f"give --{name} VALUE")
            value = following
        given[name] = value
    return given


def _known_name(name: str, declared: dict[str, Flag], shown: str | None = None) -> str:
    """The declared flag ``name`` means, in either spelling (hyphens or underscores)."""
    if name in declared:
        return name
    for other in declared:
        if _spelling(other) == _spelling(name):
            return other
    raise _unknown(name, declared, "--" + name if shown is None else shown)


def _unknown(name: str, declared: dict[str, Flag], shown: str) -> FlagError:
    import difflib

    close = difflib.get_close_matches(name, list(declared), n=1)
    hint = (
        f"did you mean {close[0]}?" if close else f"declared flags: {', '.join(declared) or 'none'}"
    )
    return FlagError(f"unknown flag {shown}", hint=hint)


def _file_values(
    file: str | os.PathLike[str] | None, profile: str | None, declared: dict[str, Flag]
) -> dict:
    if file is None or not os.path.isfile(file):
        return {}
    values = read_flags_file(file, profile)
    return {_known_name(name, declared, f"{name!r} in {file}"): v for name, v in values.items()}


# -- flags files -------------------------------------------------------------------------------


def read_flags_file(path: str | os.PathLike[str], profile: str | None = None) -> dict[str, Any]:
    """The raw values in a flags YAML: a flat mapping, or a ``default:`` mapping plus profiles.

    With profiles, ``profile`` (when the file has it) is merged over ``default``.
    FlagError names the file (and the line when the YAML is malformed).
    """
    from pathlib import Path

    path = Path(path)
    data = _load_yaml(path)
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise FlagError(
            f"{path}: expected a mapping of flag names to values",
            hint="write one `name: value` per line",
        )
    if not isinstance(data.get("default"), dict):
        return _flat(path, data)
    values = _flat(path, data["default"])
    if profile and profile != "default" and profile in data:
        if not isinstance(data[profile], dict):
            raise FlagError(f"{path}: profile {profile!r} is not a mapping", hint="name: value")
        values.update(_flat(path, data[profile]))
    return values


def _load_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FlagError(f"cannot read flags file {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise FlagError(
            f"{path}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start})",
            hint="save the flags file as UTF-8",
        ) from None
    import yaml  # only here: pyyaml costs import time in every trial

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise FlagError(f"{where}: {problem}", hint="write one `name: value` per line") from None


def _flat(path: Path, data: dict) -> dict[str, Any]:
    for name, value in data.items():
        if not isinstance(name, str) or isinstance(value, (dict, list)):
            raise FlagError(
                f"{path}: {name!r} must be a flag name with a single value",
                hint="flags files hold `name: value` lines (or default:/profile: mappings of them)",
            )
    return dict(data)


# -- the script-facing entry points ------------------------------------------------------------


def flags(*declarations: Flag, file: str | os.PathLike[str] = "flags.yml") -> Flags:
    """Declare the script's flags and return their resolved, read-only values.

    Reads ``file`` beside the script when present, then the command line
    (unless running interactively). Under flagrun, writes ``<run dir>/flags.json``.
    A user mistake prints one ``flagrun: error:`` line and exits with status 2.
    """
    interactive = _interactive()
    argv = [] if interactive else sys.argv[1:]
    path = _flags_file(file, interactive)
    try:
        resolved = parse_flags(declarations, argv, path, os.environ.get(PROFILE_ENV))
    except HelpRequested as help_request:
        try:
            print(format_help(help_request.declared, _prog()), flush=True)
        except BrokenPipeError:  # `script.py --help | head`
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise SystemExit(0) from None
    except FlagError as exc:
        print(f"flagrun: error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"  hint: {exc.hint}", file=sys.stderr)
        raise SystemExit(2) from None
    _write_record(resolved)
    return resolved


def run_dir() -> Path | None:
    """The run's directory under flagrun (``FLAGRUN_RUN_DIR``), or None when run by hand."""
    from pathlib import Path

    value = os.environ.get(RUN_DIR_ENV)
    return Path(value) if value else None


def script_dir() -> Path:
    """The folder of the script as you keep it: where its relative paths start by hand.

    Under flagrun the script runs in its run folder (``FLAGRUN_SCRIPT_DIR`` names the
    script's own folder), so ``'../data'`` or ``'.'`` no longer find the data beside it:
    write ``flagrun.script_dir() / "../data"`` instead. Run by hand: the running script's
    folder.
    """
    from pathlib import Path

    value = os.environ.get(SCRIPT_DIR_ENV)
    if value:
        return Path(value)
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    return Path(main_file).resolve().parent if main_file else Path.cwd()


def format_help(declared: Mapping[str, Flag], prog: str = "script.py") -> str:
    """The ``--help`` text: every flag with its type, default and description."""
    lines = [
        f"usage: {prog} [--NAME VALUE ...]",
        "",
        "flags (--name value, --name=value or flags.yml):",
    ]
    rows = [
        (f"--{f.name} {f.type.upper()}", _show(f.default), f.description) for f in declared.values()
    ]
    width = max((len(r[0]) for r in rows), default=0)
    for option, default, description in rows:
        lines.append(
            f"  {option:<{width}}  default: {default}" + (f"  {description}" if description else "")
        )
    if not rows:
        lines.append("  (none declared)")
    return "\n".join(lines)


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "none" if value is None else str(value)


def _interactive() -> bool:
    """A notebook or REPL: no script file, and sys.argv belongs to the kernel."""
    return getattr(sys.modules.get("__main__"), "__file__", None) is None


def _flags_file(file: str | os.PathLike[str], interactive: bool) -> str:
    """``file`` beside the running script (the cwd when interactive or absolute)."""
    path = os.fspath(file)
    if os.path.isabs(path) or interactive or not sys.argv or not sys.argv[0]:
        return path
    return os.path.join(os.path.dirname(os.path.realpath(sys.argv[0])), path)


def _prog() -> str:
    return os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "script.py"


def _write_record(resolved: Flags) -> None:
    directory = run_dir()
    if directory is None:
        return
    from flagrun._atomic import write_json_atomic

    try:
        write_json_atomic(directory / FLAGS_JSON, flags_record(resolved))
    except OSError as exc:  # the run still goes on; the runner falls back to the argv flags
        print(f"flagrun: warning: cannot write {directory / FLAGS_JSON}: {exc}", file=sys.stderr)
