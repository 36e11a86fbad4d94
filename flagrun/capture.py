"""What flagrun changes inside the training process so the tuner sees its metrics live.

When a script runs under flagrun (``FLAGRUN_RUN_DIR`` set), with no change to the script:

* Keras: ``Model.fit`` without a TensorBoard callback gets one writing to
  ``<run dir>/logs`` (tfruns does the same); a script's own callback is left alone.
  Keras' callback writes through TensorFlow, so where it is not installed (Keras on
  JAX or torch) a callback writing the same scalars with ``flagrun.writer`` takes its place.
  Without a ``BackupAndRestore`` callback it also gets one backing up into the run's
  checkpoint folder (``flagrun.checkpoints``), so an interrupted trial resumes at its
  last finished epoch; Keras deletes the backup when fit completes. And a callback
  that says how far fit is through each epoch (``flagrun.pace``), so the tuner sees the
  epoch time of a slow model before its first epoch ends.
* Writers that buffer: torch's and tensorboardX's ``SummaryWriter`` and TF1's
  ``FileWriter`` keep points in memory for up to ``flush_secs`` (120 s), so no point
  reached the event file, and the pruner, until the writer closed. Each is created with
  a ``flush_secs`` that puts every point on disk within ``FLUSH_SECONDS`` (unless the
  script passes its own ``flush_secs``). TF2's ``create_file_writer`` and Keras' callback
  already flush when ``as_default()`` is left.
* A writer told to write outside the run folder (``/tmp/mnist``) gets one line on
  stderr saying the tuner cannot read it there.
* A script's own TensorBoard HParams (torch's and tensorboardX's ``add_hparams``,
  Lightning's ``save_hyperparameters()``) would make a second HParams session of the
  run and an experiment competing with flagrun's; their values go to
  ``<run dir>/script_hparams.json`` instead, which flagrun shows beside the run's flags.
  The metric scalars they come with are written as usual.

``install()`` must stay free: it never imports Keras, TensorFlow, torch or tensorboardX.
It puts an import hook on ``sys.meta_path`` that patches each module in ``_HOOKS`` right
after it has been executed, whichever import path loads it. ``FLAGRUN_CAPTURE=0`` turns
all of this off.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from collections.abc import Sequence
    from importlib.abc import Loader
    from importlib.machinery import ModuleSpec
    from types import ModuleType

RUN_DIR_ENV = "FLAGRUN_RUN_DIR"
OPT_OUT_ENV = "FLAGRUN_CAPTURE"
LOG_SUBDIR = "logs"
MODEL_MODULE = "keras.src.models.model"
SCRIPT_HPARAMS_FILE = "script_hparams.json"
# Writers with a flushing thread wake this often; a point waits at most this long. (0 would
# make their thread spin: it polls its queue without blocking once the flush time passed.)
FLUSH_SECONDS = 0.25
_PATCHED = "__flagrun_capture__"


@dataclass(frozen=True)
class _Writer:
    """A buffering writer class and how flagrun makes it write each point at once."""

    module: str
    name: str
    flush_secs: float  # given when the script gives none
    log_dir_args: tuple[str, ...]  # its parameters that name the folder it writes to
    file_writer: str | None = None  # its FileWriter class, whose add_summary gets hparams


_WRITERS = (
    _Writer("torch.utils.tensorboard.writer", "SummaryWriter", FLUSH_SECONDS, ("log_dir",),
            "FileWriter"),
    _Writer("tensorboardX.writer", "SummaryWriter", FLUSH_SECONDS, ("logdir", "log_dir"),
            "FileWriter"),
    # TF1's thread flushes after a write once flush_secs have passed: 0 is every write.
    _Writer("tensorflow.python.summary.writer.writer", "FileWriter", 0.0, ("logdir",)),
)  # fmt: skip


def install() -> None:
    """Patch Keras and the buffering writers when (if ever) the script imports them.

    A no-op when ``FLAGRUN_RUN_DIR`` is unset or ``FLAGRUN_CAPTURE=0``. Safe to call
    more than once; imports none of the frameworks it patches.
    """
    run_dir = os.environ.get(RUN_DIR_ENV)
    if not run_dir or os.environ.get(OPT_OUT_ENV, "1").strip().lower() in ("0", "false", "no"):
        return
    hooks = _hooks(Path(run_dir).resolve())
    pending = {}
    for name, patch in hooks.items():
        module = sys.modules.get(name)
        if module is not None:
            patch(module)
        else:
            pending[name] = patch
    if pending and not any(isinstance(finder, _Finder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Finder(pending))


def _hooks(run_dir: Path) -> dict[str, Callable[[ModuleType], None]]:
    """Module name -> what to patch in it once executed."""
    hooks: dict[str, Callable[[ModuleType], None]] = {
        MODEL_MODULE: functools.partial(_patch_model_module, run_dir=run_dir)
    }
    for writer in _WRITERS:
        hooks[writer.module] = functools.partial(_patch_writer, writer=writer, run_dir=run_dir)
    return hooks


class _Finder:
    """Finds the hooked modules through the other finders and wraps their loaders."""

    def __init__(self, hooks: dict[str, Callable[[ModuleType], None]]) -> None:
        self.hooks = hooks

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> ModuleSpec | None:
        patch = self.hooks.get(fullname)
        if patch is None:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = cast("Loader", _PatchingLoader(spec.loader, patch))
                return spec
        return None


class _PatchingLoader:
    """Delegates to the real loader, then patches the fresh module."""

    def __init__(self, loader: Loader, patch: Callable[[ModuleType], None]) -> None:
        self._loader = loader
        self._patch = patch

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        self._patch(module)

    def __getattr__(self, name: str) -> Any:
        # get_source, get_code, is_package, ...: whatever tools ask the real loader.
        return getattr(self._loader, name)


# -- Keras ---------------------------------------------------------------------------------


def _patch_model_module(module: ModuleType, run_dir: Path) -> None:
    model_class = getattr(module, "Model", None)
    fit = getattr(model_class, "fit", None)
    if model_class is None or fit is None or getattr(fit, _PATCHED, False):
        return
    model_class.fit = _wrap_fit(fit, run_dir)


def _wrap_fit(fit: Callable[..., Any], run_dir: Path) -> Callable[..., Any]:
    import inspect

    signature = inspect.signature(fit)
    log_dir = run_dir / LOG_SUBDIR
    fits = 0  # fit calls so far: each gets its own backup folder

    @functools.wraps(fit)
    def fit_with_tensorboard(self: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal fits
        fits += 1
        bound = signature.bind(self, *args, **kwargs)
        callbacks = bound.arguments.get("callbacks")
        if isinstance(callbacks, _keras_callbacks().CallbackList):
            return fit(*bound.args, **bound.kwargs)  # a ready-made list is the script's own
        added = _added_callbacks(callbacks or [], run_dir, log_dir)
        backup = _backup(callbacks or [], self, fits)
        added += [backup] if backup is not None else []
        bound.arguments["callbacks"] = [*(callbacks or []), *added, _pace_callback()]
        try:
            return fit(*bound.args, **bound.kwargs)
        finally:
            # A restore sets the epoch this model starts at; a later fit starts at 0.
            if hasattr(self, "_initial_epoch"):
                self._initial_epoch = None

    setattr(fit_with_tensorboard, _PATCHED, True)
    return fit_with_tensorboard


def _keras_callbacks() -> Any:
    import keras

    return keras.callbacks


def _added_callbacks(callbacks: list[Any], run_dir: Path, log_dir: Path) -> list[Any]:
    """A TensorBoard callback, when the script has none of its own.

    Each epoch's scalars reach the disk as the epoch ends (the summary writer flushes on
    leaving as_default()), so the tuner can prune.
    """
    keras_callbacks = _keras_callbacks()
    own = [callback for callback in callbacks if isinstance(callback, keras_callbacks.TensorBoard)]
    for callback in own:
        _warn_if_outside(getattr(callback, "log_dir", None), run_dir, "TensorBoard callback")
    if own:
        return []
    if not _tensorflow_installed():
        return [_epoch_scalars_callback(log_dir)]
    return [keras_callbacks.TensorBoard(log_dir=str(log_dir))]


def _tensorflow_installed() -> bool:
    """Whether Keras' TensorBoard callback can write: it writes through ``tf.summary``,
    also under the JAX and torch backends. Asked without importing TensorFlow."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"] is not None
    import importlib.util

    return importlib.util.find_spec("tensorflow") is not None


def _epoch_scalars_callback(log_dir: Path) -> Any:
    """What Keras' TensorBoard callback writes at each epoch's end (``epoch_<metric>`` in
    ``train/`` and, for ``val_<metric>``, in ``validation/``), written by flagrun's own
    writer: without TensorFlow, Keras' callback would fail the script's first epoch."""
    from flagrun.writer import MetricsWriter

    class FlagrunEpochScalars(_keras_callbacks().Callback):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.writers: dict[str, MetricsWriter] = {}

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            by_folder: dict[str, dict[str, float]] = {}
            for name, value in (logs or {}).items():
                folder, metric = "train", name
                if name.startswith("val_"):
                    folder, metric = "validation", name[len("val_") :]
                try:
                    by_folder.setdefault(folder, {})[f"epoch_{metric}"] = float(value)
                except (TypeError, ValueError):
                    continue  # not a number: Keras' callback writes only scalars too
            for folder, values in by_folder.items():
                if folder not in self.writers:
                    self.writers[folder] = MetricsWriter(log_dir / folder)
                self.writers[folder].log(values, step=epoch)

        def on_train_end(self, logs: Any = None) -> None:
            for writer in self.writers.values():
                writer.close()
            self.writers.clear()

    return FlagrunEpochScalars()


def _backup(callbacks: list[Any], model: Any, fit: int) -> Any:
    """A BackupAndRestore into the run's checkpoint folder, or None: the script has its own,
    the model is not built yet (Keras can restore only into a built model, and refuses to
    start such a fit), or the folder cannot be made (a file named ``checkpoint``).

    It goes after TensorBoard: at an epoch's end the events are written before the
    backup, so a kill between the two repeats that epoch on resume rather than leaving a
    gap in the steps. ``double_checkpoint``: a backup torn by a kill mid-write falls back
    to the one before.
    """
    keras_callbacks = _keras_callbacks()
    if any(isinstance(callback, keras_callbacks.BackupAndRestore) for callback in callbacks):
        return None
    if not getattr(model, "built", False):
        return None
    from flagrun.checkpoints import KERAS_BACKUP_PREFIX, checkpoint_dir

    try:
        folder = checkpoint_dir() / f"{KERAS_BACKUP_PREFIX}{fit}"
    except OSError:
        return None
    return keras_callbacks.BackupAndRestore(str(folder), double_checkpoint=True)


def _pace_callback() -> Any:
    """A callback that says how far fit is through its epoch (``flagrun.pace``), so the
    tuner knows a slow model's epoch time long before its first epoch ends."""
    from flagrun.pace import record_progress

    class FlagrunPace(_keras_callbacks().Callback):  # type: ignore[misc]
        async_safe = True  # it reads no logs: Keras need not wait for each batch's values

        def __init__(self) -> None:
            super().__init__()
            self.epoch = 0

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.epoch = epoch

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            steps, epochs = self.params.get("steps"), self.params.get("epochs")
            if steps and epochs:  # steps is None for a dataset of unknown size
                record_progress(self.epoch, min(batch + 1, steps), steps, epochs)

    return FlagrunPace()


# -- buffering writers ---------------------------------------------------------------------


def _patch_writer(module: ModuleType, writer: _Writer, run_dir: Path) -> None:
    cls = getattr(module, writer.name, None)
    init = getattr(cls, "__init__", None)
    if cls is None or init is None or getattr(init, _PATCHED, False):
        return
    cls.__init__ = _wrap_init(init, writer, run_dir)
    file_writer = getattr(module, writer.file_writer, None) if writer.file_writer else None
    add_summary = getattr(file_writer, "add_summary", None)
    if file_writer is not None and add_summary is not None:
        file_writer.add_summary = _wrap_add_summary(add_summary, run_dir)


def _wrap_init(init: Callable[..., None], writer: _Writer, run_dir: Path) -> Callable[..., None]:
    import inspect

    signature = inspect.signature(init)
    label = f"{writer.module.split('.')[0]}'s {writer.name}"

    @functools.wraps(init)
    def init_flushing_each_point(self: Any, *args: Any, **kwargs: Any) -> None:
        try:
            given = signature.bind(self, *args, **kwargs).arguments
        except TypeError:
            return init(self, *args, **kwargs)  # let the writer report its own misuse
        if "flush_secs" not in given:
            kwargs["flush_secs"] = writer.flush_secs
        for name in writer.log_dir_args:
            _warn_if_outside(given.get(name), run_dir, label)
        return init(self, *args, **kwargs)

    setattr(init_flushing_each_point, _PATCHED, True)
    return init_flushing_each_point


_warned: set[str] = set()


def _warn_if_outside(log_dir: Any, run_dir: Path, writer: str) -> None:
    """One line on stderr when a writer is told to write where the tuner does not read."""
    if not isinstance(log_dir, (str, os.PathLike)):
        return
    text = os.fspath(log_dir)
    if "://" not in text and (run_dir / text).resolve().is_relative_to(run_dir):
        return
    if text in _warned:
        return
    _warned.add(text)
    print(
        f"flagrun: {writer} writes to {text}, outside the run folder {run_dir}: flagrun "
        "reads event files only below the run folder, so the tuner will not see these "
        "metrics. Give it a relative log dir (e.g. 'logs') or one under flagrun.run_dir().",
        file=sys.stderr,
        flush=True,
    )


# -- a script's own HParams ----------------------------------------------------------------


def _wrap_add_summary(add_summary: Callable[..., Any], run_dir: Path) -> Callable[..., Any]:
    @functools.wraps(add_summary)
    def add_summary_without_hparams(self: Any, summary: Any, *args: Any, **kwargs: Any) -> Any:
        rest = _take_hparams(summary, run_dir)
        if rest is None:
            return None
        return add_summary(self, rest, *args, **kwargs)

    return add_summary_without_hparams


def _take_hparams(summary: Any, run_dir: Path) -> Any:
    """``summary`` less its hparams-plugin values, whose hparams go to the run's
    script_hparams.json; None when nothing else is left."""
    values = getattr(summary, "value", None)
    if values is None:  # a serialized summary: not what add_hparams writes
        return summary
    plugins = [value.metadata.plugin_data.plugin_name for value in values]
    if "hparams" not in plugins:
        return summary
    for value, plugin in zip(values, plugins, strict=True):
        if plugin == "hparams":
            _record_script_hparams(value.metadata.plugin_data.content, run_dir)
    if all(plugin == "hparams" for plugin in plugins):
        return None
    rest = type(summary)()
    rest.CopyFrom(summary)
    del rest.value[:]
    rest.value.extend(v for v, plugin in zip(values, plugins, strict=True) if plugin != "hparams")
    return rest


def _record_script_hparams(content: bytes, run_dir: Path) -> None:
    """Merge a session start's hparam values into ``<run dir>/script_hparams.json``."""
    from google.protobuf import json_format
    from tensorboard.plugins.hparams import plugin_data_pb2

    data = plugin_data_pb2.HParamsPluginData.FromString(content)
    if not data.HasField("session_start_info"):
        return  # the experiment and the session end say nothing flagrun does not know
    hparams = {
        name: json_format.MessageToDict(value)
        for name, value in data.session_start_info.hparams.items()
    }
    path = run_dir / SCRIPT_HPARAMS_FILE
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        known = {}
    from flagrun._atomic import write_json_atomic

    write_json_atomic(path, {**known, **hparams})
