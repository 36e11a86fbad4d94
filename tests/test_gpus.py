"""GPU slot assignment: parsed and shared out without a GPU; on a machine with one
(``nvidia-smi`` lists it), real trials of a real job each see the GPU they were given."""

from __future__ import annotations

import importlib.util
import json
import textwrap
from pathlib import Path

import pytest

from flagrun.errors import UsageError
from flagrun.gpus import SHARED_GPU_ENV, GpuPool, detect_gpus, parse_gpus, parse_nvidia_smi
from tests.helpers import flagrun, make_project, only_job, trials_json, tuning_yaml

GPUS = detect_gpus()
needs_gpu = pytest.mark.skipif(not GPUS, reason="no GPU here: nvidia-smi lists none")
needs_torch = pytest.mark.skipif(
    importlib.util.find_spec("torch") is None, reason="torch is not installed"
)
needs_jax = pytest.mark.skipif(
    importlib.util.find_spec("jax") is None, reason="JAX is not installed"
)

NVIDIA_SMI_L = """\
GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-5c0e8f4e-aaaa-bbbb-cccc-123456789abc)
GPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-5c0e8f4e-aaaa-bbbb-cccc-123456789abd)
  MIG 1g.10gb     Device  0: (UUID: MIG-0b9c8a7e-1111-2222-3333-444455556666)
"""


def test_parse_nvidia_smi_lists_gpu_indices_only() -> None:
    assert parse_nvidia_smi(NVIDIA_SMI_L) == ["0", "1"]
    assert parse_nvidia_smi("") == []


def test_parse_gpus_option() -> None:
    assert parse_gpus("0,1") == ["0", "1"]
    assert parse_gpus(" 2 , 3 ") == ["2", "3"]
    assert parse_gpus("none") == []
    with pytest.raises(UsageError, match="--gpus"):
        parse_gpus("0,a")


def test_each_running_trial_gets_its_own_gpu() -> None:
    pool = GpuPool(["0", "1"])
    first, second = pool.acquire(), pool.acquire()
    assert {first, second} == {"0", "1"}
    assert GpuPool.env(first) == {"CUDA_VISIBLE_DEVICES": first}
    pool.release(first)
    assert pool.acquire() == first  # the freed GPU goes to the next trial


def test_more_trials_than_gpus_share_evenly() -> None:
    pool = GpuPool(["0", "1"])
    assigned = [pool.acquire() for _ in range(5)]
    assert assigned.count("0") == 3 and assigned.count("1") == 2


def test_no_gpu_changes_nothing() -> None:
    pool = GpuPool([])
    device = pool.acquire()
    assert device is None
    assert GpuPool.env(device) == {}
    pool.release(device)


# How a user sizes JAX's and TensorFlow's GPU memory; None: not set (tests.helpers.flagrun)
NO_MEMORY_SETTINGS = dict.fromkeys(
    ("XLA_PYTHON_CLIENT_PREALLOCATE", "XLA_PYTHON_CLIENT_MEM_FRACTION",
     "XLA_CLIENT_MEM_FRACTION", "XLA_PYTHON_CLIENT_ALLOCATOR", "TF_FORCE_GPU_ALLOW_GROWTH")
)  # fmt: skip


def test_trials_that_may_share_a_gpu_take_memory_as_they_need_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in NO_MEMORY_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    assert not GpuPool(["0", "1"], slots=2).shared
    assert not GpuPool([], slots=4).shared
    pool = GpuPool(["0"], slots=2)
    assert pool.shared
    assert GpuPool.env("0", pool.shared) == {"CUDA_VISIBLE_DEVICES": "0", **SHARED_GPU_ENV}
    assert GpuPool.env("0") == {"CUDA_VISIBLE_DEVICES": "0"}


def test_a_framework_whose_gpu_memory_the_user_sized_is_left_as_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TF_FORCE_GPU_ALLOW_GROWTH", raising=False)
    monkeypatch.setenv("XLA_PYTHON_CLIENT_MEM_FRACTION", ".3")
    assert GpuPool.env("0", shared=True) == {
        "CUDA_VISIBLE_DEVICES": "0",
        "TF_FORCE_GPU_ALLOW_GROWTH": "true",
    }


# Each trial says which GPU it was given and what torch sees there, after real work on it.
ON_ITS_GPU = textwrap.dedent(
    """
    import json, os
    import torch
    from flagrun import flags, flag_numeric, log_metrics

    FLAGS = flags(flag_numeric("x", 0.5))
    a = torch.randn(2048, 2048, device="cuda")
    total = float((a @ a).sum())
    seen = {"cvd": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "count": torch.cuda.device_count(),
            "used": torch.cuda.memory_allocated(0) > 0,
            "finite": total == total}
    with open("seen.json", "w") as f:
        json.dump(seen, f)
    log_metrics({"val_acc": FLAGS.x}, step=0)
    """
)


def tune_on_gpus(
    tmp_path: Path, train: str, tuning: str, *args: str, env: dict[str, str | None] | None = None
) -> tuple[Path, str]:
    """A job of ``train`` tuned here to its end: its project folder, and what it said."""
    project = make_project(tmp_path / "project", train, tuning)
    done = flagrun(project, "tune", "--config", "tuning.yml", *args, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return project, done.stdout + done.stderr


@pytest.mark.slow
@needs_gpu
@needs_torch
def test_each_trial_of_a_job_runs_on_the_one_gpu_it_was_given(tmp_path: Path) -> None:
    project, _ = tune_on_gpus(tmp_path, ON_ITS_GPU, tuning_yaml(maxTrials=3, maxParallelTrials=2))
    seen = [json.loads(path.read_text()) for path in only_job(project).rglob("seen.json")]
    assert len(seen) == 3
    for trial in seen:
        assert trial["cvd"] in GPUS  # one index, one of this machine's
        assert (trial["count"], trial["used"], trial["finite"]) == (1, True, True)


@pytest.mark.slow
@needs_gpu
@needs_torch
def test_gpus_given_cap_the_trials_running_at_once(tmp_path: Path) -> None:
    tuning = tuning_yaml(maxTrials=2, maxParallelTrials=len(GPUS) + 1)
    project, said = tune_on_gpus(tmp_path, ON_ITS_GPU, tuning, "--gpus", GPUS[0])
    assert "1 GPU given with --gpus" in said
    seen = [json.loads(path.read_text()) for path in only_job(project).rglob("seen.json")]
    assert [trial["cvd"] for trial in seen] == [GPUS[0]] * 2


# Two JAX trials hold one GPU at once: each allocates and keeps an array while the other
# starts. By default each JAX process takes 75% of the GPU's memory at its first
# operation: on an H200 with JAX 0.11 the second one's preallocation failed
# (CUDA_ERROR_OUT_OF_MEMORY for 104.85 GiB), and JAX backed off to smaller sizes, logging
# every failure, with what the first left it.
JAX_TRIAL = textwrap.dedent(
    """
    import time
    import jax.numpy as jnp
    from flagrun import flags, flag_numeric, log_metrics

    FLAGS = flags(flag_numeric("x", 0.5))
    held = jnp.ones((1024, 1024, 256))  # 1 GiB
    time.sleep(8)
    log_metrics({"val_acc": FLAGS.x + float(held[0, 0, 0]) - 1}, step=0)
    """
)


@pytest.mark.slow
@needs_gpu
@needs_jax
def test_jax_trials_sharing_one_gpu_both_run(tmp_path: Path) -> None:
    tuning = tuning_yaml(maxTrials=2, maxParallelTrials=2 * len(GPUS))
    project, said = tune_on_gpus(tmp_path, JAX_TRIAL, tuning, env=NO_MEMORY_SETTINGS)
    trials = trials_json(project)["trials"]
    assert [t["state"] for t in trials] == ["COMPLETE"] * 2, said[-3000:]
    for log in only_job(project).rglob("output.log"):
        assert "CUDA_ERROR_OUT_OF_MEMORY" not in log.read_text(errors="replace"), log
