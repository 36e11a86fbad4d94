"""Entry point of every run's child process: ``python -m flagrun._bootstrap SCRIPT ARGS...``
or ``python -m flagrun._bootstrap -m ROOT MODULE ARGS...``.

Makes the trainer see the world it would see run by hand (``sys.argv``, ``sys.path[0]``
the script's folder or the package root, ``__main__``), installs the automatic Keras
capture, then runs it. Kept tiny: it is on the start-up path of every run.
"""

import runpy
import sys


def prepare(argv):
    """Set sys.argv and sys.path[0] for the target in ``argv``; return what runs it."""
    if argv[0] == "-m":
        root, module = argv[1], argv[2]
        sys.argv = [module, *argv[3:]]  # run_module puts the module's file in argv[0]
        sys.path[0] = root
        return lambda: runpy.run_module(module, run_name="__main__", alter_sys=True)
    script = argv[0]
    sys.argv = list(argv)
    sys.path[0] = script.rpartition("/")[0] or "."
    return lambda: runpy.run_path(script, run_name="__main__")


def main() -> None:
    """Run the trainer named in ``sys.argv[1:]`` with the remaining arguments."""
    run = prepare(sys.argv[1:])

    from flagrun import capture

    capture.install()
    run()


if __name__ == "__main__":
    main()
