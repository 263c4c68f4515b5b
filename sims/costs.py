"""What a preset costs, from the table `sims/costs.json` that `benchmarks/preset_costs.py` measured and ships:
time per training step (or grid point) at the preset's size on the development CPU, the estimated total, and the
FLOPs per step. Read by `sims show NAME --preset P` without importing torch or a setting."""

from __future__ import annotations

import functools
import json
from pathlib import Path

__all__ = ["PATH", "load", "record", "describe"]

PATH = Path(__file__).with_name("costs.json")


@functools.lru_cache(maxsize=1)
def load() -> dict:
    """The shipped table: {"machine", "date", "load", "settings": {name: {preset: record}}}; {} when missing."""
    try:
        return json.loads(PATH.read_text())
    except FileNotFoundError:
        return {}


def record(name: str, preset: str) -> dict | None:
    """The measured record of `name` at `preset`, or None if it was not measured."""
    return load().get("settings", {}).get(name, {}).get(preset)


def _duration(seconds: float) -> str:
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.1f} days"
    if seconds >= 360:
        return f"{seconds / 3600:.2g} h"
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def describe(name: str, preset: str, presets=None) -> str:
    """One or two sentences: the measured time per step (or grid point) and the estimated total, or why not.
    `presets`: the setting's preset names, when given `preset` must be one of them (else ConfigError)."""
    if presets is not None and preset not in presets:
        from .config import ConfigError

        raise ConfigError(f"unknown preset {preset!r} for {name}; valid presets: {', '.join(presets)}")
    rec = record(name, preset)
    if rec is None:
        return "not measured (benchmarks/preset_costs.py measures the paper presets)"
    where = f"measured {load().get('date', '?')} on {load().get('machine', 'the development CPU')}"
    if rec.get("skipped"):
        return f"{rec['skipped']} ({where})"
    total = rec.get("total_s")
    if "step_s" in rec:
        timed = "eval_s" in rec
        evals = f" + {rec['n_evals']} evaluations of {rec['eval_s']:.2g} s" if timed else ""
        scaled = (f" (measured at {rec['measured_at']} and scaled by {rec['extrapolated_by']:g})"
                  if "measured_at" in rec else "")
        return (f"{rec['step_s'] * 1e3:.3g} ms per step at this size{scaled} ({rec['threads']} thread(s), {where}); "
                f"{rec['steps']:,} steps{evals} + {rec['build_s']:.0f} s set-up: "
                f"{'about' if timed else 'at least (evaluations not timed)'} {_duration(total)} in all; "
                f"{rec['flops_per_step'] / 1e9:.3g} GFLOP per step (matmuls, forward + backward)")
    bound = "" if rec["complete"] else "at least "
    return (f"{rec['point_s']:.3g} s per grid point on average ({rec['points_timed']} of {rec['points']} points "
            f"timed, {where}): {bound}{_duration(total)} in all")
