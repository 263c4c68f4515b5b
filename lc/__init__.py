"""Local complexity of piecewise-linear networks (Humayun, Balestriero, Baraniuk 2024, "Deep networks always
grok and here is why").

- `local_complexity(model, x, radius=, n_dirs=)`: crossed units per point and per site in the
  cross-polytope {x +- r v_p}: LC(x) = sum over sites of #{units whose pre-activation is not of one strict
  sign on the 2P vertices} (a unit 0 at every vertex is not crossed). Works for plain modules, Conv2d nets,
  image MLPs starting with nn.Flatten, ensemble models (`n_members`), and activations applied as functions
  in forward (`output_sites=["fc1", ...]`, the modules whose outputs they take).
- `exact2d.partition(model, origin, basis, bounds=)`: the exact linear regions on a 2-D slice.
- `migration`: on an exact partition, the length of the region boundaries and its shares within delta of
  the decision boundary and of given points (`region_migration`), regions meeting a disc
  (`regions_in_disc`, the exact count LC estimates), the slice through three points (`plane_through`).
- `Probe(points=, radius=, n_dirs=, seed=)`: mean LC at named point sets for the training engine.
- `keys`: the probe's metric names `lc_<points>[/<site>][@r<radius>]`, built and parsed (`LCKey`, `lc_name`).
- `plot`: LC curves and partition figures (matplotlib imported on use).

Models with NaN or infinite parameters or buffers are rejected with a ValueError naming the first one
(`check_finite_model`); a `Probe` gives NaN to such members of an ensemble instead.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("implicit-bias-lab")
except PackageNotFoundError:  # run from a source tree that is not installed
    __version__ = "0+unknown"

# public name -> the submodule that owns it; loaded on first use, so that `import lc.keys` (a command that only
# reads metric names) does not import torch
_OWNER = {"local_complexity": "complexity", "LCResult": "complexity", "check_finite_model": "complexity",
          "orthonormal_frame": "frames", "LCKey": "keys", "lc_name": "keys", "Migration": "migration",
          "plane_through": "migration", "region_migration": "migration", "regions_in_disc": "migration",
          "Probe": "probe", "random_box_points": "probe", "NoSitesError": "sites", "PiecewiseLinear": "sites"}
_MODULES = ("complexity", "exact2d", "frames", "keys", "migration", "plot", "probe", "sites")

__all__ = ["local_complexity", "LCResult", "Probe", "PiecewiseLinear", "NoSitesError", "random_box_points",
           "orthonormal_frame", "check_finite_model", "exact2d", "migration", "region_migration", "Migration",
           "plane_through", "regions_in_disc", "plot", "LCKey", "lc_name", "__version__"]


def __getattr__(name: str):
    if name in _MODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in _OWNER:
        return getattr(importlib.import_module(f".{_OWNER[name]}", __name__), name)
    raise AttributeError(f"module 'lc' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
