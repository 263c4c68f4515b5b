"""Nuclear-norm completion against a deep matrix factorisation (Arora, Cohen, Hu, Luo 2019).

A rank-r matrix is observed on a few entries. `theory.matrices.nuclear_norm_completion` solves the convex
baseline; a depth-N product W = W_N ... W_1 of full n x n factors, trained here by plain torch from a small
init on the observed entries, needs no penalty to find a low-rank completion, and deeper does better.

    python examples/deep_factorisation.py [--n 16 --rank 2 --observed 90 --steps 1500]
"""

import argparse

import numpy as np
import torch

from theory.matrices import effective_rank, nuclear_norm_completion


def train_factorisation(n, depth, rows, cols, values, steps, init_scale=1e-2, lr=0.02, seed=0) -> np.ndarray:
    """GD (Adam) on the mean squared error over the observed entries of W = W_depth ... W_1; returns W."""
    g = torch.Generator().manual_seed(seed)
    std = init_scale ** (1 / depth) / np.sqrt(n)  # ||W(0)||_F ~ init_scale * sqrt(n)
    factors = [torch.nn.Parameter(std * torch.randn(n, n, generator=g, dtype=torch.float64)) for _ in range(depth)]
    opt = torch.optim.Adam(factors, lr=lr)
    r, c, v = torch.as_tensor(rows), torch.as_tensor(cols), torch.as_tensor(values)
    for _ in range(steps):
        W = torch.linalg.multi_dot(factors[::-1]) if depth > 1 else factors[0]
        loss = (W[r, c] - v).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return (torch.linalg.multi_dot(factors[::-1]) if depth > 1 else factors[0]).numpy()


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=16)
    p.add_argument("--rank", type=int, default=2)
    p.add_argument("--observed", type=int, default=90)
    p.add_argument("--steps", type=int, default=1500)
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    truth = rng.normal(size=(args.n, args.rank)) @ rng.normal(size=(args.rank, args.n)) / np.sqrt(args.rank)
    idx = rng.choice(args.n * args.n, size=args.observed, replace=False)
    rows, cols = np.divmod(idx, args.n)
    values = truth[rows, cols]

    def error(W):  # relative reconstruction error over every entry
        return np.linalg.norm(W - truth) ** 2 / np.linalg.norm(truth) ** 2

    nuc = nuclear_norm_completion(truth.shape, rows, cols, values, tol=1e-6)
    print(f"{args.observed} of {args.n * args.n} entries of a rank-{args.rank} matrix observed")
    print(f"nuclear norm : error {error(nuc):.2e}, effective rank {effective_rank(nuc):.2f}")
    for depth in (1, 2, 3):
        W = train_factorisation(args.n, depth, rows, cols, values, args.steps)
        fit = np.abs(W[rows, cols] - values).max()
        print(f"depth {depth}      : error {error(W):.2e}, effective rank {effective_rank(W):.2f}, "
              f"max error on the observed entries {fit:.1e}")


if __name__ == "__main__":
    main()
