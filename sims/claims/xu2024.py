"""Xu, Wang, Frei, Vardi, Hu (ICLR 2024): benign overfitting in XOR cluster data, through grokking."""

from __future__ import annotations

import numpy as np

from . import Claim, RunSpec, at_step, register_claims

XOR = RunSpec("xor-cluster", seeds=3)


def _first_step_train(runs):
    acc = at_step(runs["xor"], "train_acc", 1)
    return float(np.min(acc)), f"min over {len(acc)} seeds; per seed {np.round(acc, 3).tolist()}"


register_claims("xu2024", "Benign overfitting and grokking in ReLU networks for XOR cluster data (Xu et al. 2024)", [
    Claim("first-step-fits-noisy-labels",
          "after the first GD step the network fits every (noisy) training label",
          {"xor": XOR}, _first_step_train, ">=", 1.0, paper_value="100% train accuracy after step 1"),
])
