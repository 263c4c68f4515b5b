"""Process plumbing around a run: SIGINT/SIGTERM turned into a flag the loop checks (`StopFlag`, `Interrupted`),
and the CPU settings of training (`cpu_training`: denormals flushed to zero, freed memory kept by the allocator)."""

from __future__ import annotations

import signal
import sys
import threading

import torch

__all__ = ["Interrupted", "StopFlag", "cpu_training", "keep_freed_memory"]


class Interrupted(RuntimeError):
    """Raised after SIGINT/SIGTERM once the checkpoint and summary are written."""


_ALLOCATOR_TUNED = False


def keep_freed_memory() -> None:
    """On Linux/glibc, keep freed blocks up to 32 MiB in the heap instead of unmapping them.

    Every training step allocates activations and gradients of the same sizes; by default glibc serves
    blocks above 128 KiB with fresh mmap pages and returns them on free, so each step page-faults through
    its whole working set (about a third of a compute-bound CPU step, see benchmarks/ensemble.py).
    Done once per process; a no-op elsewhere.
    """
    global _ALLOCATOR_TUNED
    if _ALLOCATOR_TUNED or not sys.platform.startswith("linux"):
        return
    _ALLOCATOR_TUNED = True
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        libc.mallopt(m_mmap_threshold, 32 * 2**20)
        libc.mallopt(m_trim_threshold, 256 * 2**20)
    except (OSError, AttributeError):
        pass


class cpu_training:
    """On a CPU: flush denormals to zero while training (restored after) and keep freed memory.

    Logistic losses drive gradients towards float underflow; denormal arithmetic is ~5x slower on x86 CPUs.
    """

    def __init__(self, device: torch.device):
        self.cpu = device.type == "cpu"

    def __enter__(self):
        if self.cpu:
            keep_freed_memory()
            self.flushed = torch.set_flush_denormal(True)
        return self

    def __exit__(self, *exc):
        if self.cpu and self.flushed:
            torch.set_flush_denormal(False)


class StopFlag:
    """Turns SIGINT/SIGTERM into a flag the loop checks after each step (main thread only)."""

    def __init__(self):
        self.signum = None
        self._old = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                self._old[s] = signal.signal(s, self._handle)
        return self

    def _handle(self, signum, frame):
        self.signum = signum

    def __exit__(self, *exc):
        for s, h in self._old.items():
            signal.signal(s, h)
