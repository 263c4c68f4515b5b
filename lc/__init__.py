"""Local complexity of piecewise-linear networks (Humayun, Balestriero, Baraniuk 2024, "Deep networks always
grok and here is why").

- `local_complexity(model, x, radius=, n_dirs=)`: crossed units per point and per site in the
  cross-polytope {x +- r v_p}; works for plain modules, Conv2d nets and ensemble models (`n_members`).
- `exact2d.partition(model, origin, basis, bounds=)`: the exact linear regions on a 2-D slice.
- `Probe(points=, radius=, n_dirs=, seed=)`: mean LC at named point sets for the training engine.
- `plot`: LC curves and partition figures (matplotlib imported on use).
"""

from __future__ import annotations

import importlib

from . import exact2d
from .complexity import LCResult, local_complexity
from .frames import orthonormal_frame
from .probe import Probe, random_box_points
from .sites import NoSitesError, PiecewiseLinear

__all__ = ["local_complexity", "LCResult", "Probe", "PiecewiseLinear", "NoSitesError", "random_box_points",
           "orthonormal_frame", "exact2d", "plot"]


def __getattr__(name: str):
    if name == "plot":
        return importlib.import_module(".plot", __name__)
    raise AttributeError(f"module 'lc' has no attribute {name!r}")
