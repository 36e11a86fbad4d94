"""``import flagrun`` runs inside every trial: it must not pull in anything heavy."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = (
    "tensorflow",
    "keras",
    "optuna",
    "rich",
    "sqlalchemy",
    "numpy",
    "yaml",
    "tensorboard",
    "google.protobuf",
    "distributed",
    "dask",
)


def loaded_after(code: str) -> list[str]:
    """The heavy modules present in sys.modules after running ``code`` in a fresh interpreter."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    modules = set(json.loads(done.stdout.splitlines()[-1]))
    return [name for name in HEAVY if name in modules]


def test_import_flagrun_is_light():
    assert loaded_after("import flagrun") == []


def test_resolving_flags_without_a_flags_file_is_light():
    code = (
        "from flagrun.flags import parse_flags, flag_integer\n"
        "parse_flags([flag_integer('units', 3)], ['--units', '4'])"
    )
    assert loaded_after(code) == []


def test_the_probe_does_see_heavy_imports():
    assert loaded_after("import flagrun, yaml") == ["yaml"]
