import dataclasses
import os
import signal

import pytest
import torch
from hypothesis import settings

settings.register_profile("ci", max_examples=20, deadline=None, derandomize=True)
settings.register_profile("dev", max_examples=20, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture
def one_thread():
    """One intra-op thread for the test (small problems: faster, and far faster on a CPU shared with other jobs)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def runs_dir(tmp_path, monkeypatch):
    """A private runs/ root (SIMS_RUNS) for each test."""
    root = tmp_path / "runs"
    monkeypatch.setenv("SIMS_RUNS", str(root))
    return root


def _interrupting(sim, at_eval):
    """The same simulation, but its task sends SIGINT to this process at eval number `at_eval`."""

    def build(members, env):
        task = sim.build(members, env)
        inner, count = task.evaluate, [0]

        def evaluate(model):
            count[0] += 1
            if count[0] == at_eval:
                os.kill(os.getpid(), signal.SIGINT)
            return inner(model)

        task.evaluate = evaluate
        return task

    return dataclasses.replace(sim, build=build)


@pytest.fixture
def interrupting():
    """`interrupting(sim, at_eval)`: a copy of a registered simulation that SIGINTs itself at an eval."""
    return _interrupting
