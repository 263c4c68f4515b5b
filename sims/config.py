"""Typed, frozen configs: fields with meanings and ranges, overrides parsed to the field's type.

Every setting's `Config` is a frozen dataclass deriving from `TrainConfig` (the fields the engine
reads). Each field is declared with `param(default, "meaning (unit)", low=..., high=..., choices=...)`;
`validate(cfg)` checks every range and choice, and `apply_overrides(cfg, {"lr": "0.5"})` parses strings
to the field's type, so an unknown key or a bad value fails with one `ConfigError` naming the field,
the value and what is valid, before anything is written.
"""

from __future__ import annotations

import dataclasses
import decimal
import difflib
import functools
import hashlib
import json
import math
import typing
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

__all__ = ["ConfigError", "SEED_LIMIT", "param", "TrainConfig", "ProbedConfig", "GridConfig", "validate", "check_fields", "apply_overrides", "field_info", "to_dict",
           "with_defaults", "Members", "config_hash"]


class ConfigError(ValueError):
    """A bad configuration: unknown key, unparsable value, value out of range."""


# Seeds lie in [0, SEED_LIMIT): a member's generators are seeded with 16 * seed + stream (`sims.nn.make_generators`),
# and torch.Generator.manual_seed accepts values below 2**64 only.
SEED_LIMIT = 2**60


def param(default: Any, help: str, *, low: float | None = None, high: float | None = None,
          low_open: bool = False, high_open: bool = False, choices: tuple | None = None) -> Any:
    """A config field with a one-line meaning and its valid range or choices.

    `low`/`high` are inclusive bounds unless `low_open`/`high_open`. Floats must also be finite.
    """
    meta = dict(help=help, low=low, high=high, low_open=low_open, high_open=high_open, choices=choices)
    return dataclasses.field(default=default, metadata=meta)


@dataclass(frozen=True)
class TrainConfig:
    """The fields the engine reads; every setting's Config extends this."""

    seed: int = param(0, "seed of the data, init and batch streams (with --seeds K, member e uses seed + e, which "
                         "must also be below 2**60)", low=0, high=SEED_LIMIT - 1)
    steps: int = param(1000, "number of optimiser steps", low=0)
    lr: float = param(0.1, "learning rate", low=0.0, low_open=True)
    optimizer: str = param("sgd", "optimiser applied to the batched parameters", choices=("sgd", "adamw"))
    momentum: float = param(0.0, "SGD momentum", low=0.0, high=1.0, high_open=True)
    weight_decay: float = param(0.0, "decoupled weight decay (AdamW) or L2 term (SGD)", low=0.0)
    batch_size: int = param(0, "mini-batch size per member; 0 = full batch", low=0)
    n_evals: int = param(60, "number of evaluation points (log-spaced plus linear, with 0 and the last step)",
                         low=2)
    dtype: str = param("float32", "floating-point type of data and parameters", choices=("float32", "float64"))
    checkpoint_every: int = param(10, "write checkpoint.pt every this many evaluations", low=1)


@dataclass(frozen=True)
class ProbedConfig(TrainConfig):
    """TrainConfig plus the LC probe of piecewise-linear settings (Humayun et al. 2024)."""

    lc: bool = param(True, "measure local complexity at train, test and random points at every evaluation")
    lc_radius: float = param(1.0, "radius r of the LC cross-polytope (input units)", low=0.0, low_open=True)
    lc_dirs: int = param(16, "number P of orthonormal directions of the LC cross-polytope", low=1)
    lc_points: int = param(100, "points per LC set (test and random; train uses up to this many)", low=1)


@dataclass(frozen=True)
class GridConfig:
    """The fields every grid simulation has (closed forms and Monte-Carlo fits over a grid; no training)."""

    seed: int = param(0, "seed of the first Monte-Carlo repetition (with --seeds K, repetition e uses seed + e, "
                         "which must also be below 2**60)", low=0, high=SEED_LIMIT - 1)
    dtype: str = param("float64", "floating-point type", choices=("float32", "float64"))


@functools.lru_cache(maxsize=None)
def _hints(cls: type) -> dict:
    return typing.get_type_hints(cls)


def _type_of(cls: type, f: dataclasses.Field) -> type:
    return _hints(cls)[f.name]


def field_info(cls: type) -> list[dict]:
    """One dict per field: name, type name, default, meaning, range/choices (for `sims show`)."""
    rows = []
    for f in dataclasses.fields(cls):
        m = f.metadata
        rows.append(dict(name=f.name, type=_type_of(cls, f).__name__, default=f.default,
                         help=m.get("help", ""), valid=_valid_text(m)))
    return rows


def _valid_text(m: Mapping) -> str:
    if m.get("choices"):
        return "one of " + ", ".join(repr(c) for c in m["choices"])
    lo, hi = m.get("low"), m.get("high")
    if lo is None and hi is None:
        return "any"
    left = "(" if m.get("low_open") else "["
    right = ")" if m.get("high_open") else "]"
    return f"{left}{'-inf' if lo is None else _bound(lo)}, {'inf' if hi is None else _bound(hi)}{right}"


def _bound(v: float) -> str:
    """A range bound as text; a large integer 2**k - 1 reads as '2**k - 1'."""
    if isinstance(v, int) and v >= 2**32 and (v + 1) & v == 0:
        return f"2**{(v + 1).bit_length() - 1} - 1"
    return str(v)


def _check_field(cls: type, f: dataclasses.Field, v: Any) -> None:
    """Raise ConfigError when value `v` of field `f` has the wrong type or lies outside its range or choices."""
    m, typ = f.metadata, _type_of(cls, f)
    if typ is float and isinstance(v, int) and not isinstance(v, bool):
        v = float(v)
    if not isinstance(v, typ) or (typ is int and isinstance(v, bool)):
        raise ConfigError(f"{f.name} must be of type {typ.__name__}; got {v!r}")
    if m.get("choices") and v not in m["choices"]:
        raise ConfigError(f"{f.name}={v!r} is not valid: {_valid_text(m)}")
    if typ in (int, float):
        if typ is float and not math.isfinite(v):
            raise ConfigError(f"{f.name}={v!r} is not finite; valid range {_valid_text(m)}")
        lo, hi = m.get("low"), m.get("high")
        bad_lo = lo is not None and (v <= lo if m.get("low_open") else v < lo)
        bad_hi = hi is not None and (v >= hi if m.get("high_open") else v > hi)
        if bad_lo or bad_hi:
            raise ConfigError(f"{f.name}={v!r} is out of range: valid {_valid_text(m)}")


def validate(cfg: Any) -> None:
    """Raise ConfigError for the first field outside its range or choices, or a failed cross-field check."""
    cls = type(cfg)
    for f in dataclasses.fields(cls):
        _check_field(cls, f, getattr(cfg, f.name))
    dim = getattr(cfg, "lc_input_dim", None)  # the LC cross-polytope has at most one direction per input dimension
    if dim is not None and getattr(cfg, "lc", False) and cfg.lc_dirs > dim:
        raise ConfigError(f"lc_dirs={cfg.lc_dirs} exceeds the input dimension {dim} of this config; valid [1, {dim}]")
    check = getattr(cfg, "check", None)
    if check is not None:
        check()


def _parse(name: str, typ: type, text: Any) -> Any:
    if not isinstance(text, str):
        if typ is float and isinstance(text, int) and not isinstance(text, bool):
            return float(text)
        return text
    try:
        if typ is bool:
            low = text.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if typ is int:  # exact: "12345678901234567" and "1e5" never pass through a float
            value = decimal.Decimal(text.strip())
            if not value.is_finite() or value != value.to_integral_value():
                raise ValueError
            return int(value)
        return typ(text)
    except (ValueError, decimal.InvalidOperation):
        raise ConfigError(f"{name}={text!r} cannot be read as {typ.__name__}") from None


def check_fields(cls: type, overrides: Mapping[str, Any]) -> dict:
    """`overrides` parsed to their fields' types, each checked alone (known key, type, range; no cross-field check)."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    changes = {}
    for key, val in overrides.items():
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"unknown config key {key!r}.{hint} Valid keys: {', '.join(fields)}")
        changes[key] = _parse(key, _type_of(cls, fields[key]), val)
        _check_field(cls, fields[key], changes[key])
    return changes


def apply_overrides(cfg: Any, overrides: Mapping[str, Any]) -> Any:
    """A new config with `overrides` applied (strings parsed to the field type), then validated."""
    new = dataclasses.replace(cfg, **check_fields(type(cfg), overrides))
    validate(new)
    return new


def to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)


def config_hash(cfg: Any) -> str:
    """A short stable hash of a config (or a dict of them): resume checks that a run's config is unchanged."""
    obj = to_dict(cfg) if dataclasses.is_dataclass(cfg) else cfg
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def with_defaults(base: type, **defaults: Any) -> type:
    """A frozen subclass of the config class `base` whose fields take new defaults (meanings and ranges kept).

    Settings that share fields declare them once in a base config and change only their defaults:
    `class Config(with_defaults(TwoLayerConfig, n=200, d=16000)): ...`.
    """
    fields = {f.name: f for f in dataclasses.fields(base)}
    unknown = sorted(set(defaults) - set(fields))
    if unknown:
        raise ValueError(f"{base.__name__} has no fields {unknown}")
    hints = _hints(base)
    spec = [(k, hints[k], dataclasses.field(default=v, metadata=fields[k].metadata)) for k, v in defaults.items()]
    return dataclasses.make_dataclass(base.__name__, spec, bases=(base,), frozen=True)


class Members(tuple):
    """The resolved configs of an ensemble's members: member e trains with `members[e]`.

    Members differ only in the fields their simulation declares member-wise (always `seed`; data and
    init fields and per-member optimiser fields where a setting allows it); every other field is shared
    and read from `members[0]`.
    """

    @classmethod
    def from_seeds(cls, cfg: Any, n: int) -> "Members":
        """n members with seeds cfg.seed, cfg.seed + 1, ... (each below SEED_LIMIT)."""
        if cfg.seed + n > SEED_LIMIT:
            raise ConfigError(f"seed={cfg.seed} with {n} members reaches seed {cfg.seed + n - 1}; seeds must lie in "
                              f"[0, 2**60 - 1] (lower seed or the number of seeds)")
        return cls(dataclasses.replace(cfg, seed=cfg.seed + e) for e in range(n))

    @property
    def seeds(self) -> list[int]:
        return [c.seed for c in self]

    def values(self, name: str) -> list:
        """Field `name` of every member."""
        return [getattr(c, name) for c in self]

    def uniform(self, name: str) -> bool:
        """Whether every member has the same value of field `name`."""
        return len({json.dumps(v, default=str) for v in self.values(name)}) == 1

    def check(self, memberwise: Iterable[str]) -> "Members":
        """Raise ConfigError unless the members differ only in `memberwise` fields and are distinct; returns self."""
        if not self:
            raise ConfigError("an ensemble needs at least one member")
        allowed = set(memberwise) | {"seed"}
        kinds = {type(c) for c in self}
        if len(kinds) != 1:
            raise ConfigError(f"members have different config classes: {sorted(k.__name__ for k in kinds)}")
        first = vars(self[0])
        differ: set[str] = set()
        seen = set()
        for c in self:  # O(members x fields) with plain comparisons: fast for 1e5 members
            values = vars(c)
            differ |= {k for k, v in first.items() if k not in allowed and values[k] != v}
            seen.add(tuple(values.values()))
        if differ:
            raise ConfigError(f"members of one ensemble differ in {sorted(differ)}; only {sorted(allowed)} may "
                              "differ between members (run the others as separate ensembles)")
        if len(seen) != len(self):
            raise ConfigError(f"two members of one ensemble are the same run: {self.overrides()}")
        return self

    def overrides(self) -> list[dict]:
        """Per member, the fields in which it differs from the others (at least its seed)."""
        names = [f.name for f in dataclasses.fields(self[0]) if f.name == "seed" or not self.uniform(f.name)]
        return [{k: getattr(c, k) for k in names} for c in self]

    def configurations(self) -> list[tuple[dict, list[int]]]:
        """The distinct configurations among the members, up to the seed: [(fields that differ, member indices)],
        in order of first appearance; one entry ({}, all members) when the members differ only in seed."""
        groups: dict[tuple, list[int]] = {}
        for e, o in enumerate(self.overrides()):
            groups.setdefault(tuple((k, v) for k, v in o.items() if k != "seed"), []).append(e)
        return [(dict(k), idx) for k, idx in groups.items()]
