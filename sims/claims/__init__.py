"""Claims as code: per paper, what the paper says, which runs show it, what to measure, the tolerance.

A `Claim` names the runs it needs (`RunSpec`: simulation, preset, overrides, seeds), a `measure` over
those runs, and an expectation `op target +- tol`. `reproduce(key)` runs every needed simulation once
(identical specs are shared between claims), measures, and writes `report.md` and `report.json`.
A claim that fails is a result, not a crash.
"""

from __future__ import annotations

import difflib
import importlib
import math
import pkgutil
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

__all__ = ["RunSpec", "Claim", "register_claims", "keys", "get_claims", "at_step", "final", "verdict"]


@dataclass(frozen=True)
class RunSpec:
    """One simulation run a claim needs. preset None = the preset passed to `sims reproduce`."""

    sim: str
    overrides: tuple[tuple[str, Any], ...] = ()
    seeds: int = 1
    preset: str | None = None

    def key(self, preset: str) -> tuple:
        return (self.sim, self.preset or preset, tuple(sorted(self.overrides)), self.seeds)

    def label(self, preset: str) -> str:
        sets = " ".join(f"--set {k}={v}" for k, v in sorted(self.overrides))
        return f"sims run {self.sim} --preset {self.preset or preset} --seeds {self.seeds} {sets}".strip()


@dataclass(frozen=True)
class Claim:
    """A prediction of a paper checked against runs.

    measure(runs) -> float (or (float, str) with details), where runs maps the names of `runs` to `Run`s.
    op: '>=', '<=', '==' (|m - target| <= tol), or 'report' (a number stated without a verdict).
    """

    id: str
    statement: str
    runs: Mapping[str, RunSpec]
    measure: Callable[[Mapping[str, Any]], Any]
    op: str
    target: float = math.nan
    tol: float = 0.0
    paper_value: str = ""

    def expected(self) -> str:
        if self.op == "report":
            return "reported"
        tol = f" (tol {self.tol:g})" if self.tol else ""
        sym = {">=": ">=", "<=": "<=", "==": "="}[self.op]
        return f"{sym} {self.target:g}{tol}"


def verdict(claim: Claim, value: float) -> str:
    if claim.op == "report":
        return "reported"
    if value is None or not math.isfinite(value):
        return "FAIL"
    ok = {">=": value >= claim.target - claim.tol, "<=": value <= claim.target + claim.tol,
          "==": abs(value - claim.target) <= claim.tol}[claim.op]
    return "PASS" if ok else "FAIL"


@dataclass
class Paper:
    key: str
    title: str
    claims: list[Claim] = field(default_factory=list)


_PAPERS: dict[str, Paper] = {}
_LOADED = False


def register_claims(key: str, title: str, claims: list[Claim]) -> None:
    if key in _PAPERS:
        raise ValueError(f"claims for {key!r} are already registered")
    ids = [c.id for c in claims]
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate claim ids in {key!r}: {ids}")
    _PAPERS[key] = Paper(key, title, list(claims))


def _load_all() -> None:
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    for mod in pkgutil.iter_modules(__path__):
        if not mod.name.startswith("_") and mod.name != "runner":
            importlib.import_module(f"{__name__}.{mod.name}")


def keys() -> list[str]:
    _load_all()
    return sorted(_PAPERS)


def get_claims(key: str) -> Paper:
    _load_all()
    if key not in _PAPERS:
        from ..config import ConfigError

        close = difflib.get_close_matches(key, list(_PAPERS), n=3, cutoff=0.4)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ConfigError(f"unknown paper key {key!r}.{hint} Available: {', '.join(sorted(_PAPERS))}")
    return _PAPERS[key]


def at_step(run, name: str, step: int) -> np.ndarray:
    """Metric `name` at eval step `step` (must be on the schedule): [E]."""
    idx = np.nonzero(run.steps == step)[0]
    if len(idx) == 0:
        raise ValueError(f"step {step} is not an eval step of {run.dir}")
    return run.metric(name)[idx[0]]


def final(run, name: str) -> np.ndarray:
    """Metric `name` at the last eval step: [E]."""
    return run.metric(name)[-1]
