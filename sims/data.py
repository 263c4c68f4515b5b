"""Synthetic data with a member dimension: each member draws its own data from its own generator.

Every generator here draws one member's data from one `torch.Generator` (CPU, float64, then cast),
and `stack_per_member(fn, generators, ...)` stacks the members: arrays [E, n, ...].
"""

from __future__ import annotations

import functools
import math
import random
from typing import Callable, Sequence

import numpy as np
import torch

from .mnist import MNIST_FILES, check_image_source, mnist_images, read_idx

__all__ = ["stack_per_member", "for_members", "xor_clusters", "gaussian_mixture", "flip_labels", "low_rank_matrix",
           "completion_data", "sensing_data", "sign_teacher", "linear_teacher", "sparse_boolean", "misgrokking_data",
           "multiplication_table_completion", "modular_addition"]


def _stack(outs, dtype, device) -> tuple[torch.Tensor, ...]:
    """Stack the members' returned tensors on dim 0; floating ones cast to `dtype`, all moved to `device`."""
    stacked = []
    for parts in zip(*outs):
        t = torch.stack(parts)
        stacked.append(t.to(device=device, dtype=dtype if t.is_floating_point() else t.dtype))
    return tuple(stacked)


def stack_per_member(fn: Callable, generators: Sequence[torch.Generator], *args, dtype=torch.float32, device="cpu",
                     **kwargs) -> tuple[torch.Tensor, ...]:
    """Call `fn(*args, generator=g, **kwargs)` for each member and stack every returned tensor on dim 0.

    Floating tensors are cast to `dtype`; everything is moved to `device`.
    """
    return _stack([fn(*args, generator=g, **kwargs) for g in generators], dtype, device)


def for_members(fn: Callable, members: Sequence, generators: Sequence[torch.Generator], *, dtype=torch.float32,
                device="cpu") -> tuple[torch.Tensor, ...]:
    """Like `stack_per_member`, for data whose parameters may differ between members (member-wise config fields such
    as the noise rate): `fn(cfg, generator)` with member e's config and generator, stacked on dim 0."""
    return _stack([fn(c, g) for c, g in zip(members, generators)], dtype, device)


def flip_labels(y: torch.Tensor, rate: float, generator: torch.Generator) -> torch.Tensor:
    """Each +-1 label flipped independently with probability `rate`."""
    flips = torch.rand(y.shape, generator=generator, dtype=torch.float64) < rate
    return torch.where(flips, -y, y)


def xor_clusters(n: int, d: int, mu_norm: float, noise_rate: float, *, generator: torch.Generator):
    """XOR cluster data (Xu, Wang, Frei, Vardi, Hu 2024).

    Cluster means +-mu_1 and +-mu_2 with mu_1 = mu_norm e_1, mu_2 = mu_norm e_2 (orthogonal, equal
    norms; with isotropic noise this choice of axes loses no generality). x = mu + xi, xi ~ N(0, I_d),
    the cluster chosen uniformly among the four. Clean label +1 for +-mu_1, -1 for +-mu_2; the returned
    label is flipped with probability `noise_rate`.
    Returns x [n, d] (float64), y [n] noisy labels, y_clean [n] (both +-1 float64).
    """
    cluster = torch.randint(0, 4, (n,), generator=generator)  # 0: +mu1, 1: -mu1, 2: +mu2, 3: -mu2
    x = torch.randn(n, d, generator=generator, dtype=torch.float64)
    sign = 1.0 - 2.0 * (cluster % 2).double()
    axis = (cluster // 2).long()
    x[torch.arange(n), axis] += sign * mu_norm
    y_clean = torch.where(axis == 0, 1.0, -1.0).double()
    return x, flip_labels(y_clean, noise_rate, generator), y_clean


def gaussian_mixture(n: int, d: int, mu_norm: float, noise_rate: float, *, generator: torch.Generator):
    """Two-cluster Gaussian mixture x = y_clean mu + N(0, I_d), mu = mu_norm e_1, labels flipped w.p. rate.

    (Frei et al. 2023; Chatterji and Long 2021.) Returns x [n, d], y [n], y_clean [n] (float64).
    """
    y_clean = torch.where(torch.rand(n, generator=generator, dtype=torch.float64) < 0.5, 1.0, -1.0).double()
    x = torch.randn(n, d, generator=generator, dtype=torch.float64)
    x[:, 0] += y_clean * mu_norm
    return x, flip_labels(y_clean, noise_rate, generator), y_clean


def sign_teacher(n: int, d: int, *, generator: torch.Generator):
    """Isotropic inputs with the labels of a linear threshold teacher: x ~ N(0, I_d), y = sign(x_1) (+-1).

    (Hu, Xiao, Adlam, Pennington 2020 use binary labels on isotropic data; the teacher direction e_1 loses no
    generality for isotropic x.) The best linear predictor of y is sqrt(2/pi) x_1, which leaves a fraction
    1 - 2/pi of E y^2 unexplained: a linear model stalls there, a network can fit more.
    Returns x [n, d], y [n] (float64).
    """
    x = torch.randn(n, d, generator=generator, dtype=torch.float64)
    return x, torch.where(x[:, 0] >= 0, 1.0, -1.0).double()


def linear_teacher(n: int, d: int, noise: float, *, generator: torch.Generator):
    """x ~ N(0, I_d), y = <beta*, x> + noise * N(0, 1), with beta* uniform on the unit sphere (drawn first, so a
    fixed generator seed gives the same teacher for every n).

    (Nakkiran, Venkat, Kakade, Ma 2021, isotropic linear regression; the random-features double-descent
    setting regresses on features of these x.) Returns beta* [d], x [n, d], y [n] (float64).
    """
    beta = torch.randn(d, generator=generator, dtype=torch.float64)
    beta = beta / beta.norm()
    x = torch.randn(n, d, generator=generator, dtype=torch.float64)
    return beta, x, x @ beta + noise * torch.randn(n, generator=generator, dtype=torch.float64)


def low_rank_matrix(n: int, rank: int, *, generator: torch.Generator) -> torch.Tensor:
    """W* = U V^T / sqrt(r) with U, V ~ N(0, 1)^{n x r}, rescaled to ||W*||_F = n: [n, n] float64.

    (Arora, Cohen, Hu, Luo 2019: entries of RMS 1, so ||W - W*||_F^2 / ||W*||_F^2 is a mean over entries.)
    """
    U = torch.randn(n, rank, generator=generator, dtype=torch.float64)
    V = torch.randn(n, rank, generator=generator, dtype=torch.float64)
    W = U @ V.T / math.sqrt(rank)
    return W * (n / W.norm())


def completion_data(n: int, rank: int, n_obs: int, *, generator: torch.Generator):
    """W* [n, n], observed positions [n_obs, 2] (row, col; uniform without replacement), values [n_obs].

    The positions are the first n_obs of one random permutation of the n^2 entries, so for a fixed
    generator seed a larger n_obs observes a superset of the entries.
    """
    W = low_rank_matrix(n, rank, generator=generator)
    flat = torch.randperm(n * n, generator=generator)[:n_obs]
    return W, torch.stack([flat // n, flat % n], dim=1), W.reshape(-1)[flat]


def sensing_data(n: int, rank: int, n_obs: int, *, generator: torch.Generator):
    """W* [n, n], measurement matrices A [n_obs, n, n] with N(0, 1) / n entries, y_i = <A_i, W*> [n_obs]."""
    W = low_rank_matrix(n, rank, generator=generator)
    A = torch.randn(n_obs, n, n, generator=generator, dtype=torch.float64) / n
    return W, A, (A * W).sum(dim=(1, 2))


def sparse_boolean(n: int, n_test: int, d: int, k: int, *, generator: torch.Generator):
    """Sparse Boolean classification (Lyu et al. 2024, Sec. 3; the authors' code).

    x uniform on {-1, +1}^d for training and test points; w* = random +-1 signs on the first k coordinates,
    0 elsewhere; y = +1 if <x_{1:k}, w*_{1:k}> > 0 else -1 (odd k: never a tie). The l1 max-margin classifier
    generalises from n ~ k^2 log d points, the l2 one (the kernel regime's) needs n ~ k d.
    Returns x [n, d], y [n], x_test [n_test, d], y_test [n_test], w* [d] (float64, labels +-1).
    """
    x = torch.randint(0, 2, (n, d), generator=generator).double() * 2 - 1
    xt = torch.randint(0, 2, (n_test, d), generator=generator).double() * 2 - 1
    w = torch.zeros(d, dtype=torch.float64)
    w[:k] = torch.randint(0, 2, (k,), generator=generator).double() * 2 - 1

    def label(z: torch.Tensor) -> torch.Tensor:
        return torch.where(z[:, :k] @ w[:k] > 0, 1.0, -1.0).double()

    return x, label(x), xt, label(xt), w


def misgrokking_data(n: int, n_test: int, d: int, gamma: float, *, generator: torch.Generator):
    """The misgrokking task (Lyu et al. 2024; the authors' code): a margin of gamma along a dense direction.

    w* ~ N(0, I_d) normalised; z ~ N(0, I_d); y = sign <z, w*>; x = z + y (gamma / 2) w*, so the classes are
    separated by a gap gamma along w*. The l2 max-margin classifier (kernel phase) finds w* and generalises;
    the l1 one (rich phase) picks a few coordinates of z that separate the n training points and does not.
    Returns x [n, d], y [n], x_test [n_test, d], y_test [n_test], w* [d] (float64, labels +-1).
    """
    w = torch.randn(d, generator=generator, dtype=torch.float64)
    w = w / w.norm()

    def draw(m: int):
        z = torch.randn(m, d, generator=generator, dtype=torch.float64)
        y = torch.where(z @ w > 0, 1.0, -1.0).double()
        return z + y[:, None] * (gamma / 2) * w, y

    x, y = draw(n)
    xt, yt = draw(n_test)
    return x, y, xt, yt, w


def multiplication_table_completion(d: int, n_obs: int, *, generator: torch.Generator):
    """The completion task of Lyu et al. 2024 (the authors' code): M_ij = i j / d^2, i, j = 0..d-1 (rank 1).

    Observed: the first n_obs entries of a random permutation of the d^2 entries; test: all the others.
    Returns M [d, d], positions [n_obs, 2] (row, col), values [n_obs], test positions [d^2 - n_obs, 2],
    test values [d^2 - n_obs] (float64 values, long positions).
    """
    v = torch.arange(d, dtype=torch.float64) / d
    M = torch.outer(v, v)
    perm = torch.randperm(d * d, generator=generator)
    pos = torch.stack([perm // d, perm % d], dim=1)  # [d^2, 2]
    vals = M.reshape(-1)[perm]
    return M, pos[:n_obs], vals[:n_obs], pos[n_obs:], vals[n_obs:]


def modular_addition(p: int, n_train: int, *, generator: torch.Generator):
    """Modular addition (Power et al. 2022; Lyu et al. 2024's setup): all p^2 pairs (a, b), label (a + b) mod p.

    Input one-hot(a) ++ one-hot(b) [2p] (no embedding); a random permutation of the pairs puts the first
    n_train in the training set and the rest in the test set.
    Returns x [n_train, 2p] (float64 0/1), y [n_train] (long), x_test [p^2 - n_train, 2p], y_test.
    """
    a, b = torch.arange(p).repeat_interleave(p), torch.arange(p).repeat(p)
    x = torch.zeros(p * p, 2 * p, dtype=torch.float64)
    rows = torch.arange(p * p)
    x[rows, a] = 1.0
    x[rows, p + b] = 1.0
    y = (a + b) % p
    perm = torch.randperm(p * p, generator=generator)
    tr, te = perm[:n_train], perm[n_train:]
    return x[tr], y[tr], x[te], y[te]


# ---------------------------------------------------------------------------------------------------- images
# Image sets that work offline: scikit-learn's digits (bundled), MNIST-1D (generated procedurally) and real MNIST
# read from files the user has. Each member draws its own training and test subset from its own generator.

__all__ += ["IMAGE_SETS", "MNIST_FILES", "digits_images", "mnist1d_images", "read_idx", "mnist_images",
            "check_image_source", "image_split", "random_labels", "flip_class"]

IMAGE_SETS = ("digits", "mnist1d", "mnist")


@functools.lru_cache(maxsize=1)
def digits_images() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 8 x 8 handwritten digits (bundled with scikit-learn, 1797 images, 10 classes):
    x [1797, 64] float64 in [0, 1] (pixel / 16, rows of the image concatenated), y [1797] int64 (read once per
    process; index into them, do not change them in place)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return torch.from_numpy(d.data / 16.0), torch.from_numpy(d.target).long()


def mnist1d_images(n: int, *, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """n samples of MNIST-1D (Greydanus 2020), generated procedurally with the package's own generator
    (`mnist1d.data.make_dataset` with `get_dataset_args()`; never `get_dataset`, which downloads).

    The dataset seed is drawn from `generator`, so each member gets its own sample; numpy's and Python's global
    random states, which `make_dataset` reseeds, are restored afterwards. make_dataset draws
    ceil(n / 10) samples per class (shuffled) and standardises them (mean 0, std 1 over the sample); the first
    n are returned: x [n, 40] float64, y [n] int64.
    """
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as err:
        raise ValueError("dataset 'mnist1d' needs the mnist1d package: pip install 'implicit-bias-lab[images]'") from err
    args = get_dataset_args()
    args.num_samples, args.train_split = 10 * math.ceil(n / 10), 1.0
    args.seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        data = make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    return torch.from_numpy(np.asarray(data["x"][:n], dtype=np.float64)), torch.from_numpy(data["y"][:n]).long()


def image_split(dataset: str, n_train: int, n_test: int, *, generator: torch.Generator, data_dir: str = ""):
    """One member's training and test images: x [n_train, d], y [n_train], x_test [n_test, d], y_test [n_test]
    (float64 inputs, int64 labels 0..9).

    digits: one random permutation of the 1797 images from `generator`, its first n_train for training and the
    next n_test for testing; mnist1d: n_train + n_test fresh samples (`mnist1d_images`); mnist: n_train drawn
    without replacement from the 60000 training images and n_test from the 10000 test images.
    """
    if dataset == "digits":
        x, y = digits_images()
        if n_train + n_test > len(y):
            raise ValueError(f"digits has {len(y)} images; n_train + n_test = {n_train + n_test} is too many")
        perm = torch.randperm(len(y), generator=generator)
        tr, te = perm[:n_train], perm[n_train:n_train + n_test]
        return x[tr], y[tr], x[te], y[te]
    if dataset == "mnist1d":
        x, y = mnist1d_images(n_train + n_test, generator=generator)
        return x[:n_train], y[:n_train], x[n_train:], y[n_train:]
    if dataset == "mnist":
        parts = mnist_images(data_dir)
        out = []
        for part, n in (("train", n_train), ("test", n_test)):
            x, y = parts[part]
            if n > len(y):
                raise ValueError(f"MNIST {part} set in {data_dir} has {len(y)} images; asked for {n}")
            idx = torch.randperm(len(y), generator=generator)[:n]
            out += [x[idx], y[idx]]
        return tuple(out)
    raise ValueError(f"dataset must be one of {IMAGE_SETS}; got {dataset!r}")


def random_labels(y: torch.Tensor, fraction: float, n_classes: int, *, generator: torch.Generator) -> torch.Tensor:
    """Labels with round(fraction * n) of them, chosen at random, replaced by a class drawn uniformly from
    0..n_classes-1 (which may be the true one, as in Zhang et al. 2017's partially corrupted labels): [n] int64."""
    k = int(round(fraction * len(y)))
    idx = torch.randperm(len(y), generator=generator)[:k]
    out = y.clone()
    out[idx] = torch.randint(0, n_classes, (k,), generator=generator)
    return out


def flip_class(y: torch.Tensor, source: int, target: int, fraction: float, *, generator: torch.Generator) -> torch.Tensor:
    """Labels with round(fraction * #{y == source}) of the points of class `source`, chosen at random, relabelled
    `target` (the class-to-class flip of distributional generalisation, Nakkiran and Bansal 2021): [n] int64."""
    idx = torch.nonzero(y == source).flatten()
    k = int(round(fraction * len(idx)))
    out = y.clone()
    out[idx[torch.randperm(len(idx), generator=generator)[:k]]] = target
    return out
