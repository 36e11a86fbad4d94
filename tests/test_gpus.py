"""GPU slot assignment, tested without a GPU."""

from __future__ import annotations

import pytest

from flagrun.errors import UsageError
from flagrun.gpus import GpuPool, parse_gpus, parse_nvidia_smi

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
