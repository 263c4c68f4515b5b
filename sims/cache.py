"""A run's cache of expensive results of a build (nuclear-norm and max-margin baselines): <run>/cache/<name>.pt,
computed once, read back by a resumed run. Values are saved as plain tensors, numbers, strings, lists and dicts and
read without unpickling (`sims.store.save_checkpoint` / `load_checkpoint`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from . import store

__all__ = ["Cache"]


class Cache:
    """Expensive results of a build (nuclear-norm and max-margin baselines), kept in <run>/cache/<name>.pt.

    `get(name, compute)` returns the stored value if the run directory has it (a resumed run does not solve
    again), else computes it; values computed before the run directory exists are written by `attach(dir)`.
    """

    def __init__(self, directory: Path | None = None):
        self.dir = None if directory is None else Path(directory)
        self.pending: dict[str, Any] = {}

    def get(self, name: str, compute: Callable[[], Any]) -> Any:
        if name in self.pending:
            return self.pending[name]
        path = None if self.dir is None else self.dir / f"{name}.pt"
        if path is not None and path.exists():
            return store.load_checkpoint(path, fix=f"delete {path} to have it computed again")
        self.pending[name] = value = compute()
        if path is not None:
            store.save_checkpoint(path, value)
        return value

    def attach(self, directory: Path) -> None:
        """Write the values computed so far into `directory` and keep later ones there too."""
        self.dir = Path(directory)
        for name, value in self.pending.items():
            self.dir.mkdir(parents=True, exist_ok=True)
            store.save_checkpoint(self.dir / f"{name}.pt", value)
