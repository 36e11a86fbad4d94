"""A trainer's declared arguments, found without running its training.

flagrun's own ``flags()`` declarations are read from the source (ast), never run:
``declared_flags``. Any other trainer (argparse, absl and ``tf.compat.v1.flags``, click,
typer, fire) is run in describe mode (``flagrun._describe``, in a subprocess with a
timeout): its module-level code runs up to its argument parsing, where the parser's
declarations are reported and the process ends. That happens only when the trainer's
source (or a module of its own package it imports) uses one of those parsers; a trainer
that reads ``sys.argv`` itself is never run, and flagrun says once that it cannot know
its arguments: ``declared_arguments``.

The tuner checks a tuning file against these, and ``flagrun train NAME=VALUE``
checks names and values before anything starts (statically only: a run should not
pay a second start of the trainer). Declarations whose name is not a literal, or a
parser that hands arguments on (subcommands), make the result incomplete, so callers
skip strict name checks rather than reject an argument that may well exist.
"""

from __future__ import annotations

import ast
import functools
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flagrun.errors import FlagError
from flagrun.flags import FLAG_TYPES, Flag, coerce

if TYPE_CHECKING:
    from flagrun.launch import Trainer

__all__ = [
    "DESCRIBE_TIMEOUT_ENV",
    "DeclaredFlags",
    "check_flags",
    "check_values",
    "declared_arguments",
    "declared_flags",
]

DESCRIBE_TIMEOUT_ENV = "FLAGRUN_DESCRIBE_TIMEOUT"
DESCRIBE_TIMEOUT = 60.0  # seconds for a trainer to reach its argument parsing
_PARSERS = ("argparse", "absl", "click", "typer", "fire")
_TF_FLAGS = re.compile(r"\b(?:tf|tensorflow)(?:\.compat\.v1)?(?:\.app)?\.flags\b")

_CONSTRUCTORS = {
    "flag_integer": "integer",
    "flag_numeric": "numeric",
    "flag_string": "string",
    "flag_boolean": "boolean",
}
_MODULES = ("flagrun", "flagrun.flags")
_PARAMS = ("name", "default", "description")


class DeclaredFlags(dict[str, Flag]):
    """name -> Flag (with its ``line`` when read from the source), in declaration order.

    ``complete`` is False when some declaration's name could not be read (not a
    literal, subcommands), so an unknown name may still be declared. ``script`` names
    the trainer in messages; ``path`` is its file. ``parser`` says who parses the
    arguments; ``loose`` whether ``first-layer-size`` and ``first_layer_size`` reach the
    same argument (flagrun's flags(), fire) or only the spelling declared (argparse,
    click, absl). ``switches`` take no value (``store_true``), ``required`` must be
    given, ``choices`` lists the values an argument accepts; ``note`` says why the
    arguments are unknown when they are.
    """

    def __init__(self, path: Path, parser: str = "flagrun flags()") -> None:
        super().__init__()
        self.path = path
        self.script = path.name
        self.complete = True
        self.parser = parser
        self.loose = True
        self.switches: set[str] = set()
        self.required: set[str] = set()
        self.choices: dict[str, tuple[str, ...]] = {}
        self.note: str | None = None

    def find(self, name: str) -> Flag | None:
        """The argument ``name`` sets: as spelled, or (a loose parser) spelled the other way."""
        flag = self.get(name)
        if flag is not None or not self.loose:
            return flag
        key = spelling(name)
        return next((f for n, f in self.items() if spelling(n) == key), None)

    def other_spelling(self, name: str) -> str | None:
        """The declared name that differs from ``name`` only in hyphens and underscores."""
        key = spelling(name)
        return next((n for n in self if n != name and spelling(n) == key), None)


def spelling(name: str) -> str:
    """One key for both spellings of a name: first-layer-size == first_layer_size."""
    return name.replace("-", "_")


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


# -- any other parser: describe mode ---------------------------------------------------------


def declared_arguments(trainer: Trainer, *, describe: bool = True) -> DeclaredFlags:
    """What ``trainer`` declares: its flags() read statically, else (``describe``) its
    parser's arguments from describe mode, else an incomplete result with a ``note``."""
    declared = declared_flags(trainer.file)
    declared.script = trainer.name
    if declared or not declared.complete or not describe:
        return declared
    if not uses_parser(trainer):
        unknown = DeclaredFlags(trainer.file, parser="sys.argv")
        unknown.script, unknown.complete = trainer.name, False
        unknown.note = (
            f"{trainer.name} uses no argument parser flagrun knows (argparse, absl, click, "
            "typer, fire): its arguments are not checked, the tuning file is trusted"
        )
        return unknown
    return _describe(trainer)


def uses_parser(trainer: Trainer) -> bool:
    """Whether the trainer's entry file, or a module of its own it imports, uses a parser."""
    pending, seen = [trainer.file], set[Path]()
    while pending and len(seen) < 100:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        try:
            source = path.read_text(encoding="utf-8")
            tree = ast.parse(source)
        except (OSError, SyntaxError, ValueError):
            continue
        if _TF_FLAGS.search(source):
            return True
        for name, local in _imports(tree, path, trainer.root):
            if name.split(".")[0] in _PARSERS:
                return True
            pending += local
    return False


def _imports(tree: ast.Module, path: Path, root: Path) -> list[tuple[str, list[Path]]]:
    """Each imported module's name, with the files of it found under ``root``."""
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        base = root
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = path.parents[node.level - 1]
            head = node.module or ""
            names = [head] + [f"{head}.{a.name}".lstrip(".") for a in node.names]
        for name in names:
            if not name:
                continue
            stem = base / Path(*name.split("."))
            files = [f for f in (stem.with_suffix(".py"), stem / "__init__.py") if f.is_file()]
            found.append((name if base == root else "", files))
    return found


def _describe(trainer: Trainer) -> DeclaredFlags:
    """Run ``trainer`` in describe mode once per command (--grid and the plan both ask)."""
    try:
        stamp = trainer.file.stat().st_mtime_ns
    except OSError:
        stamp = 0
    return _describe_once(trainer, stamp)


@functools.lru_cache(maxsize=8)
def _describe_once(trainer: Trainer, stamp: int) -> DeclaredFlags:
    """Run ``trainer`` in describe mode; an incomplete result with a note when it cannot."""
    timeout = float(os.environ.get(DESCRIBE_TIMEOUT_ENV) or DESCRIBE_TIMEOUT)
    with tempfile.TemporaryDirectory(prefix="flagrun-describe-") as tmp:
        out = Path(tmp) / "arguments.json"
        cmd = [sys.executable, "-m", "flagrun._describe", str(out), *trainer.target()]
        env = {**os.environ, "FLAGRUN_DESCRIBE": "1", "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(
            cmd,
            cwd=tmp,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            _, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            return _unknown(trainer, f"it did not reach its argument parsing in {timeout:g} s")
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        try:
            data = json.loads(out.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            lines = [ln for ln in err.decode(errors="replace").splitlines() if ln.strip()]
            last = lines[-1].strip()[:200] if lines else f"exit code {proc.returncode}"
            return _unknown(trainer, f"it stopped before parsing its arguments ({last})")
    if data.get("parser") == "none":
        return _unknown(trainer, "it ran to its end without parsing any argument")
    return _from_description(trainer, data)


def _unknown(trainer: Trainer, why: str) -> DeclaredFlags:
    declared = DeclaredFlags(trainer.file, parser="unknown")
    declared.script, declared.complete = trainer.name, False
    declared.note = (
        f"cannot tell which arguments {trainer.name} takes: {why}; "
        "its arguments are not checked, the tuning file is trusted"
    )
    return declared


def _from_description(trainer: Trainer, data: dict[str, Any]) -> DeclaredFlags:
    declared = DeclaredFlags(trainer.file, parser=str(data.get("parser")))
    declared.script = trainer.name
    declared.complete = bool(data.get("complete"))
    declared.loose = declared.parser == "fire"
    for item in data.get("arguments", []):
        kind = item.get("type") if item.get("type") in FLAG_TYPES else "string"
        for name in item.get("names", []):
            declared[name] = Flag(name, kind, item.get("default"))
            if not item.get("takes_value", True):
                declared.switches.add(name)
            if item.get("choices"):
                declared.choices[name] = tuple(item["choices"])
        if item.get("required") and item.get("names"):
            declared.required.add(item["names"][0])
    return declared


# -- values checked against declarations --------------------------------------------------


def check_flags(script: Path, values: dict[str, Any]) -> dict[str, Any]:
    """Coerce ``values`` against the flags ``script`` declares (read statically)."""
    return check_values(declared_flags(script), values)


def check_values(declared: DeclaredFlags, values: dict[str, Any]) -> dict[str, Any]:
    """Coerce ``values`` against ``declared`` (either spelling of a name where the parser
    takes both); FlagError for unknown or bad ones. With nothing declared (a trainer
    whose arguments are unknown) they go through unchecked."""
    if not declared:
        return dict(values)
    checked = {}
    for name, raw in values.items():
        flag = declared.find(name)
        if flag is None:
            if declared.complete:
                raise _unknown_flag(declared.script, name, list(declared))
            checked[name] = raw
            continue
        checked[name] = coerce(flag, raw)
    return checked


def _unknown_flag(script: str, name: str, known: list[str]) -> FlagError:
    import difflib

    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean {close[0]}?" if close else f"declared flags: {', '.join(known)}"
    return FlagError(f"flag {name!r} is not declared by {script}", hint=hint)
