"""The transitions atlas: every grokking and benign-overfitting transition beside what the linear regions do.

For each setting with a generalisation transition (and two controls: leaky-relu-highdim, without a delayed
one, and random-labels, which memorises without generalising) the atlas runs (or reuses) its `default` runs through the sweep machinery, reads the per-member
transition records the setting writes into summary.json (`sims.transitions.record`: generalisation and
memorisation steps, LC turning points at train / test / random points, migration numbers where a partition is
measured), and writes into its directory:

    atlas.png    one row per setting: accuracies and LC against the step divided by the member's transition
                 step (log axis; the transition at 1), turning points marked
    atlas.md     the table and the verdicts, with how each was measured;  atlas.csv  the table;  atlas.json

Three hypotheses of Humayun, Balestriero, Baraniuk (2024) are given a verdict per setting:
(a) the last LC descent at training points begins no later than the generalisation transition;
(b) the share of region boundary near the decision boundary rises across the transition (where a partition
    is measured; `lc.region_migration`);
(c) LC at random points away from the data changes less than LC at the data (relative change of the mean
    LC from the memorisation step to the end of the run).
A hypothesis that fails in some setting is a finding, reported with its numbers.
"""

from __future__ import annotations

import csv
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from . import api, checks, plots, registry, store, sweep

__all__ = ["Entry", "ENTRIES", "atlas", "hypotheses"]


@dataclass(frozen=True)
class Entry:
    """One row of the atlas: a simulation at a preset, its seeds, and which curves are its accuracies."""

    sim: str
    label: str
    seeds: int = 3
    overrides: tuple[tuple[str, object], ...] = ()
    test: str = "test_acc"  # the generalisation curve (rising)
    train: str = "train_acc"  # memorisation: the first step it reaches 1
    control: bool = False  # a setting without a delayed transition
    log: bool = False  # the curves are losses: a log y axis
    min_change: float = 0.0  # a test curve that moves less than this from start to end has no transition
    no_lc: str = ""  # why the setting has no LC (a model without linear regions), shown in its empty panel


NO_LC = "no LC: the diagonal net u^2 - v^2 is linear in its input (no linear regions)"

ENTRIES: list[Entry] = [
    Entry("xor-cluster", "XOR clusters (Xu et al. 2024)"),
    Entry("dichotomy-sparse", "diagonal net, sparse parity-like task (Lyu et al. 2024)", no_lc=NO_LC),
    Entry("dichotomy-misgrokking", "diagonal net, misgrokking (Lyu et al. 2024): test accuracy falls", no_lc=NO_LC),
    Entry("dichotomy-completion", "matrix completion U U^T - V V^T (Lyu et al. 2024)", test="test_loss",
          train="train_loss", log=True, no_lc="no LC: a matrix factorisation is linear in its input"),
    Entry("modular-addition", "modular addition, two-layer ReLU MLP (Lyu et al. 2024)"),
    Entry("image-grokking", "image MLP at alpha 8, MNIST-1D (Humayun et al. 2024; Omnigrok)"),
    Entry("leaky-relu-highdim", "leaky ReLU, high dim (Frei et al. 2023): control", control=True),
    Entry("random-labels", "image MLP, all labels random (Zhang et al. 2017): control", control=True,
          min_change=0.05),
]


def _lc_key(names, point_set: str) -> str | None:
    """The LC curve of a point set: 'train', or the first radius ('train@r0.1') when several were probed."""
    keys = sorted(k for k in names if k == point_set or k.startswith(point_set + "@"))
    return keys[0] if keys else None


@dataclass
class Row:
    entry: Entry
    view: object = None
    records: list[dict] = field(default_factory=list)
    error: str | None = None


def _points(entry: Entry, preset: str) -> list[sweep.Point]:
    cfg = registry.resolve(registry.get(entry.sim), preset, dict(entry.overrides))
    return [sweep.Point(entry.sim, preset, tuple(sorted({**dict(entry.overrides), "seed": cfg.seed + e}.items())))
            for e in range(entry.seeds)]


def _records(view, entry: Entry | None = None) -> list[dict]:
    """The members' transition records: from summary.json, or computed now for runs written before the hook.
    A member whose test curve moves by less than the entry's `min_change` has no transition (its step, time and
    delay become None): the half-way step of a flat, noisy curve is noise."""
    recs = view.summary.get("transitions")
    if recs is None and view.simulation.transitions is not None:
        recs = view.simulation.transitions(view)
    if entry is not None and entry.min_change > 0:
        recs = [rec if rec is None or abs(rec["test_end"] - rec["test_start"]) >= entry.min_change else
                {**rec, "generalisation_step": None, "generalisation_time": None, "delay": None,
                 "no_transition": f"{entry.test} moves by {abs(rec['test_end'] - rec['test_start']):.3g} "
                                  f"< {entry.min_change:g}"} for rec in recs or []]
    return recs or []


def _rel_change(curve: np.ndarray, steps: np.ndarray, start: int | None) -> float:
    i0 = 0 if start is None else int(np.searchsorted(steps, start))
    a, b = curve[min(i0, len(curve) - 1)], curve[-1]
    return float(abs(b - a) / max(abs(a), 1e-12))


def hypotheses(row: Row) -> dict:
    """Verdicts (holds / fails / n/a) and their numbers for one setting, over its members."""
    out = {}
    a_ok, b_ok, c_ok, details = [], [], [], {"a": [], "b": [], "c": []}
    for e, rec in enumerate(row.records):
        if rec is None:
            continue
        g = rec.get("generalisation_step")
        lc = rec.get("lc") or {}
        key = _lc_key(lc, "train")
        last = lc.get(key, {}).get("last_descent_step") if key else None
        if g is not None and key:
            a_ok.append(last is not None and last <= g)
            details["a"].append(f"{'none' if last is None else last} vs {g:.3g}")
        mig = rec.get("migration")
        if mig and mig.get("before") and mig.get("after"):
            before, after = mig["before"]["boundary_ratio"], mig["after"]["boundary_ratio"]
            b_ok.append(after > before)
            details["b"].append(f"{before:.3g} -> {after:.3g}")
        names = row.view.metric_names
        m_train, m_rand = _lc_key(names, "lc_train"), _lc_key(names, "lc_random")
        if m_train and m_rand:
            steps = row.view.steps
            tr = _rel_change(row.view.metric(m_train)[:, e], steps, rec.get("memorisation_step"))
            rd = _rel_change(row.view.metric(m_rand)[:, e], steps, rec.get("memorisation_step"))
            c_ok.append(rd < tr)
            details["c"].append(f"{rd:.2f} vs {tr:.2f}")
    for key, oks in (("a", a_ok), ("b", b_ok), ("c", c_ok)):
        verdict = "n/a" if not oks else "holds" if all(oks) else "fails" if not any(oks) else "mixed"
        out[key] = dict(verdict=verdict, members=f"{sum(oks)}/{len(oks)}", details="; ".join(details[key]))
    return out


def _table_row(row: Row) -> dict:
    recs = [r for r in row.records if r]
    view = row.view

    def mean(key):
        vals = [r[key] for r in recs if r.get(key) is not None]
        return float(np.mean(vals)) if vals else math.nan

    m_train = _lc_key(view.metric_names, "lc_train")
    lc = view.metric(m_train) if m_train else None
    at = {}
    if lc is not None:
        steps = view.steps
        for name, key in (("init", None), ("memorisation", "memorisation_step"), ("transition", "generalisation_step")):
            s = 0 if key is None else mean(key)
            at[name] = float(np.nanmean(lc[min(int(np.searchsorted(steps, s)), len(steps) - 1)])) if math.isfinite(s) else math.nan
        at["end"] = float(np.nanmean(lc[-1]))
    def last(r):
        key = _lc_key(r.get("lc") or {}, "train")
        return r["lc"][key].get("last_descent_step") if key else None

    lags = [r["generalisation_step"] - last(r) for r in recs
            if r.get("generalisation_step") is not None and last(r) is not None]
    mig = [r.get("migration") for r in recs if r.get("migration")]
    return dict(setting=row.entry.sim, transition_step=mean("generalisation_step"),
                memorisation_step=mean("memorisation_step"), delay=mean("delay"),
                lc_train_init=at.get("init", math.nan), lc_train_memorisation=at.get("memorisation", math.nan),
                lc_train_transition=at.get("transition", math.nan), lc_train_end=at.get("end", math.nan),
                lag_last_lc_descent=float(np.mean(lags)) if lags else math.nan,
                migration_before=float(np.mean([m["before"]["boundary_ratio"] for m in mig])) if mig else math.nan,
                migration_after=float(np.mean([m["after"]["boundary_ratio"] for m in mig])) if mig else math.nan)


def _time_unit(rec: dict | None) -> tuple[float | None, str]:
    """The step a member's time axis is divided by: its generalisation step, or (no transition) its
    memorisation step."""
    rec = rec or {}
    if rec.get("generalisation_step"):
        return rec["generalisation_step"], "generalisation"
    return rec.get("memorisation_step") or None, "memorisation"


def _draw_row(axes, row: Row) -> None:
    view, recs, units = row.view, row.records, set()
    for e, rec in enumerate(recs):
        g, unit = _time_unit(rec)
        units.add(unit)
        if not g:
            continue
        t = np.maximum(view.steps, 0.5) / g
        for name, ls in ((row.entry.test, "-"), (row.entry.train, ":")):
            if name in view.metric_names:
                axes[0].plot(t, view.metric(name)[:, e], ls, color="C0" if name == row.entry.test else "C1",
                             lw=1, label=name if e == 0 else None)
        for k, s in enumerate(plots.LC_SETS):
            name = _lc_key(view.metric_names, f"lc_{s}")
            if name:
                axes[1].plot(t, view.metric(name)[:, e], color=f"C{k}", lw=1, label=name[3:] if e == 0 else None)
                lc = rec.get("lc", {})
                for turn in (lc.get(name[3:]) or lc.get(s) or {}).get("turns", []):
                    axes[1].plot(max(turn["step"], 0.5) / g, turn["value"], "v" if turn["kind"] == "min" else "^",
                                 color=f"C{k}", ms=5)
    if row.entry.no_lc:
        axes[1].text(0.5, 0.5, row.entry.no_lc, transform=axes[1].transAxes, ha="center", va="center", fontsize=8,
                     wrap=True)
    for ax, ylabel, log in zip(axes, ("loss" if row.entry.log else "accuracy", "LC (mean crossed units)"),
                               (row.entry.log, False)):
        ax.axvline(1.0, color="k", ls="--", lw=0.8)
        ax.set_xscale("log")
        ax.set_xlabel(f"step / {' or '.join(sorted(units)) or 'generalisation'} step")
        plots.finish(ax, ylabel, title=row.entry.label, log=log)


def _figure(rows: list[Row], path: Path) -> Path:
    drawn = [r for r in rows if r.view is not None]
    fig, axes = plots.figure(2, len(drawn), panel=(5.6, 3.0))
    for ax_row, row in zip(axes, drawn):
        _draw_row(ax_row, row)
    return plots.save(fig, path, title="transitions atlas: each member's time axis divided by its generalisation step "
                      "(dashed line;\na control without one: its memorisation step); LC turning points: v minimum, "
                      "^ maximum")


def _fmt(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.4g}" if isinstance(
        v, float) else str(v)


def _markdown(rows: list[Row], table: list[dict], verdicts: dict, preset: str, elapsed: float) -> str:
    cols = list(table[0]) if table else []
    own = sum(float(r.view.summary.get("elapsed_s") or 0.0) for r in rows if r.view is not None)
    lines = [f"# Transitions atlas (`sims atlas --preset {preset}`, {elapsed:.0f} s; the runs' own training: "
             f"{own:.0f} s)", "", "## Table", "",
             "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_fmt(r[c]) for c in cols) + " |" for r in table]
    lines += ["", "## Hypotheses of Humayun et al. (2024)", "",
              "(a) the last LC descent at training points begins no later than the generalisation transition; "
              "(b) the share of region boundary near the decision boundary rises across the transition; "
              "(c) LC at random points changes less than LC at training points (from memorisation to the end).",
              "", "| setting | (a) | (b) | (c) |", "|---|---|---|---|"]
    for row in rows:
        v = verdicts.get(row.entry.sim, {})
        cells = [f"{v[k]['verdict']} ({v[k]['members']}; {v[k]['details']})" if k in v else "n/a" for k in "abc"]
        lines.append(f"| {row.entry.sim}{' (control)' if row.entry.control else ''} | " + " | ".join(cells) + " |")
    errors = [f"- {r.entry.sim}: {r.error}" for r in rows if r.error]
    if errors:
        lines += ["", "## Runs that failed", ""] + errors
    return "\n".join(lines) + "\n"


def atlas(preset: str = "default", out: str | Path | None = None, *, entries: list[Entry] | None = None,
          device: str = "auto", workers: int = 0, scheduler: str | None = None, threads: int | None = None,
          log: Callable[[str], None] | None = None) -> dict:
    """Run (or reuse) the atlas's runs at `preset` and write atlas.png, atlas.md, atlas.csv and atlas.json.

    `out` holds the runs (runs/<ensemble id>): running the atlas into the same directory again reuses every
    completed run, so the atlas can be redrawn at no cost. Returns the atlas dict (table, verdicts, paths).
    """
    checks.arguments(threads=threads, workers=workers, out=out)
    entries = entries or ENTRIES
    say = log or (lambda m: None)
    per_entry = {e.sim: _points(e, preset) for e in entries}  # validated before anything is written
    groups = sweep.group([p for pts in per_entry.values() for p in pts])
    sweep.check_groups(groups, device)
    sweep.check_executor(workers, scheduler)
    root = store.check_root(out) if out is not None else api.default_root() / "atlas" / f"{preset}-{time.strftime('%Y%m%d-%H%M%S')}"
    root.mkdir(parents=True, exist_ok=True)
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
        rows.append(Row(entry, view, _records(view, entry)))
    done = [r for r in rows if r.view is not None]
    table = [_table_row(r) for r in done]
    verdicts = {r.entry.sim: hypotheses(r) for r in done}
    elapsed = time.time() - t0
    fig = _figure(rows, root / "atlas.png") if done else None
    (root / "atlas.md").write_text(_markdown(rows, table, verdicts, preset, elapsed))
    with open(root / "atlas.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(table[0]) if table else ["setting"])
        w.writeheader()
        w.writerows(table)
    out_dict = dict(preset=preset, dir=str(root), figure=str(fig) if fig else None, table=table, verdicts=verdicts,
                    failures=[r.error for r in rows if r.error], elapsed_s=round(elapsed, 1))
    store.write_json(root / "atlas.json", out_dict)
    return out_dict
