"""Fixture: say it started, then sleep (ignoring nothing) until killed."""

import time

print("sleeper ready", flush=True)
time.sleep(120)
