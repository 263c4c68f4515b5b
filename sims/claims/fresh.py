"""`sims reproduce KEY --fresh K`: a paper's claims on K base seeds drawn at random from a range no one tunes on.

Each base seed is one ordinary `reproduce` (its report in <out>/seed<S>/); this module draws the seeds, records
them, and writes <out>/report.md and report.json with every claim's verdict per seed, its pass rate k/n, the 95%
Clopper-Pearson interval of that rate, and the verdict over seeds: a claim passes on every seed, a rate claim
(`Claim.rate`) when the interval's lower bound clears its level. n/a (premise absent) counts as not passed.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np

from .. import api, store
from . import get_claims, seeds as protocol
from .runner import plan, reproduce

__all__ = ["reproduce_fresh", "aggregate", "fresh_table"]


def reproduce_fresh(key: str, k: int | None = None, *, seeds: list[int] | None = None, preset: str = "default",
                    out: Path | None = None, log: Callable[[str], None] = print, **kw) -> dict:
    """Run paper `key`'s claims once per base seed (K drawn by `seeds.draw_fresh`, or the given `seeds`) and
    write the combined report; `kw` goes to `reproduce` (device, workers, scheduler, threads, quiet)."""
    paper = get_claims(key)
    chosen = sorted(seeds) if seeds else protocol.draw_fresh(k if k is not None else 0)
    plan(paper, preset, chosen[0])  # a usage error raises here, before anything is written
    if out is not None:
        store.check_root(out)
    out = Path(out) if out is not None else (api.default_root() / "reproduce" /
                                             f"{key}-{preset}-fresh{len(chosen)}-{time.strftime('%Y%m%d-%H%M%S')}")
    out.mkdir(parents=True, exist_ok=True)
    log(f"[{key}] fresh base seeds {chosen}")
    t0, reports = time.time(), []
    for s in chosen:
        reports.append(reproduce(key, preset=preset, out=out / f"seed{s}", seed=s, log=log, **kw))
    report = dict(key=key, title=paper.title, preset=preset, fresh_seeds=chosen, meaning=_meaning(preset, chosen),
                  elapsed_s=round(time.time() - t0, 1), rows=aggregate(reports),
                  run_failures=sorted({f for r in reports for f in r["run_failures"]}),
                  reports=[r["dir"] for r in reports])
    store.write_json(out / "report.json", report)
    store.write_text(out / "report.md", f"# {paper.title}: fresh seeds\n\n**{report['meaning']}**\n\n"
                     f"`sims reproduce {key} --preset {preset} --fresh {len(chosen)}`: base seeds {chosen} "
                     f"({report['elapsed_s']} s).\n\n{fresh_table(report)}\n")
    report["dir"] = str(out)
    return report


def _meaning(preset: str, chosen: list[int]) -> str:
    if preset in protocol.MEANINGLESS_PRESETS:
        return f"Preset `{preset}` checks the mechanics only (tiny runs): its verdicts say nothing about the paper."
    return (f"Preset `{preset}` on {len(chosen)} base seeds drawn at random from [{protocol.FRESH[0]}, "
            f"{protocol.FRESH[1]}), a range no one tunes on: the verdicts test the paper's claims.")


def aggregate(reports: list[dict]) -> list[dict]:
    """Per claim (in the order of the first report): its verdict and measured value per seed, k/n (seeds whose runs
    failed are left out), the 95% Clopper-Pearson interval of the pass rate, and the verdict over seeds."""
    rows = []
    for i, first in enumerate(reports[0]["rows"]):
        per = [dict(seed=r["base_seed"], verdict=r["rows"][i]["verdict"], measured=r["rows"][i]["measured"])
               for r in reports]
        counted = [p for p in per if p["verdict"] != "RUN FAILED"]
        k, n = sum(p["verdict"] == "PASS" for p in counted), len(counted)
        lo, hi = protocol.clopper_pearson(k, n) if n else (float("nan"), float("nan"))
        values = np.array([p["measured"] for p in counted if p["measured"] is not None], dtype=float)
        rows.append(dict(id=first["id"], statement=first["statement"], expected=first["expected"], rate=first.get("rate"),
                         per_seed=per, passed=k, n=n, lower=lo, upper=hi, verdict=_over_seeds(first, counted, k, lo),
                         spread=_spread(values)))
    return rows


def _over_seeds(row: dict, counted: list[dict], k: int, lower: float) -> str:
    if row["verdict"] == "reported":
        return "reported"
    if not counted:
        return "RUN FAILED"
    if all(p["verdict"] == "n/a" for p in counted):
        return "n/a"
    if row.get("rate"):
        return "PASS" if lower >= row["rate"] else "FAIL"
    return "PASS" if k == len(counted) else "FAIL"


def _spread(values: np.ndarray) -> dict:
    """Mean, standard deviation and standard error over seeds of the measured values (NaN-free ones)."""
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return {}
    sd = float(values.std(ddof=1)) if len(values) > 1 else float("nan")
    return dict(mean=float(values.mean()), sd=sd, se=sd / np.sqrt(len(values)), min=float(values.min()),
                max=float(values.max()))


def fresh_table(report: dict) -> str:
    ci = report["preset"] in protocol.MEANINGLESS_PRESETS
    lines = ["| claim | expected | per seed | passes | 95% interval of the pass rate | mean +- se over seeds | "
             "verdict |", "|---|---|---|---|---|---|---|"]
    for r in report["rows"]:
        per = ", ".join(f"{p['seed']}: {p['verdict']}" for p in r["per_seed"])
        sp = r["spread"]
        spread = f"{sp['mean']:.4g} +- {sp['se']:.2g}" if sp and np.isfinite(sp.get("se", np.nan)) else \
            (f"{sp['mean']:.4g}" if sp else "n/a")
        verdict = f"{r['verdict']} (ci: mechanics only)" if ci and r["verdict"] in ("PASS", "FAIL") else \
            f"**{r['verdict']}**"
        rate = ["-", "-"] if r["verdict"] == "reported" else [f"{r['passed']}/{r['n']}",
                                                              f"[{r['lower']:.3f}, {r['upper']:.3f}]"]
        cells = [f"`{r['id']}`", r["expected"], per, *rate, spread, verdict]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)
