"""Speed of theory.max_margin.l2_max_margin against a direct cvxpy primal and scikit-learn's SVC.

    python benchmarks/max_margin.py [--repeats 3] [--json results.json]

Data: n = 200 isotropic Gaussian points in d in {100, 1000, 10000}, labels y = sign(<x, w*> + c)
for a random unit w* (c = 0.3 with bias, 0 without), so the data are separable and the three d
exercise different paths (d < n: active set; d = 1000 < 2 n log n: active set, no proliferation;
d = 10000: proliferation, closed form). Competitors, all timed from arrays to a fitted classifier:

- cvxpy: minimise ||w||^2 s.t. y_i (<w, x_i> + b) >= 1 with Clarabel, written directly (b = 0
  without bias), the reference the issue names;
- SVC: sklearn.svm.SVC(kernel="linear", C=1e10) at its default tol=1e-3 (timed), and at tol=1e-8
  for a sharp margin comparison. SVC always fits an intercept; without bias it is fitted on the
  symmetrised set {(x_i, y_i), (-x_i, -y_i)} (2n points, same w, b = 0), so its time there is not
  comparable and only its margin is used;
- ours via Clarabel: l2_max_margin(method="primal" if d < n else "dual"), the interior-point path.

Times are the best of --repeats runs (the machine may be shared); BLAS is single-threaded unless
OPENBLAS_NUM_THREADS is set. Margins are geometric margins min_i y_i f(x_i) / ||w||; "rel diff"
is |margin - ours| / ours.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

# Single-threaded BLAS unless the caller says otherwise: on a shared 2-core machine OpenBLAS worker
# threads spin against other processes and make BLAS-bound timings erratic (10-100x). libsvm and
# Clarabel do not use threaded BLAS, so this removes noise without handicapping anyone.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import cvxpy as cp  # noqa: E402
import numpy as np  # noqa: E402
import sklearn  # noqa: E402
from sklearn.svm import SVC  # noqa: E402

from theory.max_margin import l2_max_margin  # noqa: E402

N = 200
DIMS = (100, 1000, 10000)


def data(d: int, *, bias: bool, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, d))
    w_star = rng.standard_normal(d)
    y = np.sign(X @ w_star / np.linalg.norm(w_star) + (0.3 if bias else 0.0))
    return X, y


def margin(X, y, w, b) -> float:
    return float(np.min(y * (X @ w + b)) / np.linalg.norm(w))


def cvxpy_primal(X, y, bias):
    w = cp.Variable(X.shape[1])
    b = cp.Variable() if bias else 0.0
    problem = cp.Problem(cp.Minimize(cp.sum_squares(w)), [cp.multiply(y, X @ w + b) >= 1])
    problem.solve(solver=cp.CLARABEL)
    assert problem.status == cp.OPTIMAL, problem.status
    return margin(X, y, w.value, b.value if bias else 0.0)


def svc(X, y, bias, tol):
    Xf, yf = (X, y) if bias else (np.vstack([X, -X]), np.concatenate([y, -y]))
    model = SVC(kernel="linear", C=1e10, tol=tol).fit(Xf, yf)
    return margin(X, y, model.coef_[0], model.intercept_[0] if bias else 0.0)


def best_of(repeats, fn):
    best, out = np.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def run(repeats: int) -> list[dict]:
    X, y = data(50, bias=True)  # warm-up: imports and first-call costs
    l2_max_margin(X, y, bias=True), cvxpy_primal(X, y, True), svc(X, y, True, 1e-3)
    rows = []
    for bias in (True, False):
        for d in DIMS:
            X, y = data(d, bias=bias)
            t_ours, res = best_of(repeats, lambda: l2_max_margin(X, y, bias=bias))
            qp = "primal" if d < N else "dual"
            t_clarabel, res_clarabel = best_of(repeats, lambda: l2_max_margin(X, y, bias=bias, method=qp))
            t_cvxpy, m_cvxpy = best_of(repeats, lambda: cvxpy_primal(X, y, bias))
            t_svc, m_svc = best_of(repeats, lambda: svc(X, y, bias, 1e-3))
            t_svc_tight, m_svc_tight = best_of(repeats, lambda: svc(X, y, bias, 1e-8))
            ours = res.margin
            rows.append(
                {
                    "bias": bias,
                    "n": N,
                    "d": d,
                    "path": res.method,
                    "support": int(res.support.size),
                    "ours_s": t_ours,
                    "ours_clarabel_s": t_clarabel,
                    "ours_clarabel_path": res_clarabel.method,
                    "cvxpy_primal_s": t_cvxpy,
                    "svc_s": t_svc,
                    "svc_tol1e-8_s": t_svc_tight,
                    "cvxpy_over_ours": t_cvxpy / t_ours,
                    "ours_over_svc": t_ours / t_svc,
                    "margin": ours,
                    "rel_diff_clarabel": abs(res_clarabel.margin - ours) / ours,
                    "rel_diff_cvxpy": abs(m_cvxpy - ours) / ours,
                    "rel_diff_svc": abs(m_svc - ours) / ours,
                    "rel_diff_svc_tol1e-8": abs(m_svc_tight - ours) / ours,
                }
            )
            print(_line(rows[-1]), flush=True)
    return rows


HEADER = (
    f"{'bias':>5} {'d':>6} {'path':>11} {'#SV':>4} | {'ours ms':>8} {'ours-QP ms':>10} {'cvxpy ms':>9} "
    f"{'SVC ms':>8} {'SVC-8 ms':>8} | {'cvxpy/ours':>10} {'ours/SVC':>8} | "
    f"{'diff QP':>7} {'cvxpy':>7} {'SVC':>7} {'SVC-8':>7}"
)


def _line(r: dict) -> str:
    svc_ratio = f"{r['ours_over_svc']:8.2f}" if r["bias"] else f"{'(2n)':>8}"
    return (
        f"{str(r['bias']):>5} {r['d']:>6} {r['path']:>11} {r['support']:>4} | {1e3 * r['ours_s']:8.1f} "
        f"{1e3 * r['ours_clarabel_s']:10.1f} {1e3 * r['cvxpy_primal_s']:9.1f} {1e3 * r['svc_s']:8.1f} "
        f"{1e3 * r['svc_tol1e-8_s']:8.1f} | {r['cvxpy_over_ours']:10.1f} {svc_ratio} | "
        f"{r['rel_diff_clarabel']:7.0e} {r['rel_diff_cvxpy']:7.0e} {r['rel_diff_svc']:7.0e} "
        f"{r['rel_diff_svc_tol1e-8']:7.0e}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per solver; the best is kept")
    parser.add_argument("--json", metavar="PATH", help="also write the rows as JSON to PATH")
    args = parser.parse_args()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    machine = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, load {load:.1f}, "
        f"OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}; numpy {np.__version__}, "
        f"cvxpy {cp.__version__}, scikit-learn {sklearn.__version__}"
    )
    print(machine)
    print(HEADER)
    rows = run(args.repeats)
    worst = max(max(r["rel_diff_cvxpy"], r["rel_diff_clarabel"], r["rel_diff_svc_tol1e-8"]) for r in rows)
    print(f"max relative margin difference (cvxpy, our Clarabel path, SVC tol=1e-8): {worst:.1e}")
    print(f"max relative margin difference to SVC at its default tol=1e-3: {max(r['rel_diff_svc'] for r in rows):.1e}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
