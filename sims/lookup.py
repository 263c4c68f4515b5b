"""Named entries loaded lazily from the modules of a package, with did-you-mean errors.

The simulation registry (`sims.registry`) and the claims registry (`sims.claims`) are both a `Catalog`:
entries are added when their package's modules are imported (on the first lookup), a name can be added
only once, and an unknown name raises `ConfigError` listing the close matches and every valid name.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from typing import Generic, Iterable, TypeVar

from .config import ConfigError

__all__ = ["Catalog", "unknown"]

T = TypeVar("T")


def unknown(what: str, name: str, valid: Iterable[str]) -> ConfigError:
    """ConfigError for an unknown `name` of kind `what`, naming close matches and every valid name."""
    valid = sorted(valid)
    close = difflib.get_close_matches(name, valid, n=3, cutoff=0.4)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    return ConfigError(f"unknown {what} {name!r}.{hint} Available: {', '.join(valid)}")


class Catalog(Generic[T]):
    """Entries by name, filled by importing every module of `package` (except `skip`) on first use."""

    def __init__(self, what: str, package: str, skip: tuple[str, ...] = ()):
        self.what, self.package, self.skip = what, package, skip
        self.entries: dict[str, T] = {}
        self._loaded = False

    def add(self, name: str, entry: T) -> None:
        if name in self.entries:
            raise ValueError(f"{self.what} {name!r} is already registered")
        self.entries[name] = entry

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        pkg = importlib.import_module(self.package)
        for mod in pkgutil.iter_modules(pkg.__path__):
            if not mod.name.startswith("_") and mod.name not in self.skip:
                importlib.import_module(f"{self.package}.{mod.name}")

    def names(self) -> list[str]:
        self._load()
        return sorted(self.entries)

    def get(self, name: str) -> T:
        self._load()
        if name not in self.entries:
            raise unknown(self.what, name, self.entries)
        return self.entries[name]
