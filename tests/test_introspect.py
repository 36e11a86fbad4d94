"""Static reading of flag declarations: no script is run."""

from __future__ import annotations

from pathlib import Path

import pytest

from flagrun.errors import FlagError
from flagrun.flags import Flag
from flagrun.introspect import declared_flags

DATA = Path(__file__).parent / "data" / "flags"


def test_bare_calls_positional_and_keyword_arguments():
    declared = declared_flags(DATA / "bare.py")
    assert declared.complete
    assert list(declared) == [
        "dense_units1",
        "dropout1",
        "lr",
        "activation",
        "batch_norm",
        "offset",
    ]
    units = declared["dense_units1"]
    assert isinstance(units, Flag)
    assert (units.type, units.default, units.description) == (
        "integer",
        128,
        "Units in the first dense layer",
    )
    lr = declared["lr"]
    assert (lr.type, lr.default, lr.description) == ("numeric", -1e-3, "Learning rate")
    assert declared["activation"].default == "relu"
    assert declared["batch_norm"].type == "boolean"
    assert declared["offset"].default == -2


def test_line_numbers_point_at_each_declaration():
    declared = declared_flags(DATA / "bare.py")
    lines = (DATA / "bare.py").read_text().splitlines()
    for name, flag in declared.items():
        assert f'"{name}"' in lines[flag.line - 1]


def test_module_attribute_and_alias_styles():
    declared = declared_flags(DATA / "module_style.py")
    assert declared.complete
    assert {name: f.type for name, f in declared.items()} == {
        "epochs": "integer",
        "shuffle": "boolean",
        "momentum": "numeric",
        "optimizer": "string",
    }
    assert declared["momentum"].description == "SGD momentum"


def test_computed_name_makes_the_result_incomplete():
    declared = declared_flags(DATA / "dynamic.py")
    assert not declared.complete
    assert list(declared) == ["batch_size"]
    assert "dynamic.py" in str(declared.script)


def test_non_literal_default_is_none(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(
        "from flagrun import flag_integer, flags\nN = 3\nFLAGS = flags(flag_integer('n', N * 2))\n"
    )
    declared = declared_flags(script)
    assert declared.complete
    assert declared["n"].default is None


def test_unrelated_calls_are_ignored(tmp_path):
    script = tmp_path / "train.py"
    script.write_text("print('flag_integer')\nx = dict(a=1)\n")
    declared = declared_flags(script)
    assert dict(declared) == {}
    assert declared.complete


def test_syntax_error_names_file_and_line(tmp_path):
    script = tmp_path / "broken.py"
    script.write_text(
        "from flagrun import flag_integer, flags\n"
        "FLAGS = flags(\n"
        "    flag_integer('a', 1)\n"
        "    flag_integer('b', 2),\n"
        ")\n"
    )
    with pytest.raises(FlagError, match=r"broken\.py:\d+: syntax error"):
        declared_flags(script)


def test_missing_script_is_a_flag_error(tmp_path):
    with pytest.raises(FlagError, match="cannot read script"):
        declared_flags(tmp_path / "nope.py")


def test_mixed_styles_with_typed_defaults():
    declared = declared_flags(DATA / "styles.py")
    assert declared.complete
    assert list(declared) == ["units", "batchnorm", "lr", "activation", "epochs", "momentum"]
    assert declared["batchnorm"] == Flag("batchnorm", "boolean", True)
    assert declared["lr"].default == -1e-3
    assert declared["activation"] == Flag("activation", "string", "relu", "Activation")
    assert declared["epochs"].default is None  # SIZE // 8 is not a literal
    momentum = declared["momentum"].default
    assert momentum == 1.0 and type(momentum) is float  # as flags() would hold it


def test_star_arguments_make_the_result_incomplete(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(
        "from flagrun import flag_integer, flags\n"
        "ARGS = ('units', 3)\n"
        "FLAGS = flags(flag_integer(*ARGS), flag_integer('epochs', 2))\n"
    )
    declared = declared_flags(script)
    assert not declared.complete
    assert list(declared) == ["epochs"] and declared["epochs"].line == 3


def test_declared_flags_agree_with_what_the_script_resolves(tmp_path):
    """The static reading and the running script see the same flags and defaults."""
    import json
    import shutil
    import subprocess
    import sys

    script = tmp_path / "train.py"
    shutil.copy(DATA / "train.py", script)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, check=True, timeout=60
    )
    declared = declared_flags(script)
    assert {name: f.default for name, f in declared.items()} == json.loads(done.stdout)
