"""TensorBoard's hparams plugin, asked as the dashboard asks it.

TensorBoard's loaders import TensorFlow when it is installed; the reading side runs in
a subprocess that installs ``tensorboard.compat.notf`` first, which makes TensorBoard use
its TensorFlow-free stub (the same code path as a TensorBoard installed without TF).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

# The hparams dashboard's two requests, answered by the plugin's own handlers over
# TensorBoard's own event multiplexer and data provider.
READER = """
import json, sys, types
sys.modules["tensorboard.compat.notf"] = types.ModuleType("tensorboard.compat.notf")
from google.protobuf import json_format
from tensorboard import context
from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
from tensorboard.plugins import base_plugin
from tensorboard.plugins.hparams import (
    api_pb2, backend_context, get_experiment, list_session_groups)

logdir = sys.argv[1]
mux = plugin_event_multiplexer.EventMultiplexer()
mux.AddRunsFromDirectory(logdir)
mux.Reload()
tb = base_plugin.TBContext(
    data_provider=data_provider.MultiplexerDataProvider(mux, logdir), logdir=logdir)
ctx, backend = context.RequestContext(), backend_context.Context(tb)
experiment = get_experiment.Handler(ctx, backend, "", api_pb2.GetExperimentRequest()).run()
request = api_pb2.ListSessionGroupsRequest(
    allowed_statuses=api_pb2.Status.values(),
    start_index=0, slice_size=100)
groups = list_session_groups.Handler(ctx, backend, "", request).run()
print(json.dumps({
    "modules": "tensorflow" in sys.modules,
    "experiment": json_format.MessageToDict(experiment),
    "groups": json_format.MessageToDict(groups),
}))
"""


def tensorboard_view(logdir: Path) -> dict:
    """The experiment and session groups as TensorBoard's hparams plugin serves them."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(READER), str(logdir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    view = json.loads(done.stdout)
    assert view["modules"] is False  # the reader really ran without TensorFlow
    return view


def sessions_by_name(view: dict) -> dict[str, dict]:
    """Session groups by their one session's name (a group per run: no group names)."""
    groups = view["groups"].get("sessionGroups", [])
    assert all(len(group["sessions"]) == 1 for group in groups)
    return {group["sessions"][0]["name"]: group for group in groups}


def metric(group: dict, group_name: str, tag: str) -> float:
    """A session's value of one experiment metric."""
    values = group["sessions"][0].get("metricValues", [])
    name = {"group": group_name, "tag": tag} if group_name else {"tag": tag}
    found = [v["value"] for v in values if v["name"] == name]
    assert found, f"no {group_name}/{tag} in {values}"
    return found[0]
