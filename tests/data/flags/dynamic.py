"""Fixture for introspect: one flag name is computed, so the declarations are incomplete."""

from flagrun import flag_integer, flags

NAME = "layers"
FLAGS = flags(flag_integer("batch_size", 32), flag_integer(NAME, 2))
