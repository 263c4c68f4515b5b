"""Results as pandas DataFrames: a run, a sweep or an atlas directory in long format.

`sims.load(DIR)` reads any of the three; each has `.frame()`:

- a run (`Run.frame()`): one row per (step, member, metric) with columns step (`point` for a grid run), member,
  seed, the configuration fields that differ between the members (every field with `fields="all"`), metric,
  value. A grid run's point coordinates are recorded as metrics beside its measurements.
- a sweep (`SweepResults.frame()`): the rows of every ensemble run of the sweep, with `run` (the run
  directory's name) and the swept values as columns, typed as the configs hold them (the seed an int).
- an atlas (`AtlasResults.frame()`): its table, one row per setting (the columns of atlas.md).

`last=True` keeps each member's last evaluation only (the final values). pandas is imported on first use, so
`import sims` stays light.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Sequence

from . import store

__all__ = ["run_frame", "SweepResults", "AtlasResults", "open_results"]

_INDEX = ("step", "point", "member", "seed")


def _pandas():
    try:
        import pandas as pd
    except ImportError as exc:  # a dependency of the package; missing only in a hand-made environment
        raise ImportError("frame() needs pandas: pip install 'pandas>=1.5'") from exc
    return pd


def _cell(v):
    """A configuration value as a DataFrame cell: lists become tuples, so columns can be grouped on."""
    return tuple(_cell(x) for x in v) if isinstance(v, (list, tuple)) else v


def _fields(members, fields: str | Sequence[str]) -> list[str]:
    """The configuration fields to give as columns: 'varying' (differ between members), 'all', or a list."""
    names = [f.name for f in dataclasses.fields(members[0]) if f.name != "seed"]
    if fields == "varying":
        return [n for n in names if not members.uniform(n)]
    if fields == "all":
        return names
    if isinstance(fields, str) or not all(isinstance(n, str) for n in fields):
        raise ValueError(f"fields must be 'varying', 'all' or a list of field names; got {fields!r}")
    unknown = [n for n in fields if n not in names]
    if unknown:
        raise ValueError(f"unknown config field(s) {unknown}; fields of {type(members[0]).__name__}: "
                         f"{', '.join(names)}")
    return list(fields)


def _rows(run, columns: Sequence[str], last: bool):
    """(index, member, seed, *field values, metric, value) tuples of a `Run`, in record order."""
    final = {}
    if last:
        for r in run.records:
            final[r["member"]] = max(final.get(r["member"], r[run.index]), r[run.index])
    config = [[_cell(getattr(m, c)) for c in columns] for m in run.members]  # [E][n_columns]
    for r in run.records:
        e = r["member"]
        if last and r[run.index] != final[e]:
            continue
        for k, v in r.items():
            if k not in _INDEX:
                yield (r[run.index], e, run.members[e].seed, *config[e], k, float("nan") if v is None else v)


def run_frame(run, *, fields: str | Sequence[str] = "varying", last: bool = False):
    """A run's metrics as a long DataFrame: step (`point` for a grid run), member, seed, the configuration
    `fields` ('varying': those that differ between members; 'all'; or a list of names), metric, value.

    `last=True` keeps each member's last evaluation only. NaN marks a value that was not finite.
    """
    pd = _pandas()
    columns = _fields(run.members, fields)
    header = [run.index, "member", "seed", *columns, "metric", "value"]
    frame = pd.DataFrame(list(_rows(run, columns, last)), columns=header)
    return frame.astype({run.index: "int64", "member": "int64", "seed": "int64"})


class SweepResults:
    """A sweep directory read back (sweep.json, results.csv, runs/): `.index` (sweep.json), `.swept` (the grid's
    keys), `.runs()` (the ensemble runs), `.frame()` (every run's metrics, long format)."""

    def __init__(self, sweep_dir: str | Path):
        self.dir = Path(sweep_dir)
        if not (self.dir / "sweep.json").exists():
            raise FileNotFoundError(f"{self.dir} is not a sweep directory (no sweep.json)")
        self.index = store.read_json(self.dir / "sweep.json")
        self.sim_name: str = self.index.get("sim", "")
        self.swept: list[str] = list(self.index.get("grid") or {})

    def runs(self) -> list:
        """The sweep's ensemble runs that left a run directory, in plan order (a `Run` each)."""
        from .api import Run

        dirs = [Path(g["dir"]) for g in self.index.get("groups", []) if g.get("dir")]
        dirs = [d if d.is_absolute() or d.exists() else self.dir / "runs" / d.name for d in dirs]
        return [Run(d) for d in dirs if (d / "config.json").exists()]

    def frame(self, *, fields: str | Sequence[str] = (), last: bool = False):
        """Every run's metrics, long format: run, the swept values, step, member, seed, `fields`, metric, value.

        The swept values come from each member's resolved config (typed: the seed an int, `--grid lr=0.5`
        a float). `fields` adds configuration fields as in `run_frame` ('varying', 'all' or names).
        """
        pd = _pandas()
        parts = []
        for run in self.runs():
            columns = [k for k in self.swept if k != "seed"]
            extra = [] if fields == () else [c for c in _fields(run.members, fields) if c not in columns]
            part = run_frame(run, fields=columns + extra, last=last)
            part.insert(0, "run", run.dir.name)
            parts.append(part)
        if not parts:
            raise store.RunDirError(f"{self.dir} holds no finished run yet (sweep.json lists no run directory)")
        return pd.concat(parts, ignore_index=True)

    def __repr__(self) -> str:
        return f"SweepResults({str(self.dir)!r}, sim={self.sim_name!r}, grid={self.swept})"


class AtlasResults:
    """An atlas directory read back (atlas.json): `.table` (one dict per setting), `.verdicts`, `.frame()`."""

    def __init__(self, atlas_dir: str | Path):
        self.dir = Path(atlas_dir)
        if not (self.dir / "atlas.json").exists():
            raise FileNotFoundError(f"{self.dir} is not an atlas directory (no atlas.json)")
        self.index = store.read_json(self.dir / "atlas.json")
        self.table: list[dict] = self.index.get("table", [])
        self.verdicts: dict = self.index.get("verdicts", {})

    def frame(self):
        """The atlas table as a DataFrame, one row per setting (the columns of atlas.csv; None -> NaN)."""
        return _pandas().DataFrame(self.table)

    def __repr__(self) -> str:
        return f"AtlasResults({str(self.dir)!r}, preset={self.index.get('preset')!r}, rows={len(self.table)})"


def open_results(path: str | Path) -> SweepResults | AtlasResults | None:
    """The sweep or atlas results in directory `path`, or None when it holds neither (a run directory)."""
    path = Path(path)
    if (path / "config.json").exists():
        return None
    if (path / "sweep.json").exists():
        return SweepResults(path)
    if (path / "atlas.json").exists():
        return AtlasResults(path)
    return None
