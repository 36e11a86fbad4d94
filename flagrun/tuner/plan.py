"""What a job will run, decided and checked before anything starts.

``make_plan`` reads the tuning file, finds the trainer (``flagrun.launch``), learns the
arguments it declares (``flagrun.introspect``), checks the params, the fixed values and
the trainer's required arguments against them, and decides how trials are launched
(fixed args, ``--job-dir``) and how many run at once on this machine. ``flagrun tune``
creates the job from the plan; ``flagrun check`` prints it and starts nothing.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flagrun import introspect, space
from flagrun.errors import UsageError
from flagrun.gpus import parse_gpus
from flagrun.introspect import DeclaredFlags
from flagrun.launch import JOB_DIR_OPTIONS, Trainer, find_trainer, given_options
from flagrun.records import Launch
from flagrun.spec import TuningSpec, check_against_flags
from flagrun.tuner.request import TuneRequest

__all__ = [
    "Plan",
    "apply_overrides",
    "cap_parallel",
    "local_capacity",
    "make_plan",
    "resolve_trainer",
    "spec_notes",
]


@dataclass
class Plan:
    """A checked job, not started: its spec, trainer, arguments and launch."""

    spec: TuningSpec
    trainer: Trainer
    declared: DeclaredFlags
    fixed: dict[str, Any]  # NAME=VALUE given to every trial, typed by the trainer
    launch: Launch
    notes: list[str] = field(default_factory=list)  # said once when the job starts


def make_plan(request: TuneRequest, spec: TuningSpec) -> Plan:
    """Check ``spec`` (with ``request``'s overrides) against its trainer; UsageError,
    SpecError or FlagError naming what to fix."""
    trainer = resolve_trainer(request, spec)
    declared = introspect.declared_arguments(trainer)
    check_against_flags(spec, declared)
    fixed = _fixed_values(request.fixed, spec, declared)
    launch, notes = _launch(trainer, spec, request, declared)
    _check_required(declared, spec, fixed, launch)
    spec, cap_note = cap_parallel(apply_overrides(spec, request), request)
    notes = [n for n in (declared.note, *notes, *spec_notes(spec), cap_note) if n]
    return Plan(spec, trainer, declared, fixed, launch, notes)


def resolve_trainer(request: TuneRequest, spec: TuningSpec) -> Trainer:
    """The trainer: named on the command line (SCRIPT or -m), in the YAML (script: or
    pythonModule:), or train.py; naming two different ones is an error."""
    base = spec.path.parent if spec.path else Path.cwd()
    bases = (base, Path.cwd())
    given = None
    if request.script or request.module:
        given = find_trainer(request.script, request.module, bases)
    in_file = None
    if spec.script:
        in_file = find_trainer(base / spec.script, None, bases)
    elif spec.python_module:
        in_file = find_trainer(None, spec.python_module, bases)
    if given and in_file and given.file.resolve() != in_file.file.resolve():
        named = f"script: {spec.script}" if spec.script else f"pythonModule: {spec.python_module}"
        raise UsageError(
            f"two trainers named: {given.name} on the command line and {named} in {spec.path}",
            hint="drop one of them",
        )
    return given or in_file or find_trainer(Path("train.py"), None, bases)


def _fixed_values(
    values: dict[str, Any], spec: TuningSpec, declared: DeclaredFlags
) -> dict[str, Any]:
    """NAME=VALUE every trial gets as given: typed by the trainer, never a tuned param."""
    tuned = {introspect.spelling(p.name) for p in spec.params}
    clash = sorted(name for name in values if introspect.spelling(name) in tuned)
    if clash:
        raise UsageError(
            f"{', '.join(clash)} is tuned by the YAML and also fixed on the command line",
            hint="drop the NAME=VALUE, or the parameter from params",
        )
    return introspect.check_values(declared, values)


def _launch(
    trainer: Trainer, spec: TuningSpec, request: TuneRequest, declared: DeclaredFlags
) -> tuple[Launch, list[str]]:
    """The fixed args and the --job-dir policy; notes on what is done locally."""
    args = (*spec.args, *request.args)
    notes = []
    job_dir = request.job_dir or spec.job_dir
    if job_dir and "://" in job_dir:
        notes.append(f"job dir {job_dir} is cloud storage: ignored locally")
        job_dir = None
    declared_option = next((o for o in JOB_DIR_OPTIONS if o in declared), None)
    option = None
    if given_options(args) & set(JOB_DIR_OPTIONS):
        job_dir = None  # the fixed args give it already
    elif job_dir:
        option = declared_option or JOB_DIR_OPTIONS[0]
        job_dir = str(Path(job_dir).absolute())
        notes.append(f"every trial gets --{option}={job_dir}")
    elif declared_option:
        option = declared_option
        notes.append(f"{trainer.name} declares --{option}: each trial gets its run folder")
    launch = Launch(trainer.module, args, job_dir if option else None, option)
    return launch, notes


def _check_required(
    declared: DeclaredFlags, spec: TuningSpec, fixed: dict[str, Any], launch: Launch
) -> None:
    """Every argument the trainer requires is given by the args, --job-dir, a param or
    a NAME=VALUE: a trial without one would only exit with a usage error."""
    given = {introspect.spelling(n) for n in given_options(launch.args)}
    given |= {introspect.spelling(n) for n in (*fixed, *(p.name for p in spec.params))}
    if launch.job_dir_option:
        given.add(introspect.spelling(launch.job_dir_option))
    missing = sorted(n for n in declared.required if introspect.spelling(n) not in given)
    if missing:
        options = " ".join(f"--{n} VALUE" for n in missing)
        raise UsageError(
            f"{declared.script} requires {', '.join('--' + n for n in missing)}, which "
            "neither the tuning file's args, the command line after --, nor its params give",
            hint=f"give it after --: flagrun tune ... -- {options}",
        )


def apply_overrides(spec: TuningSpec, request: TuneRequest) -> TuningSpec:
    """``--max-trials`` and ``--parallel`` over the spec; a grid's budget is its size at most."""
    changes: dict[str, Any] = {}
    if request.max_trials is not None:
        if request.max_trials < 1:
            raise UsageError("--max-trials must be at least 1")
        changes["max_trials"] = request.max_trials
    if request.parallel is not None:
        if request.parallel < 1:
            raise UsageError("--parallel must be at least 1")
        changes["max_parallel_trials"] = request.parallel
    if spec.algorithm == "GRID_SEARCH":
        grid_size = len(space.grid_points(spec))
        changes["max_trials"] = min(changes.get("max_trials", spec.max_trials), grid_size)
    return dataclasses.replace(spec, **changes) if changes else spec


def spec_notes(spec: TuningSpec) -> list[str]:
    if not spec.ignored_fields:
        return []
    return [f"ignored locally (cloud only): {', '.join(spec.ignored_fields)}"]


def local_capacity(gpus: str | None) -> tuple[int, str]:
    """How many trials this machine runs at once: its GPUs given with --gpus, else its
    cores; and how to say so."""
    if gpus and gpus.strip().lower() not in ("", "none"):
        count = len(parse_gpus(gpus))
        return count, f"{count} GPU{'s' if count != 1 else ''} given with --gpus"
    if hasattr(os, "sched_getaffinity"):
        count = len(os.sched_getaffinity(0))
    else:
        count = os.cpu_count() or 1
    return count, f"{count} CPU core{'s' if count != 1 else ''}"


def cap_parallel(spec: TuningSpec, request: TuneRequest) -> tuple[TuningSpec, str | None]:
    """maxParallelTrials at most what this machine runs at once, unless --parallel says
    (on a cluster, maxParallelTrials is the trials in flight there: nothing to cap)."""
    if request.parallel is not None or not request.runs_here:
        return spec, None
    capacity, what = local_capacity(request.gpus)
    if spec.max_parallel_trials <= capacity:
        return spec, None
    note = (
        f"maxParallelTrials {spec.max_parallel_trials} is more than this machine runs at "
        f"once ({what}): running {capacity} at a time; --parallel N overrides"
    )
    return dataclasses.replace(spec, max_parallel_trials=capacity), note


def first_trials(plan: Plan, runs_dir: Path, count: int = 3) -> list[list[str]]:
    """The command lines of the job's first ``count`` trials, values drawn as the job
    would draw them (before any result is known), run folders under ``runs_dir``."""
    import optuna

    from flagrun.launch import trial_args
    from flagrun.runner import flag_args

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec = plan.spec
    study = optuna.create_study(sampler=space.make_sampler(spec))
    if spec.algorithm == "GRID_SEARCH":
        for point in space.grid_points(spec):
            study.enqueue_trial(point)
    head = ["python", "-m", plan.trainer.module] if plan.trainer.module else ["python"]
    if not plan.trainer.module:
        head.append(str(plan.trainer.file))
    commands = []
    for trial_id in range(1, min(count, spec.max_trials) + 1):
        flags = space.suggest(study.ask(), spec)
        run_dir = runs_dir / "JOB" / "trials" / str(trial_id)
        args = trial_args(plan.launch, run_dir)
        commands.append([*head, *args, *flag_args({**plan.fixed, **flags})])
    return commands
