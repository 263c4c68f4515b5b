"""Local complexity (LC) of one's own torch models through a few training steps (Humayun et al. 2024).

An ordinary `nn.Sequential` MLP and a small CNN, trained by a plain torch loop; `lc.local_complexity` counts
the ReLU units whose zero set crosses a small cross-polytope around each point, and `lc.Probe` gives the mean
LC at named point sets (what the training engine records as lc_train, lc_test, ...).

    python examples/lc_own_model.py [--steps 30 --radius 0.5]
"""

import argparse

import torch
from torch import nn

import lc


def train(model, x, y, steps, probe, every):
    """Cross-entropy with Adam; the probe's mean LC every `every` steps."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for step in range(steps + 1):
        if step % every == 0:
            acc = (model(x).argmax(1) == y).double().mean().item()
            print(f"  step {step:3d}  train acc {acc:.2f}  " + "  ".join(f"{k} {v.item():.2f}" for k, v in probe(model).items()))
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--radius", type=float, default=0.5)
    args = p.parse_args(argv)
    torch.manual_seed(0)
    x = torch.randn(200, 10)  # [N, 10]
    y = (x[:, 0] * x[:, 1] > 0).long()  # an XOR-like label
    mlp = nn.Sequential(nn.Linear(10, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 2))

    res = lc.local_complexity(mlp, x[:5], radius=args.radius, n_dirs=8)
    print(f"MLP at init: LC of 5 points {res.per_point.tolist()} (sites {list(res.site_names)}, units "
          f"{res.units.tolist()})")
    probe = lc.Probe({"train": x[:50], "random": 3 * torch.rand(50, 10) - 1.5}, radius=args.radius, n_dirs=8)
    print("MLP through training:")
    train(mlp, x, y, args.steps, probe, max(1, args.steps // 3))

    images = torch.randn(64, 1, 8, 8)  # [N, C, H, W]
    labels = (images[:, 0, :4].mean((1, 2)) > images[:, 0, 4:].mean((1, 2))).long()
    cnn = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(),
                        nn.Flatten(), nn.Linear(4 * 8 * 8, 2))
    print("CNN through training (a conv site counts channels x positions units):")
    train(cnn, images, labels, args.steps, lc.Probe({"train": images[:32]}, radius=args.radius, n_dirs=8),
          max(1, args.steps // 3))


if __name__ == "__main__":
    main()
