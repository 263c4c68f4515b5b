"""Simulations of implicit bias, benign overfitting and grokking on one ensemble training engine.

    import sims
    run = sims.run("xor-cluster", preset="ci", seeds=3)
    run.metric("test_acc")        # [n_evals, 3]
    sims.load(run.dir).summary    # read it back later
"""

from .api import Run, load, resume, run
from .registry import names

__all__ = ["run", "load", "resume", "Run", "names"]
