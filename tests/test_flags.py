"""The script-side flags API: real scripts run as real processes, plus the library core."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from flagrun.errors import FlagError
from flagrun.flags import (
    Flag,
    HelpRequested,
    coerce,
    flag_boolean,
    flag_integer,
    flag_numeric,
    flag_string,
    parse_flags,
    read_flags_file,
    run_dir,
)
from tests.helpers import flagrun as flagrun_cli

DATA = Path(__file__).parent / "data" / "flags"
DEFAULTS = {"units": 128, "lr": 0.01, "activation": "relu", "batchnorm": False}


@pytest.fixture
def script(tmp_path: Path) -> Path:
    """tests/data/flags/train.py copied into its own folder (where a flags.yml may go)."""
    target = tmp_path / "train.py"
    shutil.copy(DATA / "train.py", target)
    return target


def run(script: Path, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FLAGRUN_")}
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        env=environ,
        cwd=cwd or script.parent,
        timeout=60,
    )


def resolved(script: Path, *args: str, **kwargs) -> dict:
    done = run(script, *args, **kwargs)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def assert_usage_error(done, *words: str) -> None:
    """Exit 2, one `flagrun: error:` line naming what is wrong (and a hint), no traceback."""
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert lines[0].startswith("flagrun: error: ")
    assert all(line.startswith("  hint: ") for line in lines[1:]) and len(lines) <= 2
    for word in words:
        assert word in lines[0], (word, lines[0])


# -- by hand -----------------------------------------------------------------------------------


def test_defaults_when_nothing_is_given(script):
    assert resolved(script) == DEFAULTS


def test_argv_in_both_forms_typed(script):
    got = resolved(script, "--units", "64", "--lr=1e-3", "--activation", "tanh", "--batchnorm=YES")
    assert got == {"units": 64, "lr": 0.001, "activation": "tanh", "batchnorm": True}
    assert type(got["units"]) is int


def test_values_may_start_with_a_dash(script):
    got = resolved(script, "--lr", "-1e-3", "--units=-2", "--activation", "--units")
    assert got["lr"] == -0.001 and got["units"] == -2 and got["activation"] == "--units"


def test_numeric_accepts_whole_numbers_and_integer_accepts_a_whole_float(script):
    got = resolved(script, "--lr", "1", "--units", "64.0")
    assert got["lr"] == 1.0 and got["units"] == 64


@pytest.mark.parametrize("word, value", [("true", True), ("No", False), ("1", True), ("0", False)])
def test_boolean_words(script, word, value):
    assert resolved(script, "--batchnorm", word)["batchnorm"] is value


@pytest.mark.parametrize(
    "args, words",
    [
        (["--units", "1.5"], ["units", "'1.5'", "whole number"]),
        (["--units", "ten"], ["units", "'ten'", "whole number"]),
        (["--lr", "fast"], ["lr", "'fast'", "a number"]),
        (["--batchnorm", "maybe"], ["batchnorm", "'maybe'", "true or false"]),
        (["--unit", "3"], ["--unit"]),
        (["--units"], ["units", "missing value"]),
        (["extra"], ["'extra'"]),
        (["-x"], ["'-x'"]),
    ],
)
def test_bad_command_lines_exit_2_with_one_line(script, args, words):
    assert_usage_error(run(script, *args), *words)


def test_unknown_flag_suggests_the_closest_name(script):
    done = run(script, "--unit", "3")
    assert "did you mean units?" in done.stderr


def test_help_lists_every_flag(script):
    done = run(script, "--units", "3", "--help")
    assert done.returncode == 0 and done.stderr == ""
    for text in ("--units INTEGER", "default: 128", "Units in the dense layer", "--lr NUMERIC"):
        assert text in done.stdout
    assert "--batchnorm BOOLEAN" in done.stdout and "default: false" in done.stdout
    assert run(script, "-h").stdout == done.stdout


# -- flags.yml ---------------------------------------------------------------------------------


def test_flat_flags_file_beside_the_script(script, tmp_path):
    (script.parent / "flags.yml").write_text("units: 7\nbatchnorm: yes\n")
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    got = resolved(script, cwd=elsewhere)  # found beside the script, not in the cwd
    assert got == {**DEFAULTS, "units": 7, "batchnorm": True}


def test_precedence_default_then_file_then_argv(script, tmp_path):
    (script.parent / "flags.yml").write_text("units: 7\nlr: 0.5\n")
    record_dir = tmp_path / "run"
    record_dir.mkdir()
    got = resolved(script, "--lr", "0.25", env={"FLAGRUN_RUN_DIR": str(record_dir)})
    assert got == {**DEFAULTS, "units": 7, "lr": 0.25}
    sources = json.loads((record_dir / "flags.json").read_text())["sources"]
    assert sources == {
        "units": "file",
        "lr": "argv",
        "activation": "default",
        "batchnorm": "default",
    }


def test_profiles_merge_the_chosen_one_over_default(script):
    (script.parent / "flags.yml").write_text(
        "default:\n  units: 16\n  lr: 0.1\nbig:\n  units: 1024\n"
    )
    assert resolved(script)["units"] == 16
    got = resolved(script, env={"FLAGRUN_CONFIG": "big"})
    assert got["units"] == 1024 and got["lr"] == 0.1
    assert resolved(script, "--units", "3", env={"FLAGRUN_CONFIG": "big"})["units"] == 3


@pytest.mark.parametrize(
    "text, words",
    [
        ("units: true\n", ["units", "True", "whole number", "flags.yml"]),
        ("activation: relu\nbatchnrom: true\n", ["batchnrom", "flags.yml"]),
        ("units: [1,\n", ["flags.yml:2"]),
        ("- 1\n- 2\n", ["flags.yml", "mapping"]),
    ],
)
def test_bad_flags_file_exit_2_naming_the_file(script, text, words):
    (script.parent / "flags.yml").write_text(text)
    assert_usage_error(run(script), *words)


# -- under flagrun -----------------------------------------------------------------------------


def test_flags_json_written_under_flagrun(script, tmp_path):
    record_dir = tmp_path / "run"
    record_dir.mkdir()
    resolved(script, "--units=3", env={"FLAGRUN_RUN_DIR": str(record_dir)})
    record = json.loads((record_dir / "flags.json").read_text())
    assert record["flags"] == {**DEFAULTS, "units": 3}
    assert record["declared"]["units"] == {
        "type": "integer",
        "default": 128,
        "description": "Units in the dense layer",
    }
    assert record["sources"]["units"] == "argv"


def test_nothing_written_when_run_by_hand(script):
    resolved(script)
    assert sorted(p.name for p in script.parent.iterdir()) == ["train.py"]


def test_run_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("FLAGRUN_RUN_DIR", raising=False)
    assert run_dir() is None
    monkeypatch.setenv("FLAGRUN_RUN_DIR", str(tmp_path))
    assert run_dir() == tmp_path


def test_interactive_process_ignores_argv(tmp_path):
    code = (
        "import json, sys; sys.argv[1:] = ['-f', 'kernel.json']\n"
        "from flagrun import flags, flag_integer\n"
        "print(json.dumps(dict(flags(flag_integer('units', 5)))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"units": 5}


@pytest.mark.parametrize(
    "declaration, words",
    [
        ("flag_integer('units', 1), flag_numeric('units', 2.0)", ["units", "twice"]),
        ("flag_integer('2fast', 1)", ["'2fast'"]),
        ("flag_integer('units', 'ten')", ["units", "default", "'ten'"]),
        ("flag_string('keys', 'a')", ["'keys'"]),
    ],
)
def test_bad_declarations_exit_2(tmp_path, declaration, words):
    script = tmp_path / "bad.py"
    script.write_text(
        "from flagrun import flags, flag_integer, flag_numeric, flag_string\n"
        f"flags({declaration})\n"
    )
    assert_usage_error(run(script), *words)


# -- the library core --------------------------------------------------------------------------


DECLARED = [
    flag_integer("units", 128, "Units"),
    flag_numeric("lr", 1, "Learning rate"),
    flag_string("activation", "relu"),
    flag_boolean("batchnorm", False),
]


def test_flags_object_is_a_read_only_mapping():
    flags = parse_flags(DECLARED, ["--units", "3"])
    assert flags.units == 3 and flags["units"] == 3 and flags.lr == 1.0
    assert dict(flags) == {"units": 3, "lr": 1.0, "activation": "relu", "batchnorm": False}
    assert len(flags) == 4 and "lr" in flags and flags.get("nope") is None
    with pytest.raises(AttributeError, match="read-only"):
        flags.units = 4
    with pytest.raises(TypeError):
        flags["units"] = 4  # type: ignore[index]
    with pytest.raises(AttributeError, match="no flag 'unit'"):
        _ = flags.unit
    with pytest.raises(KeyError):
        _ = flags["unit"]


def test_flags_object_survives_pickle_and_copy():
    import copy
    import pickle

    flags = parse_flags(DECLARED, ["--lr=0.5"])
    assert pickle.loads(pickle.dumps(flags)) == flags == copy.deepcopy(flags)
    assert pickle.loads(pickle.dumps(flags)).lr == 0.5


def test_parse_flags_raises_flag_error_and_help():
    with pytest.raises(FlagError, match="unknown flag --lrr") as caught:
        parse_flags(DECLARED, ["--lrr", "1"])
    assert caught.value.hint == "did you mean lr?"
    with pytest.raises(HelpRequested):
        parse_flags(DECLARED, ["-h"])


def test_parse_flags_reads_the_file_and_profile(tmp_path):
    path = tmp_path / "f.yml"
    path.write_text("default:\n  units: 2\ntest:\n  units: 3\n")
    assert parse_flags(DECLARED, [], path)["units"] == 2
    assert parse_flags(DECLARED, [], path, profile="test")["units"] == 3
    assert parse_flags(DECLARED, [], tmp_path / "absent.yml")["units"] == 128


@pytest.mark.parametrize(
    "flag, raw, value",
    [
        (flag_integer("n", 1), "42", 42),
        (flag_integer("n", 1), 7, 7),
        (flag_integer("n", 1), 64.0, 64),
        (flag_numeric("x", 1.0), "1e-3", 0.001),
        (flag_numeric("x", 1.0), 2, 2.0),
        (flag_boolean("b", True), "FALSE", False),
        (flag_boolean("b", True), True, True),
        (flag_string("s", ""), " spaced ", " spaced "),
        (flag_string("s", ""), 3, "3"),
    ],
)
def test_coerce_accepts(flag: Flag, raw, value):
    got = coerce(flag, raw)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize(
    "flag, raw",
    [
        (flag_integer("n", 1), "1.5"),
        (flag_integer("n", 1), True),
        (flag_integer("n", 1), 1.5),
        (flag_numeric("x", 1.0), False),
        (flag_numeric("x", 1.0), "1e-3x"),
        (flag_boolean("b", True), 1),
        (flag_boolean("b", True), "on"),
        (flag_string("s", ""), True),
        (flag_string("s", ""), None),
    ],
)
def test_coerce_rejects(flag: Flag, raw):
    with pytest.raises(FlagError, match=flag.name):
        coerce(flag, raw)


def test_read_flags_file_returns_raw_values(tmp_path):
    path = tmp_path / "best_flags.yml"
    path.write_text("units: 64\nlr: 1.0e-3\nactivation: tanh\n")
    assert read_flags_file(path) == {"units": 64, "lr": 0.001, "activation": "tanh"}
    (tmp_path / "empty.yml").write_text("")
    assert read_flags_file(tmp_path / "empty.yml") == {}


def test_read_flags_file_errors_name_the_file(tmp_path):
    with pytest.raises(FlagError, match="absent.yml"):
        read_flags_file(tmp_path / "absent.yml")
    path = tmp_path / "f.yml"
    path.write_text("units: 1\nlr: [\n")
    with pytest.raises(FlagError, match=r"f\.yml:\d+"):
        read_flags_file(path)
    path.write_text("units: !!python/object:os.system x\n")  # safe_load refuses to build it
    with pytest.raises(FlagError, match=r"f\.yml"):
        read_flags_file(path)


def test_help_into_a_closed_pipe_is_quiet(tmp_path):
    script = tmp_path / "many.py"
    decls = ", ".join(f"flag_integer('f{i}', {i}, 'flag number {i}')" for i in range(3000))
    script.write_text(f"from flagrun import flags, flag_integer\nflags({decls})\n")
    done = subprocess.run(
        f"{sys.executable} {script} --help | head -1", shell=True, capture_output=True, text=True
    )
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr


def test_a_flags_file_that_is_not_utf8_is_one_line_naming_it(tmp_path):
    (tmp_path / "train.py").write_text(
        "from flagrun import flags, flag_string\nflags(flag_string('a', 'x'))\n"
    )
    (tmp_path / "bad.yml").write_bytes(b"a: caf\xe9\n")  # Latin-1, not UTF-8
    done = flagrun_cli(tmp_path, "train", "train.py", "--flags", "bad.yml")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "bad.yml: not UTF-8 text (byte 0xe9 at offset 6)" in done.stderr
