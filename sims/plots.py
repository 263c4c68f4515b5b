"""Figure helpers shared by the settings (matplotlib, Agg backend, imported lazily)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = ["curves_figure", "step_axis"]


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def step_axis(ax, steps: np.ndarray) -> None:
    """Log-spaced step axis that still shows step 0 (symlog, linear below 1)."""
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlim(0, max(1, int(np.max(steps))) * 1.05)
    ax.set_xlabel("step (symlog: linear below 1)")


def curves_figure(run, panels: Sequence[tuple[str, Sequence[tuple[str, str]]]], path: Path,
                  *, title: str | None = None, hlines: dict | None = None) -> Path:
    """One panel per (ylabel, [(metric, label), ...]); mean over members with a min-max band.

    `hlines` maps a panel's ylabel to [(y, label)] reference lines (paper values, Bayes rates).
    """
    plt = _plt()
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.8), squeeze=False)
    steps = run.steps
    for ax, (ylabel, series) in zip(axes[0], panels):
        for metric, label in series:
            if metric not in run.metric_names:
                continue
            v = run.metric(metric)
            mean = np.nanmean(v, axis=1)
            line, = ax.plot(steps, mean, label=label)
            if v.shape[1] > 1:
                ax.fill_between(steps, np.nanmin(v, axis=1), np.nanmax(v, axis=1), color=line.get_color(), alpha=0.2)
        for y, label in (hlines or {}).get(ylabel, []):
            ax.axhline(y, color="k", ls="--", lw=0.8, label=label)
        step_axis(ax, steps)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)
