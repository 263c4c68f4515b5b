"""Arguments checked before anything is written or trained: one place for every command and the Python API.

Config fields are checked by `sims.config.validate` (types, ranges, choices, the seed range) when a config is
resolved. This module checks the rest, each with one `ConfigError` naming the argument, its value and what is
valid:

- `arguments(...)`: the options of run, sweep, reproduce and atlas (threads, seeds, seed, workers, cap, out),
  from the command line (`command(args)`) or from Python;
- `inputs(members)`: what a config names on disk (data files: readable, of the right shape and dtype), checked
  once per run or sweep before its directory is made (not when a run directory is read back);
- `config_file(path, ...)`: a TOML file of overrides (`--config FILE.toml`), checked like `--set`.
"""

from __future__ import annotations

import numbers
import os
from pathlib import Path
from typing import Any

from .config import SEED_LIMIT, ConfigError, check_fields

__all__ = ["integer", "text", "path", "arguments", "command", "inputs", "config_file", "command_config"]


def integer(name: str, value: Any, *, low: int = 1, high: int | None = None, none: bool = True) -> None:
    """Raise ConfigError unless `value` is an int (not a bool) in [low, high] (or None when `none`)."""
    if value is None and none:
        return
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not ok or value < low or (high is not None and value > high):
        top = "2**60 - 1" if high == SEED_LIMIT - 1 else high
        valid = f"an integer >= {low}" if high is None else f"an integer in [{low}, {top}]"
        raise ConfigError(f"{name} must be {valid}; got {value!r}")


def text(name: str, value: Any, *, none: bool = False) -> None:
    """Raise ConfigError unless `value` is a non-empty string (or None when `none`)."""
    if value is None and none:
        return
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{name} must be a non-empty string; got {value!r}")


def path(name: str, value: Any) -> None:
    """Raise ConfigError unless `value` is a non-empty path (str or os.PathLike)."""
    if not isinstance(value, (str, os.PathLike)):
        raise ConfigError(f"{name} must be a path (str or pathlib.Path); got {type(value).__name__} {value!r}")
    if not str(value).strip():
        raise ConfigError(f"--{name} is empty; give a directory path" if name == "out" else f"{name} is empty")


def arguments(*, threads: Any = None, seeds: Any = None, seed: Any = None, workers: Any = None, cap: Any = None,
              out: Any = None) -> None:
    """Check the options a command takes besides config fields; raises ConfigError naming the first bad one.

    threads: CPU threads (>= 1, or None: chosen by timing); seeds: members per configuration (>= 1); seed: the
    first seed (0 <= seed < 2**60 less the seeds added to it); workers: Dask workers (>= 0); cap: the most members
    in one ensemble (>= 1); out: a directory path (str or os.PathLike, not empty).
    """
    integer("threads", threads)
    integer("seeds", seeds)
    integer("workers", workers, low=0)
    integer("cap", cap)
    integer("seed", seed, low=0, high=SEED_LIMIT - 1)
    if out is not None:
        path("out", out)


def command(args) -> None:
    """`arguments` for the options of a parsed `sims` command line (argparse namespace)."""
    arguments(**{k: getattr(args, k) for k in ("threads", "seeds", "seed", "workers") if hasattr(args, k)})


def inputs(members) -> None:
    """Check what the members' configs name on disk (data files), before a run directory is made.

    A config class declares such checks as a method `check_inputs()` (raising ValueError); they are not part of
    `validate`, which also runs when a run directory is read back on a machine that lacks the files.
    """
    for cfg in members:
        check = getattr(cfg, "check_inputs", None)
        if check is None:
            continue
        try:
            check()
        except ConfigError:
            raise
        except ValueError as err:
            raise ConfigError(str(err)) from None


def config_file(path: Any, config_cls: type | None = None, *, tables: tuple[str, ...] = ()) -> dict:
    """The overrides in a TOML file: {key: value} of its top-level keys, and {table: {...}} for each allowed table
    (a sweep's `[grid]`). With `config_cls` every top-level key and value is checked as `--set` checks it (unknown
    key, wrong type, out of range; combinations are checked when the config is resolved); errors name the file."""
    import tomllib

    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"--config {file}: no such file" + (" (it is a directory)" if file.is_dir() else ""))
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"--config {file}: cannot be read: {err}") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"--config {file}: not valid TOML: {err}") from None
    fields = {k: v for k, v in data.items() if not isinstance(v, dict)}
    extra = sorted(k for k, v in data.items() if isinstance(v, dict) and k not in tables)
    if extra:
        allowed = f"only [{'], ['.join(tables)}]" if tables else "none"
        raise ConfigError(f"--config {file}: unknown table(s) {extra}; tables allowed here: {allowed}")
    for key, value in fields.items():
        if isinstance(value, list) or not isinstance(value, (bool, int, float, str)):
            raise ConfigError(f"--config {file}: {key} = {value!r} must be one number, string or boolean"
                              + (" (a list of values belongs in [grid])" if "grid" in tables else ""))
    if config_cls is not None:
        try:
            check_fields(config_cls, fields)
        except ConfigError as err:
            raise ConfigError(f"--config {file}: {err}") from None
    return {**fields, **{t: data[t] for t in tables if t in data}}


REPRODUCE_OPTIONS = {"preset": "default", "seed": None, "workers": 0, "threads": None, "device": "auto",
                     "scheduler": None}  # the options a config file may set for `sims reproduce`, with their defaults


def command_config(args) -> None:
    """Read `--config FILE` of a parsed command line into it; the command line wins over the file.

    run: the file's keys are config fields (`args.file_set`, under `--set`); sweep: also a `[grid]` table of lists
    (`args.file_grid`, under `--grid`); reproduce: the file sets the command's options (REPRODUCE_OPTIONS) that the
    command line leaves at their defaults.
    """
    path_ = getattr(args, "config", None)
    args.file_set, args.file_grid = {}, {}
    if path_ is None:
        return
    if args.command == "reproduce":
        values = config_file(path_)
        unknown = sorted(set(values) - set(REPRODUCE_OPTIONS))
        if unknown:
            raise ConfigError(f"--config {path_}: unknown key(s) {unknown}; sims reproduce reads "
                              f"{', '.join(REPRODUCE_OPTIONS)}")
        for key, value in values.items():
            if getattr(args, key) == REPRODUCE_OPTIONS[key]:
                setattr(args, key, value)
        return
    from . import registry

    if getattr(args, "resume", None):
        raise ConfigError("--resume continues a run with its own config; drop --config")
    cls = registry.get(args.name).config_cls
    values = config_file(path_, cls, tables=("grid",) if args.command == "sweep" else ())
    grid = values.pop("grid", {})
    for key, vals in grid.items():
        if not isinstance(vals, list) or not vals:
            raise ConfigError(f"--config {path_}: [grid] {key} must be a non-empty list of values; got {vals!r}")
        try:
            for v in vals:
                check_fields(cls, {key: v})
        except ConfigError as err:
            raise ConfigError(f"--config {path_}: [grid] {err}") from None
    args.file_set, args.file_grid = values, grid
