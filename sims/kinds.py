"""The two kinds of simulation (`Simulation.kind`) and what differs between them, in one place.

- trained: the engine trains a `sims.engine.Task`; records are indexed by eval `step`; a run resumes from its
  checkpoint (none yet: from step 0); CPU threads are chosen by timing a pass (`sims.threads.choose_threads`).
- grid: `sims.gridsim.run_grid` evaluates a `GridTask` point by point; records are indexed by grid `point`; a run
  resumes at its first missing point, always; threads are torch's default unless given.

`kind_of(sim)` is the kind of a registered simulation; callers ask it instead of comparing `sim.kind` strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

__all__ = ["Kind", "TRAINED", "GRID", "kind_of"]


@dataclass(frozen=True)
class Kind:
    name: str  # the value of `Simulation.kind`
    index: str  # the key of a metrics record's position: "step" (an eval step) or "point" (a grid point)

    @property
    def trained(self) -> bool:
        return self is TRAINED

    def resumable(self, run_dir: Path) -> bool:
        """Whether an unfinished run in `run_dir` continues where it stopped (a trained run needs a checkpoint; a
        grid run always can) rather than starting again."""
        return not self.trained or (Path(run_dir) / "checkpoint.pt").exists()

    def threads(self, task, requested: int | None) -> tuple[int, str]:
        """The CPU thread count for `task` and how it was chosen."""
        if self.trained:
            from .threads import choose_threads

            return choose_threads(task, requested)
        return requested or torch.get_num_threads(), "requested" if requested else "torch default"

    def execute(self, task, members, run_dir: Path, *, resume: dict | None, quiet: bool, log) -> dict:
        """Run `task` into `run_dir` (a trained run from the loaded checkpoint `resume`); returns the summary."""
        if self.trained:
            from .engine import train

            return train(task, members, run_dir, resume=resume, quiet=quiet, log=log)
        from .gridsim import run_grid

        return run_grid(task, members, run_dir, quiet=quiet, log=log)


TRAINED, GRID = Kind("trained", "step"), Kind("grid", "point")
_KINDS = {k.name: k for k in (TRAINED, GRID)}


def kind_of(sim) -> Kind:
    """The kind of a registered simulation (`sims.registry.Simulation`)."""
    return _KINDS[sim.kind]
