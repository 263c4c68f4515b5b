"""A light index of the named simulations, shipped as `sims/index.json`, read without importing torch or a setting.

`sims list`, `sims show NAME` and `sims --help` read it, and `sims.registry.get(NAME)` uses it to import only
the module that registers NAME. Each entry holds what those need: the name, kind, module and family, the
one-line description and docstring, the CPU runtime, the member-wise fields, the presets with their values,
the config fields (type, default, meaning, valid range) and the declared metrics (`Simulation.metrics`).

It is built from the registry (which imports every setting) and written by

    python -m sims.index --write      # after adding or changing a setting; --check says whether it is stale

A test checks that the shipped file equals a freshly built index, so it cannot go stale unnoticed.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["PATH", "build", "entry", "load", "module_of", "render"]

PATH = Path(__file__).with_name("index.json")
SETTINGS = "sims.settings"


def _plain(value: Any) -> Any:
    """`value` as JSON reads it back (tuples become lists, other objects their str)."""
    return json.loads(json.dumps(value, default=str))


def family(module: str) -> str:
    """The family of a setting module: its sub-package under sims.settings, or the module itself when flat."""
    rest = module[len(SETTINGS) + 1:] if module.startswith(SETTINGS + ".") else module
    return rest.split(".")[0]


def entry(sim) -> dict:
    """The index entry of one registered `sims.registry.Simulation`."""
    from .config import field_info

    module = sim.build.__module__
    fields = [dict(name=r["name"], type=r["type"], default=r["default"], help=r["help"], valid=r["valid"])
              for r in field_info(sim.config_cls)]
    return _plain(dict(name=sim.name, kind=sim.kind, module=module, family=family(module),
                       description=sim.description, doc=sim.doc, cpu_runtime=sim.cpu_runtime,
                       memberwise=list(sim.memberwise), presets={p: dict(v) for p, v in sim.presets.items()},
                       fields=fields, metrics=dict(getattr(sim, "metrics", None) or {})))


def build() -> dict[str, dict]:
    """The index of every registered simulation (imports every setting module), by name."""
    from . import registry

    return {name: entry(registry.get(name)) for name in registry.names()}


@functools.lru_cache(maxsize=1)
def load() -> dict[str, dict]:
    """The shipped index (name -> entry); built from the registry if the file is missing."""
    try:
        return json.loads(PATH.read_text())
    except FileNotFoundError:
        return build()


def module_of(name: str) -> str | None:
    """The module that registers simulation `name`, or None if the index does not know it."""
    found = load().get(name)
    return found["module"] if found else None


def render(index: dict[str, dict]) -> str:
    """The index as the text of `sims/index.json` (names sorted, entries in declaration order, indented)."""
    return json.dumps(index, indent=1) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m sims.index", description=__doc__.splitlines()[0])
    p.add_argument("--write", action="store_true", help=f"write the index to {PATH}")
    p.add_argument("--check", action="store_true", help="exit 1 if the shipped index differs from a fresh build")
    args = p.parse_args(argv)
    text = render(build())
    if args.write:
        PATH.write_text(text)
        print(f"wrote {PATH} ({len(json.loads(text))} simulations)")
    elif args.check:
        stale = not PATH.exists() or PATH.read_text() != text
        print(f"{PATH} is {'stale: run python -m sims.index --write' if stale else 'up to date'}")
        return 1 if stale else 0
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
