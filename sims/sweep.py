"""Sweeps: grids of configs grouped into ensembles, run here or on Dask, resumable, with a results table.

A *point* is one configuration of one simulation (preset, overrides, seed). Points whose configs differ
only in the simulation's member-wise fields (always the seed; data, init and per-member optimiser fields
where a setting declares them) run as one *group*: one ensemble run whose members are the points, so a
grid over seeds (and over init scales, ...) costs one tensor program, not a process per point.

`sweep(name, grid, ...)` plans the points (every one validated before anything runs), groups them, runs the
groups one after another (`workers=0`), on a Dask `LocalCluster` bound to 127.0.0.1 (`workers=N`) or on an
existing scheduler (`scheduler="tcp://host:8786"`), and writes into its directory:

    sweep.json    the grid, the plan (groups and their members) and the status of every group and point: written
                  before the first point runs and updated as each group finishes (`sims.sweepfiles`)
    results.csv   one row per point: swept values, seed, final metrics, status, run directory, member
    runs/<group>  one ordinary run directory per group (a stable name: the same group, the same directory)

Running the same sweep into the same directory again skips completed groups, resumes interrupted ones and
reruns failed ones (the failed directory is kept, renamed), also after `kill -9`; a different sweep into a used
directory, or a directory this package did not make (`sims.outdir`), is refused; a second process on the same
directory is refused while the first runs (`sims.locks`). `execute(groups, root)` is the one code path that runs
groups; `sims reproduce` uses it too.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from . import api, locks, outdir, registry, store, sweepfiles
from .config import ConfigError, Members, config_hash
from .kinds import kind_of
from .sweepfiles import figure, results

__all__ = ["Point", "Group", "expand_grid", "parse_grid", "plan", "group", "execute", "sweep", "results", "figure",
           "check_groups", "check_executor", "MEMBER_CAP"]

MEMBER_CAP = 64  # at most this many points in one ensemble


@dataclass(frozen=True)
class Point:
    """One configuration: simulation, preset and the overrides (including the seed) that define it."""

    sim: str
    preset: str
    overrides: tuple[tuple[str, Any], ...]

    @property
    def settings(self) -> dict:
        return dict(self.overrides)

    def config(self):
        return registry.resolve(registry.get(self.sim), self.preset, self.settings)

    @property
    def key(self) -> tuple[str, str]:
        """Identity of the run: two points whose configs resolve equal are the same run."""
        return self.sim, config_hash(self.config())


@dataclass(frozen=True)
class Group:
    """Points that run as one ensemble (one run directory)."""

    sim: str
    preset: str
    points: tuple[Point, ...]

    @property
    def id(self) -> str:
        """A stable name: the same group always maps to the same run directory."""
        configs = [dataclasses.asdict(p.config()) for p in self.points]
        return f"{self.sim}-{config_hash(dict(preset=self.preset, members=configs))[:12]}"

    def members(self) -> Members:
        return Members(p.config() for p in self.points).check(registry.get(self.sim).memberwise)


def parse_grid(items: Sequence[str]) -> dict[str, list[str]]:
    """['lr=0.1,1', 'width=100,200'] -> {'lr': ['0.1', '1'], 'width': ['100', '200']}.

    A key given twice, a value repeated within a key, or a key without values is a ConfigError.
    """
    grid: dict[str, list[str]] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--grid expects key=v1,v2,...; got {item!r}")
        k, vals = (part.strip() for part in item.split("=", 1))
        if k in grid:
            raise ConfigError(f"--grid {k} is given twice; give all its values once: --grid {k}=v1,v2,...")
        grid[k] = [v.strip() for v in vals.split(",") if v.strip()]
    return grid


def expand_grid(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """The Cartesian product of the grid, in key order, as a list of override dicts.

    Each value list must be a non-empty list or tuple without repeats (a string is one value, not a list).
    """
    for k, vals in grid.items():
        if isinstance(vals, (str, bytes)) or not isinstance(vals, (list, tuple)):
            raise ConfigError(f"grid values of {k!r} must be a list of values; got {vals!r} (a string is one "
                              f"value: write [{vals!r}])")
        if not vals:
            raise ConfigError(f"grid key {k!r} has no values")
        if len({json.dumps(v, default=str) for v in vals}) != len(vals):
            raise ConfigError(f"grid key {k!r} repeats a value: {list(vals)}")
    keys = list(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]


def plan(name: str, grid: Mapping[str, Sequence[Any]], *, preset: str = "default", seeds: int = 1,
         base: Mapping[str, Any] | None = None) -> list[Point]:
    """The validated points of a grid: each grid point (with the fixed `base` overrides) at `seeds` seeds
    (seed, seed + 1, ... from its config's seed), unless the grid sweeps `seed` itself."""
    sim = registry.get(name)
    base = dict(base or {})
    if "seed" in grid and seeds != 1:
        raise ConfigError("give seeds either as a grid over 'seed' or as --seeds K, not both")
    if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
        raise ConfigError(f"seeds must be an integer >= 1; got {seeds!r}")
    points, seen = [], set()
    for over in expand_grid(grid) if grid else [{}]:
        cfg = registry.resolve(sim, preset, {**base, **over})
        for e in range(seeds):
            resolved = dataclasses.replace(cfg, seed=cfg.seed + e)
            p = Point(name, preset, tuple(sorted({**base, **over, "seed": resolved.seed}.items())))
            key = config_hash(resolved)
            if key in seen:
                raise ConfigError(f"the grid gives the same configuration twice: {p.settings}")
            seen.add(key)
            points.append(p)
    return points


def group(points: Sequence[Point], *, cap: int = MEMBER_CAP) -> list[Group]:
    """Points grouped into ensembles: equal simulation, preset and config up to member-wise fields; at most
    `cap` points per group, in the order the points came."""
    buckets: dict[tuple, list[Point]] = {}
    for p in points:
        sim = registry.get(p.sim)
        shared = {k: v for k, v in dataclasses.asdict(p.config()).items() if k not in sim.memberwise}
        buckets.setdefault((p.sim, p.preset, config_hash(shared)), []).append(p)
    out = []
    for (sim, preset, _), pts in buckets.items():
        for i in range(0, len(pts), cap):
            out.append(Group(sim, preset, tuple(pts[i:i + cap])))
    return out


# ------------------------------------------------------------------------------------------------ execution

def _run_group(g: Group, run_dir: str, device: str, threads: int | None, figures: bool = True) -> dict:
    """Run (or resume, or reuse) one group in `run_dir`; never raises: failures are recorded."""
    run_dir = Path(run_dir)
    try:
        status = _existing_status(run_dir)
        if status in ("completed", "diverged"):
            return dict(dir=str(run_dir), status=status, reused=True)
        resumable = kind_of(registry.get(g.sim)).resumable(run_dir)
        if status in ("running", "interrupted") and resumable:
            r = api.resume(run_dir, device=device, threads=threads, figures=figures)
        else:
            if status is not None:  # failed or unreadable: keep it, rerun beside it
                _set_aside(run_dir)
            r = api.run_members(g.sim, g.preset, g.members(), device=device, run_dir=run_dir, threads=threads,
                                figures=figures)
        return dict(dir=str(r.dir), status=r.summary["status"])
    except (Exception, KeyboardInterrupt) as exc:  # a failed group is a result of the sweep, not a crash of it
        from .engine import Interrupted

        status = "interrupted" if isinstance(exc, (Interrupted, KeyboardInterrupt)) else "failed"
        return dict(dir=str(run_dir), status=status, error=f"{type(exc).__name__}: {exc}")


def _existing_status(run_dir: Path) -> str | None:
    if not (run_dir / "config.json").exists():
        if run_dir.exists():
            _set_aside(run_dir)  # a directory killed before its config was written
        return None
    try:
        return store.read_json(run_dir / "summary.json").get("status")
    except store.RunDirError:
        return "unreadable"


def _set_aside(run_dir: Path) -> None:
    for k in itertools.count(1):
        dest = run_dir.with_name(f"{run_dir.name}.failed-{k}")
        if not dest.exists():
            run_dir.rename(dest)
            return


def execute(groups: Sequence[Group], root: Path, *, device: str = "auto", workers: int = 0,
            scheduler: str | None = None, threads: int | None = None, log: Callable[[str], None] | None = None,
            retries: int = 2, figures: bool = True,
            on_result: Callable[[int, dict], None] | None = None) -> tuple[list[dict], str]:
    """Run `groups` into root/runs/<group id>; returns (one result dict per group, where they ran).

    `on_result(i, result)` is called as group i finishes (a sweep records its progress with it).

    Sequential here when workers == 0 and no scheduler; else one Dask task per group (a group whose worker
    dies is run again elsewhere, up to `retries` times, and resumes from its checkpoint). Ctrl-C stops the
    sweep: the running group is recorded as interrupted and the groups not started as pending.
    """
    dirs = [str(Path(root) / "runs" / g.id) for g in groups]
    say = log or (lambda m: None)
    done = on_result or (lambda i, res: None)
    if scheduler is None and workers == 0:
        results: list[dict] = [dict(dir=d, status="pending") for d in dirs]
        for i, (g, d) in enumerate(zip(groups, dirs)):
            say(f"[{i + 1}/{len(groups)}] {g.sim} ({len(g.points)} member(s)) -> {d}")
            results[i] = _run_group(g, d, device, threads, figures)
            if results[i].get("error"):
                say(f"[{i + 1}/{len(groups)}] {results[i]['status']}: {sweepfiles.first_line(results[i]['error'])}")
            done(i, results[i])
            if results[i]["status"] == "interrupted":
                break
        return results, "local, sequential"
    return _execute_dask(groups, dirs, device, workers, scheduler, threads, retries, say, figures, done)


def check_groups(groups: Sequence[Group], device: str) -> None:
    """Validate every group's members and their memory estimate on `device` before anything runs."""
    import torch

    from . import engine, memory

    dev = engine.resolve_device(device)
    for g in groups:
        members = g.members()
        itemsize = torch.empty(0, dtype=engine.resolve_dtype(members[0].dtype)).element_size()
        memory.check(registry.get(g.sim), members, dev, itemsize)


def check_executor(workers: int, scheduler: str | None, *, timeout_s: float = 5.0) -> None:
    """Raise ConfigError for workers < 0, a missing Dask, or a scheduler that is malformed or does not answer
    within `timeout_s` (checked before anything is written)."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise ConfigError(f"workers must be an integer >= 1 (or 0 to run here without Dask); got {workers!r}")
    if scheduler is None and workers == 0:
        return
    try:
        from dask.distributed import Client
    except ImportError as exc:
        raise ConfigError("Dask sweeps need the 'dask' extra: pip install 'implicit-bias-lab[dask]'") from exc
    if scheduler is None:
        return
    if not isinstance(scheduler, str) or "://" not in scheduler and ":" not in scheduler:
        raise ConfigError(f"--scheduler must be an address like tcp://HOST:8786; got {scheduler!r}")
    try:
        with Client(scheduler, timeout=f"{timeout_s}s"):
            pass
    except (OSError, ValueError, TypeError) as err:
        raise ConfigError(f"cannot reach the Dask scheduler {scheduler!r} within {timeout_s:g} s: "
                          f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}") from None


def _execute_dask(groups, dirs, device, workers, scheduler, threads, retries, say, figures, done):
    from dask.distributed import Client, LocalCluster, as_completed

    results: list[dict] = [dict(dir=d, status="pending") for d in dirs]
    cluster = None if scheduler is not None else LocalCluster(
        n_workers=workers, threads_per_worker=1, host="127.0.0.1", dashboard_address=None, processes=True)
    where = f"dask scheduler {scheduler}" if scheduler else f"dask LocalCluster on 127.0.0.1, {workers} workers"
    try:
        with Client(cluster if cluster is not None else scheduler, timeout="10s") as client:
            futures = {client.submit(_run_group, g, d, device, threads, figures, pure=False, retries=retries): i
                       for i, (g, d) in enumerate(zip(groups, dirs))}
            try:
                for n, fut in enumerate(as_completed(futures), 1):
                    i = futures[fut]
                    try:
                        results[i] = fut.result()
                    except Exception as exc:  # the worker died more often than `retries`
                        results[i] = dict(dir=dirs[i], status="failed", error=f"{type(exc).__name__}: {exc}")
                    error = f" ({sweepfiles.first_line(results[i]['error'])})" if results[i].get("error") else ""
                    say(f"[{n}/{len(groups)}] {results[i]['status']}: {results[i]['dir']}{error}")
                    done(i, results[i])
            except KeyboardInterrupt:  # started groups are interrupted (resumable), the rest stay pending
                for fut, i in futures.items():
                    fut.cancel()
                    if results[i]["status"] == "pending" and (Path(dirs[i]) / "config.json").exists():
                        results[i] = dict(dir=dirs[i], status="interrupted")
    finally:
        if cluster is not None:
            cluster.close()
    return results, where


# ------------------------------------------------------------------------------------------------ the command

def sweep(name: str, grid: Mapping[str, Sequence[Any]], *, preset: str = "default", seeds: int = 1,
          base: Mapping[str, Any] | None = None, out: str | Path | None = None, device: str = "auto",
          workers: int = 0, scheduler: str | None = None, threads: int | None = None, cap: int = MEMBER_CAP,
          figures: bool = False, log: Callable[[str], None] | None = None) -> dict:
    """Run the grid; returns the index written to <out>/sweep.json (with its directory under 'dir').

    The plan (every point `pending`) is written to sweep.json and results.csv before the first point runs and
    both are updated as each ensemble finishes: a sweep killed at any moment (also `kill -9`) is resumed by
    running the same call again, which runs only what is missing. The directory is locked while the sweep runs
    (`sims.locks`). Each ensemble's standard figures are drawn only with `figures` (`sims plot RUN_DIR` draws
    them later); `figure(sweep_dir, x, y, hue)` plots the results."""
    points = plan(name, grid, preset=preset, seeds=seeds, base=base)
    groups = group(points, cap=cap)
    check_groups(groups, device)
    check_executor(workers, scheduler)
    spec = dict(sim=name, preset=preset, grid={k: list(v) for k, v in grid.items()}, base=dict(base or {}),
                seeds=seeds)
    root = outdir.check(out if out is not None else (
        api.default_root() / "sweeps" / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"), "sweep")
    _check_directory(root, spec)  # nothing written before this
    outdir.claim(root, "sweep")
    with locks.RunLock(root, f"sims sweep {name}"):
        _check_directory(root, spec)  # again under the lock: another sweep may have claimed it meanwhile
        return _run_sweep(root, spec, points, groups, device, workers, scheduler, threads, figures, log)


def _run_sweep(root, spec, points, groups, device, workers, scheduler, threads, figures, log) -> dict:
    say = log or (lambda m: None)
    say(f"plan: {len(points)} point(s) in {len(groups)} ensemble run(s): "
        + ", ".join(f"{g.id} ({len(g.points)} members)" for g in groups))
    t0 = time.time()
    results = [dict(dir=str(Path(root) / "runs" / g.id), status="pending") for g in groups]

    def write(where: str, state: str) -> dict:
        index = dict(spec, state=state, executor=where, elapsed_s=round(time.time() - t0, 2),
                     groups=[dict(id=g.id, members=[p.settings for p in g.points], **res)
                             for g, res in zip(groups, results)],
                     points=sweepfiles.point_rows(points, groups, results))
        store.write_json(root / "sweep.json", index)
        sweepfiles.write_results_csv(root / "results.csv", index["points"], list(spec["grid"]))
        return index

    def finished(i: int, res: dict) -> None:
        results[i] = res
        write("running", "running")

    write("not started", "running")
    ran, where = execute(groups, root, device=device, workers=workers, scheduler=scheduler, threads=threads, log=say,
                         figures=figures, on_result=finished)
    results[:] = ran
    index = write(where, "ended")
    index["dir"] = str(root)
    return index


def _check_directory(root: Path, spec: dict) -> None:
    """Accept a new or empty directory, or one that holds the same sweep; refuse anything else (writes nothing)."""
    outdir.check(root, "sweep")
    index = root / "sweep.json"
    if index.exists():
        old = store.read_json(index)
        if any(old.get(k) != v for k, v in json.loads(json.dumps(spec, default=str)).items()):
            raise ConfigError(f"{root} holds a different sweep ({old.get('sim')}, grid {old.get('grid')}); choose "
                              "another --out (results are never overwritten)")
