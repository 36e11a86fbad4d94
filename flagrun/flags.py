"""Script-side flags API (placeholder signatures; being written now)."""

from __future__ import annotations


def flag_integer(name, default, description=""):
    raise NotImplementedError


def flag_numeric(name, default, description=""):
    raise NotImplementedError


def flag_string(name, default, description=""):
    raise NotImplementedError


def flag_boolean(name, default, description=""):
    raise NotImplementedError


def flags(*declarations, file="flags.yml"):
    raise NotImplementedError


def run_dir():
    raise NotImplementedError
