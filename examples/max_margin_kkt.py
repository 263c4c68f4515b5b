"""Max-margin and min-norm solutions with their KKT conditions checked (theory as a library).

1. The l2 max-margin classifier of separable data (`theory.max_margin.l2_max_margin`): check its KKT
   conditions by hand (w = sum_i alpha_i y_i x_i, alpha >= 0, alpha_i > 0 only on the support vectors).
   `theory.kkt.kkt_residual` (degree 1 for a linear model) gives the same check as one number.
2. Gradient descent on the logistic loss turns towards it (Soudry et al. 2018), slowly (like 1 / log t):
   cosine and normalised margin along the way.
3. The minimum-norm interpolant of an underdetermined least-squares problem (`min_norm_interpolant`): it fits
   every label and lies in the row space of X, as GD from zero does.

    python examples/max_margin_kkt.py [--n 40 --d 10 --steps 5000]
"""

import argparse

import numpy as np

from theory.kkt import kkt_residual
from theory.max_margin import l2_max_margin, min_norm_interpolant


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=40)
    p.add_argument("--d", type=int, default=10)
    p.add_argument("--steps", type=int, default=5000)
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    w_true = rng.normal(size=args.d)
    X = rng.normal(size=(args.n, args.d))  # [n, d]
    y = np.sign(X @ w_true)

    mm = l2_max_margin(X, y)
    margins = y * (X @ mm.w)  # [n], min 1 at the support vectors
    stationarity = np.linalg.norm(mm.w - (mm.dual * y) @ X) / np.linalg.norm(mm.w)
    off_support = np.delete(mm.dual, mm.support)
    print(f"max margin {mm.margin:.4f}, {len(mm.support)} support vectors, min y f(x) = {margins.min():.6f}")
    print(f"KKT: stationarity {stationarity:.2e}, min alpha {mm.dual.min():.2e}, "
          f"max alpha off the support {off_support.max(initial=0.0):.2e}")
    residual = kkt_residual(mm.w, y[:, None] * X, margins, degree=1)  # gradients of y_i <w, x_i>: y_i x_i
    print(f"theory.kkt.kkt_residual at the max-margin solution: {residual:.2e}")
    assert stationarity < 1e-6 and mm.dual.min() >= -1e-9 and abs(margins.min() - 1) < 1e-6 and residual < 1e-6

    w = np.zeros(args.d)
    for t in range(1, args.steps + 1):  # GD on the mean logistic loss
        z = y * (X @ w)
        w += 5.0 * ((y / (1 + np.exp(z))) @ X) / args.n
        if t in (10, args.steps // 10, args.steps):
            cos = w @ mm.w / np.linalg.norm(w) / np.linalg.norm(mm.w)
            margin = (y * (X @ w)).min() / np.linalg.norm(w)
            print(f"GD step {t:5d}: cosine to max margin {cos:.4f}, margin {margin:.4f} (max {mm.margin:.4f})")

    Xw = rng.normal(size=(args.n // 2, 3 * args.d))  # more features than points: interpolation
    yw = rng.normal(size=args.n // 2)
    w_min = min_norm_interpolant(Xw, yw)
    coef, *_ = np.linalg.lstsq(Xw.T, w_min, rcond=None)  # w = X^T c: in the row space
    print(f"min-norm interpolant: max |Xw - y| = {np.abs(Xw @ w_min - yw).max():.2e}, "
          f"distance to the row space {np.linalg.norm(Xw.T @ coef - w_min):.2e}")


if __name__ == "__main__":
    main()
