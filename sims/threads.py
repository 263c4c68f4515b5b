"""CPU threads of a run: the intra-op thread count chosen by timing (`choose_threads`), the count held for a block
(`limited`), and the watch that drops a run to one thread when another process takes a core (`ThreadWatch`)."""

from __future__ import annotations

import math
import time
from contextlib import contextmanager

import numpy as np
import torch

__all__ = ["choose_threads", "limited", "ThreadWatch"]


def choose_threads(task, requested: int | None = None, *, budget_s: float = 0.3,
                   margin: float = 1.25) -> tuple[int, str]:
    """The intra-op thread count for training `task` on a CPU, and how it was chosen.

    `requested` wins. Otherwise forward + backward passes are timed alternately at 1 thread and at all of
    torch's threads (a few repetitions, about `budget_s` in all; gradients are cleared, parameters unchanged),
    and all threads are kept only if their mean pass is at least `margin` times faster. The rule is lopsided
    on purpose: small problems (100 x 100 matmuls) gain nothing from a second thread and, when another process
    keeps a core busy, lose up to 10x or more (spinning OpenMP threads wait for a descheduled partner; the mean,
    unlike the median, sees those stalls), while a large batched problem loses at most the speed-up it would
    have had (measured in benchmarks/threads.py).
    """
    most = torch.get_num_threads()
    if requested is not None:
        return requested, "requested"
    if task.x.device.type != "cpu" or most == 1:
        return most, "not timed (one thread available or not a CPU)"
    params = [p for p in task.model.parameters() if p.requires_grad]

    def one_pass(n: int) -> float:
        torch.set_num_threads(n)
        t0 = time.perf_counter()
        task.loss(task.model(task.x), task.y).sum().backward()
        for p in params:
            p.grad = None
        return time.perf_counter() - t0

    try:
        first = min(one_pass(most), one_pass(1))  # warm-up, and the size of one pass
        reps = int(min(15, max(3, budget_s / max(first, 1e-6) / 2)))
        times = {1: [], most: []}
        for _ in range(reps):
            for n in (1, most):
                times[n].append(one_pass(n))
    finally:
        torch.set_num_threads(most)
    mean = {n: float(np.mean(t)) for n, t in times.items()}
    best = most if mean[most] * margin <= mean[1] else 1
    return best, (f"timed ({reps} passes each): mean {mean[1] * 1e3:.3g} ms at 1 thread, {mean[most] * 1e3:.3g} ms "
                  f"at {most}")


@contextmanager
def limited(n: int):
    """torch's intra-op threads and numpy's BLAS threads (threadpoolctl) at `n` inside the block."""
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(limits=n, user_api="blas"):
            yield
    finally:
        torch.set_num_threads(before)


class ThreadWatch:
    """Drops a CPU run to one thread for the rest of the run when its training steps become `factor` x slower
    than the fastest stretch seen so far: another process has taken a core, and spinning intra-op threads then
    stall (measured: 40 ms against 0.64 ms per dmf step). One way only, since a second thread gains at most 2x
    where it helps. Training time is measured between evaluations (evaluations excluded), over stretches of at
    least `min_steps` steps."""

    def __init__(self, device: torch.device, step: int = 0, factor: float = 2.5, min_steps: int = 50):
        self.on = device.type == "cpu" and torch.get_num_threads() > 1
        self.factor, self.min_steps, self.best, self.note = factor, min_steps, math.inf, None
        self.restart(step)

    def restart(self, step: int) -> None:
        self.t, self.step0 = time.perf_counter(), step

    def check(self, step: int) -> bool:
        """Call before an evaluation at `step`; True when it has just dropped to one thread (see `note`)."""
        n = step - self.step0
        if not self.on or n < self.min_steps:
            return False
        rate = (time.perf_counter() - self.t) / n
        if rate > self.factor * self.best:
            from threadpoolctl import threadpool_limits

            before = torch.get_num_threads()
            torch.set_num_threads(1)
            threadpool_limits(limits=1, user_api="blas")  # the caller's context restores it when the run ends
            self.on = False
            self.note = (f"dropped from {before} threads to 1 at step {step}: {1e3 * rate:.3g} ms per step against "
                         f"{1e3 * self.best:.3g} ms earlier (another process took a core)")
            return True
        self.best = min(self.best, rate)
        return False
