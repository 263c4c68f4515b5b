"""Grid simulations: closed forms and Monte-Carlo fits over a grid of points, no training loop.

A grid setting builds a `GridTask`: the list of grid points (dicts of coordinates such as {"n": 50,
"d": 400}) and `evaluate(i, point) -> {metric: [E]}` (one value per member: Monte-Carlo repetitions with
their own seeds; i is the point's index, for seeding its draws). `run_grid` evaluates the points in order and writes the same run directory as a trained run:
config.json, metrics.jsonl (one record per point and member: {"point": i, "member": e, "seed": s, <the
point's coordinates>, <metrics>}), summary.json and figures. An interrupted grid run resumes at the first
point without records. summary.json records the members' configs the points were computed with (`configs`), so
that a resume refuses a config.json edited since (`sims.api.resume`), as a trained run's checkpoint does.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import torch

from . import store
from .config import Members
from .process import Interrupted, StopFlag

__all__ = ["GridTask", "run_grid"]


@dataclass
class GridTask:
    """What a grid setting hands `run_grid`."""

    points: list[dict]  # the grid coordinates of each point, in evaluation order
    evaluate: Callable[[int, Mapping], Mapping[str, object]]  # (index, point) -> metric name -> [E] values
    summary: dict = field(default_factory=dict)  # run-level facts for summary.json
    member_summary: list[dict] | None = None  # per-member facts, summary["members"][e]


def _summary(task: GridTask, members: Members, status: str, done: int, t0: float, elapsed_before: float) -> dict:
    per_member = task.member_summary or [{} for _ in members]
    out = dict(status=status, kind="grid", points=len(task.points), points_done=done, n_members=len(members),
               seeds=members.seeds, member_status=[status] * len(members),
               elapsed_s=round(elapsed_before + time.time() - t0, 3),
               members=[dict(seed=s, status=status, **f) for s, f in zip(members.seeds, per_member)],
               configs=[dataclasses.asdict(m) for m in members])
    out.update(task.summary)
    return out


def run_grid(task: GridTask, members: Members, run_dir: Path, *, quiet: bool = True, log=None) -> dict:
    """Evaluate every grid point not yet recorded in `run_dir`, appending its records; returns the summary."""
    run_dir = Path(run_dir)
    writer = store.MetricsWriter(run_dir / "metrics.jsonl")
    counts: dict[int, int] = {}
    for r in store.read_metrics(writer.path, warn=False):
        counts[r["point"]] = counts.get(r["point"], 0) + 1
    done = {i for i, c in counts.items() if c == len(members)}  # a point is written whole or not at all
    first_gap = min(set(range(len(task.points))) - done, default=len(task.points))
    done = {i for i in done if i < first_gap}
    writer.truncate_after(first_gap - 1)
    before = store.read_json(run_dir / "summary.json").get("elapsed_s", 0.0) if (run_dir / "summary.json").exists() else 0.0
    t0, E = time.time(), len(members)
    store.write_json(run_dir / "summary.json", _summary(task, members, "running", len(done), t0, before))
    with StopFlag() as stop:
        for i, point in enumerate(task.points):
            if i in done:
                continue
            with torch.no_grad():
                values = {k: _per_member(v, E, k) for k, v in task.evaluate(i, point).items()}
            coords = {k: [v] * E for k, v in point.items()}
            writer.write(i, values, E, extra={"seed": members.seeds, **coords}, index="point")
            done.add(i)
            if stop.signum is not None:
                store.write_json(run_dir / "summary.json", _summary(task, members, "interrupted", len(done), t0, before))
                raise Interrupted(f"stopped by signal {stop.signum} after grid point {i}; resume with --resume {run_dir}")
    final = _summary(task, members, "completed", len(done), t0, before)
    store.write_json(run_dir / "summary.json", final)
    return final


def _per_member(values, E: int, name: str) -> list[float]:
    v = values.detach().double().cpu().reshape(-1).tolist() if torch.is_tensor(values) else list(values)
    if len(v) != E:
        raise ValueError(f"grid metric {name!r} has {len(v)} values; expected one per member ({E})")
    return [float(x) for x in v]
