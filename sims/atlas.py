"""The transitions atlas: every grokking and benign-overfitting transition beside what the linear regions do.

For each setting with a generalisation transition (and two controls: leaky-relu-highdim, without a delayed
one, and random-labels, which memorises without generalising) the atlas runs (or reuses) its runs through the
sweep machinery, reads the per-member transition records the setting writes into summary.json
(`sims.transitions.record`, the one definition of a transition: the setting's own start step and minimum
change travel with the record), and writes into its directory (`write_outputs`):

    atlas.png    one row per setting: accuracies and LC against the step divided by the member's transition
                 step (log axis; the transition at 1), turning points marked; rows of models linear in their
                 input show norm, margin and distances to the early and late predictors instead of LC
    atlas.md     the robust verdicts first, then every verdict (per radius, per member, robustness), the table
    atlas.csv    a row per setting: `settled`, `verdict_<h>`, `robust_<h>`, `robustness_<h>` and the numbers
    atlas.json   per setting: settled, verdicts {h: verdict, robustness, per_radius, per_member, ...},
                 migration {raw, ratio: [before, after] per member}
    migration.json  the migration measured here for members whose record lacks it (`sims.atlas_migration`)

The hypotheses, the settling rule and the sensitivity grid are in `sims.atlas_analysis`.
"""

from __future__ import annotations

import csv
import io
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from lc.keys import select

from . import (api, atlas_analysis as an, atlas_migration, atlas_report, checks, locks, outdir, plots, registry, store,
               sweep)

__all__ = ["Entry", "registered", "atlas", "analyse", "write_outputs"]


CI_SEEDS = 3  # members per row at the ci preset (its verdicts mean nothing; it checks that every field is written)


@dataclass(frozen=True)
class Entry:
    """One row of the atlas: a simulation at a preset, its seeds, and which curves are its accuracies."""

    sim: str
    label: str
    seeds: int = 5  # members per row at every preset but ci (issue 23: at least 5 for per-member verdicts)
    overrides: tuple[tuple[str, object], ...] = ()
    test: str = "test_acc"  # the generalisation curve (rising)
    train: str = "train_acc"  # memorisation: the first step it reaches 1
    control: bool = False  # a setting without a delayed transition
    log: bool = False  # the curves are losses: a log y axis
    no_lc: str = ""  # why the setting has no LC (a model without linear regions)
    linear: tuple[tuple[str, str], ...] = ()  # (metric, label) drawn instead of LC for a model linear in its input


def registered() -> list[Entry]:
    """The atlas's rows: every registered setting that declares one (`register(..., atlas=...)`), in its order."""
    sims = [registry.get(n) for n in registry.names()]
    rows = sorted((sim for sim in sims if sim.atlas), key=lambda sim: (sim.atlas["order"], sim.name))
    return [Entry(sim.name, **{k: v for k, v in sim.atlas.items() if k != "order"}) for sim in rows]


@dataclass
class Row:
    entry: Entry
    view: object = None
    records: list[dict] = field(default_factory=list)
    error: str | None = None


def _points(entry: Entry, preset: str) -> list[sweep.Point]:
    seeds = min(entry.seeds, CI_SEEDS) if preset == "ci" else entry.seeds  # ci checks mechanics only
    return sweep.seeded_points(entry.sim, preset, dict(entry.overrides), seeds)


def _records(view) -> list[dict]:
    """The members' transition records: from summary.json, or computed now for runs written before the hook."""
    recs = view.summary.get("transitions")
    if recs is None and view.simulation.transitions is not None:
        recs = view.simulation.transitions(view)
    return recs or []


def _lc_at(view, radius) -> np.ndarray | None:
    """LC at the training points at `radius` [T, E], or None when the run has none."""
    try:
        return view.metric(select(view.metric_names, "train", radius))
    except KeyError:
        return None


def _table_row(row: Row, result: dict) -> dict:
    recs, view = [r for r in row.records if r], row.view

    def mean(key):
        vals = [r[key] for r in recs if r.get(key) is not None]
        return float(np.mean(vals)) if vals else math.nan

    radius = atlas_report.table_radius(view.metric_names, view.config)
    lc = _lc_at(view, radius)
    at = {}
    if lc is not None:
        for name, key in (("init", None), ("memorisation", "memorisation_step"), ("transition", "generalisation_step")):
            s = 0 if key is None else mean(key)
            i = min(int(np.searchsorted(view.steps, s)), len(view.steps) - 1) if math.isfinite(s) else None
            at[name] = float(np.nanmean(lc[i])) if i is not None else math.nan
        at["end"] = float(np.nanmean(lc[-1]))
    out = dict(setting=row.entry.sim, settled=result["settled"], transition_step=mean("generalisation_step"),
               memorisation_step=mean("memorisation_step"), delay=mean("delay"),
               lc_radius=math.nan if radius is None else radius)
    out.update({f"lc_train_{k}": at.get(k, math.nan) for k in ("init", "memorisation", "transition", "end")})
    lag = result["lag"] or [math.nan, math.nan]
    out.update(lag_min=lag[0], lag_max=lag[1])
    for norm, pairs in result["migration"].items():
        got = [p for p in pairs if p is not None]
        for k, name in ((0, "before"), (1, "after")):
            out[f"migration_{norm}_{name}"] = float(np.mean([p[k] for p in got])) if got else math.nan
    for h, v in result["verdicts"].items():
        out.update({f"verdict_{h}": v["verdict"], f"robust_{h}": v["robust"], f"robustness_{h}": v["robustness"]})
    return out


def analyse(row: Row) -> dict:
    """The verdicts and numbers of one atlas row (`sims.atlas_analysis.verdicts`)."""
    return an.verdicts(an.members(row.view, row.records, row.entry.test, row.entry.train))


def write_outputs(root: Path, rows: list[Row], preset: str, elapsed: float, reused: int = 0) -> dict:
    """Analyse the rows and write atlas.png, atlas.md, atlas.csv and atlas.json into `root`; the atlas dict."""
    done = [r for r in rows if r.view is not None]
    results = {r.entry.sim: analyse(r) for r in done}
    table = [_table_row(r, results[r.entry.sim]) for r in done]
    fig = atlas_report.figure(rows, root / "atlas.png") if done else None
    store.write_text(root / "atlas.md", atlas_report.markdown(rows, table, results, preset, elapsed, reused))
    text = io.StringIO()
    w = csv.DictWriter(text, fieldnames=list(table[0]) if table else ["setting", "settled"])
    w.writeheader()
    w.writerows(table)
    store.write_text(root / "atlas.csv", text.getvalue())
    out = dict(preset=preset, dir=str(root), figure=str(plots.saved_path(fig)) if fig else None, table=table,
               settings=results,
               meaningful=preset != "ci", failures=[r.error for r in rows if r.error], elapsed_s=round(elapsed, 1))
    store.write_json(root / "atlas.json", out)
    return out


def atlas(preset: str = "default", out: str | Path | None = None, *, entries: list[Entry] | None = None,
          device: str = "auto", workers: int = 0, scheduler: str | None = None, threads: int | None = None,
          log: Callable[[str], None] | None = None) -> dict:
    """Run (or reuse) the atlas's runs at `preset` and write its outputs (`write_outputs`).

    `out` holds the runs (runs/<ensemble id>): running the atlas into the same directory again reuses every
    completed run, so the atlas can be redrawn at no cost. Returns the atlas dict (table, settings, paths).
    """
    checks.arguments(threads=threads, workers=workers, out=out)
    entries = entries or registered()
    say = log or (lambda m: None)
    per_entry = {e.sim: _points(e, preset) for e in entries}  # validated before anything is written
    groups = sweep.group([p for pts in per_entry.values() for p in pts])
    sweep.check_groups(groups, device)
    sweep.check_executor(workers, scheduler)
    root = out if out is not None else api.default_root() / "atlas" / f"{preset}-{time.strftime('%Y%m%d-%H%M%S')}"
    root = outdir.claim(root, "atlas")  # a foreign non-empty directory is refused (sims.outdir)
    with locks.RunLock(root, f"sims atlas --preset {preset}"):  # a second atlas on it: exit 2 naming this one
        return _write_atlas(root, entries, per_entry, groups, preset, device, workers, scheduler, threads, say)


def _write_atlas(root, entries, per_entry, groups, preset, device, workers, scheduler, threads, say) -> dict:
    """Run the atlas's groups into `root` (claimed and locked) and write its files; see `atlas`."""
    t0 = time.time()
    results, _ = sweep.execute(groups, root, device=device, workers=workers, scheduler=scheduler, threads=threads,
                               log=say)
    where = {p.key: (i, k) for i, g in enumerate(groups) for k, p in enumerate(g.points)}
    rows = []
    for entry in entries:
        idx = [where[p.key] for p in per_entry[entry.sim]]
        res = results[idx[0][0]]
        if res["status"] != "completed":
            rows.append(Row(entry, error=f"{res['dir']}: {res['status']} {res.get('error', '')}".strip()))
            continue
        view = api.load(res["dir"]).view([k for _, k in idx])
        rows.append(Row(entry, view, atlas_migration.fill(entry.sim, view, _records(view), root / "migration.json")))
    return write_outputs(root, rows, preset, time.time() - t0, reused=sum(bool(r.get("reused")) for r in results))
