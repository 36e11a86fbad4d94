"""What a metric tag means: its name across runs, and which tag a user's name stands for.

flagrun reads a scalar as a *tag path*: the event file's folder relative to the run folder
(minus flagrun's ``logs/``) joined with the tag the writer gave it. Writers put each run of
a script in a folder of its own, named by a timestamp or a counter: Keras' and TF2's
tutorials ``logs/fit/20261202-055426/validation``, torch's, tensorboardX's and Hugging
Face's ``runs/Dec02_05-54-26_host``, Lightning's ``lightning_logs/version_0``. That part
differs from trial to trial; what follows it does not.

One rule splits every tag path (``split``): the writer's run folder runs up to and
including the last folder segment that names a run (six or more digits, as dates, times
and Unix stamps have, or ``version_N``/``run_N``); the rest is the metric's *name*:
``fit/20261202-055426/validation/epoch_accuracy`` -> ``validation/epoch_accuracy``,
``lightning_logs/version_0/val_acc`` -> ``val_acc``. A path without such a segment is
its own name. Resolution, hints, ``flagrun runs``/``compare`` columns and TensorBoard
HParams metric names all go through it.

A user's tag resolves by name: an exact tag path first, then the names, then names ending
in ``/<tag>``; Keras-style aliases (``acc``, ``val_acc``, ``epoch_acc``, ``eval_accuracy``...)
are tried at each step. Stdlib only: the listing commands import this.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence

from flagrun.errors import MetricsError

__all__ = ["display_names", "find_tag", "metric_name", "resolve_tag", "split"]

_COUNTER = re.compile(r"(?:version|run|v)[-_]?\d+", re.IGNORECASE)
_MIN_STAMP_DIGITS = 6


def _names_a_run(segment: str) -> bool:
    """Whether a folder segment names one run of a writer (a timestamp or a counter)."""
    return sum(c.isdigit() for c in segment) >= _MIN_STAMP_DIGITS or bool(
        _COUNTER.fullmatch(segment)
    )


def split(path: str) -> tuple[str, str]:
    """``(writer's run folder, name)`` of a tag path; the folder is '' when there is none."""
    parts = path.split("/")
    cut = 0
    for i, segment in enumerate(parts[:-1]):  # the last segment is the writer's own tag
        if _names_a_run(segment):
            cut = i + 1
    return "/".join(parts[:cut]), "/".join(parts[cut:])


def metric_name(path: str) -> str:
    """The part of a tag path that is the same in every run of the script."""
    return split(path)[1]


def display_names(paths: Iterable[str]) -> dict[str, str]:
    """Tag path -> the name to show: its metric name, or the whole path where two tags of
    one run share a name (two writer folders holding the same metric)."""
    paths = list(dict.fromkeys(paths))
    names = {path: metric_name(path) for path in paths}
    count: dict[str, int] = {}
    for name in names.values():
        count[name] = count.get(name, 0) + 1
    return {path: name if count[name] == 1 else path for path, name in names.items()}


# -- aliases -------------------------------------------------------------------------------

# A name's prefix -> the folders writers use for that side (Keras' validation/, HF's eval/).
_SIDES = {
    "val": ("validation", "val"),
    "eval": ("eval",),
    "test": ("test",),
    "train": ("train",),
}
_SAME = {"acc": ("accuracy", "acc"), "accuracy": ("accuracy", "acc")}


def _aliases(tag: str) -> list[str]:
    """What a Keras-1 or Hugging Face style name may be written as, most likely first.

    ``val_acc`` -> ``validation/epoch_accuracy``, ``validation/accuracy``, ``val_accuracy``,
    ...; ``eval_accuracy`` -> ``eval/accuracy``; ``acc``/``epoch_acc``/``loss`` -> the
    ``train/`` side. A tag path (with ``/``) has no aliases.
    """
    if "/" in tag:
        return []
    prefix, _, rest = tag.partition("_")
    if prefix in _SIDES and rest:
        sides, bare = _SIDES[prefix], prefix + "_{}"
    else:
        sides, bare, rest = _SIDES["train"], "{}", tag
    base = rest.removeprefix("epoch_") or rest
    out = []
    for name in _SAME.get(base, (base,)):
        out += [f"{side}/epoch_{name}" for side in sides]
        out += [f"{side}/{name}" for side in sides]
        out += [bare.format(name), bare.format(f"epoch_{name}")]
    return [c for i, c in enumerate(out) if c not in out[:i] and c != tag]


# -- resolution ----------------------------------------------------------------------------


def _lookup(tag: str, available: Sequence[str]) -> tuple[str | None, list[str]]:
    """The tag path ``tag`` stands for, or None and the ambiguous matches (if any)."""
    if tag in available:
        return tag, []
    names = {path: metric_name(path) for path in available}
    query = metric_name(tag)
    candidates = [query, *_aliases(query)]
    for matches in (
        lambda c: [p for p, n in names.items() if n == c],
        lambda c: [p for p, n in names.items() if n.endswith("/" + c)],
    ):
        ambiguous: list[str] = []
        for candidate in candidates:
            found = sorted(matches(candidate))
            if len(found) == 1:
                return found[0], []
            ambiguous = ambiguous or found
        if ambiguous:
            return None, ambiguous
    return None, []


def find_tag(tag: str, available: Iterable[str]) -> str | None:
    """The available tag path that ``tag`` (a path, a name or an alias) names, or None."""
    return _lookup(tag, list(dict.fromkeys(available)))[0]


def resolve_tag(tag: str, available: Iterable[str]) -> str:
    """The available tag path that ``tag`` names; MetricsError naming the tags otherwise.

    An exact tag path wins; then ``tag`` (less any writer's run folder in it, so a path
    copied from one trial still names the metric in the next) is matched against the
    tags' names, trying its aliases in order: ``acc``/``accuracy``/``epoch_acc``/``loss``
    -> ``train/epoch_X``, ``train/X``; ``val_X`` -> ``validation/epoch_X``,
    ``validation/X``, bare ``val_X``; ``eval_X`` -> ``eval/X`` (Hugging Face); then a
    unique name ending in ``/<tag>``. Errors show names, not timestamped paths.
    """
    paths = sorted(set(available))
    found, ambiguous = _lookup(tag, paths)
    if found is not None:
        return found
    shown = display_names(paths)
    if ambiguous:
        choices = sorted({shown[path] for path in ambiguous})
        raise MetricsError(
            f"metric tag {tag!r} is ambiguous: it matches {', '.join(choices)}",
            hint=f"write one of them in full, e.g. {choices[0]!r}",
        )
    if not paths:
        raise MetricsError(
            f"metric tag {tag!r} not found: the run wrote no scalar tags",
            hint="flagrun reads TensorBoard event files below the run folder (the script's "
            "working directory): give the writer a relative log dir such as 'logs' "
            "(an absolute one, e.g. /tmp/..., is not read), or call flagrun.log_metrics",
        )
    names = sorted(set(shown.values()))
    closest = difflib.get_close_matches(metric_name(tag), names, n=1, cutoff=0.0)
    raise MetricsError(
        f"metric tag {tag!r} not found; the event files have: {', '.join(names)}",
        hint=f"did you mean {closest[0]!r}? use one of the tags above",
    )
