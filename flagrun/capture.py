"""Automatic Keras capture inside the training process, as tfruns does it.

When a script run by flagrun (``FLAGRUN_RUN_DIR`` set) calls ``Model.fit``
without a TensorBoard callback, a ``keras.callbacks.TensorBoard`` writing to
``<run dir>/logs`` is added, so every Keras training leaves the event files
the tuner reads, with no change to the script. A script's own TensorBoard
callback is left alone.

``install()`` must stay free: it never imports Keras or TensorFlow. It puts
an import hook on ``sys.meta_path`` that patches ``Model.fit`` right after
``keras.src.models.model`` (where Keras 3 defines ``Model``, whichever of
``import keras``, ``from tensorflow import keras`` or ``tf.keras`` loads it)
has been executed. ``FLAGRUN_CAPTURE=0`` turns all of this off.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from importlib.abc import Loader
    from importlib.machinery import ModuleSpec
    from types import ModuleType

RUN_DIR_ENV = "FLAGRUN_RUN_DIR"
OPT_OUT_ENV = "FLAGRUN_CAPTURE"
LOG_SUBDIR = "logs"
MODEL_MODULE = "keras.src.models.model"
_PATCHED = "__flagrun_capture__"


def install() -> None:
    """Capture Keras ``Model.fit`` metrics into ``<run dir>/logs``.

    A no-op when ``FLAGRUN_RUN_DIR`` is unset or ``FLAGRUN_CAPTURE=0``.
    Safe to call more than once; imports neither Keras nor TensorFlow.
    """
    run_dir = os.environ.get(RUN_DIR_ENV)
    if not run_dir or os.environ.get(OPT_OUT_ENV, "1").strip().lower() in ("0", "false", "no"):
        return
    log_dir = Path(run_dir).resolve() / LOG_SUBDIR
    module = sys.modules.get(MODEL_MODULE)
    if module is not None:
        _patch_model_module(module, log_dir)
        return
    if not any(isinstance(finder, _KerasFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _KerasFinder(log_dir))


class _KerasFinder:
    """Finds ``keras.src.models.model`` through the other finders and wraps its loader."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> ModuleSpec | None:
        if fullname != MODEL_MODULE:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = cast("Loader", _PatchingLoader(spec.loader, self.log_dir))
                return spec
        return None


class _PatchingLoader:
    """Delegates to the real loader, then patches ``Model.fit`` in the fresh module."""

    def __init__(self, loader: Loader, log_dir: Path) -> None:
        self._loader = loader
        self._log_dir = log_dir

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        _patch_model_module(module, self._log_dir)

    def __getattr__(self, name: str) -> Any:
        # get_source, get_code, is_package, ...: whatever tools ask the real loader.
        return getattr(self._loader, name)


def _patch_model_module(module: ModuleType, log_dir: Path) -> None:
    model_class = getattr(module, "Model", None)
    fit = getattr(model_class, "fit", None)
    if model_class is None or fit is None or getattr(fit, _PATCHED, False):
        return
    model_class.fit = _wrap_fit(fit, log_dir)


def _wrap_fit(fit: Callable[..., Any], log_dir: Path) -> Callable[..., Any]:
    import inspect

    signature = inspect.signature(fit)

    @functools.wraps(fit)
    def fit_with_tensorboard(self: Any, *args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(self, *args, **kwargs)
        callbacks = bound.arguments.get("callbacks")
        if _needs_tensorboard(callbacks):
            from keras.callbacks import TensorBoard

            # Each epoch's scalars reach the disk as the epoch ends (the summary
            # writer flushes on leaving as_default()), so the tuner can prune.
            bound.arguments["callbacks"] = [*(callbacks or []), TensorBoard(log_dir=str(log_dir))]
        return fit(*bound.args, **bound.kwargs)

    setattr(fit_with_tensorboard, _PATCHED, True)
    return fit_with_tensorboard


def _needs_tensorboard(callbacks: Any) -> bool:
    from keras.callbacks import CallbackList, TensorBoard

    if isinstance(callbacks, CallbackList):
        return False  # a ready-made list is the script's own business
    return not any(isinstance(callback, TensorBoard) for callback in callbacks or [])
