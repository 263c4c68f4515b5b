"""The one plotting helper of `sims`: figures without pyplot, bands over members, a symlog step axis, save.

Figures are drawn on an Agg canvas (`matplotlib.figure.Figure`, imported on use), so they work headless,
need no `close`, and leave pyplot's global state alone. Curves over training are shown against the step on
a symlog axis (linear below 1, so step 0 is visible; grokking spans decades); a set of members is drawn as
its mean with a min-max band.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from . import style as house  # the house style (its name `style` is run_band's line-style argument)

__all__ = ["figure", "band", "run_band", "step_axis", "value_ticks", "finish", "save", "saved_path", "curves_figure",
           "lc_figure", "LC_SETS", "STEP_LABEL",
           "LC_LABEL", "metric_unit"]

LC_SETS = ("train", "test", "random")
# Axis labels end with their unit in parentheses (the metric declarations' units: fraction, nats, parameter units,
# unitless, ...); the step axis and the LC axis are shared by most figures.
STEP_LABEL = "training step, symlog axis: linear below 1 (optimiser steps)"
LC_LABEL = "local complexity (crossed units per neighbourhood)"


def metric_unit(metrics: Mapping[str, str], name: str) -> str:
    """The unit a setting declares for metric `name`: the closing parenthesised part of its meaning in `metrics` (the
    setting's METRICS, {name or pattern: "meaning (unit)"}), e.g. "(fraction)"; LC metrics and patterns such as
    "sv_<k>" match their pattern. "(as recorded)" when no unit is declared."""
    from lc.keys import PATTERN, LCKey

    meaning = metrics.get(name)
    if meaning is None and LCKey.parse(name) is not None:
        meaning = metrics.get(PATTERN)
    if meaning is None:
        meaning = next((v for k, v in metrics.items()
                        if "<" in k and re.fullmatch(re.sub(r"<[^>]+>", ".+", re.escape(k)), name)), None)
    unit = _closing_parenthetical(meaning or "")
    return unit or "(as recorded)"


def _closing_parenthetical(text: str) -> str:
    """The balanced "(...)" that `text` ends with, or ""."""
    text, depth = text.rstrip(), 0
    for i in range(len(text) - 1, -1, -1):
        depth += {")": 1, "(": -1}.get(text[i], 0)
        if depth == 0:
            return text[i:] if text.endswith(")") and i < len(text) - 1 else ""
    return ""


def figure(ncols: int = 1, nrows: int = 1, *, panel: tuple[float, float] = (5.2, 3.8),
           layout: str | None = "constrained"):
    """(fig, axes): a Figure with an Agg canvas and an [nrows, ncols] array of axes of `panel` inches each, laid out
    by `layout` (a matplotlib layout engine; None for fixed placement, as in the frames of a movie)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(panel[0] * ncols, panel[1] * nrows), layout=layout)
    FigureCanvasAgg(fig)
    axes = np.array(fig.subplots(nrows, ncols, squeeze=False))
    for ax in axes.flat:
        ax.set_prop_cycle(color=house.PALETTE)
    return fig, axes


def band(ax, x, values, label: str | None = None, **kw):
    """Mean over members with a min-max band; values [T, E] (or [T]); all-NaN rows stay gaps. Returns the line."""
    v = np.asarray(values, dtype=np.float64)
    v = v[:, None] if v.ndim == 1 else v
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        line, = ax.plot(x, np.nanmean(v, axis=1), label=label, **kw)
        if v.shape[1] > 1:
            ax.fill_between(x, np.nanmin(v, axis=1), np.nanmax(v, axis=1), color=line.get_color(), alpha=0.2, lw=0)
    return line


STYLES = ("-", "--", ":", "-.")


def _tag(over: dict) -> str:
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in over.items())


def run_band(ax, run, metric, label: str | None = None, *, style: int | None = None, **kw) -> None:
    """`band` of a run's metric (a name, or values [T, E]) against its steps. An ensemble of a sweep may hold
    several configurations (init scales, noise rates, ...): then one band each, coloured by configuration (the
    same colour for a configuration in every panel) and labelled by what differs; `style` (the series' index in
    its panel) picks the line style, so series and configurations stay apart."""
    values = run.metric(metric) if isinstance(metric, str) else np.asarray(metric)
    ls = kw.pop("ls", STYLES[style % len(STYLES)] if style is not None else "-")
    configs = run.members.configurations()
    if len(configs) == 1:
        band(ax, run.steps, values, label, ls=ls, **kw)
        return
    for k, (over, idx) in enumerate(configs):
        band(ax, run.steps, values[:, idx], f"{label} ({_tag(over)})" if label else None, color=house.color(k), ls=ls,
             **kw)


def step_axis(ax, steps) -> None:
    """Log-spaced step axis that still shows step 0 (symlog, linear below 1)."""
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlim(0, max(1, int(np.max(steps))) * 1.05)
    ax.set_xlabel(STEP_LABEL)


def value_ticks(ax, values) -> None:
    """Tick and label the x axis at exactly `values` (integers shown as such), without minor labels: for a log axis
    over less than two decades, where matplotlib's minor labels overlap."""
    values = np.asarray(values, dtype=np.float64)
    labels = [f"{v:.0f}" if float(v).is_integer() else f"{v:g}" for v in values]
    ax.set_xticks(values, labels, minor=False)
    ax.set_xticks([], minor=True)


def finish(ax, ylabel: str, *, steps=None, log: bool = False, title: str | None = None) -> None:
    """Label, grid and legend of a panel; a symlog step axis when `steps` is given; a log y axis if `log`.
    The legend lists every labelled line; a panel whose lines are all unlabelled gets none."""
    if steps is not None:
        step_axis(ax, steps)
    if log and _has_positive_data(ax):
        ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, which="both")
    if title:
        ax.set_title(title, fontsize=9)
    handles = ax.get_legend_handles_labels()[0]
    if handles:
        ax.legend(fontsize=8 if len(handles) <= 6 else 6)


def _has_positive_data(ax) -> bool:
    """Whether a log y axis can show anything (some finite positive value is drawn)."""
    ys = [np.asarray(line.get_ydata(), dtype=np.float64) for line in ax.get_lines()]
    return any(np.any(np.isfinite(y) & (y > 0)) for y in ys)


def save(fig, path, *, title: str | None = None, dpi: int | None = None):
    """Write `fig` (with `title` as its suptitle) to `path` with its suffix set to the format of `style.output`
    (png unless set), at `dpi` (default: the style's), creating the folder; returns the Figure, with the path
    written in `saved_path(fig)`. Constrained layout keeps every label inside; a figure without a layout engine
    is cut to its tight bounding box instead (which costs a second drawing pass, so laid-out figures skip it)."""
    if title:
        fig.suptitle(title, fontsize=10)
    out = house.current()
    path = Path(path).with_suffix("." + out["format"])
    path.parent.mkdir(parents=True, exist_ok=True)
    tight = None if fig.get_layout_engine() is not None else "tight"
    fig.savefig(path, dpi=dpi or out["dpi"], bbox_inches=tight)
    fig.sims_path = path
    return fig


def saved_path(fig) -> Path:
    """Where `save` last wrote `fig`."""
    return fig.sims_path


def _vlines(ax, vlines: Sequence[tuple[float, str]]) -> None:
    """Vertical reference lines [(step, label)] (predicted and measured transition steps), each in its own style."""
    for x, label in vlines:
        house.reference(ax, label, x=x)


def curves_figure(run, panels: Sequence[tuple[str, Sequence[tuple[str, str]]]], path, *, title: str | None = None,
                  hlines: dict | None = None, log: Sequence[str] = (), vlines: Sequence[tuple[float, str]] = ()):
    """One panel per (ylabel, [(metric, label), ...]) against the step; metrics the run lacks are skipped.

    `hlines` maps a panel's ylabel to [(y, label)] reference lines (paper values, Bayes rates); panels whose
    ylabel is in `log` get a log y axis; `vlines` [(step, label)] are drawn on every panel (predicted times).
    Saves to `path` and returns the Figure.
    """
    fig, axes = figure(len(panels))
    for ax, (ylabel, series) in zip(axes[0], panels):
        for k, (metric, label) in enumerate(series):
            if metric in run.metric_names:
                run_band(ax, run, metric, label, style=k)
        for y, label in (hlines or {}).get(ylabel, []):
            house.reference(ax, label, y=y)
        _vlines(ax, vlines)
        finish(ax, ylabel, steps=run.steps, log=ylabel in log)
    return save(fig, path, title=title)


def lc_figure(run, path, *, title: str | None = None, vlines: Sequence[tuple[float, str]] = ()):
    """LC at train / test / random points against the step, one panel per probe radius; the saved Figure, or None
    without LC. `vlines` [(step, label)] are drawn on every panel (transitions)."""
    from lc.keys import lc_keys, lc_name, radii

    names = [str(k) for k in lc_keys(run.metric_names, total=True) if k.points in LC_SETS]
    if not names:
        return None
    found = radii(names)  # ascending by value; [None] for a probe with one radius
    fig, axes = figure(len(found))
    for ax, r in zip(axes[0], found):
        for k, s in enumerate(LC_SETS):
            if lc_name(s, r) in names:
                run_band(ax, run, lc_name(s, r), s, style=k)
        _vlines(ax, vlines)
        finish(ax, LC_LABEL, steps=run.steps,
               title=None if r is None else f"radius {r:g}")
    return save(fig, path, title=title)
