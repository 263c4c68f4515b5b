"""Named entries loaded lazily from the modules of a package, with did-you-mean errors.

The simulation registry (`sims.registry`) and the claims registry (`sims.claims`) are both a `Catalog`:
entries are added when their package's modules are imported, a name can be added only once, and an unknown
name raises `ConfigError` listing the close matches and every valid name.

A lookup imports as little as it can: given `locate` (name -> the module that defines it, e.g. from
`sims.index`), `get(name)` imports that one module; only a name it cannot place, and `names()`, import every
module of the package. A module that fails to import raises `ModuleLoadError` naming the module and the cause,
so a broken module fails only the lookups that need it.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from typing import Callable, Generic, Iterable, TypeVar

from .config import ConfigError

__all__ = ["Catalog", "ModuleLoadError", "unknown"]

T = TypeVar("T")


class ModuleLoadError(RuntimeError):
    """A module that defines catalog entries failed to import (a broken installation or setting, not bad input)."""


def unknown(what: str, name: str, valid: Iterable[str]) -> ConfigError:
    """ConfigError for an unknown `name` of kind `what`, naming close matches and every valid name."""
    valid = sorted(valid)
    close = difflib.get_close_matches(name, valid, n=3, cutoff=0.4)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    return ConfigError(f"unknown {what} {name!r}.{hint} Available: {', '.join(valid)}")


def import_module(module: str, what: str = "module"):
    """`importlib.import_module(module)`, with any failure raised as one ModuleLoadError naming the module."""
    try:
        return importlib.import_module(module)
    except Exception as exc:  # any error while executing the module's code
        cause = f"{type(exc).__name__}: {exc}".splitlines()[0]
        raise ModuleLoadError(f"{what} module {module} failed to import ({cause}); "
                              f"`python -c 'import {module}'` shows where") from exc


class Catalog(Generic[T]):
    """Entries by name, filled by importing the modules of `package` (except `skip`) on first use.

    locate: optional `name -> module name or None`; `get` imports only that module when it knows the name.
    """

    def __init__(self, what: str, package: str, skip: tuple[str, ...] = (),
                 locate: Callable[[str], str | None] | None = None):
        self.what, self.package, self.skip, self.locate = what, package, skip, locate
        self.entries: dict[str, T] = {}
        self._loaded = False

    def add(self, name: str, entry: T) -> None:
        if name in self.entries:
            raise ValueError(f"{self.what} {name!r} is already registered")
        self.entries[name] = entry

    def _load(self) -> None:
        if self._loaded:
            return
        pkg = import_module(self.package, self.what)
        for mod in pkgutil.walk_packages(pkg.__path__, prefix=f"{self.package}."):  # family sub-packages too
            leaf = mod.name.rsplit(".", 1)[1]
            if not mod.ispkg and not leaf.startswith("_") and leaf not in self.skip:
                import_module(mod.name, self.what)
        self._loaded = True

    def names(self) -> list[str]:
        self._load()
        return sorted(self.entries)

    def get(self, name: str) -> T:
        if name not in self.entries and self.locate is not None:
            module = self.locate(name)
            if module is not None:
                import_module(module, f"{self.what} {name!r}:")
        if name not in self.entries:
            self._load()
        if name not in self.entries:
            raise unknown(self.what, name, self.entries)
        return self.entries[name]
