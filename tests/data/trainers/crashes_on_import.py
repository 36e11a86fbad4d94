import argparse

import a_module_that_is_not_installed  # noqa: F401

argparse.ArgumentParser().parse_args()
