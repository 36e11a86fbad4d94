"""Fixture: write the value of --tag to the relative path out.txt, slowly."""

import sys
import time

tag = sys.argv[1].split("=", 1)[1]
with open("out.txt", "w") as handle:
    handle.write(tag)
time.sleep(0.5)
with open("out.txt") as handle:
    assert handle.read() == tag, "another run wrote my file"
print("wrote", tag)
