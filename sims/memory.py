"""Sizes checked before anything is allocated: a run that cannot fit fails at once with its estimate.

A setting registers `memory=fn(members, itemsize) -> {part: bytes}` (a rough upper estimate of its data,
parameters with gradients and optimiser state, and activations); `check` compares the total with the memory
the device has free and raises `ConfigError` with the estimate, naming the parts, before a run directory is
made. Settings without an estimate are not checked.
"""

from __future__ import annotations

import os

import torch

from .config import ConfigError

__all__ = ["available", "check", "PARAM_COPIES"]

PARAM_COPIES = 6  # parameters, gradients, two optimiser moments, the engine's frozen and last-evaluated copies


def available(device: torch.device) -> int:
    """Free memory on `device` in bytes: CUDA's free memory, or the system's MemAvailable on a CPU."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def _gib(b: float) -> str:
    return f"{b / 2**30:.3g} GiB"


def check(sim, members, device: torch.device, itemsize: int) -> None:
    """Raise ConfigError when the setting's estimate for `members` exceeds the free memory of `device`."""
    if sim.memory is None:
        return
    parts = sim.memory(members, itemsize)
    need, free = sum(parts.values()), available(device)
    if need > free:
        detail = ", ".join(f"{k} {_gib(v)}" for k, v in parts.items())
        raise ConfigError(f"{sim.name} with these settings needs about {_gib(need)} ({detail}; {len(members)} "
                          f"member(s)) but the {device.type} has {_gib(free)} free; use fewer seeds or smaller sizes")
