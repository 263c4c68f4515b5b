"""Running a cvxpy problem (Clarabel by default), and refusing any answer that is not optimal.

Policy: only the status ``optimal`` is accepted. ``optimal_inaccurate`` and every other status raise
`SolverError` naming the solver and the status: a caller never receives a solution the solver
itself does not vouch for. Callers that can interpret a status (``infeasible`` = not separable)
check it before calling `require_optimal`. cvxpy is imported here, on first use, so that
``import theory`` stays fast.
"""

from __future__ import annotations

SOLVER = "CLARABEL"  # the default; SCS (first-order) is offered for SDPs too large for Clarabel
SOLVERS = ("CLARABEL", "SCS")


class SolverError(RuntimeError):
    """A convex solver stopped without reaching an optimal solution."""


def solve(problem, *, what: str, solver: str = SOLVER) -> str:
    """Solve a cvxpy `problem` with `solver` and return its status string (e.g. ``"optimal"``)."""
    import cvxpy as cp

    try:
        problem.solve(solver=solver)
    except cp.error.SolverError as exc:
        raise SolverError(f"{solver} failed on the {what}: {exc}") from exc
    return problem.status


def require_optimal(status: str, *, what: str, solver: str = SOLVER) -> None:
    if status != "optimal":
        raise SolverError(
            f"{solver} stopped with status {status!r} on the {what}; only 'optimal' is accepted, "
            "so no answer is returned (rescale the data or loosen the tolerance and retry)"
        )
