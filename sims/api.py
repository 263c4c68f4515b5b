"""The Python API: `sims.run(...)`, `sims.load(run_dir)`, and the `Run` they return."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from . import engine, registry, store
from .config import ConfigError, apply_overrides

__all__ = ["Run", "RunFailed", "run", "load", "resume", "default_root"]


class RunFailed(RuntimeError):
    """A run crashed after its directory was created; summary.json says status 'failed' and why."""


def default_root() -> Path:
    """Where runs go: $SIMS_RUNS, else ./runs."""
    return Path(os.environ.get("SIMS_RUNS", "runs"))


class Run:
    """A run directory, read back: `.dir`, `.config`, `.summary`, `.steps`, `.metric(name)` [n_evals, E]."""

    def __init__(self, run_dir: Path):
        self.dir = Path(run_dir)
        if not (self.dir / "config.json").exists():
            raise FileNotFoundError(f"{self.dir} is not a run directory (no config.json)")
        meta = store.read_json(self.dir / "config.json")
        self.sim_name: str = meta["sim"]
        self.preset: str = meta["preset"]
        self.seeds: list[int] = meta["seeds"]
        self.environment: dict = meta["environment"]
        self.simulation = registry.get(self.sim_name)
        self.config = apply_overrides(self.simulation.config_cls(), meta["config"])
        self.records = store.read_metrics(self.dir / "metrics.jsonl")
        self.steps = np.array(sorted({r["step"] for r in self.records}), dtype=int)

    @property
    def summary(self) -> dict:
        path = self.dir / "summary.json"
        return store.read_json(path) if path.exists() else {"status": "unknown"}

    @property
    def n_members(self) -> int:
        return len(self.seeds)

    @property
    def metric_names(self) -> list[str]:
        skip = {"step", "member", "seed"}
        return sorted({k for r in self.records for k in r if k not in skip})

    def metric(self, name: str) -> np.ndarray:
        """Values of `name` as an array [n_evals, E] (NaN where a member has no value)."""
        if name not in self.metric_names:
            raise KeyError(f"no metric {name!r} in {self.dir}; metrics: {', '.join(self.metric_names)}")
        index = {s: i for i, s in enumerate(self.steps)}
        out = np.full((len(self.steps), self.n_members), np.nan)
        for r in self.records:
            if name in r:
                out[index[r["step"]], r["member"]] = r[name]
        return out

    def figures(self) -> list[Path]:
        """(Re)draw the setting's standard figures into figures/."""
        if self.simulation.figures is None:
            return []
        (self.dir / "figures").mkdir(exist_ok=True)
        return list(self.simulation.figures(self))

    def __repr__(self) -> str:
        return f"Run({str(self.dir)!r}, sim={self.sim_name!r}, status={self.summary.get('status')!r})"


def load(run_dir: str | Path) -> Run:
    return Run(Path(run_dir))


def run(name: str, preset: str = "default", seeds: int = 1, device: str = "auto", out: str | Path | None = None,
        *, quiet: bool = True, figures: bool = True, log=None, **overrides: Any) -> Run:
    """Run simulation `name` at `preset` with config `overrides`; returns the finished `Run`.

    `seeds` members train together (member e has seed cfg.seed + e). The config is validated and the
    device resolved before anything is written: a bad input leaves no run directory behind.
    """
    sim = registry.get(name)
    cfg = registry.resolve(sim, preset, overrides)
    if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
        raise ConfigError(f"seeds must be an integer >= 1; got {seeds!r}")
    dev = engine.resolve_device(device)
    dtype = engine.resolve_dtype(cfg.dtype)
    seed_list = [cfg.seed + e for e in range(seeds)]
    task = sim.build(cfg, seed_list, dev, dtype)
    run_dir = store.new_run_dir(Path(out) if out is not None else default_root(), name, _config_dict(cfg))
    store.write_json(run_dir / "config.json", dict(sim=name, preset=preset, seeds=seed_list,
                                                   config=_config_dict(cfg),
                                                   environment=store.environment(dev, dtype)))
    return _train(sim, cfg, task, run_dir, seed_list, None, quiet, figures, log)


def resume(run_dir: str | Path, *, device: str = "auto", quiet: bool = True, figures: bool = True, log=None) -> Run:
    """Continue an interrupted run from its checkpoint; it ends where an uninterrupted run would."""
    r = load(run_dir)
    ckpt_path = r.dir / "checkpoint.pt"
    if not ckpt_path.exists():
        raise ConfigError(f"{r.dir} has no checkpoint.pt to resume from")
    dev = engine.resolve_device(device)
    dtype = engine.resolve_dtype(r.config.dtype)
    task = r.simulation.build(r.config, r.seeds, dev, dtype)
    ckpt = store.load_checkpoint(ckpt_path, dev)
    return _train(r.simulation, r.config, task, r.dir, r.seeds, ckpt, quiet, figures, log)


def _train(sim, cfg, task, run_dir, seeds, ckpt, quiet, figures, log) -> Run:
    try:
        engine.train(task, cfg, run_dir, seeds=seeds, resume=ckpt, quiet=quiet, log=log)
    except engine.Interrupted:
        raise
    except Exception as exc:
        summary_path = run_dir / "summary.json"
        summary = store.read_json(summary_path) if summary_path.exists() else {}
        summary.update(status="failed", error=f"{type(exc).__name__}: {exc}")
        store.write_json(summary_path, summary)
        raise RunFailed(f"run {run_dir} failed: {type(exc).__name__}: {exc}") from exc
    r = Run(run_dir)
    if figures:
        r.figures()
    return r


def _config_dict(cfg) -> dict:
    import dataclasses

    return dataclasses.asdict(cfg)
