"""A sweep's files: sweep.json (plan, then progress) and results.csv, read back, and the results figure.

`sims.sweep` writes both files before the first point runs (every point `pending`) and again as each ensemble
finishes, so a sweep killed at any moment leaves an index that says what is done and what is missing; the
figure draws the completed points and `progress` says which are not.
"""

from __future__ import annotations

import csv
import math
import warnings
from pathlib import Path
from typing import Sequence

from lc.keys import per_site

from . import store
from .config import ConfigError

__all__ = ["point_rows", "write_results_csv", "results", "progress", "failures", "figure"]


def first_line(text: str, limit: int = 300) -> str:
    """The first non-empty line of an error message, at most `limit` characters."""
    line = next((ln.strip() for ln in str(text).splitlines() if ln.strip()), "")
    return line if len(line) <= limit else line[: limit - 3] + "..."


def point_rows(points, groups, results: Sequence[dict]) -> list[dict]:
    """One row per point: its settings, its group's status, run directory and member (and error, if failed);
    the final metrics of finished points."""
    where = {p: (i, e) for i, g in enumerate(groups) for e, p in enumerate(g.points)}
    rows = []
    for p in points:
        i, e = where[p]
        res = results[i]
        row = dict(p.settings, status=res["status"], dir=res["dir"], member=e)
        if res.get("error"):
            row["error"] = first_line(res["error"])
        if res["status"] in ("completed", "diverged"):
            row.update(_final_metrics(Path(res["dir"]), e))
        rows.append(row)
    return rows


def _final_metrics(run_dir: Path, member: int) -> dict:
    summary = store.read_json(run_dir / "summary.json")
    row = {"member_status": summary.get("member_status", [None] * (member + 1))[member]}
    for k, v in (summary.get("final") or {}).items():
        if not per_site(k) and isinstance(v, list) and member < len(v):
            row[k] = v[member]
    return row


def write_results_csv(path: Path, rows: Sequence[dict], swept: Sequence[str]) -> None:
    """results.csv, atomically: seed and swept keys first, then status, metrics, dir and member."""
    first = ["seed", *[k for k in swept if k != "seed"]]
    rest = sorted({k for r in rows for k in r} - set(first) - {"status", "dir", "member"})
    cols = first + ["status"] + rest + ["dir", "member"]
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()})
    tmp.replace(path)


def _num(v: str):
    try:
        return float(v) if v not in ("", "True", "False") else (v == "True" if v else math.nan)
    except ValueError:
        return v


def results(sweep_dir: str | Path) -> list[dict]:
    """The rows of a sweep's results.csv (values parsed as numbers where they are numbers). A row cut short
    (a file copied or written in part) is skipped with a warning naming the file and the line."""
    path = Path(sweep_dir) / "results.csv"
    if not path.is_file():
        raise store.RunDirError(f"{sweep_dir} is not a sweep directory (no results.csv)")
    rows = []
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            for row in reader:
                if None in row or any(v is None for v in row.values()):
                    warnings.warn(f"{path}: skipping line {reader.line_num} (cut short or with extra fields); "
                                  "rerun the sweep command to rewrite the file")
                    continue
                rows.append({k: _num(v) for k, v in row.items()})
    except (csv.Error, UnicodeDecodeError) as err:
        raise store.RunDirError(f"{path} cannot be read ({err}); rerun the sweep command to rewrite it") from None
    return rows


def progress(sweep_dir: str | Path) -> str | None:
    """None when every point of the sweep completed; else one line: how many are not, and their statuses."""
    rows = results(sweep_dir)
    counts: dict[str, int] = {}
    for r in rows:
        if r.get("status") != "completed":
            counts[str(r.get("status"))] = counts.get(str(r.get("status")), 0) + 1
    if not counts:
        return None
    n = sum(counts.values())
    how = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
    return (f"{n} of {len(rows)} point(s) of {sweep_dir} have not completed ({how}); the figure shows the "
            f"others; rerun the sweep command to finish them")


def failures(index: dict) -> list[str]:
    """One line per failed or interrupted ensemble of a sweep index: its points and its first error."""
    lines = []
    for g in index["groups"]:
        if g["status"] in ("completed", "diverged", "pending"):
            continue
        points = "; ".join(" ".join(f"{k}={v}" for k, v in m.items()) for m in g["members"])
        error = first_line(g.get("error") or "") or "no error recorded"
        lines.append(f"{g['status']}: {points}: {error}")
    return lines


def figure(sweep_dir: str | Path, x: str, y: str, hue: str | None = None, path: str | Path | None = None) -> Path:
    """A final metric `y` against a swept parameter `x`: mean over seeds with a min-max band, one line per value
    of `hue`; written to <sweep_dir>/figures/<y>-vs-<x>[-by-<hue>].png (or `path`). Only completed points (see
    `progress` for the others); a sweep without any is a RunDirError."""
    import numpy as np

    from . import checks, plots

    checks.path("sweep_dir", sweep_dir)
    checks.text("x", x), checks.text("y", y), checks.text("hue", hue, none=True)
    every = results(sweep_dir)
    rows = [r for r in every if r.get("status") == "completed"]
    if not rows:
        raise store.RunDirError(f"no point of {sweep_dir} has completed yet ({len(every)} planned); rerun the sweep "
                                "command to run them")
    for key in [k for k in (x, y, hue) if k is not None]:
        if key not in rows[0]:
            raise ConfigError(f"{key!r} is not a column of {sweep_dir}/results.csv; columns: "
                              f"{', '.join(sorted(rows[0]))}")
    fig, axes = plots.figure(1, panel=(6.0, 4.2))
    ax = axes[0, 0]
    for h in sorted({r[hue] for r in rows}) if hue else [None]:
        sel = [r for r in rows if hue is None or r[hue] == h]
        xs = sorted({r[x] for r in sel})
        vals = [[r[y] for r in sel if r[x] == v] for v in xs]
        width = max(len(v) for v in vals)
        grid = np.array([v + [math.nan] * (width - len(v)) for v in vals], dtype=np.float64)  # [n_x, seeds]
        plots.band(ax, xs, grid, None if hue is None else f"{hue} = {h:g}" if isinstance(h, float) else f"{hue} = {h}",
                   marker="o")
    if all(isinstance(v, float) and v > 0 for v in (r[x] for r in rows)) and max(r[x] for r in rows) >= 10 * min(
            r[x] for r in rows):
        ax.set_xscale("log")
    sim = store.read_json(Path(sweep_dir) / "sweep.json").get("sim", "")
    xlabel, ylabel = _axis_labels(sim, x, y)
    ax.set_xlabel(xlabel)
    shown = "" if len(rows) == len(every) else f"; {len(rows)} of {len(every)} points completed"
    plots.finish(ax, ylabel, title=f"{sim} sweep {Path(sweep_dir).name}{shown}")
    name = f"{y}-vs-{x}" + (f"-by-{hue}" if hue else "") + ".png"
    return plots.saved_path(plots.save(fig, path or Path(sweep_dir) / "figures" / name))


def _axis_labels(sim: str, x: str, y: str) -> tuple[str, str]:
    """The x and y labels of a sweep figure with their units: a configuration field's "(configuration value)", a
    metric's unit from the setting's METRICS (`plots.metric_unit`)."""
    import dataclasses

    from . import plots, registry

    known = sim in registry.names()
    metrics = registry.get(sim).metrics if known else {}
    fields = {f.name for f in dataclasses.fields(registry.get(sim).config_cls)} if known else set()
    xlabel = f"{x} (configuration value)" if x in fields or not known else f"{x} {plots.metric_unit(metrics, x)}"
    return xlabel, f"final {y}, mean and min-max over seeds {plots.metric_unit(metrics, y)}"
