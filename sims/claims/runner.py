"""`sims reproduce KEY`: run a paper's claims and figures and write report.md / report.json.

Every configuration the claims and figures need is planned and validated first (a usage error writes
nothing), then run once through `sims.sweep.execute` (here or on Dask workers; a report directory used before
reuses its completed runs and resumes interrupted ones), then measured. `--update-papers` writes the claims
table into papers/KEY.md and updates papers/figures/KEY/ (`_page_figures`), never from a report whose runs
failed; a page is rewritten only between both of its markers (atomically), and every target is checked before any
run trains.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import time
from pathlib import Path
from typing import Callable

from .. import api, checks, locks, outdir, registry, store, sweep
from ..config import ConfigError
from . import Claim, RunSpec, SweepRuns, evaluate, get_claims, seeds as protocol

__all__ = ["reproduce", "plan", "table", "markdown", "update_paper", "check_papers"]


def _spec_points(spec, preset: str, seed: int | None) -> list[list[sweep.Point]]:
    """Per configuration of the spec (one for a RunSpec, one per grid point of a Sweep): its points, one per seed."""
    return [sweep.seeded_points(spec.sim, spec.preset or preset, settings, spec.seeds, seed)
            for settings in spec.settings()]


def plan(paper, preset: str, seed: int | None):
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
    row = dict(id=claim.id, statement=claim.statement, paper=claim.paper_value, rate=claim.rate,
               control=claim.control, runs=[s.label(preset) for s in claim.runs.values()])
    bad = [failures[id(s)] for s in claim.runs.values() if id(s) in failures]
    if bad:
        return dict(row, expected=claim.expected(math.nan), target=None, measured=None, details=bad[0],
                    verdict="RUN FAILED")
    runs = {name: views[id(s)] for name, s in claim.runs.items()}
    return dict(row, **evaluate(claim, runs))


def reproduce(key: str, *, preset: str = "default", out: Path | None = None, device: str = "auto",
              quiet: bool = True, papers_dir: Path | None = None, seed: int | None = None, workers: int = 0,
              scheduler: str | None = None, threads: int | None = None, log: Callable[[str], None] = print) -> dict:
    """Run every claim and figure of paper `key`; returns the report dict. A failed run is recorded, not raised.

    seed: the first seed of every configuration (default: the paper's claim-seed block, `sims.claims.seeds`; the
    preset's own seed at a preset that checks mechanics only); claims run on seeds seed, seed + 1, ...
    """
    checks.arguments(threads=threads, seed=seed, workers=workers, out=out)
    paper = get_claims(key)
    base = protocol.claim_base(key, preset, seed)
    specs, points, groups = plan(paper, preset, base)  # raises ConfigError before anything is written
    sweep.check_groups(groups, device)
    sweep.check_executor(workers, scheduler)
    if papers_dir is not None:
        papers_dir = check_papers(papers_dir, key, seed)  # every target, before any run trains
    tag = f"{key}-{preset}" + (f"-seed{seed}" if seed is not None else "")
    out = out if out is not None else api.default_root() / "reproduce" / f"{tag}-{time.strftime('%Y%m%d-%H%M%S')}"
    out = outdir.claim(out, "reproduce")  # a foreign non-empty directory is refused before anything is written
    with locks.RunLock(out, f"sims reproduce {key}"):  # a second reproduce on it: exit 2 naming this one
        return _reproduce_into(out, paper, specs, points, groups, key=key, preset=preset, seed=seed, base=base,
                               device=device, workers=workers, scheduler=scheduler, threads=threads, quiet=quiet, log=log,
                               papers_dir=papers_dir)


def _reproduce_into(out: Path, paper, specs, points, groups, *, key, preset, seed, base, device, workers, scheduler,
                    threads, quiet, log, papers_dir) -> dict:
    """Run the planned groups into `out` (claimed and locked), measure, write the report; see `reproduce`."""
    (out / "figures").mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    log(f"[{key}] {sum(len(g.points) for g in groups)} configuration-seeds in {len(groups)} ensemble run(s)")
    results, where = sweep.execute(groups, out, device=device, workers=workers, scheduler=scheduler,
                                   threads=threads, log=None if quiet else log)
    views, failures = _views(specs, points, groups, results)
    rows = [_measure(c, views, failures, preset) for c in paper.claims]
    figures = _paper_figures(paper, views, out) + _run_figures(groups, results, out)
    report = dict(key=key, title=paper.title, preset=preset, seed=seed, base_seed=base,
                  meaning=meaning(key, preset, base), device=device, executor=where,
                  elapsed_s=round(time.time() - t0, 1), train_s=_train_seconds(results),
                  reused=sum(bool(r.get("reused")) for r in results), rows=rows, figures=figures,
                  run_failures=sorted(set(failures.values())), runs=[r["dir"] for r in results],
                  environment=_environment(results))
    store.write_json(out / "report.json", report)
    store.write_text(out / "report.md", markdown(report))
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


def meaning(key: str, preset: str, base: int | None) -> str:
    """One line: whether the verdicts of a report at `preset` on base seed `base` say anything about the paper."""
    if preset in protocol.MEANINGLESS_PRESETS:
        return (f"Preset `{preset}` checks the mechanics only (tiny runs): its verdicts say nothing about the paper "
                "and are shown as \"(ci: mechanics only)\".")
    seeds = f"base seed {base}" if base is not None else "the preset's own seeds"
    if protocol.is_tuning(key, base):
        return (f"Preset `{preset}` on {seeds}, seeds the preset was tuned on: the verdicts are not independent "
                "evidence (run without --seed for the paper's claim seeds, or with --fresh K).")
    return f"Preset `{preset}` on {seeds} (no tuning was done on these seeds): the verdicts test the paper's claims."


def _verdict_cell(report: dict, verdict: str) -> str:
    if report["preset"] in protocol.MEANINGLESS_PRESETS and verdict in ("PASS", "FAIL"):
        return f"{verdict} (ci: mechanics only)"
    return f"**{verdict}**"


def _statement(r: dict) -> str:
    return r["statement"] + (f" (no control test: {r['control']})" if r.get("control") else "")


CELL = 80  # characters: a longer claims-table cell is cut, its full text numbered in the Details list below


def _cell(text, where: str, details: list[str]) -> str:
    """`text` as a table cell: whole when at most CELL characters, else cut at a word with a reference [n] to
    details[n - 1], which `where` (the claim and column) and the full text are appended to."""
    text = str(text)
    if len(text) <= CELL:
        return text
    details.append(f"{where}: {text}")
    cut = text[:CELL - 12].rsplit(" ", 1)[0]
    if cut.count("`") % 2:  # never leave a code span open
        cut = cut[:cut.rindex("`")]
    cut = cut.rstrip(" ,;:([")
    return f"{cut} ... [{len(details)}]"


def table(report: dict) -> str:
    """The claims table of a report, one row per claim, every cell at most ~CELL characters; the full text of a
    cut cell follows the table as a numbered "Details" list."""
    lines = ["| claim | paper says | paper value | expected | measured | verdict |", "|---|---|---|---|---|---|"]
    details: list[str] = []
    for r in report["rows"]:
        measured = _fmt(r["measured"]) + (f" ({r['details']})" if r["details"] else "")
        texts = {"paper says": _statement(r), "paper value": r.get("paper") or "", "expected": r["expected"],
                 "measured": measured}
        cells = [f"`{r['id']}`", *(_cell(v, f"`{r['id']}`, {k}", details) for k, v in texts.items()),
                 _verdict_cell(report, r["verdict"])]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    if details:
        lines += ["", "Details:", ""] + [f"{i}. {d}" for i, d in enumerate(details, 1)]
    return "\n".join(lines)


def _header(report: dict) -> str:
    env = report["environment"]
    seed = "" if report.get("seed") is None else f" --seed {report['seed']}"
    block = "" if report.get("seed") is not None or report.get("base_seed") is None else \
        f" (claim seeds from {report['base_seed']})"
    n, reused = len(report.get("runs", ())), report.get("reused", 0)
    wall = f"{report['elapsed_s']} s" + (" (reused runs" if n and reused == n else
                                         f" ({reused} of {n} runs reused" if reused else " (")
    sep = "; " if reused else ""
    return (f"`sims reproduce {report['key']} --preset {report['preset']}{seed}`{block} on {env.get('device', '?')} "
            f"({env.get('threads')} threads, torch {env.get('torch')}), {wall}{sep}"
            f"the runs' own training: {report.get('train_s', 0):.0f} s)")


def markdown(report: dict) -> str:
    head = [f"# {report['title']}", "", f"**{report.get('meaning', '')}**", "", _header(report) + ".", "",
            table(report), "", "## Runs", ""]
    runs = sorted({run for r in report["rows"] for run in r["runs"]})
    head += [f"- `{r}`" for r in runs]
    if report["figures"]:
        head += ["", "## Figures", ""] + [f"![{f}](figures/{f})" for f in report["figures"]]
    return "\n".join(head) + "\n"


def _markers(seed: int | None) -> tuple[str, str]:
    tag = "claims" if seed is None else f"claims-seed{seed}"
    return f"<!-- {tag}:begin -->", f"<!-- {tag}:end -->"


def _page_parts(page: Path, begin: str, end: str) -> tuple[str, str] | None:
    """(text before `begin`, text after `end`) of an existing page; None for a page without either marker (the
    block is appended). A page with one marker but not the other, or either twice, is a ConfigError."""
    text = page.read_text()
    n_begin, n_end = text.count(begin), text.count(end)
    if n_begin == n_end == 0:
        return None
    if n_begin != 1 or n_end != 1 or text.index(end) < text.index(begin):
        raise ConfigError(f"--update-papers: {page} holds {n_begin} {begin} and {n_end} {end} marker(s); it needs "
                          "one of each, begin before end, around the measured table (the page is rewritten only "
                          "between them): fix the markers")
    pre, rest = text.split(begin, 1)
    return pre, rest.split(end, 1)[1]


def check_papers(papers_dir, key: str, seed: int | None) -> Path:
    """The papers directory as a Path, if `--update-papers` can write page `key` there; else a ConfigError naming
    the target: an empty path, a missing directory or a file, a page that is not a file or has broken markers,
    figures/ or figures/KEY that is not a directory, a directory that cannot be written. Writes nothing."""
    if papers_dir is None or str(papers_dir).strip() == "":
        raise ConfigError("--update-papers is empty; give the directory of the pages (e.g. papers)")
    papers = Path(papers_dir)
    if not papers.is_dir():
        what = "is a file" if papers.exists() else "does not exist"
        raise ConfigError(f"--update-papers {papers} {what}; give the directory of the pages (e.g. papers)")
    page = papers / f"{key}.md"
    if page.exists() and not page.is_file():
        raise ConfigError(f"--update-papers: the page {page} is not a file; move it aside")
    if page.exists():
        _page_parts(page, *_markers(seed))
    dirs = [papers] + ([papers / "figures", papers / "figures" / key] if seed is None else [])
    for d in dirs:
        if d.exists() and not d.is_dir():
            raise ConfigError(f"--update-papers: {d} is a file, not a directory of figures; move it aside")
        if d.exists() and not os.access(d, os.W_OK | os.X_OK):
            raise ConfigError(f"--update-papers: cannot write in {d}; fix its permissions")
    if page.exists() and not os.access(page, os.W_OK):
        raise ConfigError(f"--update-papers: the page {page} is read-only; fix its permissions")
    return papers


def _shown(text: str, key: str) -> set[str]:
    """Names of the figures in figures/<key>/ that a page's markdown `text` shows."""
    return set(re.findall(rf"!\[[^\]]*\]\(figures/{re.escape(key)}/([^)/\s]+)\)", text))


def _page_figures(figdir: Path, report: dict, out: Path, page_text: str) -> None:
    """Copy into `figdir` (papers/figures/<key>/) the report's paper-level figures (<key>-*) and the run figures the
    page shows; remove the files of earlier updates it no longer writes: PNGs named <key>-* or <simulation>-* that
    the page does not show. Any other file there is left alone."""
    key = report["key"]
    shown = _shown(page_text, key)
    written = {f for f in report["figures"] if f.startswith(f"{key}-") or f in shown}
    figdir.mkdir(parents=True, exist_ok=True)
    for f in sorted(written):
        shutil.copy2(out / "figures" / f, figdir / f)
    ours = (f"{key}-", *(f"{name}-" for name in registry.names()))
    for old in figdir.glob("*.png"):
        if old.name.startswith(ours) and old.name not in written and old.name not in shown:
            old.unlink()


def update_paper(papers_dir: Path, report: dict, out: Path) -> Path:
    """Replace the claims table of papers/<key>.md between its markers (one block per --seed; a page without
    them gets the block appended; broken markers are a ConfigError and change nothing) and, from the main seeds
    only, update papers/figures/<key>/ (`_page_figures`: the paper's figures and the run figures the page shows; the
    ones an earlier update wrote and this one does not are removed). The page is replaced atomically."""
    papers_dir = check_papers(papers_dir, report["key"], report.get("seed"))
    page = papers_dir / f"{report['key']}.md"
    begin, end = _markers(report.get("seed"))
    block = f"{begin}\nMeasured by {_header(report)}, {time.strftime('%Y-%m-%d')}.\n\n{table(report)}\n{end}"
    parts = _page_parts(page, begin, end) if page.exists() else None
    if parts is None:
        text = page.read_text() if page.exists() else f"# {report['title']}\n"
        parts = (text.rstrip("\n") + "\n\n", "\n")
    text = parts[0] + block + parts[1]
    if report.get("seed") is None:
        _page_figures(papers_dir / "figures" / report["key"], report, out, text)
    store.write_text(page, text)
    return page
