"""One training loop for every setting.

A setting builds a `Task` (ensemble model, training data with a member dimension, per-member loss,
per-member metrics, optional LC probe); `train` runs it. The loop is one plain function:

    for step in range(start + 1, steps + 1):
        batch -> forward -> per-member losses [E] -> backward of their sum -> optimiser step
        on the eval schedule: finiteness check (diverged members frozen) -> metrics (+ LC probe)
        -> metrics.jsonl; every few evals: checkpoint

The summed loss `sum_e L_e` gives member e exactly the gradient of its own mean loss, and the optimisers
act elementwise (or per member), so an E-member run is E independent runs (tested against one-member runs).
A member whose loss or parameters turn non-finite only spoils its own parameters; it is caught at the next
evaluation, reset to its parameters at the last evaluation and frozen, and its metrics are null from then on.
There is no host-device synchronisation between evaluations (except for a per-step loss threshold).

Around the loop, in their own modules: the cache of expensive baselines (`sims.cache`), the CPU thread choice
and watch (`sims.threads`), signals, denormals and the allocator (`sims.process`).
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from lc.keys import LCKey

from . import optim, store
from .cache import Cache
from .config import Members, config_hash
from .nn import make_generators
from .process import Interrupted, StopFlag, cpu_training
from .threads import ThreadWatch

__all__ = ["Task", "Env", "train", "eval_schedule", "snapshot_steps", "SNAPSHOTS_HELP", "Interrupted", "resolve_device",
           "resolve_dtype"]


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
    summary: dict = field(default_factory=dict)  # run-level facts for summary.json (baseline solver, ...)
    member_summary: list[dict] | None = None  # per-member facts (baselines, ground truth), summary["members"][e]
    snapshot_steps: tuple[int, ...] = ()  # steps whose model state is kept in snapshots/step-<s>.pt (`snapshot_steps`)
    stop: Callable[[dict[str, torch.Tensor]], torch.Tensor] | None = None  # eval metrics -> [E] bool: member done
    stop_loss: float = 0.0  # > 0: a member stops (before its update) at the first step its training loss is <= this


@dataclass
class Env:
    """Where a build puts its tensors, and its cache of expensive baselines."""

    device: torch.device
    dtype: torch.dtype
    cache: Cache = field(default_factory=Cache)


def resolve_device(name: str) -> torch.device:
    """'auto' (CUDA when available, else CPU), 'cpu', 'cuda' or 'cuda:K'."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if isinstance(name, str) and name.startswith("cuda"):
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


SNAPSHOTS_HELP = ("model states kept in snapshots/ for figures and slices (`sims.engine.snapshot_steps`): K > 0 = "
                  "step 0, the last step and the eval steps nearest K log-spaced and K linearly spaced steps; -1 = "
                  "step 0 and every eval step from steps/100 on; 0 = none")


def snapshot_steps(steps: int, n_evals: int, snapshots: int) -> tuple[int, ...]:
    """The steps whose model state a run keeps (snapshots/step-<s>.pt; read back with `Run.snapshot`), sorted.

    The one policy of every setting's `snapshots` field (`SNAPSHOTS_HELP`), always on eval steps
    (`eval_schedule(steps, n_evals)`):
    - K > 0: step 0, the last step, the eval steps nearest (in log step) to K log-spaced steps in [1, steps]
      and those nearest to K linearly spaced steps in [0, steps]: grokking spans decades, while a transition
      sits late on a linear axis (about 2K snapshots);
    - -1: step 0 and every eval step from steps / 100 on (an LC peak and the final descent fall on snapshots);
    - 0: none.
    """
    if snapshots == 0:
        return ()
    if snapshots < -1:
        raise ValueError(f"snapshots must be -1 (every eval step from steps/100 on), 0 (none) or K > 0; got "
                         f"{snapshots}")
    evals = np.array(eval_schedule(steps, n_evals))
    if snapshots == -1 or steps == 0:
        return tuple(int(s) for s in evals if s == 0 or s >= steps / 100)
    picked = {0, steps}
    picked |= {int(evals[np.argmin(np.abs(np.log1p(evals) - np.log1p(w)))]) for w in np.geomspace(1, steps, snapshots)}
    picked |= {int(evals[np.argmin(np.abs(evals - w))]) for w in np.linspace(0, steps, snapshots)}
    return tuple(sorted(picked))


# ------------------------------------------------------------------------------------------------ loop state

@dataclass
class _State:
    """Everything the loop changes, in one place (checkpointed)."""

    opt: torch.optim.Optimizer
    batch_gens: list[torch.Generator]
    active: torch.Tensor  # [E] bool: neither diverged nor stopped
    ended: list[dict | None]  # per member: {"status": "diverged" | "stopped", "step": s, "why": ...}
    frozen: dict[str, torch.Tensor]  # parameter name -> [E, ...] values kept for ended members
    safe: dict[str, torch.Tensor]  # parameter name -> values at the last evaluation (every member finite there)
    n_active: int = 0  # members still training (host copy of active.sum(), so the loop never syncs for it)
    step: int = 0
    n_evals_done: int = 0
    elapsed_before: float = 0.0
    last_losses: torch.Tensor | None = None  # [E] losses of the last step (checked at evaluations)
    last: dict = field(default_factory=dict)  # the last evaluation's metrics


def _new_state(task: Task, members: Members, resume: dict | None) -> _State:
    model, E = task.model, task.model.n_members
    params = [p for p in model.parameters() if p.requires_grad]
    opt = task.make_optimizer(params) if task.make_optimizer else optim.make(
        members[0].optimizer, params, members.values("lr"), members.values("weight_decay"), members[0].momentum)
    device = task.x.device
    named = {k: p.detach().clone() for k, p in model.named_parameters()}
    state = _State(opt=opt, batch_gens=make_generators(members.seeds, "batches"),
                   active=torch.ones(E, dtype=torch.bool, device=device), ended=[None] * E, frozen={}, safe=named,
                   n_active=E)
    if resume is not None:
        model.load_state_dict(resume["model"])
        opt.load_state_dict(resume["optimizer"])
        for g, st in zip(state.batch_gens, resume["batch_generators"]):
            g.set_state(st)
        state.active, state.ended = resume["active"].to(device), list(resume["ended"])
        state.n_active = sum(e is None for e in state.ended)
        state.frozen = {k: v.to(device) for k, v in resume["frozen"].items()}
        state.safe = {k: p.detach().clone() for k, p in model.named_parameters()}
        state.step, state.n_evals_done = resume["step"], resume["n_evals_done"]
        state.elapsed_before = resume.get("elapsed", 0.0)
    return state


def _batch(task: Task, cfg, state: _State):
    """The full training set, or B indices per member from the member's own generator."""
    n = task.x.shape[1]
    if cfg.batch_size == 0 or cfg.batch_size >= n:
        return task.x, task.y
    idx = torch.stack([torch.randperm(n, generator=g)[: cfg.batch_size] for g in state.batch_gens])
    rows = torch.arange(len(idx), device=task.x.device).unsqueeze(1)
    idx = idx.to(task.x.device)
    return task.x[rows, idx], task.y[rows, idx]


def _freeze(state: _State, model: nn.Module, newly: torch.Tensor, step: int, status: str, why: str, say) -> None:
    """Mark members `newly` [E] bool as ended and keep their parameters as they are now."""
    for e in torch.nonzero(newly).flatten().tolist():
        state.ended[e] = dict(status=status, step=step, why=why)
        if status == "diverged":
            say(f"member {e} diverged by step {step}: {why}; it is reset to its last evaluated parameters and "
                "frozen, the others go on (try a smaller lr)")
    state.active = state.active & ~newly
    state.n_active = sum(e is None for e in state.ended)
    for k, p in model.named_parameters():
        snap = state.frozen.get(k, p.detach().clone())
        snap[newly] = p.detach()[newly]
        state.frozen[k] = snap


def _restore_frozen(state: _State, model: nn.Module) -> None:
    """Put back the kept parameters of ended members (a `where`, not a masked write: no host-device sync)."""
    if state.frozen:
        with torch.no_grad():
            still = ~state.active  # [E]
            for k, p in model.named_parameters():
                p.copy_(torch.where(still.view(-1, *[1] * (p.dim() - 1)), state.frozen[k], p))


def _check_finite(state: _State, model: nn.Module, step: int, say) -> None:
    """Members whose last loss is non-finite, or whose squared parameter norm is (a parameter is NaN or inf, or
    they are so large that every norm overflows the dtype): reset to their last evaluated parameters, frozen."""
    E = model.n_members
    sq = sum(p.detach().pow(2).reshape(E, -1).sum(dim=1) for p in model.parameters())  # [E], in the dtype
    ok = torch.isfinite(sq)
    if state.last_losses is not None:
        ok &= torch.isfinite(state.last_losses.detach())
    newly = state.active & ~ok
    if bool(newly.any()):
        with torch.no_grad():
            for k, p in model.named_parameters():
                p[newly] = state.safe[k][newly]
        _freeze(state, model, newly, step, "diverged",
                "the loss or the parameters became non-finite (or their squared norm overflowed)", say)
    for k, p in model.named_parameters():
        state.safe[k].copy_(p.detach())


def _evaluate(task: Task, probe, state: _State, step: int, writer, seeds, say) -> dict:
    """Freeze diverged members, then metrics (+ LC probe) per member; diverged members' values are null."""
    model = task.model
    _check_finite(state, model, step, say)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        metrics = dict(task.evaluate(model))
        if probe is not None:
            metrics.update(probe(model))
        done = state.active & task.stop(metrics) if task.stop is not None else None
    model.train(was_training)
    if done is not None and bool(done.any()):
        _freeze(state, model, done, step, "stopped", "reached the stopping criterion", say)
    diverged = [e is not None and e["status"] == "diverged" for e in state.ended]
    values = {k: [math.nan if diverged[e] else x for e, x in enumerate(v.detach().double().cpu().tolist())]
              for k, v in metrics.items()}
    writer.write(step, values, model.n_members, extra={"seed": seeds})
    state.last = values
    state.n_evals_done += 1
    return values


def _checkpoint(state: _State, model: nn.Module, members: Members, run_dir: Path, t0: float) -> None:
    store.save_checkpoint(run_dir / "checkpoint.pt", dict(
        step=state.step, n_evals_done=state.n_evals_done, model=model.state_dict(), optimizer=state.opt.state_dict(),
        batch_generators=[g.get_state() for g in state.batch_gens], active=state.active.cpu(), ended=state.ended,
        frozen={k: v.cpu() for k, v in state.frozen.items()}, seeds=members.seeds,
        members=[dataclasses.asdict(m) for m in members],
        config_hash=config_hash([dataclasses.asdict(m) for m in members]),
        elapsed=state.elapsed_before + time.time() - t0))


def _summary(task: Task, state: _State, members: Members, status: str, note: str, t0: float) -> dict:
    E = len(members)
    member_status = [status if state.ended[e] is None else state.ended[e]["status"] for e in range(E)]
    per_member = task.member_summary or [{} for _ in range(E)]
    out = dict(status=status, step=state.step, steps=members[0].steps, n_members=E, seeds=members.seeds,
               member_status=member_status, ended=state.ended,
               elapsed_s=round(state.elapsed_before + time.time() - t0, 3), final=dict(state.last), lc=note,
               members=[dict(seed=s, status=st, **facts) for s, st, facts in zip(members.seeds, member_status,
                                                                                 per_member)])
    out.update(task.summary)
    return out


def _train_step(task: Task, cfg, state: _State) -> None:
    """One optimiser step of every member (a per-step loss threshold stops members before their update)."""
    xb, yb = _batch(task, cfg, state)
    state.opt.zero_grad(set_to_none=True)
    losses = task.loss(task.model(xb), yb)  # [E]
    state.last_losses = losses
    if task.stop_loss > 0:
        done = state.active & (losses.detach() <= task.stop_loss)
        if bool(done.any()):
            _freeze(state, task.model, done, state.step, "stopped",
                    f"training loss <= {task.stop_loss:g} (checked every step)", lambda m: None)
    losses.sum().backward()
    state.opt.step()
    _restore_frozen(state, task.model)
    state.step += 1


def _lc_note(task: Task):
    """(probe or None, how LC was handled) for the summary."""
    if task.probe is None:
        return None, "no LC probe for this setting"
    why = task.probe.reason_not_applicable(task.model)
    return (task.probe, "measured") if why is None else (None, why)


def train(task: Task, members: Members, run_dir: Path, *, resume: dict | None = None, quiet: bool = False,
          log: Callable[[str], None] | None = None) -> dict:
    """Train `task` with the per-member configs `members`, writing metrics, checkpoints and the summary into
    `run_dir`. Returns the summary dict. `resume` is a loaded checkpoint to continue from."""
    cfg, model, run_dir, say = members[0], task.model, Path(run_dir), log or (lambda msg: None)
    writer = store.MetricsWriter(run_dir / "metrics.jsonl")
    state = _new_state(task, members, resume)
    if resume is not None:
        writer.truncate_after(state.step)
    probe, note = _lc_note(task)
    evals, snapshots, t0 = set(eval_schedule(cfg.steps, cfg.n_evals)), set(task.snapshot_steps), time.time()
    store.write_json(run_dir / "summary.json", _summary(task, state, members, "running", note, t0))
    bar = _progress(cfg.steps, state.step, quiet)
    model.train()
    with cpu_training(task.x.device), StopFlag() as stop:
        if resume is None:
            _evaluate(task, probe, state, 0, writer, members.seeds, say)
            if 0 in snapshots:
                _snapshot(model, run_dir, 0)
        watch = ThreadWatch(task.x.device, state.step)
        while state.step < cfg.steps and state.n_active:
            _train_step(task, cfg, state)
            step = state.step
            bar.update(1)
            if step in snapshots:
                _snapshot(model, run_dir, step)
            if step in evals or not state.n_active:
                if watch.check(step):
                    task.summary["threads_dropped"] = watch.note
                    say(watch.note)
                bar.set_postfix_str(_short(_evaluate(task, probe, state, step, writer, members.seeds, say)),
                                    refresh=False)
                watch.restart(step)
                if state.n_evals_done % cfg.checkpoint_every == 0:
                    _checkpoint(state, model, members, run_dir, t0)
                    store.write_json(run_dir / "summary.json", _summary(task, state, members, "running", note, t0))
            if stop.signum is not None:
                _checkpoint(state, model, members, run_dir, t0)
                store.write_json(run_dir / "summary.json", _summary(task, state, members, "interrupted", note, t0))
                bar.close()
                raise Interrupted(f"stopped by signal {stop.signum} at step {step}; resume with --resume {run_dir}")
    bar.close()
    diverged = sum(e is not None and e["status"] == "diverged" for e in state.ended)
    _checkpoint(state, model, members, run_dir, t0)
    final = _summary(task, state, members, "diverged" if diverged == len(members) else "completed", note, t0)
    store.write_json(run_dir / "summary.json", final)
    return final


# ----------------------------------------------------------------------------------------------- helpers

def _snapshot(model: nn.Module, run_dir: Path, step: int) -> None:
    (run_dir / "snapshots").mkdir(exist_ok=True)
    store.save_checkpoint(run_dir / "snapshots" / f"step-{step}.pt", dict(step=step, model=model.state_dict()))


def _short(metrics: dict) -> str:
    keys = [k for k in metrics if LCKey.parse(k) is None][:3]
    return " ".join(f"{k}={_mean(metrics[k]):.3g}" for k in keys)


def _mean(vals) -> float:
    finite = [v for v in vals if v is not None and math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan


def _progress(total: int, initial: int, quiet: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, disable=quiet or not sys.stderr.isatty(), leave=False,
                mininterval=0.5, desc="train")
