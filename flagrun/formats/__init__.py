"""Tuning files -> the one internal ``TuningSpec`` (``flagrun.spec``): one module per format.

``cloudml``   Cloud ML Engine's ``HyperparameterSpec`` (job config, hyperparameters block
              or the bare block)
``vertex``    Vertex AI's ``HyperparameterTuningJob`` (``studySpec``, ``trialJobSpec``)

The pieces a format is made of, shared by every format:

``_yaml``     the safe YAML loader that keeps each key's line; reading errors -> SpecError
``_source``   ``Source.fail``: the SpecError naming ``file:line: field`` with a hint
``_fields``   scalar fields as table rows (``Field``) read by one function (``read_field``)
``_params``   the params list: each param, conditional params and the checks between them

Importing this package imports no YAML parser; ``read_spec`` does.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flagrun.spec import TuningSpec

__all__ = ["read_spec"]


def read_spec(path: Path) -> TuningSpec:
    """Read and validate the tuning file at ``path``; SpecError naming file:line and field.

    This is the one place that decides which format a document is in.
    """
    from flagrun.formats import _yaml, cloudml, vertex

    doc = _yaml.read_yaml(path)
    if vertex.looks_like_vertex(doc):
        return vertex.parse(doc, path)
    return cloudml.parse(doc, path)
