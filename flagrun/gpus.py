"""GPU slots: give each running trial its own ``CUDA_VISIBLE_DEVICES``.

With no GPU nothing changes: trials get no ``CUDA_VISIBLE_DEVICES`` at all. When a job
runs more trials at once than there are GPUs, trials share them, and by default two
frameworks leave a second trial on a GPU little or nothing: JAX takes 75% of a GPU's
memory at its first operation (on an H200 the second JAX process's preallocation failed
for memory, and it backed off, logging each failure), TensorFlow all of it. Trials that
may share a GPU are then told to take memory as they need it (``SHARED_GPU_ENV``), unless
the user set how that framework sizes it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections import Counter

from flagrun.errors import UsageError

# What trials sharing a GPU are given, per framework, and the settings of the user's by
# which that framework already sizes its memory (one of them set: that framework is left
# as the user set it).
SHARED_GPU_ENV = {
    "XLA_PYTHON_CLIENT_PREALLOCATE": "false",  # JAX
    "TF_FORCE_GPU_ALLOW_GROWTH": "true",  # TensorFlow
}
_USER_SIZED = {
    "XLA_PYTHON_CLIENT_PREALLOCATE": (
        "XLA_PYTHON_CLIENT_PREALLOCATE",
        "XLA_PYTHON_CLIENT_MEM_FRACTION",
        "XLA_CLIENT_MEM_FRACTION",
        "XLA_PYTHON_CLIENT_ALLOCATOR",
    ),
    "TF_FORCE_GPU_ALLOW_GROWTH": ("TF_FORCE_GPU_ALLOW_GROWTH",),
}


def detect_gpus() -> list[str]:
    """Indices of the GPUs ``nvidia-smi -L`` lists; empty when there is none."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        listing = subprocess.run(
            ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return parse_nvidia_smi(listing)


def parse_nvidia_smi(listing: str) -> list[str]:
    """Parse ``nvidia-smi -L`` lines like ``GPU 0: NVIDIA H100 (UUID: ...)``."""
    devices = []
    for line in listing.splitlines():
        head, _, _ = line.partition(":")
        words = head.split()
        if len(words) == 2 and words[0] == "GPU" and words[1].isdigit():
            devices.append(words[1])
    return devices


def parse_gpus(option: str | None) -> list[str]:
    """``--gpus``: None = every detected GPU, ``none`` = no assignment, ``0,1`` = those."""
    if option is None:
        return detect_gpus()
    if option.strip().lower() in ("", "none"):
        return []
    devices = [item.strip() for item in option.split(",")]
    if not all(device.isdigit() for device in devices):
        raise UsageError(
            f"--gpus {option!r} is not a list of GPU indices", hint="write it like --gpus 0,1"
        )
    return devices


class GpuPool:
    """Hands out the least-loaded GPU to each trial that starts.

    With more parallel trials (``slots``) than GPUs, trials share GPUs as evenly as
    possible, each told to take GPU memory as it needs it.
    """

    def __init__(self, devices: list[str], slots: int = 1) -> None:
        self.devices = list(devices)
        self.shared = bool(self.devices) and slots > len(self.devices)
        self._load: Counter[str] = Counter({device: 0 for device in self.devices})

    def acquire(self) -> str | None:
        """The GPU for a starting trial, or None when there are no GPUs."""
        if not self.devices:
            return None
        device = min(self.devices, key=lambda name: (self._load[name], self.devices.index(name)))
        self._load[device] += 1
        return device

    def release(self, device: str | None) -> None:
        """Give back the GPU of a finished trial."""
        if device is not None:
            self._load[device] -= 1

    @staticmethod
    def env(device: str | None, shared: bool = False) -> dict[str, str]:
        """The environment a trial on ``device`` gets; on a ``shared`` GPU it also takes
        memory as it needs it, for each framework whose memory the user did not size."""
        if device is None:
            return {}
        env = {"CUDA_VISIBLE_DEVICES": device}
        if shared:
            for name, value in SHARED_GPU_ENV.items():
                if not any(setting in os.environ for setting in _USER_SIZED[name]):
                    env[name] = value
        return env
