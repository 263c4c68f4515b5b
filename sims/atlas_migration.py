"""Migration on every member's slice for the atlas, where a setting's records measure it on member 0 only.

modular-addition and image-grokking keep the migration of region boundary ('before': the snapshot at (nearest
to) memorisation, 'after': the last snapshot) in member 0's transition record only. `fill` measures it for the
other members from their snapshots with the settings' own slices (`modular_addition.phase_slices`,
`image_grokking.member_slice` + `image_slices.migration`), so each member has both the raw share and the
area-normalised ratio; the numbers are cached in the atlas directory (migration.json) so a redraw costs nothing.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

__all__ = ["fill"]


def _pair(before: tuple[int, object], after: tuple[int, object]) -> dict | None:
    """A migration record from (step, numbers) before and after: numbers with boundary_share / boundary_ratio."""
    out = {}
    for k, (step, m) in (("before", before), ("after", after)):
        get = (lambda n: getattr(m, n)) if not isinstance(m, dict) else m.get
        out[k] = dict(step=int(step), boundary_share=float(get("boundary_share")),
                      boundary_ratio=float(get("boundary_ratio")))
    return out if before[0] < after[0] else None


def _modular(view, e: int, rec: dict) -> dict | None:
    from .settings.dichotomy import modular_addition

    phases = {p: (s, mig) for p, s, _, _, _, mig in modular_addition.phase_slices(view, e, rec)}
    return _pair(phases["memorised"], phases["after"]) if {"memorised", "after"} <= set(phases) else None


def _image(view, e: int, rec: dict) -> dict | None:
    from .settings.images import grokking as ig
    from .settings.images import slices as image_slices

    run, g = view.run, view.idx[e]
    snaps, mem = ig.snapshots(run), rec.get("memorisation_step")
    if mem is None or len(snaps) < 2:
        return None
    sl = ig.member_slice(run, g)
    numbers = [(s, image_slices.migration(image_slices.partition(ig.snapshot_model(run, s).member(g), sl), sl))
               for s in (ig.nearest_step(snaps, mem), snaps[-1])]
    return _pair(*numbers)


MEASURES = {"modular-addition": _modular, "image-grokking": _image}


def fill(sim: str, view, records: list, cache: Path) -> list:
    """The records with 'migration' measured for every member that lacks it (settings in MEASURES with
    snapshots); other records are returned as they are. `cache`: a JSON file of numbers measured before."""
    measure = MEASURES.get(sim)
    if measure is None or not (Path(view.dir) / "snapshots").is_dir():
        return records
    saved = json.loads(cache.read_text()) if cache.exists() else {}
    out = []
    for e, rec in enumerate(records):
        if rec is not None and not rec.get("migration"):
            key = f"{Path(view.dir).name}/{view.idx[e]}"
            if key not in saved:
                saved[key] = measure(view, e, rec)
            mig = saved[key]
            ok = mig and all(math.isfinite(mig[p]["boundary_ratio"]) for p in ("before", "after"))
            rec = {**rec, "migration": mig if ok else None}
        out.append(rec)
    cache.write_text(json.dumps(saved, indent=1))
    return out
