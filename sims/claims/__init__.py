"""Claims as code: per paper, what the paper says, which runs show it, what to measure, the tolerance.

A `Claim` names the runs it needs (`RunSpec`: one configuration at a number of seeds; `Sweep`: a grid of
configurations, each at a number of seeds), a `measure` over those runs, and an expectation
`op target +- tol`, where the target may be computed from the runs' configs (for example from `theory`).
A `Figure` is a paper-level figure drawn from runs of several configurations. `sims reproduce KEY` runs every
needed configuration once through the sweep machinery (identical configurations are shared between claims
and figures, seeds and member-wise fields are grouped into ensembles), measures, draws, and writes
`report.md` and `report.json`. A claim that fails is a result, not a crash.

Measures and figure functions receive, for each name in `runs`, a `sims.api.RunView` (a `RunSpec`: the
members of that configuration) or a `SweepRuns` (a `Sweep`: one view per grid point). Measures are pure:
they read runs and return a number (or (number, details)); they draw nothing. A measure whose premise is absent
from the runs (the run never groks, depth 4 never recovers W*) raises `NotApplicable(reason)`: the verdict is
`n/a`, shown with the reason and never counted as a pass.

Seeds: `sims.claims.seeds` holds the protocol (tuning seeds, each paper's claim-seed block, the range `--fresh`
draws from) and the pass rates over seeds (Clopper-Pearson). A claim whose paper holds "with high probability over
the data" is a rate claim (`rate=` the level): over fresh seeds it passes when the 95% lower bound of its pass
rate clears the level; any other claim must pass on every seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Union

import numpy as np

from ..catalog import Catalog

__all__ = ["RunSpec", "Sweep", "SweepRuns", "Claim", "Figure", "Paper", "register_claims", "keys", "get_claims", "rounded",
           "at_step", "final", "verdict", "evaluate", "NotApplicable", "VERDICTS", "binomial_se"]

VERDICTS = ("PASS", "FAIL", "n/a", "reported")  # n/a: the claim's premise is absent from the runs (never a pass)


class NotApplicable(Exception):
    """Raised by a measure whose premise is absent from the runs; the message is the reason shown in the report."""


def _items(mapping) -> tuple:
    return tuple(sorted(dict(mapping).items()))


@dataclass(frozen=True)
class RunSpec:
    """One configuration a claim needs, at `seeds` seeds. preset None = the preset given to `sims reproduce`."""

    sim: str
    overrides: tuple[tuple[str, Any], ...] = ()
    seeds: int = 1
    preset: str | None = None

    @classmethod
    def of(cls, sim: str, *, seeds: int = 1, preset: str | None = None, **overrides: Any) -> "RunSpec":
        return cls(sim, _items(overrides), seeds, preset)

    def settings(self) -> list[dict]:
        """The override dicts of its configurations (one; a Sweep has one per grid point)."""
        return [dict(self.overrides)]

    def label(self, preset: str) -> str:
        sets = " ".join(f"--set {k}={v}" for k, v in self.overrides)
        return f"sims run {self.sim} --preset {self.preset or preset} --seeds {self.seeds} {sets}".strip()


@dataclass(frozen=True)
class Sweep:
    """A grid of configurations a claim needs, each at `seeds` seeds (`Sweep.of(sim, {"init_scale": [...]})`)."""

    sim: str
    grid: tuple[tuple[str, tuple], ...]
    seeds: int = 1
    overrides: tuple[tuple[str, Any], ...] = ()
    preset: str | None = None

    @classmethod
    def of(cls, sim: str, grid: Mapping[str, Any], *, seeds: int = 1, preset: str | None = None,
           **overrides: Any) -> "Sweep":
        return cls(sim, tuple((k, tuple(v)) for k, v in grid.items()), seeds, _items(overrides), preset)

    def settings(self) -> list[dict]:
        from ..sweep import expand_grid

        return [{**dict(self.overrides), **p} for p in expand_grid({k: list(v) for k, v in self.grid})]

    def label(self, preset: str) -> str:
        grid = " ".join(f"--grid {k}={','.join(map(str, v))}" for k, v in self.grid)
        sets = " ".join(f"--set {k}={v}" for k, v in self.overrides)
        return f"sims sweep {self.sim} --preset {self.preset or preset} --seeds {self.seeds} {grid} {sets}".strip()


class SweepRuns:
    """The runs of a `Sweep`: one view per grid point, in grid order; iterate over (grid point dict, view)."""

    def __init__(self, points: list[dict], views: list):
        self.points, self.views = points, views

    def __iter__(self) -> Iterator[tuple[dict, Any]]:
        return iter(zip(self.points, self.views))

    def __len__(self) -> int:
        return len(self.views)

    def by(self, key: str) -> dict:
        """{value of `key`: view} (the grid must vary only `key`, or the last point per value wins)."""
        return {p[key]: v for p, v in self}

    def values(self, key: str) -> list:
        return [p[key] for p in self.points]


Target = Union[float, Callable[[Mapping[str, Any]], float]]


@dataclass(frozen=True)
class Claim:
    """A prediction of a paper checked against runs.

    measure(runs) -> float (or (float, str) with details), where runs maps the names of `runs` to views.
    op: '>=', '<=', '==' (|m - target| <= tol), or 'report' (a number stated without a verdict).
    target: a number, or target(runs) -> number computed from the runs' configs (e.g. 1 - noise_rate from
    `theory`); `target_text` says how it is computed (shown in the report beside its value).
    """

    id: str
    statement: str
    runs: Mapping[str, Union[RunSpec, Sweep]]
    measure: Callable[[Mapping[str, Any]], Any]
    op: str
    target: Target = math.nan
    tol: float = 0.0
    paper_value: str = ""
    target_text: str = ""
    rate: float | None = None  # a rate claim: over fresh seeds, the 95% lower bound of its pass rate must clear this
    control: str = ""  # where a claim has no control test: why it cannot be built (shown in its row)

    def __post_init__(self):
        if self.op not in (">=", "<=", "==", "report"):
            raise ValueError(f"claim {self.id!r}: op must be '>=', '<=', '==' or 'report'; got {self.op!r}")
        if self.rate is not None and not (0 < self.rate < 1 and self.op != "report"):
            raise ValueError(f"claim {self.id!r}: rate must be a level in (0, 1) of a checked claim; got {self.rate!r}")

    def target_value(self, runs: Mapping[str, Any]) -> float:
        return float(self.target(runs)) if callable(self.target) else float(self.target)

    def expected(self, target: float) -> str:
        if self.op == "report":
            return "reported"
        tol = f" (tol {self.tol:g})" if self.tol else ""
        how = f" [{self.target_text}]" if self.target_text else ""
        sym = {">=": ">=", "<=": "<=", "==": "="}[self.op]
        rate = f"; rate claim: 95% lower bound of the pass rate over seeds >= {self.rate:g}" if self.rate else ""
        return f"{sym} {target:.4g}{tol}{how}{rate}"


@dataclass(frozen=True)
class Figure:
    """A paper-level figure: draw(runs, path) from the runs named in `runs`, written as <key>-<name>.png."""

    name: str
    runs: Mapping[str, Union[RunSpec, Sweep]]
    draw: Callable[[Mapping[str, Any], Any], Any]
    caption: str = ""


def verdict(claim: Claim, value: float, target: float | None = None) -> str:
    if claim.op == "report":
        return "reported"
    target = claim.target_value({}) if target is None else target
    if value is None or not math.isfinite(value) or not math.isfinite(target):
        return "FAIL"
    ok = {">=": value >= target - claim.tol, "<=": value <= target + claim.tol,
          "==": abs(value - target) <= claim.tol}[claim.op]
    return "PASS" if ok else "FAIL"


def evaluate(claim: Claim, runs: Mapping[str, Any]) -> dict:
    """Measure `claim` on `runs`: {measured, details, target, expected, verdict}; a measure raising `NotApplicable`
    gives verdict 'n/a' with its reason as the details (measured None)."""
    try:
        got = claim.measure(runs)
    except NotApplicable as why:
        target = math.nan if callable(claim.target) else float(claim.target)
        return dict(measured=None, details=f"premise absent: {why}", target=None, expected=claim.expected(target),
                    verdict="n/a")
    value, details = got if isinstance(got, tuple) else (got, "")
    value, target = float(value), claim.target_value(runs)
    return dict(measured=value, details=details, target=target, expected=claim.expected(target),
                verdict=verdict(claim, value, target))


@dataclass
class Paper:
    key: str
    title: str
    claims: list[Claim] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)


_CATALOG: Catalog[Paper] = Catalog("paper key", "sims.claims", skip=("runner", "seeds", "fresh", "arora2019_figures"))


def register_claims(key: str, title: str, claims: list[Claim], figures: list[Figure] = ()) -> None:
    """Register a paper's claims and its paper-level figures (ids and names must be unique)."""
    ids = [c.id for c in claims]
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate claim ids in {key!r}: {ids}")
    names = [f.name for f in figures]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate figure names in {key!r}: {names}")
    _CATALOG.add(key, Paper(key, title, list(claims), list(figures)))


def keys() -> list[str]:
    return _CATALOG.names()


def get_claims(key: str) -> Paper:
    return _CATALOG.get(key)


def at_step(run, name: str, step: int) -> np.ndarray:
    """Metric `name` at eval step `step` (must be on the schedule): [E]."""
    idx = np.nonzero(run.steps == step)[0]
    if len(idx) == 0:
        raise ValueError(f"step {step} is not an eval step of {run.dir}")
    return run.metric(name)[idx[0]]


def rounded(values, digits: int = 3) -> list:
    """Values as a plain list rounded to `digits` decimals (for a claim's details)."""
    return np.round(np.asarray(values, dtype=np.float64), digits).tolist()


def binomial_se(acc, n: int) -> float:
    """Standard error sqrt(p (1 - p) / n) of an accuracy p measured on n independent test points (the largest over
    the values given), the noise a threshold on one accuracy must stand clear of."""
    p = np.clip(np.asarray(acc, dtype=np.float64), 0.0, 1.0)
    return float(np.max(np.sqrt(p * (1 - p) / n)))


def final(run, name: str) -> np.ndarray:
    """Metric `name` at the last eval step: [E]."""
    return run.metric(name)[-1]
