"""Xu, Wang, Frei, Vardi, Hu (ICLR 2024): benign overfitting in XOR cluster data, through grokking."""

from __future__ import annotations

import numpy as np

from ..settings.xor_cluster import transition
from . import Claim, RunSpec, at_step, final, register_claims

XOR = RunSpec("xor-cluster", seeds=3)


def _first_step_train(runs):
    acc = at_step(runs["xor"], "train_acc", 1)
    return float(np.min(acc)), f"min over {len(acc)} seeds; per seed {np.round(acc, 3).tolist()}"


def _first_step_test(runs):
    acc = at_step(runs["xor"], "test_acc", 1)
    return float(np.max(np.abs(acc - 0.5))), f"max over seeds of abs(test acc - 0.5); per seed {np.round(acc, 3).tolist()}"


def _late_test(runs):
    r = runs["xor"]
    acc, clean = final(r, "test_acc"), final(r, "test_acc_clean")
    return float(np.mean(acc)), (f"mean over seeds at step {r.steps[-1]}; per seed {np.round(acc, 3).tolist()}; "
                                 f"clean labels {np.round(clean, 3).tolist()}; 1 - eta = {1 - r.config.noise_rate:g}")


def _train_stays_fitted(runs):
    r = runs["xor"]
    acc = r.metric("train_acc")[r.steps >= 1]  # [n_evals, E]
    return float(acc.min()), f"min over seeds and over the {len(acc)} evals from step 1 to {r.steps[-1]}"


def transition_step(run) -> int:
    """The first eval step at or past the transition (`sims.settings.xor_cluster.transition`), or the last step."""
    cross = transition(run)
    return int(run.steps[cross.index]) if cross is not None else int(run.steps[-1])


def _transition(runs):
    r = runs["xor"]
    acc = r.metric("test_acc").mean(axis=1)
    cross = transition(r)
    if cross is None:
        return float("nan"), "test accuracy does not move after step 1"
    return cross.step, (f"interpolated between eval steps {cross.between}; mean test acc "
                        f"{at_step(r, 'test_acc', 1).mean():.3f} at step 1, {acc[-1]:.3f} at step {r.steps[-1]}")


def _lc(runs):
    r = runs["xor"]
    if "lc_train" not in r.metric_names:
        return float("nan"), "LC not measured (lc=false or the lc package is missing)"
    s = transition_step(r)
    marks = [0, 1, s, int(r.steps[-1])]
    parts = []
    for name in ("train", "test", "random"):
        vals = [at_step(r, f"lc_{name}", k).mean() for k in marks]
        parts.append(f"{name} " + " -> ".join(f"{v:.3g}" for v in vals))
    ratio = at_step(r, "lc_train", marks[-1]).mean() / at_step(r, "lc_train", 1).mean()
    train = r.metric("lc_train").mean(axis=1)
    low = int(np.argmin(train))
    return float(ratio), (f"LC_train(last) / LC_train(step 1); mean LC at steps {marks} (init, after step 1, "
                          f"transition, last): " + "; ".join(parts) +
                          f"; LC_train is lowest, {train[low]:.3g}, at step {r.steps[low]}")


register_claims("xu2024", "Benign overfitting and grokking in ReLU networks for XOR cluster data (Xu et al. 2024)", [
    Claim("first-step-fits-noisy-labels",
          "after the first GD step the network fits every (noisy) training label",
          {"xor": XOR}, _first_step_train, ">=", 1.0, paper_value="100% train accuracy after step 1"),
    Claim("first-step-test-near-chance",
          "after the first GD step the test accuracy is within 0.5 +- 0.1 (catastrophic overfitting)",
          {"xor": XOR}, _first_step_test, "<=", 0.1, paper_value="test accuracy near 50% after step 1"),
    Claim("late-test-near-optimal",
          "late in training the test accuracy on noisy labels (mean over seeds) is >= 1 - eta - 0.05 = 0.85",
          {"xor": XOR}, _late_test, ">=", 0.85, paper_value="test error near eta (near-optimal) later in training"),
    Claim("train-acc-stays-100",
          "training accuracy on the noisy labels stays 100% from step 1 to the end",
          {"xor": XOR}, _train_stays_fitted, ">=", 1.0, paper_value="100% train accuracy throughout"),
    Claim("transition-step",
          "step at which the test accuracy is halfway from its step-1 value to its final value",
          {"xor": XOR}, _transition, "report", paper_value="a delayed rise (grokking)"),
    Claim("lc-around-transition",
          "local complexity at train / test / random points around the transition",
          {"xor": XOR}, _lc, "report", paper_value="not in the paper (Humayun et al. 2024: LC falls at train "
                                                  "points when generalisation arrives)"),
])
