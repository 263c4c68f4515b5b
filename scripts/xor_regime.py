"""Per-member diagnostics of the xor-cluster setting against the conditions of Xu et al. (2024).

Full-batch GD on the mean logistic loss of f(x) = sum_j a_j relu(<w_j, x>) keeps W in W0 + span(x_1..x_n), so the
pre-activations of train and test points evolve through the n x n Gram matrix: P <- P - lr K G, with K = X X^T
(train) or X_t X^T (test) and G [n, m] the loss gradient with respect to the pre-activations. That is the same GD
as `sims run xor-cluster` (same data and init draws, float64 instead of float32) at O(n^2 m) per step instead of
O(n d m): a default-size member trains in about a second, so hundreds of draws can be measured.

Per member it prints the realised draw (cluster counts, their imbalance along mu_1 and mu_2, realised label
noise per cluster, init norm), the regime ratios of the config, and the claims' measurements: train accuracy
from step 1 on, step-1 linear agreement and test accuracy, test accuracy (noisy / clean) at the end of the
theorem's window and at the end, the per-cluster clean test accuracy at the end, and PASS if the member meets
every per-member threshold of `sims.claims.xu2024`.

    python scripts/xor_regime.py --seeds 10-99 [--set d=24000 mu_norm=24 ...] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import torch

from sims import registry
from sims.data import xor_clusters
from sims.engine import eval_schedule
from sims.nn import TwoLayerNet, make_generators
from theory.xor_cluster import xor_regime

BAYES_TOL, CLEAN = 0.02, 0.97  # sims.claims.xu2024: TOL and CLEAN


def member_data(cfg, seed: int):
    """Train and test draws of the member with this seed, as `build` draws them (one 'data' generator)."""
    g = make_generators([seed], "data")[0]
    train = xor_clusters(cfg.n, cfg.d, cfg.mu_norm, cfg.noise_rate, generator=g)
    test = xor_clusters(cfg.n_test, cfg.d, cfg.mu_norm, cfg.noise_rate, generator=g)
    return train, test


def clusters(x: torch.Tensor) -> np.ndarray:
    """Cluster index per point (0: +mu_1, 1: -mu_1, 2: +mu_2, 3: -mu_2) from the first two coordinates."""
    x2 = x[:, :2].numpy()
    axis = np.argmax(np.abs(x2), axis=1)
    return 2 * axis + (x2[np.arange(len(x2)), axis] < 0)


def train_member(cfg, seed: int, steps_to_eval) -> dict:
    """Exact full-batch GD in the kernel form; returns the draw's statistics and the metrics at `steps_to_eval`."""
    (x, y, yc), (xt, yt, ytc) = member_data(cfg, seed)
    net = TwoLayerNet(cfg.d, cfg.width, make_generators([seed], "init"), init_scale=cfg.init_scale,
                      dtype=getattr(torch, cfg.dtype))  # drawn in the run's dtype: float32 and float64 draws differ
    W0, a = net[0].weight[0].detach().double(), net[2].weight[0, :, 0].detach().double()  # [d, m], [m]
    P, Pt = x @ W0, xt @ W0  # [n, m], [n_test, m]
    K, Kt = x @ x.T, xt @ x.T  # [n, n], [n_test, n]
    ct, c = clusters(xt), clusters(x)
    out, want = {}, set(steps_to_eval)
    for s in range(max(want) + 1):
        if s in want:
            f, ft = torch.relu(P) @ a, torch.relu(Pt) @ a
            lin = torch.sign(Pt @ a)
            out[s] = dict(train=float((torch.sign(f) == y).double().mean()),
                          test=float((torch.sign(ft) == yt).double().mean()),
                          clean=float((torch.sign(ft) == ytc).double().mean()),
                          linear=float((torch.sign(ft) == lin).double().mean()),
                          per_cluster=[float((torch.sign(ft) == ytc)[torch.from_numpy(ct == k)].double().mean())
                                       for k in range(4)])
        f = torch.relu(P) @ a
        dl = -y * torch.sigmoid(-y * f) / cfg.n  # dL/df_i, [n]
        G = dl[:, None] * a[None, :] * (P > 0).double()  # dL/dP, [n, m]
        P, Pt = P - cfg.lr * K @ G, Pt - cfg.lr * Kt @ G
    counts = np.bincount(c, minlength=4)
    flips = np.array([int(((y != yc).numpy() & (c == k)).sum()) for k in range(4)])
    # signed label sums along mu_1 and mu_2: the step-1 linear classifier's direction, sum_i y_i x_i, in units of ||mu||
    s_mu = (y[:, None] * x[:, :2]).sum(0).numpy() / cfg.mu_norm
    return dict(seed=seed, counts=counts.tolist(), flips=flips.tolist(), eta_hat=float((y != yc).double().mean()),
                imbalance=[int(counts[0] - counts[1]), int(counts[2] - counts[3])], signed_sum=s_mu.round(1).tolist(),
                init_norm=float(W0.norm()), metrics=out)


def verdict(cfg, rec: dict, window: int) -> list[str]:
    """The per-member thresholds of sims.claims.xu2024 that this member misses (empty: it passes)."""
    m, last, bayes = rec["metrics"], max(rec["metrics"]), 1 - cfg.noise_rate - BAYES_TOL
    miss = []
    if min(v["train"] for s, v in m.items() if s >= 1) < 1.0:
        miss.append("train")
    if m[1]["linear"] < 0.95:
        miss.append("linear1")
    if abs(m[1]["test"] - 0.5) > 0.1:
        miss.append("chance1")
    if m[window]["test"] < bayes:
        miss.append("window")
    if m[last]["test"] < bayes:
        miss.append("late")
    if min(m[window]["clean"], m[last]["clean"]) < CLEAN:
        miss.append("clean")
    return miss


def clopper_pearson_lower(k: int, n: int, level: float = 0.95) -> float:
    """One-sided lower confidence bound for a binomial rate with k successes in n trials."""
    from scipy.stats import beta

    return 0.0 if k == 0 else float(beta.ppf(1 - level, k, n - k + 1))


def parse_seeds(text: str) -> list[int]:
    out = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out += list(range(int(lo), int(hi) + 1)) if hi else [int(lo)]
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", required=True, help="member seeds, e.g. 10-99 or 5,7,9")
    ap.add_argument("--preset", default="default")
    ap.add_argument("--set", nargs="*", default=[], help="config overrides key=value")
    ap.add_argument("--json", help="write the per-member records here")
    ap.add_argument("--members", type=int, default=1, help="group consecutive seeds into runs of this many members")
    ap.add_argument("--quiet", action="store_true", help="only the summary line")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    sim = registry.get("xor-cluster")
    overrides = {k: v for k, v in (s.split("=", 1) for s in args.set)}
    cfg = registry.members(sim, args.preset, overrides, seeds=1)[0]
    evals = eval_schedule(cfg.steps, cfg.n_evals)
    window = max(s for s in evals if s <= math.sqrt(cfg.n))
    print(f"n={cfg.n} d={cfg.d} mu={cfg.mu_norm} m={cfg.width} lr={cfg.lr} omega={cfg.init_scale} "
          f"eta={cfg.noise_rate} steps={cfg.steps} window end {window}; regime: {xor_regime(cfg).summary()}")
    recs, t0 = [], time.time()
    for seed in parse_seeds(args.seeds):
        rec = train_member(cfg, seed, sorted({0, 1, window, cfg.steps} | set(evals)))
        rec["miss"] = verdict(cfg, rec, window)
        recs.append(rec)
        m = rec["metrics"]
        if not args.quiet:
            print(f"seed {seed:>10}: counts {rec['counts']} imb {rec['imbalance']} flips {rec['flips']} "
                  f"eta^ {rec['eta_hat']:.3f} sum_y<x,mu>/|mu| {rec['signed_sum']} | train1 {m[1]['train']:.3f} "
                  f"test1 {m[1]['test']:.3f} lin1 {m[1]['linear']:.3f} | window {m[window]['test']:.3f}/"
                  f"{m[window]['clean']:.3f} end {m[cfg.steps]['test']:.3f}/{m[cfg.steps]['clean']:.3f} "
                  f"clusters {np.round(m[cfg.steps]['per_cluster'], 2).tolist()} "
                  f"{'PASS' if not rec['miss'] else 'FAIL ' + ','.join(rec['miss'])}", flush=True)
    k = sum(not r["miss"] for r in recs)
    print(f"members passing: {k}/{len(recs)} ({time.time() - t0:.0f} s)")
    if args.members > 1:  # runs of `members` consecutive seeds: the claims take the min over a run's members
        runs = [recs[i:i + args.members] for i in range(0, len(recs) - args.members + 1, args.members)]
        k = sum(all(not r["miss"] for r in run) for run in runs)
        print(f"runs of {args.members} members passing every per-member threshold: {k}/{len(runs)}, "
              f"95% Clopper-Pearson lower bound {clopper_pearson_lower(k, len(runs)):.3f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(dict(config=overrides, preset=args.preset, records=recs), fh, default=float)


if __name__ == "__main__":
    main()
