"""Tuning files -> the one internal ``TuningSpec`` (``flagrun.spec``).

``_yaml``     the safe YAML loader that keeps each key's line; reading errors -> SpecError
"""
