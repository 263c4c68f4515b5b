"""Metric names of LC probes, built and parsed in one place.

A probe writes its metrics under names of the form

    lc_<points>[/<site>][@r<radius>]

- `points`: the point set ("train", "test", "random", ...): no '/', '@' or spaces;
- `site`: the piecewise-linear site (module name) when the metric is per site, else absent (sum over sites);
- `radius`: present only when the probe measured several radii ("@r0.5"); a probe with one radius writes
  no suffix, and the radius is then the setting's own (`radius=None` here).

`LCKey.parse(name)` gives the parts (None for a name that is not an LC metric), `str(key)` the name and
`key.label` the name without its `lc_` prefix (for legends and tables). `select(names, points, radius=...)`
picks the name a reader wants from a run's metric names without relying on their order; `per_site(name)` says
whether a metric is one site's share (readers that print totals leave those out). `PATTERN` and `MEANING`
describe the family for a setting's declaration of its metrics.

This module imports neither torch nor numpy: a command that only reads names stays light.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Iterable

__all__ = ["LCKey", "lc_name", "lc_keys", "select", "radii", "per_site", "PATTERN", "MEANING"]

PATTERN = "lc_<points>[/<site>][@r<radius>]"  # the family of names, as a setting declares it
MEANING = ("local complexity: mean number of crossed units (of one site, or summed over sites) in the "
           "cross-polytope of radius r around each point of the set (units per point)")

_PATTERN = re.compile(r"lc_(?P<points>[^/@\s]+)(?:/(?P<site>[^@\s]+))?(?:@r(?P<radius>[^@/\s]+))?")


@dataclass(frozen=True)
class LCKey:
    """One LC metric name: point set, optional site, optional radius (None: the probe's only radius)."""

    points: str
    site: str | None = None
    radius: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.points, str) or not self.points or any(c in self.points for c in "/@ "):
            raise ValueError(f"points must be a non-empty name without '/', '@' or spaces; got {self.points!r}")
        if self.site is not None and (not isinstance(self.site, str) or not self.site
                                      or any(c in self.site for c in "@ ")):
            raise ValueError(f"site must be None or a non-empty name without '@' or spaces; got {self.site!r}")
        if self.radius is not None:
            r = float(self.radius)
            if not (math.isfinite(r) and r > 0):
                raise ValueError(f"radius must be None or a positive finite number; got {self.radius!r}")
            object.__setattr__(self, "radius", r)

    def __str__(self) -> str:
        return (f"lc_{self.points}" + (f"/{self.site}" if self.site is not None else "")
                + (f"@r{self.radius:g}" if self.radius is not None else ""))

    @property
    def label(self) -> str:
        """The name without the `lc_` prefix: points[/site][@r<radius>]."""
        return str(self)[len("lc_"):]

    @property
    def total(self) -> bool:
        """True for the sum over sites (no site part)."""
        return self.site is None

    @classmethod
    def parse(cls, name: str) -> "LCKey | None":
        """The parts of an LC metric name, or None when `name` is not one."""
        m = _PATTERN.fullmatch(name) if isinstance(name, str) else None
        if m is None:
            return None
        radius = m.group("radius")
        if radius is not None:
            try:
                radius = float(radius)
            except ValueError:
                return None
            if not (math.isfinite(radius) and radius > 0):
                return None
        return cls(m.group("points"), m.group("site"), radius)


def lc_name(points: str, radius: float | None = None, site: str | None = None) -> str:
    """The metric name for LC at `points` (sum over sites unless `site`), with the radius suffix if given."""
    return str(LCKey(points, site, radius))


def lc_keys(names: Iterable[str], *, total: bool | None = None) -> list[LCKey]:
    """The LC keys among `names` in their order; `total=True` keeps sums over sites, False per-site only."""
    keys = [k for k in map(LCKey.parse, names) if k is not None]
    return [k for k in keys if total is None or k.total == total]


def per_site(name: str) -> bool:
    """True when `name` is an LC metric of one site (a share of the total), False for any other name."""
    key = LCKey.parse(name)
    return key is not None and not key.total


def radii(names: Iterable[str]) -> list[float | None]:
    """The distinct radii among the LC metrics in `names`, ascending ([None] for a single-radius probe)."""
    found = {k.radius for k in lc_keys(names, total=True)}
    return sorted(found, key=lambda r: -1.0 if r is None else r)


def select(names: Iterable[str], points: str, radius: float | None = None, *, site: str | None = None) -> str:
    """The metric name for `points` (and `site`) at `radius` among `names`.

    radius=None accepts the name without a suffix (a single-radius probe); a radius matches either the suffixed
    name or, when the run probed one radius only, the unsuffixed one. Raises KeyError naming what exists.
    """
    names = list(names)
    keys = [k for k in lc_keys(names) if k.points == points and k.site == site]
    for k in keys:
        if k.radius is None and (radius is None or all(j.radius is None for j in keys)):
            return str(k)
        if radius is not None and k.radius is not None and math.isclose(k.radius, float(radius), rel_tol=1e-9):
            return str(k)
    have = sorted(str(k) for k in keys) or sorted(str(k) for k in lc_keys(names, total=True))
    raise KeyError(f"no LC metric for points={points!r} site={site!r} radius={radius!r}; have {have}")
