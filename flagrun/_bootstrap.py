"""Entry point of every run's child process: ``python -m flagrun._bootstrap SCRIPT ARGS...``.

Makes the script see the world it would see run by hand (``sys.argv``,
``sys.path[0]``, ``__main__``), installs the automatic Keras capture, then
runs it. Kept tiny: it is on the start-up path of every run.
"""

import runpy
import sys


def main() -> None:
    """Run the script named in ``sys.argv[1]`` with the remaining arguments."""
    script = sys.argv[1]
    sys.argv = sys.argv[1:]
    sys.path[0] = script.rpartition("/")[0] or "."

    from flagrun import capture

    capture.install()
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
