"""Fixture for introspect: every declaration style flagrun recognises (never run)."""

import flagrun
import flagrun as fr
from flagrun import flag_numeric as fn
from flagrun import flag_string, flags

SIZE = 64
FLAGS = flags(
    flagrun.flag_integer("units", 128, "Units"),
    fr.flag_boolean(name="batchnorm", default=True),
    fn("lr", -1e-3),
    flag_string("activation", description="Activation", default="relu"),
    flagrun.flag_integer("epochs", SIZE // 8),
    fn("momentum", 1),
)
