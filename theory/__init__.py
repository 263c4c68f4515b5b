"""Closed forms and convex programs for what the papers predict (numpy, scipy, cvxpy; no torch).

Submodules load on first access, so ``import theory`` is cheap and ``theory.max_margin`` works
without an explicit import:

- `theory.max_margin`: l2 / l1 / kernel max-margin classifiers, min-norm interpolation,
  support-vector proliferation.
- `theory.matrices`: effective and stable rank, nuclear-norm completion and sensing, deep-linear
  end-to-end dynamics, balancedness.
- `theory.kkt`: KKT residual and normalised margin of homogeneous models.
- `theory.linear_regression`: effective ranks, k*, benign-overfitting bound terms, excess risk of
  min-norm interpolation, standard spectra, ridge regression and its optimal penalty.
- `theory.dichotomy`: kernel-to-rich transition time log(alpha) / lambda and its phases, the early
  (kernel) and late (min-norm) predictors of diagonal linear nets and of U U^T - V V^T matrix
  completion, the sparse-task margin bounds (Lyu et al. 2024).
- `theory.early_time`: Gaussian (Hermite) moments of activations, the affine kernels that
  approximate a two-layer net's NTK on isotropic data, the linear model it follows early and its
  GD trajectory in closed form, the empirical NTK (Hu, Xiao, Adlam, Pennington 2020).
- `theory.xor_cluster`: the signed label sum along an XOR cluster axis and the regime ratios of an
  XOR-cluster configuration (Xu, Wang, Frei, Vardi, Hu 2024).

Solvers, ranks, KKT residuals and risks are scale-equivariant over the float64 range: inputs are
rescaled internally by exact powers of two, and a result that cannot be represented raises ValueError.

`theory.__version__` is the installed distribution's version (read on first access).
"""

import importlib

__all__ = ["dichotomy", "early_time", "kkt", "linear_regression", "matrices", "max_margin", "xor_cluster"]


def __getattr__(name):
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            value = version("implicit-bias-lab")
        except PackageNotFoundError:  # run from a source tree that is not installed
            value = "0+unknown"
        globals()[name] = value
        return value
    if name in __all__:
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *__all__, "__version__"})
