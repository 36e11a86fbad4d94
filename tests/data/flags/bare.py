"""Declarations written bare, positional and keyword, with negative defaults."""

from flagrun import flag_boolean, flag_integer, flag_numeric, flag_string, flags

FLAGS = flags(
    flag_integer("dense_units1", 128, "Units in the first dense layer"),
    flag_numeric("dropout1", 0.4),
    flag_numeric(name="lr", default=-1e-3, description="Learning rate"),
    flag_string("activation", default="relu"),
    flag_boolean("batch_norm", False),
    flag_integer("offset", -2),
)
print(dict(FLAGS))
