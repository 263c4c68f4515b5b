import dataclasses
import os
import signal

import pytest


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
