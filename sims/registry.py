"""Named simulations: `@register("name", Config, presets=...)` on a setting's build function.

A simulation is a setting's build function plus a name, presets (`ci`: seconds on a CPU, `default`:
minutes on a CPU, `paper`: the published scale) and figures. Its docstring says what it shows, which
paper, the expected outcome and the command. Registering a name twice is an error.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from .config import ConfigError, apply_overrides

__all__ = ["Simulation", "register", "get", "names", "resolve"]

PRESETS = ("ci", "default", "paper")


@dataclass(frozen=True)
class Simulation:
    name: str
    config_cls: type
    build: Callable  # (cfg, seeds, device, dtype) -> Task
    presets: Mapping[str, Mapping[str, Any]]
    figures: Callable | None  # (run: sims.Run) -> list[Path]
    cpu_runtime: str  # runtime of the default preset on a 2-core CPU
    description: str = ""
    doc: str = ""


_REGISTRY: dict[str, Simulation] = {}
_LOADED = False


def register(name: str, config_cls: type, *, presets: Mapping[str, Mapping[str, Any]], cpu_runtime: str,
             figures: Callable | None = None):
    """Decorator registering `build` as simulation `name`. Presets must include ci, default, paper."""

    def deco(build: Callable) -> Callable:
        if name in _REGISTRY:
            raise ValueError(f"simulation {name!r} is already registered")
        missing = [p for p in PRESETS if p not in presets]
        if missing:
            raise ValueError(f"simulation {name!r} lacks presets {missing}")
        doc = (build.__doc__ or "").strip()
        sim = Simulation(name, config_cls, build, dict(presets), figures, cpu_runtime,
                         description=doc.splitlines()[0] if doc else "", doc=doc)
        for preset in presets:  # every preset must resolve to a valid config
            resolve(sim, preset, {})
        _REGISTRY[name] = sim
        return build

    return deco


def _load_all() -> None:
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    from . import settings

    for mod in pkgutil.iter_modules(settings.__path__):
        importlib.import_module(f"{settings.__name__}.{mod.name}")


def names() -> list[str]:
    _load_all()
    return sorted(_REGISTRY)


def get(name: str) -> Simulation:
    _load_all()
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3, cutoff=0.4)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ConfigError(f"unknown simulation {name!r}.{hint} Available: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def resolve(sim: Simulation, preset: str, overrides: Mapping[str, Any]):
    """The validated Config of `sim` at `preset` with `overrides` applied."""
    if preset not in sim.presets:
        raise ConfigError(f"unknown preset {preset!r} for {sim.name}; valid presets: {', '.join(sim.presets)}")
    cfg = apply_overrides(sim.config_cls(), sim.presets[preset])
    return apply_overrides(cfg, overrides)

