"""Fixture: record the arguments and environment this script was run with."""

import json
import os
import sys

info = {
    "argv": sys.argv[1:],
    "file": __file__,
    "cwd": os.getcwd(),
    "path0": sys.path[0],
    "run_dir": os.environ.get("FLAGRUN_RUN_DIR"),
    "project_dir": os.environ.get("FLAGRUN_PROJECT_DIR"),
    "unbuffered": os.environ.get("PYTHONUNBUFFERED"),
    "extra": os.environ.get("FLAGRUN_TEST_EXTRA"),
}
with open("args.json", "w") as handle:
    json.dump(info, handle)
print("echo_args done")
