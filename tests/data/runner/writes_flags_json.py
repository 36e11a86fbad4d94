"""Fixture: write flags.json the way flags() does, with resolved typed values."""

import json

with open("flags.json", "w") as handle:
    json.dump({"flags": {"units": 64, "lr": 0.1}, "sources": {"units": "argv"}}, handle)
