"""The named simulations, grouped by family; importing a setting module registers its simulations.

- `factorisation`: deep matrix factorisation (Arora et al. 2019): `dmf`;
- `clusters`: two-layer nets on cluster data: `xor_cluster` (Xu et al. 2024), `leaky_relu_highdim` (Frei et al. 2023);
- `dichotomy`: early- and late-phase biases (Lyu et al. 2024): `diagonal`, `completion`, `modular_addition`;
- `images`: image MLP and CNN (Humayun et al. 2024): `grokking`, `random_labels`; helpers `base` (the shared config
  and task) and `slices` (2-D slices of the partition), which register nothing;
- `linear`: linear models: `benign_max_margin`, `benign_regression`, `double_descent`, `svm_proliferation`,
  `early_time` (Hu et al. 2020);
- `common`: a helper shared by the families (per-member losses and accuracies, the LC probe, two-layer configs).

`sims list` / `sims show` read `sims/index.json` (`python -m sims.index --write` after adding or changing a
setting); `sims run NAME` imports only NAME's module.
"""
