"""Fixture: read data next to the script and in the folder flagrun was started from."""

import os
from pathlib import Path

here = Path(__file__).parent
beside = (here / "data" / "beside.bin").read_bytes()
project = Path(os.environ.get("FLAGRUN_PROJECT_DIR", "."))
launch = (project / "launch.txt").read_text()
print("beside", len(beside), "launch", launch.strip())
