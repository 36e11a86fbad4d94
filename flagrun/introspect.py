"""A script's declared flags, found by reading its source (ast), never by running it.

The tuner checks a tuning YAML against these, and ``flagrun train NAME=VALUE``
checks names and values before anything starts. Declarations whose name is
not a literal make the result incomplete, so callers skip strict name checks
rather than reject a flag that may well exist.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from flagrun.errors import FlagError
from flagrun.flags import Flag, coerce

__all__ = ["DeclaredFlags", "declared_flags"]

_CONSTRUCTORS = {
    "flag_integer": "integer",
    "flag_numeric": "numeric",
    "flag_string": "string",
    "flag_boolean": "boolean",
}
_MODULES = ("flagrun", "flagrun.flags")
_PARAMS = ("name", "default", "description")


class DeclaredFlags(dict[str, Flag]):
    """name -> Flag (with its ``line``), in declaration order.

    ``complete`` is False when some declaration's name could not be read
    (not a literal), so an unknown name may still be declared. ``script`` is
    the script's file name, for messages; ``path`` its full path.
    """

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.script = path.name
        self.complete = True


def declared_flags(script: Path) -> DeclaredFlags:
    """The flags ``script`` declares with flag_integer/numeric/string/boolean calls.

    Raises FlagError naming file:line when the script cannot be read or parsed.
    """
    script = Path(script)
    tree = _parse(script)
    result = DeclaredFlags(script)
    names, modules = _aliases(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            flag_type = _constructor(node.func, names, modules)
            if flag_type is not None:
                _add(result, node, flag_type)
    ordered = sorted(result.values(), key=lambda f: f.line or 0)
    result.clear()
    result.update((f.name, f) for f in ordered)
    return result


def _parse(script: Path) -> ast.Module:
    try:
        source = script.read_bytes()
    except OSError as exc:
        raise FlagError(
            f"cannot read script {script}: {exc.strerror}", hint="check the path"
        ) from None
    try:
        return ast.parse(source, filename=str(script))
    except SyntaxError as exc:
        raise FlagError(
            f"{script}:{exc.lineno}: syntax error: {exc.msg}",
            hint="fix the script; `python -m py_compile SCRIPT` shows the same error",
        ) from None
    except ValueError as exc:  # e.g. null bytes in the source
        raise FlagError(f"{script}: cannot parse: {exc}") from None


def _aliases(tree: ast.Module) -> tuple[dict[str, str], set[str]]:
    """Local names bound to the flag constructors, and names bound to the flagrun modules."""
    names = dict(_CONSTRUCTORS)  # bare names work too (from flagrun import *)
    modules = {"flagrun"}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in _MODULES:
            for alias in node.names:
                if alias.name in _CONSTRUCTORS:
                    names[alias.asname or alias.name] = _CONSTRUCTORS[alias.name]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in _MODULES:
                    modules.add(alias.asname or alias.name)
    return names, modules


def _constructor(func: ast.expr, names: dict[str, str], modules: set[str]) -> str | None:
    if isinstance(func, ast.Name):
        return names.get(func.id)
    if isinstance(func, ast.Attribute) and _dotted(func.value) in modules:
        return _CONSTRUCTORS.get(func.attr)
    return None


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def _add(result: DeclaredFlags, call: ast.Call, flag_type: str) -> None:
    args = _arguments(call)
    if args is None or not isinstance(args.get("name"), str):
        result.complete = False
        return
    default = args.get("default")
    description = args.get("description")
    flag = Flag(
        name=args["name"],
        type=flag_type,
        default=_typed_default(flag_type, default),
        description=description if isinstance(description, str) else "",
        line=call.lineno,
    )
    result[flag.name] = flag


_UNKNOWN = object()


def _arguments(call: ast.Call) -> dict[str, Any] | None:
    """Literal arguments by parameter name (non-literals left out); None if unreadable."""
    if any(isinstance(a, ast.Starred) for a in call.args) or any(
        k.arg is None for k in call.keywords
    ):
        return None
    pairs = list(zip(_PARAMS, call.args, strict=False))
    pairs += [(k.arg, k.value) for k in call.keywords if k.arg is not None]
    found = {}
    for param, node in pairs:
        value = _literal(node)
        if value is not _UNKNOWN:
            found[param] = value
    return found


def _literal(node: ast.expr) -> Any:
    try:
        return ast.literal_eval(node)  # constants, -1e-3, tuples of those
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _UNKNOWN


def _typed_default(flag_type: str, default: Any) -> Any:
    """The default as the flags API would hold it (1 -> 1.0 for numeric); as written if odd."""
    if default is None:
        return None
    try:
        return coerce(Flag("default", flag_type, None), default)
    except FlagError:
        return default
