"""The Python API: `sims.run(...)`, `sims.load(run_dir)`, `sims.resume(run_dir)`, and the `Run` they return."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from . import checks, engine, frames, memory, outdir, registry, store
from .cache import Cache
from .config import ConfigError, Members, apply_overrides, config_hash, to_dict
from .kinds import kind_of
from .threads import limited

__all__ = ["Run", "RunView", "RunFailed", "run", "run_members", "load", "resume", "default_root"]

FIGURES_STAMP = ".drawn.json"  # in figures/: the output format, dpi and files of the last drawing (Run.figures)


class RunFailed(RuntimeError):
    """A run crashed after its directory was created; summary.json says status 'failed' and why."""


def default_root() -> Path:
    """Where runs go: $SIMS_RUNS, else ./runs."""
    return Path(os.environ.get("SIMS_RUNS", "runs"))


class Run:
    """A run directory, read back.

    `.dir`, `.sim_name`, `.preset`, `.config` (member 0's config), `.members` (every member's config),
    `.seeds`, `.summary`, `.steps` (eval steps; for a grid run the point indices), `.metric(name)`
    [n_evals, E], `.view(members)` (a `RunView` of some members).
    """

    def __init__(self, run_dir: Path):
        self.dir = Path(run_dir)
        if not (self.dir / "config.json").exists():
            raise FileNotFoundError(f"{self.dir} is not a run directory (no config.json)")
        meta = store.read_json(self.dir / "config.json")
        missing = [k for k in ("sim", "preset", "seeds", "config", "environment") if k not in meta]
        if missing or not isinstance(meta.get("config"), dict):
            raise store.RunDirError(f"{self.dir / 'config.json'} lacks {missing or ['a config object']}; the "
                                    "file is damaged")
        self.meta = meta
        self.sim_name: str = meta["sim"]
        self.preset: str = meta["preset"]
        self.environment: dict = meta["environment"]
        self.simulation = registry.get(self.sim_name)
        self.config = apply_overrides(self.simulation.config_cls(), meta["config"])
        per_member = meta.get("members") or [{"seed": s} for s in meta["seeds"]]
        self.members = Members(apply_overrides(self.config, m) for m in per_member)
        self.seeds: list[int] = self.members.seeds
        self.index = kind_of(self.simulation).index
        self.records = store.read_metrics(self.dir / "metrics.jsonl")
        self.steps = np.array(sorted({r[self.index] for r in self.records}), dtype=int)

    @property
    def summary(self) -> dict:
        path = self.dir / "summary.json"
        return store.read_json(path) if path.exists() else {"status": "unknown"}

    @property
    def n_members(self) -> int:
        return len(self.seeds)

    @property
    def member_summaries(self) -> list[dict]:
        """Per member: seed, status and the setting's per-member facts (baselines, ground truth)."""
        return self.summary.get("members", [{"seed": s} for s in self.seeds])

    @property
    def metric_names(self) -> list[str]:
        skip = {"step", "point", "member", "seed"}
        return sorted({k for r in self.records for k in r if k not in skip})

    def metric(self, name: str) -> np.ndarray:
        """Values of `name` as an array [n_evals, E] (NaN where a member has no value)."""
        if name not in self.metric_names:
            raise KeyError(f"no metric {name!r} in {self.dir}; metrics: {', '.join(self.metric_names)}")
        index = {s: i for i, s in enumerate(self.steps)}
        out = np.full((len(self.steps), self.n_members), np.nan)
        for r in self.records:
            if name in r:
                out[index[r[self.index]], r["member"]] = r[name]
        return out

    def view(self, members: Sequence[int]) -> "RunView":
        return RunView(self, members)

    def frame(self, *, fields: str | Sequence[str] = "varying", last: bool = False):
        """The metrics as a long pandas DataFrame: step, member, seed, config `fields`, metric, value
        (`sims.frames.run_frame`)."""
        return frames.run_frame(self, fields=fields, last=last)

    def snapshots(self) -> list[int]:
        """The steps whose model state the run kept (snapshots/step-<s>.pt; `engine.snapshot_steps`), sorted."""
        found = []
        for p in (self.dir / "snapshots").glob("step-*.pt"):
            step = p.stem[len("step-"):]
            if step.isdigit():
                found.append(int(step))
        return sorted(found)

    def snapshot(self, step: int) -> dict:
        """The state kept at `step`: {"step": s, "model": the ensemble's state_dict (every member of the run)}.

        Read with `store.load_checkpoint` (weights_only: a snapshot from elsewhere never runs code); a step
        without a snapshot is a KeyError naming the steps that have one.
        """
        path = self.dir / "snapshots" / f"step-{int(step)}.pt"
        if not path.exists():
            raise KeyError(f"{self.dir} has no snapshot at step {step}; snapshots at steps {self.snapshots()}")
        state = store.load_checkpoint(path, fix=f"delete {path} (the figures then skip that step) or run again")
        if not isinstance(state, dict) or not isinstance(state.get("model"), dict):
            raise store.RunDirError(f"{path} holds no model state; delete it or run again")
        return state

    def figures(self) -> list[Path]:
        """(Re)draw the setting's standard figures into figures/, in the output format of `sims.style.output`, and
        record what was drawn in figures/.drawn.json (`current_figures`)."""
        if self.simulation.figures is None:
            return []
        from . import style
        from .plots import saved_path

        (self.dir / "figures").mkdir(exist_ok=True)
        paths = [saved_path(f) for f in self.simulation.figures(self) if f is not None]
        store.write_json(self.dir / "figures" / FIGURES_STAMP, dict(style.current(), files=[p.name for p in paths]))
        return paths

    def current_figures(self) -> list[Path] | None:
        """The figures last drawn, if they need no redrawing: drawn in the output format and dpi now in force
        (`sims.style.output`), every file still there, and written after the run's results (metrics.jsonl,
        summary.json, config.json, every file in snapshots/ and cache/) last changed; else None."""
        from . import style

        stamp_path = self.dir / "figures" / FIGURES_STAMP
        if not stamp_path.exists():
            return None
        stamp = store.read_json(stamp_path)
        paths = [self.dir / "figures" / name for name in stamp.get("files", [])]
        out = style.current()
        if (stamp.get("format"), stamp.get("dpi")) != (out["format"], out["dpi"]) or not all(map(Path.exists, paths)):
            return None
        inputs = [self.dir / n for n in ("metrics.jsonl", "summary.json", "config.json", "snapshots", "cache")]
        inputs += [f for d in ("snapshots", "cache") for f in (self.dir / d).glob("*")]  # a file rewritten in place
        drawn = min([stamp_path.stat().st_mtime_ns] + [p.stat().st_mtime_ns for p in paths])
        return paths if all(p.stat().st_mtime_ns <= drawn for p in inputs if p.exists()) else None

    def __repr__(self) -> str:
        return f"Run({str(self.dir)!r}, sim={self.sim_name!r}, status={self.summary.get('status')!r})"


class RunView:
    """Some members of a run, read like a run of their own: what a claim or a sweep point measures.

    Members of one ensemble may differ in member-wise fields (seed, init scale, ...); a view holds the
    members of one configuration. `.config` is the first viewed member's, `.metric(name)` [n_evals, k].
    """

    def __init__(self, run: Run, members: Sequence[int]):
        self.run, self.idx = run, list(members)
        if not self.idx or any(not 0 <= e < run.n_members for e in self.idx):
            raise ValueError(f"members {members} are not in the {run.n_members} members of {run.dir}")
        self.dir, self.sim_name, self.preset, self.steps = run.dir, run.sim_name, run.preset, run.steps
        self.simulation, self.environment, self.index = run.simulation, run.environment, run.index
        self.members = Members(run.members[e] for e in self.idx)
        self.config, self.seeds = self.members[0], self.members.seeds

    n_members = Run.n_members
    metric_names = property(lambda self: self.run.metric_names)

    def metric(self, name: str) -> np.ndarray:
        return self.run.metric(name)[:, self.idx]

    def snapshots(self) -> list[int]:
        return self.run.snapshots()

    def snapshot(self, step: int) -> dict:
        """The run's state at `step` (`Run.snapshot`): every member of the run; the viewed ones are `self.idx`."""
        return self.run.snapshot(step)

    @property
    def member_summaries(self) -> list[dict]:
        every = self.run.member_summaries
        return [every[e] for e in self.idx]

    @property
    def summary(self) -> dict:
        """The run's summary with the per-member entries restricted to the viewed members."""
        s = dict(self.run.summary)
        for key in ("seeds", "member_status", "ended", "members", "transitions"):
            if isinstance(s.get(key), list):
                s[key] = [s[key][e] for e in self.idx]
        if isinstance(s.get("final"), dict):
            s["final"] = {k: [v[e] for e in self.idx] for k, v in s["final"].items()}
        return s

    def __repr__(self) -> str:
        return f"RunView({str(self.dir)!r}, members={self.idx})"


def load(run_dir: str | Path) -> "Run | frames.SweepResults | frames.AtlasResults":
    """Read back a directory that sims wrote: a `Run` for a run directory (config.json), a
    `sims.frames.SweepResults` for a sweep directory (sweep.json), a `sims.frames.AtlasResults` for an atlas
    directory (atlas.json).

    `.frame()` on any of them returns the results as a long pandas DataFrame (columns step, member, seed, the
    members' configuration fields, metric, value; a sweep adds its swept values, an atlas gives its table).
    A `Run` also gives `.metric(name)` as an array [n_evals, E], `.metric_names` (the metrics it recorded),
    `.summary` and `.config`; `sims show NAME` describes a simulation's fields and what its metrics mean.
    """
    checks.path("run_dir", run_dir)
    return frames.open_results(run_dir) or Run(Path(run_dir))


def run(name: str, preset: str = "default", seeds: int = 1, device: str = "auto", out: str | Path | None = None,
        *, quiet: bool = True, figures: bool = True, log=None, threads: int | None = None, **overrides: Any) -> Run:
    """Run simulation `name` at `preset` with config `overrides`; returns the finished `Run`.

    `seeds` members train together (member e has seed cfg.seed + e). The config is validated and the
    device resolved before anything is written: a bad input leaves no run directory behind. `threads`
    fixes the CPU thread count (default: chosen by timing, `sims.threads.choose_threads`).
    """
    checks.text("name", name)
    checks.arguments(seeds=seeds, threads=threads, out=out)
    sim = registry.get(name)
    return run_members(sim, preset, registry.members(sim, preset, overrides, seeds=seeds), device=device, out=out,
                       quiet=quiet, figures=figures, log=log, threads=threads)


def run_members(sim, preset: str, members: Members, *, device: str = "auto", out: str | Path | None = None,
                run_dir: str | Path | None = None, quiet: bool = True, figures: bool = True, log=None,
                threads: int | None = None) -> Run:
    """Run the ensemble `members` of simulation `sim` (a name or `Simulation`) into a new run directory under
    `out` (or exactly `run_dir`, which must not exist yet)."""
    sim = registry.get(sim) if isinstance(sim, str) else sim
    checks.arguments(threads=threads, out=out)
    checks.inputs(members)
    dev = engine.resolve_device(device)
    env = engine.Env(dev, engine.resolve_dtype(members[0].dtype))
    if run_dir is not None and Path(run_dir).exists():
        raise ConfigError(f"run directory {run_dir} already exists; results are never overwritten")
    if run_dir is None:  # a root of runs: refused when it holds what this package did not write (sims.outdir)
        outdir.check_runs_root(out if out is not None else default_root(), _simulation_names(sim.name))
    else:
        store.check_root(Path(run_dir).parent)
    memory.check(sim, members, dev, torch.empty(0, dtype=env.dtype).element_size())
    with _threads(threads):
        task = sim.build(members, env)
    n_threads, how = kind_of(sim).threads(task, threads)
    meta = dict(sim=sim.name, preset=preset, seeds=members.seeds, config=to_dict(members[0]),
                members=members.overrides(), config_hash=_members_hash(members),
                environment=dict(store.environment(dev, env.dtype), threads=n_threads, threads_chosen=how))
    if run_dir is None:
        run_dir = store.new_run_dir(Path(out) if out is not None else default_root(), sim.name, meta["config"])
    else:
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True)  # figures/ is made when figures are drawn (a sweep leaves no empty one)
    store.write_json(run_dir / "config.json", meta)
    env.cache.attach(run_dir / "cache")
    return _execute(sim, members, task, run_dir, None, quiet, figures, log, n_threads)


def resume(run_dir: str | Path, *, device: str = "auto", quiet: bool = True, figures: bool = True, log=None,
           threads: int | None = None) -> Run:
    """Continue an interrupted run from its checkpoint; it ends where an uninterrupted run would.

    A run that already completed is left exactly as it is (returned as loaded). The checkpoint must belong to
    the run's config.json: a config edited since the checkpoint was written is refused, naming the fields.
    """
    checks.arguments(threads=threads)
    r = Run(Path(run_dir))
    say = log or (lambda m: None)
    status = r.summary.get("status")
    if status in ("completed", "diverged"):
        say(f"{r.dir} has already {'completed' if status == 'completed' else 'ended (every member diverged)'}; "
            "nothing to resume, the run is left as it is")
        return r
    dev = engine.resolve_device(device)
    env = engine.Env(dev, engine.resolve_dtype(r.config.dtype), Cache(r.dir / "cache"))
    ckpt = None
    if not kind_of(r.simulation).trained:  # the points so far were computed with the configs summary.json records
        if r.records:
            _check_same_config(r, r.summary.get("configs"), r.dir / "summary.json")
    elif (r.dir / "checkpoint.pt").exists():
        ckpt = store.load_checkpoint(r.dir / "checkpoint.pt", dev, fix="start a new run (this one cannot be resumed)")
        _check_same_config(r, ckpt.get("members") if isinstance(ckpt, Mapping) else None, r.dir / "checkpoint.pt")
    else:  # stopped before its first checkpoint: train again from step 0
        say(f"{r.dir} has no checkpoint yet (stopped before the first one); training starts again from step 0")
        store.MetricsWriter(r.dir / "metrics.jsonl").truncate_after(-1)
    with _threads(threads):
        task = r.simulation.build(r.members, env)
    n_threads, _ = kind_of(r.simulation).threads(task, threads)
    return _execute(r.simulation, r.members, task, r.dir, ckpt, quiet, figures, log, n_threads)


def _threads(threads: int | None):
    """The block at `threads` CPU threads (torch and BLAS) when given (a build's baselines solve with numpy, whose
    BLAS threads stall on a shared machine), else as it is (the count is chosen by timing the built task)."""
    return limited(threads) if threads is not None else contextlib.nullcontext()


def _simulation_names(name: str) -> set[str]:
    """The names a root of runs may hold folders of: the shipped index's, those registered so far and `name`
    (without importing every setting, which `registry.names()` would)."""
    from .index import load as load_index

    return set(load_index()) | set(registry.registered()) | {name}


def _members_hash(members: Members) -> str:
    return config_hash([dataclasses.asdict(m) for m in members])


def _check_same_config(r: Run, saved: list | None, source: Path) -> None:
    """Refuse to resume when the members' configs differ from `saved`, those the results so far were computed
    with (recorded in `source`: the checkpoint of a trained run, summary.json of a grid run)."""
    if not isinstance(saved, list):
        raise store.RunDirError(f"{source} does not record the config its results were computed with; start a new "
                                "run")
    now, saved = store.as_json([dataclasses.asdict(m) for m in r.members]), store.as_json(saved)
    if len(saved) != len(now):
        fields = ["the number of members"]
    else:
        fields = sorted({k for a, b in zip(saved, now) for k in a.keys() | b.keys() if a.get(k) != b.get(k)})
    if fields:
        raise ConfigError(f"{r.dir / 'config.json'} does not match the {source.name} it would resume: {fields} "
                          f"changed since {source.name} was written; restore the config or start a new run")


def _write_status(run_dir: Path, status: str, **extra) -> None:
    """Set summary.json's status (the rest of it kept; created when the run ended before writing one)."""
    path = run_dir / "summary.json"
    summary = store.read_json(path) if path.exists() else {}
    summary.update(status=status, **extra)
    store.write_json(path, summary)


def _execute(sim, members, task, run_dir, ckpt, quiet, figures, log, n_threads) -> Run:
    try:
        with store.RunLock(run_dir), limited(n_threads):
            kind_of(sim).execute(task, members, run_dir, resume=ckpt, quiet=quiet, log=log)
    except (engine.Interrupted, store.RunDirError):
        raise
    except KeyboardInterrupt:  # Ctrl-C before the engine's own handler is in place (set-up, first step)
        _write_status(run_dir, "interrupted")
        raise engine.Interrupted(f"stopped by Ctrl-C before the first checkpoint; resume with --resume {run_dir} "
                                 "(it starts again from step 0)") from None
    except Exception as exc:
        _write_status(run_dir, "failed", error=f"{type(exc).__name__}: {exc}")
        raise RunFailed(f"run {run_dir} failed: {type(exc).__name__}: {exc}") from exc
    r = Run(run_dir)
    with limited(n_threads):  # transitions and figures (exact regions, BLAS) at the run's thread count too
        if sim.transitions is not None and r.summary.get("status") == "completed":
            summary = r.summary
            summary["transitions"] = sim.transitions(r)
            store.write_json(run_dir / "summary.json", summary)
        if figures:
            try:
                r.figures()
            except Exception as exc:  # the run is complete and kept; a figure that cannot be drawn is reported
                warnings.warn(f"figures of {run_dir} could not be drawn ({type(exc).__name__}: {exc}); redraw "
                              f"with `sims plot {run_dir}`")
    return r
