"""Lyu, Jin, Li, Du, Lee, Hu (ICLR 2024): dichotomy of early and late phase implicit biases can provably induce grokking.

Runs: dichotomy-sparse, dichotomy-misgrokking, dichotomy-completion and modular-addition at 3 seeds each; a sweep
of dichotomy-sparse over alpha x lambda at a small size (d = 1000, n = 128, lr = 1, no max-margin solves; the alphas of
one lambda train as one ensemble, alpha being member-wise). "Early" for the diagonal net is t = t*/4 with
t* = (1/lambda) log alpha (inside the theorem's kernel phase (1 - c) t* for c = 3/4); the memorisation step of each
member is the first evaluation with train accuracy 1 (or train loss at most fit_tol of its initial value), and
"the transition" the step at which the test curve has moved half-way from its value there to its final value;
both come from the runs' transition records (`sims.transitions.record`), so claims and figures agree.
"""

from __future__ import annotations

import math

import numpy as np

from lc.keys import LCKey, lc_keys, select

from ..settings.dichotomy import diagonal as dichotomy

from ..settings.dichotomy import modular_addition
from . import Claim, Figure, NotApplicable, RunSpec, Sweep, at_step, binomial_se, final, register_claims, rounded

SPARSE = {"sparse": RunSpec("dichotomy-sparse", seeds=3)}
MISGROK = {"misgrok": RunSpec("dichotomy-misgrokking", seeds=3)}
COMPLETION = {"completion": RunSpec("dichotomy-completion", seeds=3)}
MODADD = {"modadd": RunSpec("modular-addition", seeds=3)}
ALPHAS, LAMBDAS = (16.0, 64.0, 256.0, 1024.0), (0.01, 0.02, 0.04)
SWEEP = {"sweep": Sweep.of("dichotomy-sparse", {"alpha": ALPHAS, "weight_decay": LAMBDAS}, d=1000, n=128,
                           n_test=1000, lr=1.0, steps=1000, n_evals=100, max_margin=False)}
SLOPE_FACTOR = 1.5  # the slope of lambda t against log alpha must lie in [1 / 1.5, 1.5]
EARLY_C = 0.75  # "early" = (1 - c) (1/lambda) log alpha: inside the kernel phase of the paper's theorem for any c in (0, 1)
PLATEAU = 0.5  # completion: the test loss stays on its plateau until at least this fraction of the predicted step
LC_FALL = 0.2  # the LC paper's final descent: a fall of at least 20% from the peak (as sims.transitions.descent_ascent_descent)


def _records(run) -> list[dict]:
    return run.summary.get("transitions") or [{} for _ in range(run.n_members)]


def _at_steps(run, name: str, steps: list) -> np.ndarray:
    """Per member: metric `name` at eval step steps[e] (NaN where it is None)."""
    return np.array([math.nan if s is None else at_step(run, name, s)[e] for e, s in enumerate(steps)])


def _at_memorisation(run, name: str) -> tuple[np.ndarray, list]:
    """Per member: metric `name` at the member's memorisation step (NaN where it never memorised), and the steps."""
    steps = [rec.get("memorisation_step") for rec in _records(run)]
    return _at_steps(run, name, steps), steps


def _at_early(run, name: str) -> tuple[np.ndarray, list]:
    """Per member: metric `name` at the eval step nearest the end of the kernel phase (1 - c) t* / lr with c = 3/4
    (`theory.dichotomy.early_phase_end`), and the steps; NaN where the theory does not apply (alpha <= 1, no decay).

    Not the memorisation step: for d >> n one GD step from any init gives w ~ X^T y, close to the l2 max-margin
    direction (cosine 0.986 at the default), so the first fitting step looks "kernel" even without a kernel phase.
    """
    from theory.dichotomy import early_phase_end

    steps = []
    for m in run.members:
        if m.alpha <= 1 or m.weight_decay <= 0:
            steps.append(None)
            continue
        want = early_phase_end(m.alpha, m.weight_decay, EARLY_C) / m.lr
        steps.append(int(run.steps[np.argmin(np.abs(run.steps - want))]))
    return _at_steps(run, name, steps), steps


def _r(values, digits: int = 4) -> list:
    return rounded(values, digits)


# diagonal net: early l2, late l1 --------------------------------------------------------------------------------

def _early_cosines(runs):
    r = runs["sparse"]
    l2, steps = _at_early(r, "cos_l2")
    l1, _ = _at_early(r, "cos_l1")
    return float(np.min(l2 - l1)), (f"min over seeds of cos(w, w_l2) - cos(w, w_l1) at step(s) {steps} = t*/4 / lr; "
                                   f"cos with l2 {_r(l2)}, with l1 {_r(l1)}")


def _late_cosines(runs):
    r = runs["sparse"]
    l2, l1 = final(r, "cos_l2"), final(r, "cos_l1")
    return float(np.min(l1 - l2)), (f"min over seeds of cos(w, w_l1) - cos(w, w_l2) at step {r.steps[-1]}; cos with l1 "
                                   f"{_r(l1)}, with l2 {_r(l2)}")


def _max_margin_acc(run, norm: str) -> np.ndarray:
    return np.array([m[f"{norm}_max_margin_test_acc"] for m in run.member_summaries])


def _early_test(runs):
    """max over seeds of |early test acc - l2 max-margin test acc|; n/a when the l2 classifier is itself at chance
    (within max(0.05, 2 binomial standard errors) of 0.5): then a net that learned nothing matches it too."""
    r = runs["sparse"]
    acc, steps = _at_early(r, "test_acc")
    ref = _max_margin_acc(r, "l2")
    chance = 0.5 + max(0.05, 2 * math.sqrt(0.25 / r.config.n_test))
    if np.min(ref) < chance:
        raise NotApplicable(f"the l2 max-margin classifier is at chance (test acc {_r(ref)} < {chance:.3f}), so "
                            f"matching it says nothing about the net (net {_r(acc)} at step(s) {steps})")
    return float(np.max(np.abs(acc - ref))), (f"max over seeds of |test acc at step(s) {steps} = t*/4 / lr - l2 "
                                              f"max-margin test acc|; net {_r(acc)}, l2 classifier {_r(ref)}; "
                                              f"binomial se of each {binomial_se(acc, r.config.n_test):.3f}")


def _late_test(runs):
    r = runs["sparse"]
    acc, ref = final(r, "test_acc"), _max_margin_acc(r, "l1")
    return float(np.max(np.abs(acc - ref))), (f"max over seeds of |final test acc - l1 max-margin test acc|; net "
                                              f"{_r(acc)}, l1 classifier {_r(ref)}; binomial se of each "
                                              f"{binomial_se(acc, r.config.n_test):.3f}")


# transition time over alpha x lambda ---------------------------------------------------------------------------

def _times(runs) -> tuple[list[dict], str]:
    rows = dichotomy.transition_times(runs["sweep"])
    missing = [(r["alpha"], r["lam"]) for r in rows if r["t"] is None]
    return [r for r in rows if r["t"] is not None], (f"; no transition at (alpha, lambda) {missing}" if missing else "")


def _slope(runs):
    rows, note = _times(runs)
    if len(rows) < 3:
        return math.nan, "fewer than 3 transitions measured" + note
    slope, icpt, r2 = dichotomy.linear_fit([math.log(r["alpha"]) for r in rows], [r["lam"] * r["t"] for r in rows])
    return max(slope, 1 / slope) if slope > 0 else math.inf, (
        f"max(a, 1/a) of the fit lambda t = a log alpha + b over {len(rows)} runs: a = {slope:.4f}, b = {icpt:.3f} "
        f"(theory: a = 1, b = -c), R^2 = {r2:.4f}" + note)


def _r2(runs):
    rows, note = _times(runs)
    if len(rows) < 3:
        return math.nan, "fewer than 3 transitions measured" + note
    slope, icpt, r2 = dichotomy.linear_fit([math.log(r["alpha"]) for r in rows], [r["lam"] * r["t"] for r in rows])
    worst = max(abs(r["lam"] * r["t"] - slope * math.log(r["alpha"]) - icpt) for r in rows)
    return r2, f"R^2 of lambda t = {slope:.4f} log alpha {icpt:+.3f}; largest residual {worst:.3f}" + note


def _against_prediction(runs):
    rows, note = _times(runs)
    if len(rows) < 3:
        return math.nan, "fewer than 3 transitions measured" + note
    slope, icpt, r2 = dichotomy.linear_fit([r["t_star"] for r in rows], [r["t"] for r in rows])
    ratio = np.array([r["t"] / r["t_star"] for r in rows])
    return r2, (f"R^2 of t = {slope:.3f} t* {icpt:+.1f}, t* = (1/lambda) log alpha; t / t* from {ratio.min():.3f} "
                f"to {ratio.max():.3f} (the offset c / lambda of t = (log alpha - c) / lambda)" + note)


# misgrokking --------------------------------------------------------------------------------------------------

def _misgrok_early(runs):
    acc, steps = _at_early(runs["misgrok"], "test_acc")
    return float(np.min(acc)), f"min over seeds of test acc at step(s) {steps} = t*/4 / lr; per seed {_r(acc)}"


def _misgrok_late(runs):
    r = runs["misgrok"]
    acc = final(r, "test_acc")
    ref = _max_margin_acc(r, "l1") if "l1_max_margin_test_acc" in r.member_summaries[0] else []
    return float(np.max(acc)), (f"max over seeds of the test acc at step {r.steps[-1]}; per seed {_r(acc)}; l1 max-margin "
                                f"classifier {_r(ref)}")


def _misgrok_train(runs):
    r = runs["misgrok"]
    lo = []
    for e, rec in enumerate(_records(r)):
        s = rec.get("memorisation_step")
        lo.append(math.nan if s is None else float(r.metric("train_acc")[r.steps >= s, e].min()))
    return float(np.min(lo)), f"min over seeds and over the evals from the memorisation step on; per seed {_r(lo)}"


# completion ---------------------------------------------------------------------------------------------------

def _completion_fit(runs):
    recs = _records(runs["completion"])
    ratio = [(rec.get("memorisation_step") or math.nan) / (rec.get("predicted_step") or math.nan) for rec in recs]
    return float(np.max(ratio)), (f"max over seeds of (first step with train loss <= fit_tol x initial) / predicted "
                                  f"step (1/lambda) log alpha / lr; steps {[r.get('memorisation_step') for r in recs]}, "
                                  f"predicted {recs[0].get('predicted_step') or math.nan:.0f}")


def _delay(runs, name: str):
    """min over seeds of the transition record's delay: generalisation step / memorisation step."""
    recs = _records(runs[name])
    delay = [rec.get("delay") or math.nan for rec in recs]
    return float(np.min(delay)), (f"min over seeds of transition step / memorisation step; transition "
                                  f"{_r([rec.get('generalisation_step') or math.nan for rec in recs], 0)}, memorisation "
                                  f"{[rec.get('memorisation_step') for rec in recs]}, predicted (1/lambda) log alpha / lr "
                                  f"{recs[0].get('predicted_step') or math.nan:.0f}")


def _completion_plateau(runs):
    """min over seeds of transition step / predicted step; 0 for a seed that never fits its training entries before
    it generalises (no plateau after a fit), NaN (a FAIL) where there is no transition or no prediction."""
    recs = _records(runs["completion"])
    ratio = [0.0 if rec.get("memorisation_step") is None else
             (rec.get("generalisation_step") or math.nan) / (rec.get("predicted_step") or math.nan) for rec in recs]
    gen = _r([rec.get("generalisation_step") or math.nan for rec in recs], 0)
    return float(np.min(ratio)), (f"min over seeds of transition step / predicted step (0: no fit before the "
                                  f"transition); transition {gen}, "
                                  f"memorisation {[rec.get('memorisation_step') for rec in recs]}, predicted "
                                  f"{recs[0].get('predicted_step') or math.nan:.0f}")


def _completion_fall(runs):
    r = runs["completion"]
    start, _ = _at_memorisation(r, "test_loss")
    end = final(r, "test_loss")
    return float(np.min(start / end)), (f"min over seeds of test loss at memorisation / final; at memorisation "
                                        f"{_r(start)}, final {np.round(end, 6).tolist()}")


def _completion_nuclear(runs):
    ratio = final(runs["completion"], "nuclear_ratio")
    return float(np.max(np.abs(ratio - 1))), (f"max over seeds of | ||W||_* / min-nuclear-norm completion's - 1 | at the "
                                              f"last step; ratios {_r(ratio)}")


# modular addition ---------------------------------------------------------------------------------------------

def _modadd_jump(runs):
    r = runs["modadd"]
    early, _ = _at_memorisation(r, "test_acc")
    end, floor = final(r, "test_acc"), 1.0 / r.config.p
    ratio = end / np.maximum(early, floor)
    return float(np.min(ratio)), (f"min over seeds of final test acc / max(test acc at memorisation, 1/p = {floor:.3f}); "
                                  f"at memorisation {_r(early)}, final {_r(end)}")


def _lc_names(run) -> list[str]:
    """The run's LC totals (sums over sites), by point set then radius."""
    keys = lc_keys(run.metric_names, total=True)
    return [str(k) for k in sorted(keys, key=lambda k: (k.points, k.radius or 0.0))]


def _final_fall(run, name: str) -> np.ndarray:
    """Per member: 1 - LC(last) / max LC from the memorisation step on (smoothed over 3 evals); NaN for a member
    that never memorised (a net collapsing under weight decay loses its LC without any phase to speak of)."""
    from ..transitions import smooth

    out = []
    for e, rec in enumerate(_records(run)):
        s = rec.get("memorisation_step")
        v = smooth(run.metric(name)[:, e])[run.steps >= (s or 0)]
        out.append(math.nan if s is None else 1 - v[-1] / v.max())
    return np.array(out)


def _lc_final_descent(runs):
    r = runs["modadd"]
    names = [m for m in _lc_names(r) if LCKey.parse(m).points == "train"]
    if not names:
        return math.nan, "LC not measured (lc=false or the lc package is missing)"
    main = select(names, "train", r.config.lc_radius)  # the setting's own radius, whatever else was probed
    falls = {m: _final_fall(r, m) for m in names}
    return float(np.mean(falls[main])), (f"mean over seeds of 1 - LC_train(last) / max LC_train from memorisation on, "
                                         f"{main}: per seed {_r(falls[main], 3)}; "
                                         + "; ".join(f"{m}: {_r(v, 3)}" for m, v in falls.items() if m != main))


def _lc_turns(runs):
    r = runs["modadd"]
    recs = _records(r)
    gen = np.array([rec.get("generalisation_step") or math.nan for rec in recs])
    mem = [rec.get("memorisation_step") for rec in recs]
    parts = []
    for name in _lc_names(r):
        key = LCKey.parse(name).label
        v = r.metric(name).mean(axis=1)
        marks = [v[0]] + [float(np.interp(s, r.steps, v)) for s in (np.nanmean(mem), np.nanmean(gen))] + [v[-1]]
        last = [(rec["lc"][key]["turns"] or [None])[-1] for rec in recs]
        turn = ", ".join("none" if t is None else f"{t['kind']} at {t['step'] / g:.2f} x" for t, g in zip(last, gen))
        parts.append(f"{key}: " + " -> ".join(f"{m:.3g}" for m in marks) + f" (last turn per seed: {turn})")
    return float(np.nanmean(gen)), ("mean LC at init -> memorisation -> transition -> last step, with each seed's last "
                                    f"turning point relative to its transition step (transition steps {_r(gen, 0)}); "
                                    + "; ".join(parts))


def _migration(runs):
    rows = modular_addition.migration_table(runs["modadd"])
    if not rows:
        return math.nan, "no snapshots"
    text = "; ".join(f"{r['phase']} (step {r['step']}): {r['regions']} regions, near boundary {r['boundary_share']:.3f}, "
                     f"near pairs {r['points_share']:.4f}" for r in rows)
    after = next(r for r in rows if r["phase"] == "after")
    before = next((r for r in rows if r["phase"] == "memorised"), rows[0])
    return after["boundary_share"] / before["boundary_share"], ("boundary share after / at memorisation (member 0, "
                                                                "slice through three training pairs); " + text)


TITLE = "Dichotomy of early and late phase implicit biases can provably induce grokking (Lyu et al. 2024)"

register_claims("lyu2024", TITLE, [
    Claim("early-predictor-near-l2",
          "diagonal net, sparse task: early (t = t*/4, t* = (1/lambda) log alpha) w = u^2 - v^2 is closer to the l2 "
          "than to the l1 max-margin direction", SPARSE, _early_cosines, ">=", 0.0,
          paper_value="early phase: the kernel (l2 max-margin) predictor"),
    Claim("late-predictor-near-l1",
          "diagonal net, sparse task: at the end w is closer to the l1 than to the l2 max-margin direction",
          SPARSE, _late_cosines, ">=", 0.0, paper_value="late phase: a KKT point of the l1 max-margin problem"),
    Claim("early-test-acc-of-l2",
          "test accuracy early (t = t*/4) is the l2 max-margin classifier's (within 0.05)",
          SPARSE, _early_test, "<=", 0.05, paper_value="~50% (test error bound 4 sqrt(kd/n): vacuous)"),
    Claim("late-test-acc-of-l1",
          "final test accuracy is the l1 max-margin classifier's (within 0.05)",
          SPARSE, _late_test, "<=", 0.05, paper_value="100% (test error bound 4k sqrt(2 log(2d)/n))"),
    Claim("transition-time-slope",
          f"over alpha in {ALPHAS} x lambda in {LAMBDAS}: lambda t_transition = a log alpha + b with a within a "
          f"factor {SLOPE_FACTOR} of 1 (measured: max(a, 1/a))", SWEEP, _slope, "<=", SLOPE_FACTOR,
          paper_value="t = (1/lambda) log alpha (up to lower-order terms)"),
    Claim("transition-time-linear",
          "the same fit is linear: R^2 of lambda t_transition on log alpha", SWEEP, _r2, ">=", 0.9,
          paper_value="sharp transition at (1/lambda) log alpha"),
    Claim("transition-time-vs-prediction",
          "R^2 of t_transition on t* = (1/lambda) log alpha directly (the constant offset becomes c / lambda)",
          SWEEP, _against_prediction, "report"),
    Claim("misgrokking-early-high",
          "misgrokking: test accuracy early (t = t*/4) >= 0.9 (the l2 max-margin predictor generalises)",
          MISGROK, _misgrok_early, ">=", 0.9, paper_value="~100%"),
    Claim("misgrokking-late-low",
          "misgrokking: final test accuracy <= 0.7", MISGROK, _misgrok_late, "<=", 0.7, paper_value="~55%"),
    Claim("misgrokking-train-stays-1",
          "misgrokking: training accuracy stays 1 from the memorisation step to the end", MISGROK, _misgrok_train,
          ">=", 1.0, paper_value="100% throughout"),
    Claim("completion-fits-early",
          "completion: the training entries are fitted (train loss <= fit_tol x initial) within 1% of the predicted "
          "transition time", COMPLETION, _completion_fit, "<=", 0.01, paper_value="train loss ~0 within ~15 steps"),
    Claim("completion-test-plateau",
          f"completion: after the fit the test loss stays on its plateau until at least {PLATEAU} x the predicted "
          "transition step (1/lambda) log alpha / lr: its transition (half-way fall of log test loss) over that step",
          COMPLETION, _completion_plateau, ">=", PLATEAU, paper_value="test loss ~0.10 until ~1.2e5 steps"),
    Claim("completion-test-falls",
          "completion: the test loss then falls at least 10x (value at memorisation / final value)",
          COMPLETION, _completion_fall, ">=", 10.0, paper_value="0.10 -> ~4e-4"),
    Claim("completion-min-nuclear-norm",
          "completion: the final ||W||_* is within 10% of the minimum-nuclear-norm symmetric completion's (cvxpy)",
          COMPLETION, _completion_nuclear, "<=", 0.1, paper_value="late phase = min nuclear norm"),
    Claim("modadd-test-jumps",
          "modular addition: final test acc >= 5 x max(test acc at memorisation, 1/p)",
          MODADD, _modadd_jump, ">=", 5.0, paper_value="test accuracy jumps to ~100%"),
    Claim("modadd-delay",
          "modular addition: the transition step is at least 10x the memorisation step",
          MODADD, lambda runs: _delay(runs, "modadd"), ">=", 10.0, paper_value="about a decade after train accuracy reaches 100%"),
    Claim("lc-train-final-descent",
          f"modular addition: LC at training points falls by >= {LC_FALL:.0%} from its peak after memorisation "
          "to the end (the LC paper's final descent that comes with generalisation)", MODADD, _lc_final_descent,
          ">=", LC_FALL, paper_value="not in the paper (Humayun et al. 2024)",
          control="it fails at the default preset and at ci (no final descent), so no run can show it flip"),
    Claim("lc-turning-points",
          "modular addition: the last LC turning point at train / test / random points and each radius, relative to "
          "the transition step (measured: mean transition step)", MODADD, _lc_turns, "report",
          paper_value="not in the paper"),
    Claim("partition-migration",
          "modular addition: share of region-boundary length near the decision boundary on a slice through three "
          "training pairs, after / at memorisation", MODADD, _migration, "report",
          paper_value="not in the paper (Humayun et al. 2024: regions migrate to the decision boundary)"),
], figures=[
    Figure("transition-time", SWEEP, lambda runs, path: dichotomy.sweep_figure(runs["sweep"], path),
           "measured transition time against (1/lambda) log alpha over alpha x lambda, with the theory line"),
])
