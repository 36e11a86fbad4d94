"""Fixture: declares one flag of each type and prints the resolved flags as JSON."""

import json

from flagrun import flag_boolean, flag_integer, flag_numeric, flag_string, flags

FLAGS = flags(
    flag_integer("units", 128, "Units in the dense layer"),
    flag_numeric("lr", 0.01, "Learning rate"),
    flag_string("activation", "relu"),
    flag_boolean("batchnorm", False),
)
print(json.dumps(dict(FLAGS)))
