"""Xu, Wang, Frei, Vardi, Hu (ICLR 2024): benign overfitting in XOR cluster data, through grokking.

The theorem: after the first (large) GD step the network fits every noisy training label and is close to a
linear classifier, which cannot solve XOR, so its test accuracy is near chance (catastrophic overfitting);
for C <= t <= sqrt(n) steps its test error is near the noise rate eta (benign overfitting), with every
training label still fitted. The transition is therefore expected within a few steps, and "late" is checked
both inside the theorem's window (the last evaluation at or before sqrt(n) steps) and at the end of the run.
"""

from __future__ import annotations

import math

import numpy as np

from lc.keys import lc_name

from ..settings.clusters.xor_cluster import transition
from . import Claim, RunSpec, at_step, binomial_se, final, register_claims
from .seeds import RATE  # the theorem holds with probability >= 1 - delta over the training sample

XOR = RunSpec("xor-cluster", seeds=3)
TOL = 0.02  # accuracy tolerance below the Bayes rate 1 - eta on noisy labels
CLEAN = 0.97  # clean-label accuracy expected late (the Bayes classifier's is ~1 at these cluster norms)


def _window_end(run) -> int:
    """The last eval step at or before sqrt(n): the end of the theorem's window of benign overfitting."""
    return int(run.steps[run.steps <= math.sqrt(run.config.n)][-1])


def _bayes(runs) -> float:
    return 1 - runs["xor"].config.noise_rate - TOL


def _first_step_train(runs):
    acc = at_step(runs["xor"], "train_acc", 1)
    return float(np.min(acc)), f"min over {len(acc)} seeds; per seed {np.round(acc, 3).tolist()}"


def _first_step_linear(runs):
    r = runs["xor"]
    agree = at_step(r, "linear_agreement", 1)
    return float(np.min(agree)), (f"min over seeds; per seed {np.round(agree, 3).tolist()}; at the end "
                                  f"{np.round(final(r, 'linear_agreement'), 3).tolist()}")


def _first_step_test(runs):
    acc = at_step(runs["xor"], "test_acc", 1)
    return float(np.max(np.abs(acc - 0.5))), f"max over seeds of |test acc - 0.5|; per seed {np.round(acc, 3).tolist()}"


def _in_window(runs):
    r = runs["xor"]
    s = _window_end(r)
    acc, clean = at_step(r, "test_acc", s), at_step(r, "test_acc_clean", s)
    return float(np.min(acc)), (f"min over seeds at step {s} (the last eval <= sqrt(n) = {math.sqrt(r.config.n):.3g}); "
                                f"per seed {np.round(acc, 3).tolist()}; clean labels {np.round(clean, 3).tolist()}; "
                                f"binomial se {binomial_se(acc, r.config.n_test):.3f} ({r.config.n_test} test points)")


def _late_test(runs):
    r = runs["xor"]
    acc, clean = final(r, "test_acc"), final(r, "test_acc_clean")
    return float(np.min(acc)), (f"min over seeds at step {r.steps[-1]}; per seed {np.round(acc, 3).tolist()}; "
                                f"clean labels {np.round(clean, 3).tolist()}; binomial se "
                                f"{binomial_se(acc, r.config.n_test):.3f} ({r.config.n_test} test points)")


def _late_clean(runs):
    r = runs["xor"]
    clean = np.concatenate([at_step(r, "test_acc_clean", _window_end(r)), final(r, "test_acc_clean")])
    return float(np.min(clean)), (f"min over seeds at steps {_window_end(r)} and {r.steps[-1]}; "
                                  f"{np.round(clean, 3).tolist()}")


def _train_stays_fitted(runs):
    r = runs["xor"]
    acc = r.metric("train_acc")[r.steps >= 1]  # [n_evals, E]
    return float(acc.min()), f"min over seeds and over the {len(acc)} evals from step 1 to {r.steps[-1]}"


def _transition(runs):
    r = runs["xor"]
    cross = transition(r)
    if cross is None:
        return float("nan"), "the test accuracy does not move after step 1"
    acc = np.nanmean(r.metric("test_acc"), axis=1)
    return cross.step, (f"interpolated between eval steps {cross.between}; mean test acc "
                        f"{at_step(r, 'test_acc', 1).mean():.3f} at step 1, {acc[-1]:.3f} at step {r.steps[-1]}")


def _lc(runs):
    r, lc_train = runs["xor"], lc_name("train")
    if lc_train not in r.metric_names:
        return float("nan"), "LC not measured (lc=false)"
    cross = transition(r)
    s = int(r.steps[cross.index]) if cross is not None else int(r.steps[-1])
    marks = [0, 1, s, int(r.steps[-1])]
    parts = []
    for name in ("train", "test", "random"):
        vals = [at_step(r, lc_name(name), k).mean() for k in marks]
        parts.append(f"{name} " + " -> ".join(f"{v:.3g}" for v in vals))
    ratio = at_step(r, lc_train, marks[-1]).mean() / at_step(r, lc_train, 1).mean()
    train = r.metric(lc_train).mean(axis=1)
    low = int(np.argmin(train))
    return float(ratio), (f"LC_train(last) / LC_train(step 1); mean LC at steps {marks} (init, after step 1, "
                          f"transition, last): " + "; ".join(parts) +
                          f"; LC_train is lowest, {train[low]:.3g}, at step {r.steps[low]}")


register_claims("xu2024", "Benign overfitting and grokking in ReLU networks for XOR cluster data (Xu et al. 2024)", [
    Claim("first-step-fits-noisy-labels",
          "after the first GD step the network fits every (noisy) training label (min over seeds)",
          {"xor": XOR}, _first_step_train, ">=", 1.0, paper_value="100% train accuracy after step 1", rate=RATE),
    Claim("first-step-is-linear",
          "after the first step sign f agrees with the linear classifier sign <sum_j a_j w_j, x> on test points",
          {"xor": XOR}, _first_step_linear, ">=", 0.95,
          paper_value="the network is close to a linear classifier after step 1"),
    Claim("first-step-test-near-chance",
          "after the first GD step, max over seeds of |test acc - 0.5| (not a check: every linear classifier scores "
          "0.5 on XOR clusters of equal weight by symmetry, so this holds whatever the net learned; "
          "`first-step-is-linear` is the informative check)",
          {"xor": XOR}, _first_step_test, "report", paper_value="test accuracy near 50% after step 1"),
    Claim("transition-within-window",
          "the generalisation transition (half-way from the step-1 to the final test accuracy) comes by sqrt(n) steps",
          {"xor": XOR}, _transition, "<=", lambda runs: math.sqrt(runs["xor"].config.n),
          target_text="sqrt(n)", paper_value="near-optimal for C <= t <= sqrt(n)", rate=RATE),
    Claim("window-test-near-optimal",
          "inside the theorem's window (last eval <= sqrt(n) steps) the noisy-label test accuracy is >= 1 - eta - 0.02",
          {"xor": XOR}, _in_window, ">=", _bayes, target_text="1 - eta - 0.02",
          paper_value="test error near eta for C <= t <= sqrt(n)", rate=RATE),
    Claim("late-test-near-optimal",
          "at the end of the run the noisy-label test accuracy is >= 1 - eta - 0.02 (min over seeds)",
          {"xor": XOR}, _late_test, ">=", _bayes, target_text="1 - eta - 0.02",
          paper_value="test error near eta (near-optimal)", rate=RATE),
    Claim("late-clean-near-perfect",
          f"in the window and at the end the clean-label test accuracy is >= {CLEAN}",
          {"xor": XOR}, _late_clean, ">=", CLEAN, paper_value="the clean (Bayes) classifier is learned",
          rate=RATE),
    Claim("train-acc-stays-100",
          "training accuracy on the noisy labels stays 100% from step 1 to the end",
          {"xor": XOR}, _train_stays_fitted, ">=", 1.0, paper_value="100% train accuracy throughout"),
    Claim("lc-around-transition",
          "local complexity at train / test / random points around the transition",
          {"xor": XOR}, _lc, "report", paper_value="not in the paper (Humayun et al. 2024: LC falls at train "
                                                  "points when generalisation arrives)"),
])
