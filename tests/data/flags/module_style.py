"""Declarations through the module, and through aliases."""

import flagrun
import flagrun as fr
from flagrun import flag_numeric as fn
from flagrun.flags import flag_string as fs

FLAGS = flagrun.flags(
    flagrun.flag_integer("epochs", 20),
    fr.flag_boolean("shuffle", True),
    fn("momentum", 0.9, "SGD momentum"),
    fs("optimizer", "sgd"),
)
