"""Named simulations: `@register("name", Config, presets=...)` on a setting's build function.

A simulation is a setting's build function plus a name, presets (`ci`: seconds on a CPU, `default`:
minutes on a CPU, `paper`: the published scale) and figures. Its docstring says what it shows, which
paper, the expected outcome and the command. Registering a name twice is an error.

Two kinds share the registry, the CLI and the run directory:

- trained (`register`): `build(members, env) -> sims.engine.Task`, trained by `sims.engine.train`;
- grid (`register_grid`): `build(members, env) -> sims.gridsim.GridTask`, closed forms or Monte-Carlo fits
  computed point by point over a grid (no training loop), written by `sims.gridsim.run_grid`.

`members` is a `sims.config.Members` (one resolved config per ensemble member); `env` a
`sims.engine.Env` (device, dtype, and a cache of expensive baselines kept in the run directory).

`get(name)` imports only the setting module that registers `name` (found in the shipped index, `sims.index`);
`names()` imports every setting module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from .config import ConfigError, Members, apply_overrides
from .catalog import Catalog

__all__ = ["Simulation", "register", "register_grid", "get", "names", "resolve", "members"]

PRESETS = ("ci", "default", "paper")


@dataclass(frozen=True)
class Simulation:
    name: str
    config_cls: type
    build: Callable  # (members, env) -> Task (trained) or GridTask (grid)
    presets: Mapping[str, Mapping[str, Any]]
    figures: Callable | None  # (run: sims.Run) -> list[Path]
    cpu_runtime: str  # runtime of the default preset on a 2-core CPU
    kind: str = "trained"  # "trained" | "grid"
    memberwise: tuple[str, ...] = ("seed",)  # fields that may differ between the members of one ensemble
    transitions: Callable | None = None  # (run) -> per-member transition records (sims.transitions.record)
    memory: Callable | None = None  # (members, itemsize) -> {part: bytes}, checked before anything is allocated
    description: str = ""
    doc: str = ""
    # metric name (or the LC family `lc.keys.PATTERN`) -> "meaning (unit)"; {} when the setting declares none
    metrics: Mapping[str, str] = field(default_factory=dict)
    # how the setting joins the transitions atlas (`sims.atlas.Entry` fields without `sim`, plus `order`); None: not
    atlas: Mapping[str, Any] | None = None


def _module_of(name: str) -> str | None:
    """The setting module that registers `name`, from the shipped index (`sims.index`)."""
    from .index import module_of

    return module_of(name)


_CATALOG: Catalog[Simulation] = Catalog("simulation", "sims.settings", skip=("common",), locate=_module_of)
_REGISTRY = _CATALOG.entries  # name -> Simulation (tests swap entries in and out)


def register(name: str, config_cls: type, *, presets: Mapping[str, Mapping[str, Any]], cpu_runtime: str,
             figures: Callable | None = None, memberwise: Sequence[str] = ("seed",), kind: str = "trained",
             transitions: Callable | None = None, memory: Callable | None = None,
             metrics: Mapping[str, str] | None = None, atlas: Mapping[str, Any] | None = None):
    """Decorator registering `build` as simulation `name`. Presets must include ci, default, paper.

    memberwise: the config fields that may differ between members of one ensemble (seed always may); the
    build function and the engine must honour per-member values of each (tested against one-member runs).
    transitions: for a setting with a generalisation transition, `fn(run) -> [record per member]`
    (`sims.transitions.record`), written into summary.json under 'transitions' when the run completes.
    memory: `fn(members, itemsize) -> {part: bytes}`, a rough upper estimate checked against the device's free
    memory before anything is allocated (`sims.memory`).
    metrics: {metric name: "meaning (unit)"} of every metric a run writes, LC metrics as one entry under
    `lc.keys.PATTERN`, numbered ones as one family entry such as "sv_<k>" (`sims show` prints them).
    atlas: for a setting with a generalisation transition (or a control of one), its row of the transitions atlas:
    {"label": row title, "order": position, and optionally the other `sims.atlas.Entry` fields (seeds, overrides,
    test, train, control, log, no_lc, linear)}; the setting's `transitions` function gives the records it reads.
    """

    def deco(build: Callable) -> Callable:
        missing = [p for p in PRESETS if p not in presets]
        if missing:
            raise ValueError(f"simulation {name!r} lacks presets {missing}")
        if kind not in ("trained", "grid"):
            raise ValueError(f"kind must be 'trained' or 'grid'; got {kind!r}")
        fields = set(config_cls.__dataclass_fields__)
        unknown = sorted(set(memberwise) - fields)
        if unknown:
            raise ValueError(f"simulation {name!r} declares unknown member-wise fields {unknown}")
        bad = [k for k, v in (metrics or {}).items() if not (isinstance(k, str) and isinstance(v, str) and k and v)]
        if bad:
            raise ValueError(f"simulation {name!r}: metrics must map names to non-empty meanings; bad entries {bad}")
        _check_atlas(name, atlas, transitions)
        doc = (build.__doc__ or "").strip()
        sim = Simulation(name, config_cls, build, dict(presets), figures, cpu_runtime, kind=kind,
                         memberwise=tuple(dict.fromkeys(("seed", *memberwise))), transitions=transitions,
                         memory=memory, description=doc.splitlines()[0] if doc else "", doc=doc,
                         metrics=dict(metrics or {}), atlas=dict(atlas) if atlas else None)
        for preset in presets:  # every preset must resolve to a valid config
            resolve(sim, preset, {})
        _CATALOG.add(name, sim)
        return build

    return deco


ATLAS_KEYS = ("label", "order", "seeds", "overrides", "test", "train", "control", "log", "no_lc", "linear")


def _check_atlas(name: str, atlas: Mapping[str, Any] | None, transitions: Callable | None) -> None:
    """A setting's atlas declaration names its row and position, uses known keys, and comes with transitions."""
    if atlas is None:
        return
    unknown = sorted(set(atlas) - set(ATLAS_KEYS))
    if unknown or not isinstance(atlas.get("label"), str) or not isinstance(atlas.get("order"), int):
        raise ValueError(f"simulation {name!r}: atlas must give 'label' (str) and 'order' (int) and only keys "
                         f"{ATLAS_KEYS}; got {dict(atlas)!r}")
    if transitions is None:
        raise ValueError(f"simulation {name!r}: an atlas row needs a transitions function (its records)")


def register_grid(name: str, config_cls: type, *, presets: Mapping[str, Mapping[str, Any]], cpu_runtime: str,
                  figures: Callable | None = None, memory: Callable | None = None,
                  metrics: Mapping[str, str] | None = None):
    """Decorator registering a grid simulation (see the module docstring); members differ in seed only."""
    return register(name, config_cls, presets=presets, cpu_runtime=cpu_runtime, figures=figures, kind="grid",
                    memory=memory, metrics=metrics)


def names() -> list[str]:
    return _CATALOG.names()


def registered() -> list[str]:
    """The names registered so far, without importing the setting modules (`names` imports them all)."""
    return sorted(_CATALOG.entries)


def get(name: str) -> Simulation:
    return _CATALOG.get(name)


def resolve(sim: Simulation, preset: str, overrides: Mapping[str, Any]):
    """The validated Config of `sim` at `preset` with `overrides` applied."""
    if preset not in sim.presets:
        raise ConfigError(f"unknown preset {preset!r} for {sim.name}; valid presets: {', '.join(sim.presets)}")
    cfg = apply_overrides(sim.config_cls(), sim.presets[preset])
    return apply_overrides(cfg, overrides)


def members(sim: Simulation, preset: str, overrides: Mapping[str, Any], *, seeds: int | None = None,
            member_overrides: Sequence[Mapping[str, Any]] | None = None) -> Members:
    """The validated members of one ensemble: `seeds` consecutive seeds from the config's seed, or one
    member per entry of `member_overrides` (each applied on top of `overrides`)."""
    if (seeds is None) == (member_overrides is None):
        raise ValueError("give either seeds or member_overrides")
    if seeds is not None:
        if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
            raise ConfigError(f"seeds must be an integer >= 1; got {seeds!r}")
        return Members.from_seeds(resolve(sim, preset, overrides), seeds).check(sim.memberwise)
    return Members(resolve(sim, preset, {**overrides, **m}) for m in member_overrides).check(sim.memberwise)
