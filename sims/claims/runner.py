"""`sims reproduce KEY`: run a paper's claims and figures and write report.md / report.json.

Every configuration the claims and figures need is planned and validated first (a usage error writes
nothing), then run once through `sims.sweep.execute` (here or on Dask workers; a report directory used before
reuses its completed runs and resumes interrupted ones), then measured. `--update-papers` writes the claims
table into papers/KEY.md and copies the figures, but never from a report whose runs failed.
"""

from __future__ import annotations

import math
import re
import shutil
import time
from pathlib import Path
from typing import Callable

from .. import api, checks, registry, store, sweep
from ..config import ConfigError
from . import Claim, RunSpec, SweepRuns, get_claims, verdict

__all__ = ["reproduce", "table", "markdown", "update_paper"]


def _spec_points(spec, preset: str, seed: int | None) -> list[list[sweep.Point]]:
    """Per configuration of the spec (one for a RunSpec, one per grid point of a Sweep): its points, one per seed."""
    sim = registry.get(spec.sim)
    p = spec.preset or preset
    out = []
    for settings in spec.settings():
        cfg = registry.resolve(sim, p, settings)
        first = cfg.seed if seed is None else seed
        out.append([sweep.Point(spec.sim, p, tuple(sorted({**settings, "seed": first + e}.items())))
                    for e in range(spec.seeds)])
    return out


def _plan(paper, preset: str, seed: int | None):
    """All specs of the claims and figures, their points, and the groups that run them (validated, nothing run)."""
    specs = {id(s): s for c in [*paper.claims, *paper.figures] for s in c.runs.values()}
    points = {k: _spec_points(s, preset, seed) for k, s in specs.items()}
    unique = list({p.key: p for per in points.values() for pts in per for p in pts}.values())
    groups = sweep.group(unique)
    return specs, points, groups


def _views(specs, points, groups, results) -> tuple[dict, dict]:
    """Per spec: a RunView (RunSpec) or SweepRuns (Sweep) of its runs; and per spec the failures, if any."""
    where = {p.key: (i, e) for i, g in enumerate(groups) for e, p in enumerate(g.points)}
    loaded: dict[int, api.Run] = {}
    views, failures = {}, {}
    for k, spec in specs.items():
        per = []
        for pts in points[k]:
            idx = {where[p.key][0] for p in pts}
            if len(idx) != 1:
                raise ConfigError(f"{spec.label('')}: its seeds were split over several ensembles; lower its seeds")
            i = idx.pop()
            res = results[i]
            if res["status"] not in ("completed",):
                failures[k] = f"{res['dir']}: {res['status']}" + (f" ({res['error']})" if res.get("error") else "")
                break
            if i not in loaded:
                loaded[i] = api.load(res["dir"])
            per.append(loaded[i].view([where[p.key][1] for p in pts]))
        if k not in failures:
            views[k] = per[0] if isinstance(spec, RunSpec) else SweepRuns(spec.settings(), per)
    return views, failures


def _measure(claim: Claim, views: dict, failures: dict, preset: str) -> dict:
    row = dict(id=claim.id, statement=claim.statement, paper=claim.paper_value,
               runs=[s.label(preset) for s in claim.runs.values()])
    bad = [failures[id(s)] for s in claim.runs.values() if id(s) in failures]
    if bad:
        return dict(row, expected=claim.expected(math.nan), target=None, measured=None, details=bad[0],
                    verdict="RUN FAILED")
    runs = {name: views[id(s)] for name, s in claim.runs.items()}
    got = claim.measure(runs)
    value, details = got if isinstance(got, tuple) else (got, "")
    value, target = float(value), claim.target_value(runs)
    return dict(row, expected=claim.expected(target), target=target, measured=value, details=details,
                verdict=verdict(claim, value, target))


def reproduce(key: str, *, preset: str = "default", out: Path | None = None, device: str = "auto",
              quiet: bool = True, papers_dir: Path | None = None, seed: int | None = None, workers: int = 0,
              scheduler: str | None = None, threads: int | None = None, log: Callable[[str], None] = print) -> dict:
    """Run every claim and figure of paper `key`; returns the report dict. A failed run is recorded, not raised.

    seed: the first seed of every configuration (default: each preset's own); claims run on seeds seed,
    seed + 1, ... so they can be checked on seeds not used to choose the presets.
    """
    checks.arguments(threads=threads, seed=seed, workers=workers, out=out)
    paper = get_claims(key)
    specs, points, groups = _plan(paper, preset, seed)  # raises ConfigError before anything is written
    sweep.check_groups(groups, device)
    sweep.check_executor(workers, scheduler)
    if out is not None:
        store.check_root(out)
    tag = f"{key}-{preset}" + (f"-seed{seed}" if seed is not None else "")
    out = Path(out) if out is not None else api.default_root() / "reproduce" / f"{tag}-{time.strftime('%Y%m%d-%H%M%S')}"
    (out / "figures").mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    log(f"[{key}] {sum(len(g.points) for g in groups)} configuration-seeds in {len(groups)} ensemble run(s)")
    results, where = sweep.execute(groups, out, device=device, workers=workers, scheduler=scheduler,
                                   threads=threads, log=None if quiet else log)
    views, failures = _views(specs, points, groups, results)
    rows = [_measure(c, views, failures, preset) for c in paper.claims]
    figures = _paper_figures(paper, views, out) + _run_figures(groups, results, out)
    report = dict(key=key, title=paper.title, preset=preset, seed=seed, device=device, executor=where,
                  elapsed_s=round(time.time() - t0, 1), train_s=_train_seconds(results), rows=rows, figures=figures,
                  run_failures=sorted(set(failures.values())), runs=[r["dir"] for r in results],
                  environment=_environment(results))
    store.write_json(out / "report.json", report)
    (out / "report.md").write_text(markdown(report))
    report["dir"] = str(out)
    if papers_dir is not None:
        if report["run_failures"]:
            log(f"[{key}] runs failed: papers/{key}.md is left as it is")
        else:
            update_paper(Path(papers_dir), report, out)
    return report


def _paper_figures(paper, views: dict, out: Path) -> list[str]:
    names = []
    for fig in paper.figures:
        if any(id(s) not in views for s in fig.runs.values()):
            continue
        name = f"{paper.key}-{fig.name}.png"
        fig.draw({n: views[id(s)] for n, s in fig.runs.items()}, out / "figures" / name)
        names.append(name)
    return names


def _slug(group: sweep.Group) -> str:
    """A readable, stable name of a group's run: the simulation and the overrides shared by its members."""
    shared = dict(group.points[0].overrides)
    for p in group.points[1:]:
        shared = {k: v for k, v in shared.items() if dict(p.overrides).get(k) == v}
    shared.pop("seed", None)
    parts = [f"{k}{v:g}" if isinstance(v, float) else f"{k}{v}" for k, v in sorted(shared.items())]
    return re.sub(r"[^A-Za-z0-9_.=-]", "", "-".join([group.sim, *parts]))


def _run_figures(groups, results, out: Path) -> list[str]:
    """The standard figures of every run, copied as <simulation>-<overrides>-<figure>.png (unique per run)."""
    names = []
    for g, res in zip(groups, results):
        if res["status"] not in ("completed", "diverged"):
            continue
        for fig in sorted((Path(res["dir"]) / "figures").glob("*.png")):
            name = f"{_slug(g)}-{fig.name}"
            shutil.copy2(fig, out / "figures" / name)
            names.append(name)
    return names


def _train_seconds(results) -> float:
    """The runs' own training time (summary elapsed_s), also for runs reused from an earlier call."""
    total = 0.0
    for r in results:
        try:
            total += float(store.read_json(Path(r["dir"]) / "summary.json").get("elapsed_s") or 0.0)
        except store.RunDirError:
            continue
    return round(total, 1)


def _environment(results) -> dict:
    for r in results:
        try:
            return store.read_json(Path(r["dir"]) / "config.json")["environment"]
        except (store.RunDirError, KeyError):
            continue
    return {}


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    return f"{v:.4g}"


def table(report: dict) -> str:
    lines = ["| claim | paper says | paper value | expected | measured | verdict |", "|---|---|---|---|---|---|"]
    for r in report["rows"]:
        measured = _fmt(r["measured"]) + (f" ({r['details']})" if r["details"] else "")
        cells = [f"`{r['id']}`", r["statement"], r.get("paper") or "", r["expected"], measured, f"**{r['verdict']}**"]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def _header(report: dict) -> str:
    env = report["environment"]
    seed = "" if report.get("seed") is None else f" --seed {report['seed']}"
    return (f"`sims reproduce {report['key']} --preset {report['preset']}{seed}` on {env.get('device', '?')} "
            f"({env.get('threads')} threads, torch {env.get('torch')}), {report['elapsed_s']} s "
            f"(the runs' own training: {report.get('train_s', 0):.0f} s)")


def markdown(report: dict) -> str:
    head = [f"# {report['title']}", "", _header(report) + ".", "", table(report), "", "## Runs", ""]
    runs = sorted({run for r in report["rows"] for run in r["runs"]})
    head += [f"- `{r}`" for r in runs]
    if report["figures"]:
        head += ["", "## Figures", ""] + [f"![{f}](figures/{f})" for f in report["figures"]]
    return "\n".join(head) + "\n"


def _markers(seed: int | None) -> tuple[str, str]:
    tag = "claims" if seed is None else f"claims-seed{seed}"
    return f"<!-- {tag}:begin -->", f"<!-- {tag}:end -->"


def update_paper(papers_dir: Path, report: dict, out: Path) -> Path:
    """Replace the claims table of papers/<key>.md between its markers (one block per --seed) and copy the
    figures into papers/figures/<key>/ (from the main seeds only)."""
    page = papers_dir / f"{report['key']}.md"
    begin, end = _markers(report.get("seed"))
    if report.get("seed") is None:
        figdir = papers_dir / "figures" / report["key"]
        figdir.mkdir(parents=True, exist_ok=True)
        for f in report["figures"]:
            shutil.copy2(out / "figures" / f, figdir / f)
    block = f"{begin}\nMeasured by {_header(report)}, {time.strftime('%Y-%m-%d')}.\n\n{table(report)}\n{end}"
    text = page.read_text() if page.exists() else f"# {report['title']}\n"
    if begin not in text:
        text = text.rstrip("\n") + f"\n\n{begin}\n{end}\n"
    pre, rest = text.split(begin, 1)
    post = rest.split(end, 1)[1] if end in rest else ""
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(pre + block + post)
    return page
