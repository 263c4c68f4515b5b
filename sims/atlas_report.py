"""The atlas's page and figure: atlas.md (robust verdicts first) and atlas.png (one row per setting)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from lc.keys import radii, select

from . import atlas_analysis as an, plots, style, transitions

__all__ = ["markdown", "figure", "table_radius"]

CI_NOTE = ("**At the ci preset the runs are a few steps long and coarsely evaluated: these verdicts mean nothing; "
           "they only show that every field is written.**")


def table_radius(names, config=None) -> float | None:
    """The radius the table's LC numbers are read at: the setting's own `lc_radius` when it was probed, else the
    smallest probed radius (the verdicts use every radius)."""
    rs = radii(names)
    own = getattr(config, "lc_radius", None)
    return next((r for r in rs if r is not None and own is not None and math.isclose(r, own)), rs[0] if rs else None)


def _fmt(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.4g}" if isinstance(
        v, float) else str(v)


def _label(h: str) -> str:
    return "(a')" if h == "a2" else f"({h})"


def _cell(v: dict) -> str:
    radii = ", ".join(f"r {r}: {x}" for r, x in v["per_radius"].items()) if len(v["per_radius"]) > 1 else ""
    parts = [f"robustness {v['robustness']:.2f} (modal: {v['modal']})", radii,
             "members: " + ", ".join(v["per_member"])]
    shown = v["verdict"] if v["verdict"] == v["measured"] else f"{v['verdict']} (measured: {v['measured']})"
    return f"**{shown}**{' (robust)' if v['robust'] else ''}; " + "; ".join(p for p in parts if p)


def _method() -> list[str]:
    lines = ["## Hypotheses (each with the sentence of Humayun, Balestriero, Baraniuk 2024 it tests)", ""]
    lines += [f"- **{_label(h)}** {title}. Tests: {quote}." for h, (title, quote) in an.HYPOTHESES.items()]
    lines += ["", f"Times are in units of the delay D = g / m (g: generalisation step, m: memorisation step); "
              f"'around the transition' is [g D^-{an.WINDOW:g}, g D^{an.WINDOW:g}]. A descent that starts at the "
              f"first evaluation is not a turning point. Settled: the run lasted at least {an.SETTLE_FACTOR:g}x its "
              f"transition, or its test curve and LC at the training points moved by less than "
              f"{an.SETTLE_TOL:.0%} over the last {an.SETTLE_DECADES:g} decade of steps; otherwise every verdict is "
              f"`{an.UNDETERMINED}`. Flagged: fewer than {an.MIN_EVALS} evaluations between memorisation and "
              f"transition. Robust: at least {an.ROBUST:.0%} of the analysis choices (smoothing window "
              f"{an.GRID['window']}, turning filter {an.GRID['turn']}, every radius, the run cut at "
              f"{an.GRID['cut']} of its length, normalisation {an.GRID['norm']}) give the modal verdict, and it is "
              "the measured one."]
    return lines


def _columns() -> list[str]:
    """The "Columns" list under atlas.md's table: what every column means (steps and LC: means over members)."""
    return ["", "Columns:", "",
            "- `setting`: the simulation; `settled`: whether its verdicts can be read (Settled, above).",
            "- `transition_step`: the generalisation step g, where the test curve has moved half-way from its start "
            "to its end.",
            "- `memorisation_step`: m, the first evaluated step at which train accuracy reaches 1.",
            "- `delay`: D = g / m, a ratio (no unit): each member's generalisation step over its memorisation step, "
            "averaged over members (not the ratio of the two means); 1 is no delay.",
            "- `lc_radius`: the radius the LC columns are read at (the setting's own `lc_radius`, else the smallest "
            "probed).",
            "- `lc_train_init`, `lc_train_memorisation`, `lc_train_transition`, `lc_train_end`: LC at the training "
            "points (units crossed per point) at step 0, at the first evaluation at or after m and after g, and at "
            "the end.",
            f"- `lag_min`, `lag_max`: over members, log(g / s) / log(D), s the step where the last descent of LC at "
            f"the training points begins: the lag in units of log D (> 0: before the transition; within "
            f"{an.WINDOW:g} of 0: around it).",
            "- `migration_raw_before`, `migration_raw_after`: on the member's 2-D slice, the share of region-boundary "
            "length near the decision boundary at the snapshot nearest memorisation and at the last one; "
            "`migration_ratio_before`, `migration_ratio_after`: that share divided by the share of the slice's "
            "area there (> 1: boundaries crowd there).",
            "- `verdict_<h>`, `robust_<h>`, `robustness_<h>`: the verdict on hypothesis h, whether it is robust, "
            "and the share of analysis choices that give the modal verdict."]


def markdown(rows, table: list[dict], results: dict, preset: str, elapsed: float, reused: int = 0) -> str:
    """atlas.md: the robust verdicts, the hypotheses and method, every verdict, the table, migration per member.
    `reused`: how many of the runs were reused from an earlier call (then `elapsed` is not the atlas's cost)."""
    own = sum(float(r.view.summary.get("elapsed_s") or 0.0) for r in rows if r.view is not None)
    wall = f"{elapsed:.0f} s" + (f", the runs of {reused} of {len(rows)} settings reused" if reused else "")
    lines = [f"# Transitions atlas (`sims atlas --preset {preset}`, {wall}; the runs' own training: "
             f"{own:.0f} s)", ""] + ([CI_NOTE, ""] if preset == "ci" else [])
    robust = [(s, h, v) for s, res in results.items() for h, v in res["verdicts"].items()
              if v["robust"] and v["verdict"] != "n/a"]
    lines += ["## Robust verdicts", ""]
    lines += ["| setting | hypothesis | verdict | robustness |", "|---|---|---|---|"] + [
        f"| {s} | {_label(h)} | {v['verdict']} | {v['robustness']:.2f} |" for s, h, v in robust] if robust else [
        "None: no verdict survives the analysis choices."]
    lines += [""] + _method() + ["", "## Every verdict", "",
                                 "| setting | settled | " + " | ".join(map(_label, an.HYPOTHESES)) + " |",
                                 "|---|---|" + "---|" * len(an.HYPOTHESES)]
    notes = []
    for row in rows:
        res = results.get(row.entry.sim)
        if res is None:
            continue
        cells = [_cell(res["verdicts"][h]) for h in an.HYPOTHESES]
        name = row.entry.sim + (" (control)" if row.entry.control else "")
        lines.append(f"| {name} | {'yes' if res['settled'] else 'no'} | " + " | ".join(cells) + " |")
        notes.append(f"- {row.entry.sim}: settling per member: {'; '.join(res['settle'])}"
                     + (f"; flagged: {'; '.join(res['flags'])}" if res["flags"] else "")
                     + (f"; lag of the last LC descent (units of log delay) {res['lag'][0]:.3g} to "
                        f"{res['lag'][1]:.3g}" if res["lag"] else "")
                     + "; migration before -> after per member: raw " + _pairs(res["migration"]["raw"])
                     + ", ratio " + _pairs(res["migration"]["ratio"]))
    cols = list(table[0]) if table else []
    lines += [""] + notes + ["", "## Table", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_fmt(r[c]) for c in cols) + " |" for r in table] + _columns()
    errors = [f"- {r.entry.sim}: {r.error}" for r in rows if r.error]
    if errors:
        lines += ["", "## Runs that failed", ""] + errors
    return "\n".join(lines) + "\n"


def _pairs(pairs) -> str:
    return "[" + ", ".join("none" if p is None else f"{p[0]:.3g}->{p[1]:.3g}" for p in pairs) + "]"


def _time_unit(rec: dict | None) -> tuple[float | None, str]:
    """The step a member's time axis is divided by: its generalisation step, or (no transition) its
    memorisation step."""
    rec = rec or {}
    if rec.get("generalisation_step"):
        return rec["generalisation_step"], "generalisation"
    return rec.get("memorisation_step") or None, "memorisation"


def _draw_lc(ax, view, e: int, t: np.ndarray, rec: dict, radius) -> None:
    """Member e's LC at `radius` at every point set, with its turning points under the record's rule."""
    rule = {"window": 3, "min_rel_change": 0.1, **(rec.get("rule") or {})}
    for k, s in enumerate(plots.LC_SETS):
        try:
            name = select(view.metric_names, s, radius)
        except KeyError:
            continue
        v = view.metric(name)[:, e]
        ax.plot(t, v, color=style.color(k), lw=1, label=name[3:] if e == 0 else None)
        for turn in transitions.turning_points(view.steps, v, window=rule["window"],
                                               min_rel_change=rule["min_rel_change"]):
            ax.plot(t[turn.index], turn.value, "v" if turn.kind == "min" else "^", color=style.color(k), ms=5)


def _draw_linear(ax, view, e: int, t: np.ndarray, linear) -> None:
    """What a model linear in its input has instead of LC: each curve divided by its largest magnitude."""
    for k, (name, label) in enumerate(linear):
        if name in view.metric_names:
            v = view.metric(name)[:, e]
            scale = np.nanmax(np.abs(v)) if np.any(np.isfinite(v)) else 1.0
            ax.plot(t, v / (scale or 1.0), color=style.color(k + 3), lw=1, label=label if e == 0 else None)


def _draw_row(axes, row, radius) -> None:
    view, units = row.view, set()
    for e, rec in enumerate(row.records):
        g, unit = _time_unit(rec)
        units.add(unit)
        if not g:
            continue
        t = np.maximum(view.steps, 0.5) / g
        for name, ls in ((row.entry.test, "-"), (row.entry.train, ":")):
            if name in view.metric_names:
                axes[0].plot(t, view.metric(name)[:, e], ls, color=style.color(0 if name == row.entry.test else 1),
                             lw=1, label=name if e == 0 else None)
        if row.entry.linear:
            _draw_linear(axes[1], view, e, t, row.entry.linear)
        else:
            _draw_lc(axes[1], view, e, t, rec, radius)
    # short labels: one per row of a tall figure (the panel legend and the row title say the rest)
    right = "curve / its max (unitless)" if row.entry.linear else (
        "LC" + ("" if radius is None else f", r = {radius:g}") + " (crossed units)")
    left = f"{'loss' if row.entry.log else 'accuracy'} {plots.metric_unit(view.simulation.metrics, row.entry.test)}"
    for ax, ylabel, log in zip(axes, (left, right), (row.entry.log, False)):
        style.reference(ax, "generalisation step", x=1.0)
        ax.set_xscale("log")
        ax.set_xlabel(f"step / {' or '.join(sorted(units)) or 'generalisation'} step (unitless)")
        plots.finish(ax, ylabel, title=row.entry.label, log=log)


def figure(rows, path: Path):
    """atlas.png: a row per setting with a run (accuracies left; LC, or a linear model's curves, right); the saved
    Figure."""
    drawn = [r for r in rows if r.view is not None]
    fig, axes = plots.figure(2, len(drawn), panel=(5.6, 3.0))
    for ax_row, row in zip(axes, drawn):
        _draw_row(ax_row, row, table_radius(row.view.metric_names, row.view.config))
    return plots.save(fig, path, title="transitions atlas: each member's time axis divided by its generalisation step "
                      "(reference line;\na control without one: its memorisation step); LC turning points: v minimum, "
                      "^ maximum")
