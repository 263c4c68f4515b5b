"""The verdicts of the transitions atlas: the LC paper's hypotheses per member, per radius and per analysis choice.

Each hypothesis is written from a sentence of Humayun, Balestriero, Baraniuk (2024) (`HYPOTHESES`, with the
sentence it tests) and is sign-aware. Times are measured in units of the delay: with m the memorisation step
(train accuracy reaches 1), g the generalisation step (the test curve half-way, `sims.transitions.record`) and
D = g / m the delay, a step t sits at u(t) = log(t / m) / log(D) (memorisation at 0, the transition at 1), and
"around the transition" is the window |u(t) - 1| <= WINDOW, i.e. t in [g D^-WINDOW, g D^WINDOW].

- (a)  the last descent of LC at the training points begins in the window. The start of a run is never a turning
       point (`sims.transitions.last_descent`), so a curve that falls from init and never turns has no last
       descent. A member without delay (D <= 1) or without transition is n/a.
- (a') LC at the training points rises after memorisation to a peak in the window: the largest smoothed LC over
       [m, g D^WINDOW] lies in the window and exceeds LC at m by the turning filter.
- (b)  region boundaries migrate towards the decision boundary: the share of region-boundary length near the
       decision boundary rises from memorisation to the end. Raw share and area-normalised ratio must agree;
       otherwise `normalisation-dependent`.
- (c)  from memorisation to the end LC at the training points falls, and LC at random points changes less (in
       relative terms). Rising LC at the data fails (it is not the paper's picture).

A member's verdict is holds / fails / n/a (or normalisation-dependent); a setting's combines its members
(`combine`: holds, fails or mixed); its radii give the common verdict, else `radius-dependent`. A row whose run
has not settled (`settle`) gets `undetermined: run too short`. `sensitivity` recomputes every verdict under
the grid `GRID` of analysis choices and reports the share of choices that give the modal verdict; a verdict is
robust when that share is at least ROBUST and the modal verdict is the verdict.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from dataclasses import dataclass, replace

import numpy as np

from lc.keys import radii, select

from . import transitions

__all__ = ["HYPOTHESES", "Choice", "Member", "GRID", "members", "member_verdicts", "combine", "settle",
           "verdicts", "sensitivity", "UNDETERMINED", "migration_pairs"]

HYPOTHESES = {
    "a": ("the last descent of LC at the training points begins around the transition",
          "the final descent accompanies delayed generalisation (grokking) (PAPERS.md section 6; "
          "papers/humayun2024.md: 'this final descent comes with delayed generalisation (grokking)')"),
    "a2": ("LC at the training points rises again after memorisation, up to the transition",
           "'the network increases the local complexity near training points both during memorization and "
           "generalization' (quoted in issue 23 from the LC paper)"),
    "b": ("region boundaries migrate towards the decision boundary (raw share and area ratio agree)",
          "'in the final descent the linear regions migrate away from the training points towards the decision "
          "boundary' (papers/humayun2024.md)"),
    "c": ("LC at the training points falls after memorisation, and LC away from the data changes less",
          "'LC around data goes through three phases: ... a final descent in which linear regions migrate away "
          "from the data' (PAPERS.md section 6): the fall is at the data"),
}
WINDOW = 0.5  # half-width of the window around the transition, in units of log(delay)
MIN_EVALS = 10  # fewer evaluations strictly between memorisation and transition: the verdict is flagged
SETTLE_TOL, SETTLE_DECADES, SETTLE_FACTOR = 0.02, 0.5, 10.0  # settling rule (`settle`)
ROBUST = 0.9  # share of analysis choices that must give the modal verdict
UNDETERMINED = "undetermined: run too short"
GRID = dict(window=(1, 3, 5), turn=(0.025, 0.05, 0.1), cut=(0.5, 1.0), norm=("raw", "ratio"))


@dataclass(frozen=True)
class Choice:
    """One set of analysis choices: running-median window, turning filter (relative), the share of the run kept,
    the LC radius (None: a single-radius probe), and the migration normalisation ('raw', 'ratio' or 'both')."""

    window: int = 3
    turn: float = 0.1
    cut: float = 1.0
    radius: float | None = None
    norm: str = "both"


@dataclass
class Member:
    """One member's curves as the atlas reads them: steps [T], test and train [T], LC {(points, radius): [T]},
    the rule its record was measured by (`transitions.record`), its migration record (or None), and the
    generalisation and memorisation steps of its record in summary.json (None where absent)."""

    steps: np.ndarray
    test: np.ndarray
    train: np.ndarray | None
    lc: dict
    rule: dict
    migration: dict | None
    g: float | None = None
    m: float | None = None


def members(view, records: list, test: str, train: str) -> list[Member | None]:
    """The members of a run view with a transition record (None for a member without one)."""
    names = view.metric_names
    keys = {(p, r): select(names, p, r) for r in radii(names) for p in ("train", "random")
            if _has(names, p, r)}
    curves = {k: view.metric(n) for k, n in keys.items()}
    out = []
    for e, rec in enumerate(records):
        if rec is None or test not in names:
            out.append(None)
            continue
        rule = {**dict(start=None, fraction=0.5, window=3, min_rel_change=0.1, min_change=0.0), **rec.get("rule", {})}
        out.append(Member(np.asarray(view.steps), view.metric(test)[:, e],
                          view.metric(train)[:, e] if train in names else None,
                          {k: v[:, e] for k, v in curves.items()}, rule, _migration_record(rec),
                          rec.get("generalisation_step"), rec.get("memorisation_step")))
    return out


def _migration_record(rec: dict) -> dict | None:
    """The migration a record's (b) is read from: on a slice through training points where the setting measures
    one ('migration_points_plane', XOR's plane through 0 and two training points), else 'migration'."""
    return rec.get("migration_points_plane") or rec.get("migration")


def _has(names, points: str, radius) -> bool:
    try:
        select(names, points, radius)
    except KeyError:
        return False
    return True


def _window(g: float, m: float) -> tuple[float, float]:
    d = g / m
    return g * d ** -WINDOW, g * d ** WINDOW


def _record(mb: Member, choice: Choice) -> dict | None:
    """The member's transition record under `choice` (window, filter, cut), or None when the cut run cannot
    hold one (its start step is cut away, or fewer than 3 evaluations remain)."""
    keep = mb.steps <= choice.cut * mb.steps[-1]
    start = mb.rule["start"]
    if keep.sum() < 3 or (start is not None and not np.any(mb.steps[keep] == start)):
        return None
    lc = {k: v[keep] for k, v in mb.lc.items() if k[1] == choice.radius}
    rec = transitions.record(mb.steps[keep], test=mb.test[keep], train=None if mb.train is None else mb.train[keep],
                             start=start, fraction=mb.rule["fraction"], min_change=mb.rule["min_change"],
                             window=choice.window, min_rel_change=choice.turn,
                             lc={p: v for (p, _), v in lc.items()})
    rec["curves"] = {p: v for (p, _), v in lc.items()}
    rec["steps"] = mb.steps[keep]
    return rec


def _a(rec: dict, choice: Choice) -> tuple[str, dict]:
    g, m, lc = rec["generalisation_step"], rec["memorisation_step"], rec["curves"].get("train")
    if lc is None or g is None or not m or g <= m:
        return "n/a", {}
    last = transitions.last_descent(rec["steps"], lc, window=choice.window, min_rel_change=choice.turn)
    if last is None:
        return "fails", dict(descent=None)
    lag = math.log(g / last.step) / math.log(g / m)  # > 0: the descent begins before the transition
    return ("holds" if abs(lag) <= WINDOW else "fails"), dict(descent=last.step, lag=lag)


def _a2(rec: dict, choice: Choice) -> tuple[str, dict]:
    g, m, lc = rec["generalisation_step"], rec["memorisation_step"], rec["curves"].get("train")
    if lc is None or g is None or not m or g <= m:
        return "n/a", {}
    s, v = rec["steps"], transitions.smooth(lc, choice.window)
    lo, hi = _window(g, m)
    span = np.flatnonzero((s >= m) & (s <= hi))
    if len(span) < 2:
        return "n/a", {}
    peak = span[int(np.argmax(v[span]))]
    rise = (v[peak] - v[span[0]]) / max(abs(v[span[0]]), 1e-12)
    ok = s[peak] >= lo and rise > choice.turn
    return ("holds" if ok else "fails"), dict(peak=int(s[peak]), rise=float(rise))


def _c(rec: dict, choice: Choice) -> tuple[str, dict]:
    m, tr, rd = rec["memorisation_step"], rec["curves"].get("train"), rec["curves"].get("random")
    if tr is None or rd is None or m is None:
        return "n/a", {}
    s = rec["steps"]
    i0 = min(int(np.searchsorted(s, m)), len(s) - 1)

    def rel(curve):
        v = transitions.smooth(curve, choice.window)
        return float((v[-1] - v[i0]) / max(abs(v[i0]), 1e-12))

    t, r = rel(tr), rel(rd)
    return ("holds" if t < 0 and abs(r) < abs(t) else "fails"), dict(train=t, random=r)


def migration_pairs(mig: dict | None) -> dict:
    """{'raw': [before, after] of the share of region-boundary length near the decision boundary, 'ratio': the
    same divided by the share of area there}; None for a normalisation the record lacks. The one place the atlas
    reads a migration record."""
    out = {}
    for norm, key in (("raw", "boundary_share"), ("ratio", "boundary_ratio")):
        pair = [None if not mig or not mig.get(p) else mig[p].get(key) for p in ("before", "after")]
        ok = all(x is not None and math.isfinite(x) for x in pair)
        out[norm] = [float(x) for x in pair] if ok else None
    return out


def _b(mig: dict | None, norm: str) -> tuple[str, dict]:
    pairs = migration_pairs(mig)
    signs = {k: ("holds" if p[1] > p[0] else "fails") for k, p in pairs.items() if p is not None}
    picked = list(signs.values()) if norm == "both" else [signs[norm]] if norm in signs else []
    if not picked or (norm == "both" and len(signs) < 2):
        return "n/a", pairs
    return (picked[0] if len(set(picked)) == 1 else "normalisation-dependent"), pairs


def member_verdicts(mb: Member | None, choice: Choice) -> dict:
    """{hypothesis: (verdict, numbers)} of one member under one set of analysis choices."""
    if mb is None:
        return {h: ("n/a", {}) for h in HYPOTHESES}
    rec = _record(mb, choice)
    out = {"b": _b(mb.migration, choice.norm)}
    for h, f in (("a", _a), ("a2", _a2), ("c", _c)):
        out[h] = ("n/a", {}) if rec is None else f(rec, choice)
    return out


def combine(verdicts, mixed: str = "mixed") -> str:
    """The common verdict of several (n/a left out): n/a when none is left, `mixed` when they differ."""
    left = [v for v in verdicts if v != "n/a"]
    return "n/a" if not left else left[0] if len(set(left)) == 1 else mixed


def settle(mb: Member | None) -> tuple[bool, str]:
    """Whether a member's run settled: its last step is at least SETTLE_FACTOR x its generalisation step (its
    memorisation step without a transition), or its test curve and every LC curve at the training points
    moved by less than SETTLE_TOL (relative) over the last SETTLE_DECADES of log-step. With the reason."""
    if mb is None:
        return True, "no record"
    unit = mb.g or mb.m
    if unit and mb.steps[-1] >= SETTLE_FACTOR * unit:
        return True, f"ran {mb.steps[-1] / unit:.3g}x its transition"
    curves = [("test", mb.test)] + [(f"lc_{p} at r {_rkey(r)}", v) for (p, r), v in mb.lc.items() if p == "train"]
    moving = [n for n, v in curves if not transitions.settled(mb.steps, v, tol=SETTLE_TOL, decades=SETTLE_DECADES)]
    if not moving:
        return True, "settled"
    ran = f"{mb.steps[-1] / unit:.3g}x its transition" if unit else "no transition"
    return False, f"still moving: {', '.join(moving)} ({ran})"


def _coarse(mb: Member | None) -> str | None:
    """A flag when fewer than MIN_EVALS evaluations lie strictly between memorisation and transition."""
    if mb is None or mb.g is None or mb.m is None:
        return None
    n = int(np.sum((mb.steps > mb.m) & (mb.steps < mb.g)))
    return f"{n} evaluations between memorisation and transition (< {MIN_EVALS})" if n < MIN_EVALS else None


def _rkey(r) -> str:
    return "single" if r is None else f"{r:g}"


def _base(mbs) -> tuple[Choice, list]:
    """The setting's own analysis choices (its records' window and filter, the whole run) and its radii."""
    ok = [m for m in mbs if m is not None]
    rule = ok[0].rule if ok else dict(window=3, min_rel_change=0.1)
    rs = sorted({r for m in ok for (p, r) in m.lc if p == "train"}, key=lambda r: -1.0 if r is None else r)
    return Choice(window=rule["window"], turn=rule["min_rel_change"]), rs or [None]


def verdicts(mbs: list[Member | None]) -> dict:
    """A setting's verdicts (module docstring): whether it settled (with each member's reason), flags, the lag
    of the last LC descent (units of log delay, min and max over members and radii), the migration pairs per
    member, and per hypothesis {verdict, measured, modal, robustness, robust, per_radius, per_member, numbers}."""
    base, rs = _base(mbs)
    per = {r: [member_verdicts(m, replace(base, radius=r)) for m in mbs] for r in rs}  # radius -> member -> h
    settled = [settle(m) for m in mbs]
    is_settled = all(ok for ok, _ in settled)
    sens = sensitivity(mbs)
    lags = [v["a"][1]["lag"] for r in rs for v in per[r] if "lag" in v["a"][1]]
    out = dict(settled=is_settled, settle=[why for _, why in settled],
               flags=sorted({f for f in map(_coarse, mbs) if f}),
               lag=[min(lags), max(lags)] if lags else None,
               migration={norm: [migration_pairs(m.migration if m else None)[norm] for m in mbs]
                          for norm in ("raw", "ratio")},
               verdicts={})
    for h in HYPOTHESES:
        per_radius = {_rkey(r): combine(v[h][0] for v in per[r]) for r in rs}
        measured = combine(per_radius.values(), "radius-dependent")
        modal, share = sens[h]
        out["verdicts"][h] = dict(
            verdict=measured if is_settled else UNDETERMINED, measured=measured, modal=modal, robustness=share,
            robust=is_settled and share >= ROBUST and modal == measured, per_radius=per_radius,
            per_member=[combine((per[r][e][h][0] for r in rs), "radius-dependent") for e in range(len(mbs))],
            numbers={_rkey(r): [v[h][1] for v in per[r]] for r in rs})
    return out


def sensitivity(mbs: list[Member | None], grid: dict | None = None) -> dict:
    """Per hypothesis: (the modal verdict, the share of analysis choices that give it) over every combination of
    `grid` (default GRID: window, turning filter, cut, migration normalisation) and every radius probed."""
    grid = grid or GRID
    _, rs = _base(mbs)
    tally = {h: Counter() for h in HYPOTHESES}
    for w, t, cut, r in itertools.product(grid["window"], grid["turn"], grid["cut"], rs):
        per = [member_verdicts(m, Choice(window=w, turn=t, cut=cut, radius=r, norm="raw")) for m in mbs]
        for norm in grid["norm"]:
            for h in HYPOTHESES:
                got = [_b(m.migration if m else None, norm)[0] for m in mbs] if h == "b" else [v[h][0] for v in per]
                tally[h][combine(got)] += 1
    out = {}
    for h, c in tally.items():
        modal, n = c.most_common(1)[0]
        out[h] = (modal, round(n / sum(c.values()), 3))
    return out
