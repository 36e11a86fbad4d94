"""Puts a FIFO where its output.log was, then fails: the log's tail must not hang the runner."""

import os
import sys

os.unlink("output.log")
os.mkfifo("output.log")
sys.exit(3)
