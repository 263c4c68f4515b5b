"""Ensemble-first models: every parameter has a leading member dimension E.

E independent networks (seeds, data draws, hyper-parameter copies) train as one tensor program:
an `EnsembleLinear` is one `torch.baddbmm` over the members instead of E small matmuls. E = 1 is an
ordinary single run.

Conventions shared by every model here (and relied on by `lc`):

- `model.n_members` is E.
- `model(x)` takes `x` of shape [N, d] (the same points for every member) or [E, N, d] (each member
  its own points) and returns [E, N, out].
- Every hidden activation is a torch module (`nn.ReLU`, `nn.LeakyReLU`, `nn.Identity` for linear
  nets), so its input is the pre-activation that `lc` hooks; inside an ensemble it has shape [E, N, H].
- Models are `EnsembleSequential` containers whose first child is the affine map of the input.
- `model.member(e)` returns an ordinary `torch.nn.Module` (an `nn.Sequential` of `nn.Linear`,
  activations, `nn.BatchNorm1d`) holding copies of member e's parameters; its outputs equal
  `model(x)[e]` for inputs `x[e]`.

Initialisation draws each member's parameters from that member's own `torch.Generator` (on the CPU,
in a fixed order), so member e of an E-member model equals the one-member model built with member e's
generator: ensembles reproduce single runs exactly.

Modules: `core` (generators, ensemble layers, two-layer nets, MLPs), `linear_nets` (deep matrix
factorisations, diagonal and symmetric factorisations), `conv` (the small CNN and its layers).
"""

from .conv import EnsembleBatchNorm2d, EnsembleConv2d, EnsembleFlatten, Images, SmallCNN
from .core import (MLP, EnsembleBatchNorm1d, EnsembleLinear, EnsembleSequential, NTKTwoLayerNet, Scale,
                   TwoLayerNet, activation, make_generators, values_per_member)
from .linear_nets import DeepMatrixFactorization, DiagonalLinear, DiagonalNet, SymmetricFactor, SymmetricFactorization

__all__ = ["EnsembleLinear", "EnsembleBatchNorm1d", "EnsembleSequential", "TwoLayerNet", "NTKTwoLayerNet", "Scale",
           "MLP", "DeepMatrixFactorization", "DiagonalNet", "DiagonalLinear", "SymmetricFactorization",
           "SymmetricFactor", "make_generators", "activation", "values_per_member", "Images", "EnsembleConv2d",
           "EnsembleBatchNorm2d", "EnsembleFlatten", "SmallCNN"]
