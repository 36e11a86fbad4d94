"""Describe mode: run a trainer only up to its argument parsing, report the parser, exit.

``python -m flagrun._describe OUT SCRIPT`` (or ``OUT -m ROOT MODULE``) runs the trainer as
a trial would, with the argument parsers of argparse, absl (also ``tf.compat.v1.flags``),
click, typer and fire replaced by one that writes what the parser declares to ``OUT`` as
JSON and ends the process at once (``os._exit``): the module-level code before the
parsing runs, the training never does. ``flagrun.introspect`` starts this in a
subprocess with a timeout. The JSON::

    {"parser": "argparse", "complete": true, "arguments": [
        {"names": ["first-layer-size"], "type": "integer", "default": 100,
         "takes_value": true, "required": false, "choices": null}]}

``names`` are the long option spellings without ``--``; ``type`` is a flagrun flag type
(``string`` when any text is taken or the type is unknown); ``complete`` is false when
the parser hands arguments on to parts not described (subcommands, ``**kwargs``).
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import json
import os
import sys
from typing import Any

from flagrun._bootstrap import prepare

_OUT: str = ""


def _report(parser: str, arguments: list[dict[str, Any]], complete: bool = True) -> None:
    data = {"parser": parser, "complete": complete, "arguments": arguments}
    with open(_OUT, "w", encoding="utf-8") as handle:
        json.dump(data, handle, default=repr)
    os._exit(0)  # never run the training, nor atexit handlers that might


def _argument(
    names: list[str],
    kind: str,
    default: Any,
    *,
    takes_value: bool = True,
    required: bool = False,
    choices: Any = None,
) -> dict[str, Any]:
    return {
        "names": names,
        "type": kind,
        "default": default,
        "takes_value": takes_value,
        "required": required,
        "choices": [str(c) for c in choices] if choices else None,
    }


def _kind_of_callable(kind: Any) -> str:
    return {int: "integer", float: "numeric", bool: "boolean"}.get(kind, "string")


# -- argparse --------------------------------------------------------------------------------


def _from_argparse(parser: Any) -> None:
    import argparse

    arguments, complete = [], True
    pending = [parser]
    while pending:
        current = pending.pop()
        for action in current._actions:
            if isinstance(action, argparse._SubParsersAction):
                complete = False  # subcommands: their options need the subcommand first
                pending += list(action.choices.values())
                continue
            if isinstance(action, argparse._HelpAction | argparse._VersionAction):
                continue
            names = [o[2:] for o in action.option_strings if o.startswith("--")]
            if not names:
                continue  # positionals and short options are not set by --name=value
            arguments.append(
                _argument(
                    names,
                    _kind_of_callable(action.type),
                    action.default,
                    takes_value=action.nargs != 0,
                    required=bool(action.required),
                    choices=action.choices,
                )
            )
    _report("argparse", arguments, complete)


def _patch_argparse() -> None:
    import argparse

    def parse_known_args(self: Any, *args: Any, **kwargs: Any) -> Any:
        _from_argparse(self)

    argparse.ArgumentParser.parse_known_args = parse_known_args  # type: ignore[method-assign]


# -- absl and tf.compat.v1.flags -------------------------------------------------------------

_ABSL_TYPES = {"int": "integer", "float": "numeric", "bool": "boolean"}


def _patch_absl() -> None:
    from absl import flags

    def parse(self: Any, argv: Any, known_only: bool = False) -> Any:
        arguments = []
        for module, defined in self.flags_by_module_dict().items():
            if module.startswith("absl.") or module.startswith("tensorflow."):
                continue
            for flag in defined:
                kind = _ABSL_TYPES.get(flag.flag_type(), "string")
                choices = getattr(flag.parser, "enum_values", None)
                arguments.append(_argument([flag.name], kind, flag.default, choices=choices))
        _report("absl", arguments)

    flags.FlagValues.__call__ = parse  # type: ignore[method-assign]


# -- click and typer -------------------------------------------------------------------------


def _patch_click(core: Any) -> None:
    """Describe a click command where click's ``core`` (or typer's copy) makes its context."""
    # The class that defines it: Command since click 8.2, BaseCommand before.
    base = next(c for c in core.Command.__mro__ if "make_context" in vars(c))
    original = base.make_context

    def make_context(self: Any, info_name: Any, args: Any, parent: Any = None, **extra: Any):
        if parent is not None:
            return original(self, info_name, args, parent=parent, **extra)
        arguments = []
        for param in getattr(self, "params", []):
            names = [o[2:] for o in getattr(param, "opts", []) if o.startswith("--")]
            if getattr(param, "param_type_name", "") != "option" or not names:
                continue
            if names[0] in ("install-completion", "show-completion", "help"):
                continue
            arguments.append(
                _argument(
                    names,
                    _click_kind(param),
                    param.default,
                    takes_value=not param.is_flag,
                    required=param.required,
                    choices=getattr(getattr(param, "type", None), "choices", None),
                )
            )
        _report("click", arguments, complete=not hasattr(self, "commands"))  # not a group

    base.make_context = make_context


# click's parameter type names ("integer range" too) -> flagrun's flag types
_CLICK_TYPES = {"integer": "integer", "float": "numeric", "boolean": "boolean"}


def _click_kind(param: Any) -> str:
    """A click option's type; typer's options keep the annotation instead of a click type."""
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is not None:
        return _kind_of_callable(getattr(descriptor, "annotation", None))
    name = getattr(getattr(param, "type", None), "name", "") or ""
    return _CLICK_TYPES.get(name.split(" ")[0], "string")


# -- fire ------------------------------------------------------------------------------------


def _patch_fire() -> None:
    import fire
    import fire.core

    def describe(component: Any = None, *args: Any, **kwargs: Any) -> Any:
        target = component.__init__ if inspect.isclass(component) else component
        try:
            signature = inspect.signature(target)
        except (TypeError, ValueError):
            _report("fire", [], complete=False)
        arguments, complete = [], not inspect.isclass(component)
        for param in signature.parameters.values():
            if param.kind in (param.VAR_KEYWORD, param.VAR_POSITIONAL):
                complete = False
                continue
            if param.name == "self":
                continue
            default = None if param.default is param.empty else param.default
            kind = _kind_of_callable(type(default)) if default is not None else "string"
            names = [param.name, param.name.replace("_", "-")]
            arguments.append(_argument(list(dict.fromkeys(names)), kind, default))
        _report("fire", arguments, complete)

    fire.Fire = fire.core.Fire = describe


def main() -> None:
    global _OUT
    _OUT = sys.argv[1]
    run = prepare(sys.argv[2:])
    _patch_argparse()
    patches = {
        "absl.flags": lambda module: _patch_absl(),
        "fire": lambda module: _patch_fire(),
        "click.core": _patch_click,
        "typer._click.core": _patch_click,  # typer carries its own copy of click
    }
    for name, patch in patches.items():
        with contextlib.suppress(ImportError):
            patch(importlib.import_module(name))
    run()
    _report("none", [], complete=False)  # it finished without parsing any argument


if __name__ == "__main__":
    main()
