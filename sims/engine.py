"""One training loop for every setting.

A setting builds a `Task` (ensemble model, training data with a member dimension, per-member loss,
per-member metrics, optional LC probe); `train` runs it. The loop is one plain function:

    for step in range(start, steps):
        batch -> forward -> per-member losses [E] -> divergence check -> backward -> optimiser step
        on the eval schedule: metrics (+ LC probe) -> metrics.jsonl; every few evals: checkpoint

The summed loss `sum_e L_e` gives member e exactly the gradient of its own mean loss, and SGD/AdamW
act elementwise, so an E-member run is E independent runs (tested against one-member runs).
"""

from __future__ import annotations

import dataclasses
import math
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from . import store
from .nn import make_generators

__all__ = ["Task", "train", "eval_schedule", "Interrupted", "resolve_device", "resolve_dtype"]


@dataclass
class Task:
    """What a setting hands the engine."""

    model: nn.Module  # ensemble model with `n_members` = E
    x: torch.Tensor  # [E, n, ...] training inputs, on the model's device
    y: torch.Tensor  # [E, n, ...] training targets
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (output [E, B, ...], y [E, B, ...]) -> [E]
    evaluate: Callable[[nn.Module], dict[str, torch.Tensor]]  # metric name -> [E] values
    probe: Any = None  # an `lc.Probe`, or None
    make_optimizer: Callable[[list[nn.Parameter]], torch.optim.Optimizer] | None = None  # default: cfg.optimizer
    summary: dict = field(default_factory=dict)  # run-level facts for summary.json (baselines, ...)
    snapshot_steps: tuple[int, ...] = ()  # steps at which the model's state is kept in snapshots/step-<s>.pt
    stop: Callable[[dict[str, torch.Tensor]], torch.Tensor] | None = None  # eval metrics -> [E] bool: member done


class Interrupted(RuntimeError):
    """Raised after SIGINT/SIGTERM once the checkpoint and summary are written."""


def resolve_device(name: str) -> torch.device:
    """'auto' (CUDA when available, else CPU), 'cpu', 'cuda' or 'cuda:K'."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r} requested but CUDA is not available; use --device cpu or auto")
        return torch.device(name)
    raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:K]'; got {name!r}")


def resolve_dtype(name: str) -> torch.dtype:
    table = {"float32": torch.float32, "float64": torch.float64}
    if name not in table:
        raise ValueError(f"dtype must be one of {sorted(table)}; got {name!r}")
    return table[name]


def eval_schedule(steps: int, n_evals: int) -> list[int]:
    """Sorted unique eval steps: about half log-spaced, half linear, always 0 and `steps`.

    Holds at most `n_evals` points (n_evals >= 2). Step s means "after s optimiser steps".
    """
    if n_evals < 2:
        raise ValueError(f"n_evals must be >= 2; got {n_evals}")
    if steps == 0:
        return [0]
    n_lin = max(2, n_evals - n_evals // 2)
    n_log = n_evals - n_lin
    pts = set(np.rint(np.linspace(0, steps, n_lin)).astype(int).tolist())
    if n_log > 0:
        pts |= set(np.rint(np.geomspace(1, steps, n_log)).astype(int).tolist())
    pts |= {0, steps}
    return sorted(pts)


def _default_optimizer(cfg, params):
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise ValueError(f"optimizer must be 'sgd' or 'adamw'; got {cfg.optimizer!r}")


def _member_finite(model: nn.Module, E: int) -> torch.Tensor:
    """[E] bool: every parameter of member e is finite."""
    ok = torch.ones(E, dtype=torch.bool, device=next(model.parameters()).device)
    for p in model.parameters():
        ok &= torch.isfinite(p.detach()).reshape(E, -1).all(dim=1)
    return ok


_ALLOCATOR_TUNED = False


def _keep_freed_memory() -> None:
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


class _StopFlag:
    """Turns SIGINT/SIGTERM into a flag the loop checks after each step (main thread only)."""

    def __init__(self):
        self.signum = None
        self._old = {}

    def __enter__(self):
        import threading

        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                self._old[s] = signal.signal(s, self._handle)
        return self

    def _handle(self, signum, frame):
        self.signum = signum

    def __exit__(self, *exc):
        for s, h in self._old.items():
            signal.signal(s, h)


def train(task: Task, cfg, run_dir: Path, *, seeds: list[int], resume: dict | None = None,
          quiet: bool = False, log: Callable[[str], None] | None = None) -> dict:
    """Train `task` under `cfg`, writing metrics, checkpoints and the summary into `run_dir`.

    Returns the summary dict. `resume` is a loaded checkpoint to continue from.
    """
    model, E = task.model, task.model.n_members
    device = task.x.device
    run_dir = Path(run_dir)
    writer = store.MetricsWriter(run_dir / "metrics.jsonl")
    schedule = eval_schedule(cfg.steps, cfg.n_evals)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = task.make_optimizer(params) if task.make_optimizer else _default_optimizer(cfg, params)
    n = task.x.shape[1]
    full_batch = cfg.batch_size == 0 or cfg.batch_size >= n
    batch_gens = make_generators(seeds, "batches")
    member_idx = torch.arange(E, device=device).unsqueeze(1)  # [E, 1]

    # state
    active = torch.ones(E, dtype=torch.bool, device=device)  # neither diverged nor stopped
    ended: list[dict | None] = [None] * E  # per member: {"status": "diverged" | "stopped", "step": s, "why": ...}
    frozen: dict[str, torch.Tensor] = {}
    start, n_evals_done = 0, 0
    lc_note = None if task.probe is None else task.probe.reason_not_applicable(model)
    probe = task.probe if lc_note is None else None
    if task.probe is None:
        lc_note = "no LC probe for this setting"
    t0 = time.time()
    elapsed_before = 0.0
    if resume is not None:
        model.load_state_dict(resume["model"])
        opt.load_state_dict(resume["optimizer"])
        for g, st in zip(batch_gens, resume["batch_generators"]):
            g.set_state(st)
        active = resume["active"].to(device)
        ended = list(resume["ended"])
        frozen = {k: v.to(device) for k, v in resume["frozen"].items()}
        start, n_evals_done = resume["step"], resume["n_evals_done"]
        elapsed_before = resume.get("elapsed", 0.0)
        writer.truncate_after(start)
    named = dict(model.named_parameters())
    say = log or (lambda msg: None)

    def checkpoint(step: int) -> None:
        store.save_checkpoint(run_dir / "checkpoint.pt", dict(
            step=step, n_evals_done=n_evals_done, model=model.state_dict(), optimizer=opt.state_dict(),
            batch_generators=[g.get_state() for g in batch_gens], active=active.cpu(), ended=ended,
            frozen={k: v.cpu() for k, v in frozen.items()}, seeds=seeds, config=dataclasses.asdict(cfg),
            elapsed=elapsed_before + time.time() - t0))

    def snapshot(step: int) -> None:
        (run_dir / "snapshots").mkdir(exist_ok=True)
        store.save_checkpoint(run_dir / "snapshots" / f"step-{step}.pt", dict(step=step, model=model.state_dict()))

    def evaluate(step: int) -> dict[str, list[float]]:
        was_training = model.training
        model.eval()
        with torch.no_grad():
            metrics = dict(task.evaluate(model))
            if probe is not None:
                metrics.update(probe(model))
            newly = active & ~_member_finite(model, E)
            done = active & ~newly & task.stop(metrics) if task.stop is not None else None
        model.train(was_training)
        if bool(newly.any()):
            freeze(newly, step, "diverged", "parameters became non-finite")
        if done is not None and bool(done.any()):
            freeze(done, step, "stopped", "reached the stopping criterion")
        values = {k: v.detach().double().cpu().tolist() for k, v in metrics.items()}
        writer.write(step, values, E, extra={"seed": seeds})
        return values

    def freeze(newly: torch.Tensor, step: int, status: str, why: str) -> None:
        nonlocal active
        for e in torch.nonzero(newly).flatten().tolist():
            ended[e] = dict(status=status, step=step, why=why)
            if status == "diverged":
                say(f"member {e} (seed {seeds[e]}) diverged at step {step}: {why}; it is frozen, the others go "
                    f"on (try a smaller lr)")
        active = active & ~newly
        for k, p in named.items():  # keep the member's parameters as they are now
            snap = frozen.get(k, p.detach().clone())
            snap[newly] = p.detach()[newly]
            frozen[k] = snap

    def summary(status: str, step: int, last: dict) -> dict:
        member_status = [status if ended[e] is None else ended[e]["status"] for e in range(E)]
        out = dict(status=status, step=step, steps=cfg.steps, n_members=E, seeds=seeds,
                   member_status=member_status, ended=ended,
                   elapsed_s=round(elapsed_before + time.time() - t0, 3),
                   final={k: v for k, v in last.items()}, lc=lc_note or "measured")
        out.update(task.summary)
        return out

    last: dict = {}
    step = start
    snapshots = set(task.snapshot_steps)
    store.write_json(run_dir / "summary.json", summary("running", start, last))
    evals = set(schedule)
    progress = _progress(cfg.steps, start, quiet)
    model.train()
    # Logistic losses drive gradients towards float underflow; denormal arithmetic is ~5x slower on x86
    # CPUs, so denormals are flushed to zero while training (restored afterwards).
    flush = device.type == "cpu" and torch.set_flush_denormal(True)
    if device.type == "cpu":
        _keep_freed_memory()
    with _StopFlag() as stop, _restore_flush(flush):
        if start == 0 and resume is None:
            last = evaluate(0)
            n_evals_done = 1
            if 0 in snapshots:
                snapshot(0)
        for step in range(start + 1, cfg.steps + 1):
            # batch: full, or B indices per member from the member's own generator
            if full_batch:
                xb, yb = task.x, task.y
            else:
                idx = torch.stack([torch.randperm(n, generator=g)[: cfg.batch_size] for g in batch_gens])
                idx = idx.to(device)
                xb, yb = task.x[member_idx, idx], task.y[member_idx, idx]
            # forward, per-member loss, divergence check
            opt.zero_grad(set_to_none=True)
            losses = task.loss(model(xb), yb)  # [E]
            bad = active & ~torch.isfinite(losses.detach())
            if bool(bad.any()):
                freeze(bad, step - 1, "diverged", f"loss became {losses[bad][0].item()}")
            torch.where(active, losses, torch.zeros_like(losses)).sum().backward()
            opt.step()
            if frozen:
                with torch.no_grad():
                    still = ~active
                    for k, p in named.items():
                        p[still] = frozen[k][still]
            progress.update(1)
            if step in snapshots:
                snapshot(step)
            # evaluation and checkpoints
            if step in evals:
                last = evaluate(step)
                n_evals_done += 1
                progress.set_postfix_str(_short(last), refresh=False)
                if n_evals_done % cfg.checkpoint_every == 0 or step == cfg.steps:
                    checkpoint(step)
                    store.write_json(run_dir / "summary.json", summary("running", step, last))
                if not bool(active.any()):
                    break
            if stop.signum is not None:
                checkpoint(step)
                store.write_json(run_dir / "summary.json", summary("interrupted", step, last))
                progress.close()
                raise Interrupted(f"stopped by signal {stop.signum} at step {step}; resume with --resume {run_dir}")
    progress.close()
    diverged = [e for e in range(E) if ended[e] is not None and ended[e]["status"] == "diverged"]
    status = "diverged" if len(diverged) == E else "completed"
    checkpoint(step)
    final = summary(status, step, last)
    store.write_json(run_dir / "summary.json", final)
    return final


class _restore_flush:
    def __init__(self, was_set: bool):
        self.was_set = was_set

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.was_set:
            torch.set_flush_denormal(False)


def _short(metrics: dict) -> str:
    keys = [k for k in metrics if not k.startswith("lc_") and "/" not in k][:3]
    return " ".join(f"{k}={_mean(metrics[k]):.3g}" for k in keys)


def _mean(vals) -> float:
    finite = [v for v in vals if v is not None and math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan


def _progress(total: int, initial: int, quiet: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, disable=quiet or not sys.stderr.isatty(), leave=False,
                mininterval=0.5, desc="train")
