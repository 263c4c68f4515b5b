"""`sims reproduce KEY`: run a paper's claims and write report.md / report.json with figures."""

from __future__ import annotations

import math
import re
import shutil
import time
from pathlib import Path

from .. import api, store
from . import get_claims, verdict

__all__ = ["reproduce"]


def reproduce(key: str, *, preset: str = "default", out: Path | None = None, device: str = "auto",
              quiet: bool = True, papers_dir: Path | None = None, log=print) -> dict:
    """Run every claim of paper `key`; returns the report dict. A failed run is recorded, not raised."""
    paper = get_claims(key)
    out = Path(out) if out is not None else api.default_root() / "reproduce" / f"{key}-{preset}-{time.strftime('%Y%m%d-%H%M%S')}"
    (out / "figures").mkdir(parents=True, exist_ok=True)
    runs: dict[tuple, object] = {}
    failures: dict[tuple, str] = {}
    t0 = time.time()
    for claim in paper.claims:  # run each distinct spec once
        for spec in claim.runs.values():
            k = spec.key(preset)
            if k in runs or k in failures:
                continue
            log(f"[{key}] {spec.label(preset)}")
            try:
                r = api.run(spec.sim, preset=spec.preset or preset, seeds=spec.seeds, device=device,
                            out=out / "runs", quiet=quiet, **dict(spec.overrides))
                if r.summary.get("status") != "completed":
                    failures[k] = f"run ended with status {r.summary.get('status')}"
                runs[k] = r
            except Exception as exc:  # a failed run is a result of the report
                failures[k] = f"{type(exc).__name__}: {exc}"
    rows = []
    for claim in paper.claims:
        ks = {name: spec.key(preset) for name, spec in claim.runs.items()}
        bad = [failures[k] for k in ks.values() if k in failures]
        if bad:
            rows.append(dict(id=claim.id, statement=claim.statement, expected=claim.expected(), measured=None,
                             details=bad[0], verdict="RUN FAILED", paper=claim.paper_value,
                             runs=[claim.runs[n].label(preset) for n in ks]))
            continue
        got = claim.measure({name: runs[k] for name, k in ks.items()})
        value, details = got if isinstance(got, tuple) else (got, "")
        value = float(value)
        rows.append(dict(id=claim.id, statement=claim.statement, expected=claim.expected(), measured=value,
                         details=details, verdict=verdict(claim, value), paper=claim.paper_value,
                         runs=[claim.runs[n].label(preset) for n in ks]))
    figures = []
    for r in runs.values():
        for fig in sorted((r.dir / "figures").glob("*.png")):
            dest = out / "figures" / f"{r.sim_name}-{r.dir.name}-{fig.name}"
            shutil.copy2(fig, dest)
            figures.append(dest.name)
    report = dict(key=key, title=paper.title, preset=preset, device=device, elapsed_s=round(time.time() - t0, 1),
                  rows=rows, figures=figures, run_failures=sorted(set(failures.values())),
                  runs={r.sim_name + "/" + r.dir.name: str(r.dir) for r in runs.values()},
                  environment=store.environment(*_env(runs)))
    store.write_json(out / "report.json", report)
    (out / "report.md").write_text(markdown(report))
    if papers_dir is not None:
        update_paper(Path(papers_dir), report, out)
    report["dir"] = str(out)
    return report


def _env(runs):
    import torch

    for r in runs.values():
        return torch.device(r.environment["device"]), getattr(torch, r.environment["dtype"])
    return torch.device("cpu"), torch.float32


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    return f"{v:.4g}"


def table(report: dict) -> str:
    lines = ["| claim | paper says | expected | measured | verdict |", "|---|---|---|---|---|"]
    for r in report["rows"]:
        measured = _fmt(r["measured"]) + (f" ({r['details']})" if r["details"] else "")
        cells = [f"`{r['id']}`", r["statement"], r["expected"], measured, f"**{r['verdict']}**"]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def markdown(report: dict) -> str:
    env = report["environment"]
    head = [f"# {report['title']} (`sims reproduce {report['key']} --preset {report['preset']}`)", "",
            f"Device {env['device']}, dtype {env['dtype']}, torch {env['torch']}, {env.get('threads')} threads; "
            f"{report['elapsed_s']} s in all.", "", table(report), "", "## Runs", ""]
    runs = sorted({run for r in report["rows"] for run in r["runs"]})
    head += [f"- `{r}`" for r in runs]
    if report["figures"]:
        head += ["", "## Figures", ""] + [f"![{f}](figures/{f})" for f in report["figures"]]
    return "\n".join(head) + "\n"


BEGIN, END = "<!-- claims:begin -->", "<!-- claims:end -->"


def update_paper(papers_dir: Path, report: dict, out: Path) -> Path:
    """Replace the claims table of papers/<key>.md (between the markers) and copy the figures."""
    page = papers_dir / f"{report['key']}.md"
    figdir = papers_dir / "figures" / report["key"]
    figdir.mkdir(parents=True, exist_ok=True)
    for f in report["figures"]:
        shutil.copy2(out / "figures" / f, figdir / re.sub(r"-\d{8}-\d{6}-[0-9a-f]{8}(-\d+)?-", "-", f))
    env = report["environment"]
    block = (f"{BEGIN}\nMeasured by `sims reproduce {report['key']} --preset {report['preset']}` on "
             f"{env['device']} ({env.get('threads')} threads), {report['elapsed_s']} s, "
             f"{time.strftime('%Y-%m-%d')}.\n\n{table(report)}\n{END}")
    text = page.read_text() if page.exists() else f"# {report['title']}\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text:
        text += f"\n{BEGIN}\n{END}\n"
    pre, rest = text.split(BEGIN, 1)
    post = rest.split(END, 1)[1] if END in rest else ""
    page.write_text(pre + block + post)
    return page
