"""Benign overfitting of linear interpolators and max-margin classifiers: Bartlett, Long, Lugosi, Tsigler (2020),
Chatterji and Long (2021), Hsu, Muthukumar, Xu (2021), Nakkiran, Venkat, Kakade, Ma (2021)."""

from __future__ import annotations

import numpy as np

from .. import plots, style, transitions
from ..settings.linear import benign_regression
from ..settings.linear import double_descent
from ..settings.linear import svm_proliferation
from . import Claim, Figure, RunSpec, Sweep, final, register_claims
from .seeds import RATE

SPECTRA = benign_regression.SPECTRA
BENIGN = ("power-law", "two-tier")  # benign at these sizes (d >> n); the log spectrum only as n -> infinity
REGRESSION = {"sweep": Sweep.of("benign-regression", {"spectrum": SPECTRA}, seeds=5)}
FLIP_RATES = (0.0, 0.05, 0.1, 0.15, 0.2)  # Chatterji and Long: eta below a small constant
MARGIN = {"sweep": Sweep.of("benign-max-margin", {"noise_rate": FLIP_RATES}, seeds=3)}
MU_GRID = (4.0, 6.0, 8.0, 10.0, 12.0)  # at the preset's flip rate: from outside the benign regime into it
SIGNAL = {"sweep": Sweep.of("benign-max-margin", {"mu_norm": MU_GRID}, seeds=3)}
SVM = {"svm": RunSpec("svm-proliferation", seeds=20)}
DOUBLE = {"dd": RunSpec("double-descent", seeds=5)}
NEAR = 0.02  # "close": test error within this of the flip rate; isotropic risk within this fraction of its closed form
FALL = 0.25  # "falls": risk at the largest n at most this fraction of the risk at the smallest n
RISE = 0.1  # "monotone within noise": never more than this fraction above the running minimum
STAY = 0.5  # "stays": the isotropic risk at the largest n keeps at least this fraction of its value at the smallest n


def _risk(view) -> tuple[np.ndarray, np.ndarray]:
    """(n [k], mean excess risk over members [k]) of a benign-regression run."""
    return view.metric("n")[:, 0], view.metric("excess_risk").mean(axis=1)


def _fall(view) -> float:
    _, risk = _risk(view)
    return float(risk[-1] / risk[0])


def _benign_falls(runs):
    by = runs["sweep"].by("spectrum")
    ratios = {s: _fall(by[s]) for s in BENIGN}
    n, _ = _risk(by[BENIGN[0]])
    parts = ", ".join(f"{s}: {v:.3g}" for s, v in ratios.items())
    return max(ratios.values()), f"max over {list(BENIGN)} of risk(n={n[-1]:.0f}) / risk(n={n[0]:.0f}): {parts}"


def _isotropic_stays(runs):
    """risk(largest n) / risk(smallest n) of the isotropic spectrum: measured at two sample sizes, no closed form."""
    view = runs["sweep"].by("spectrum")["isotropic"]
    n, risk = _risk(view)
    return float(risk[-1] / risk[0]), (f"mean over {view.n_members} members: risk {risk[-1]:.3g} at n = {n[-1]:.0f} "
                                       f"over {risk[0]:.3g} at n = {n[0]:.0f} (d = {view.config.d})")


def _isotropic_closed_form(runs):
    from theory.linear_regression import isotropic_min_norm_risk

    view = runs["sweep"].by("spectrum")["isotropic"]
    n, risk = _risk(view)
    c = view.config
    exact = np.array([isotropic_min_norm_risk(int(k), c.d, view.summary["theta_norm"], c.sigma) for k in n])
    rel = np.abs(risk - exact) / exact
    return float(rel.max()), "max over n of |measured - closed form| / closed form; " + ", ".join(
        f"n={k:.0f}: {a:.4g} vs {b:.4g}" for k, a, b in zip(n, risk, exact))


def _log_spectrum(runs):
    view = runs["sweep"].by("spectrum")["log"]
    n, risk = _risk(view)
    bound = view.metric("bound_total")[:, 0]
    return float(risk[-1] / risk[0]), (f"risk(n={n[-1]:.0f}) / risk(n={n[0]:.0f}); risk {np.round(risk, 3).tolist()}; "
                                       f"bound terms (constants 1) {np.round(bound, 3).tolist()}; k* "
                                       f"{view.metric('k_star')[:, 0].astype(int).tolist()}")


def _final_over_flips(runs, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(flip rate per member [K], final value of `name` per member [K]) over the flip-rate sweep."""
    rates, values = [], []
    for point, view in runs["sweep"]:
        values.extend(final(view, name).tolist())
        rates.extend([point["noise_rate"]] * view.n_members)
    return np.array(rates), np.array(values)


def _gd_cosine(runs):
    rates, cos = _final_over_flips(runs, "mm_cosine")
    worst = int(np.argmin(cos))
    step = next(iter(runs["sweep"].views)).steps[-1]
    return float(cos.min()), (f"min over {len(cos)} runs (flip rates {list(FLIP_RATES)}, 3 seeds) at step {step}; "
                              f"worst at eta = {rates[worst]:g}; mean {cos.mean():.4f}")


def _error_over_flip(runs):
    rates, err = _final_over_flips(runs, "test_error")
    _, train = _final_over_flips(runs, "train_acc")
    excess = err - rates
    worst = int(np.argmax(excess))
    return float(excess.max()), (f"max over runs of test error - eta (worst {err[worst]:.4f} at eta = "
                                 f"{rates[worst]:g}); min training accuracy on the noisy labels {train.min():.3f}")


def _signal_curve(runs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(||mu||^4 / d [k], mean final test error - eta [k], per seed [k, seeds]) over the cluster-separation sweep."""
    rows = []
    for _, view in runs["sweep"]:
        c = view.config
        rows.append((c.mu_norm**4 / c.d, final(view, "test_error") - np.array(view.members.values("noise_rate"))))
    rows.sort(key=lambda r: r[0])
    snr = np.array([r[0] for r in rows])
    per_seed = np.array([r[1] for r in rows])
    return snr, per_seed.mean(axis=1), per_seed


def _excess_vs_signal(runs):
    snr, excess, _ = _signal_curve(runs)
    pairs = ", ".join(f"{s:.3g}: {e:.2g}" for s, e in zip(snr, excess))
    return float(excess[0]), (f"test error - eta at the smallest ||mu||^4 / d; mean over 3 seeds at ||mu||^4 / d = "
                              f"{pairs}")


def error_signal_figure(runs, path):
    """Excess test error (test error - eta) of GD at the last step against ||mu||^4 / d, log scale."""
    snr, excess, per_seed = _signal_curve(runs)
    fig, axes = plots.figure(1, panel=(5.6, 4.4))
    ax = axes[0, 0]
    plots.band(ax, snr, np.maximum(per_seed, 1e-16), "GD, last step (mean, min-max over seeds)", marker="o")
    style.reference(ax, f"{NEAR} (the claim's tolerance)", y=NEAR)
    ax.set_xlabel("signal-to-noise ||mu||^4 / d (input units^4 per dimension)")
    c = next(iter(runs["sweep"].views)).config
    plots.finish(ax, "test error - eta, floored at 1e-16 (fraction)", log=True,
                 title=f"benign-max-margin: n={c.n}, d={c.d}, eta={c.noise_rate:g}")
    return plots.save(fig, path)


def _svm_points(run):
    d = run.metric("d")[:, 0]
    return d, run.metric("sv_fraction").mean(axis=1), run.metric("proliferation").mean(axis=1)


def _all_support(runs):
    r = runs["svm"]
    d, frac, prob = _svm_points(r)
    threshold = svm_proliferation.threshold(r.config.n)
    above = d >= threshold
    note = ""
    if not above.any():
        above = d == d.max()
        note = f"no grid d reaches 2 n log n = {threshold:.0f}: the largest d is used; "
    rows = ", ".join(f"d={k:.0f}: {f:.4f} (all in {p:.0%})" for k, f, p in zip(d[above], frac[above], prob[above]))
    return float(frac[above].min()), f"{note}min over d >= 2 n log n of the mean support-vector fraction; {rows}"


def _one_over_n(runs) -> float:
    return 1 - 1 / runs["svm"].config.n


def _near_n(runs):
    r = runs["svm"]
    d, frac, _ = _svm_points(r)
    return float(frac[0]), f"mean over {r.n_members} repetitions at d = {d[0]:.0f} (n = {r.config.n})"


def _threshold_location(runs):
    r = runs["svm"]
    d, _, prob = _svm_points(r)
    cross = transitions.crossing(d, prob, 0.5, direction="up")
    if cross is None:
        return float("nan"), "P(every point a support vector) never reaches 1/2 on the grid"
    return cross.step / svm_proliferation.threshold(r.config.n), (
        f"d = {cross.step:.0f} where P(every point a support vector) = 1/2, over 2 n log n = "
        f"{svm_proliferation.threshold(r.config.n):.0f}")


def _dd_curves(runs):
    r = runs["dd"]
    return r.metric("p")[:, 0], r.metric("risk_min_norm").mean(axis=1), r.metric("risk_tuned").mean(axis=1), r


def _peak(runs):
    p, plain, _, r = _dd_curves(runs)
    top = int(np.argmax(plain))
    return double_descent.peak_ratio(p, plain, r.config.n), (
        f"min-norm risk peaks at p = {p[top]:.0f} (n = {r.config.n}): {plain[top]:.3g}, against {plain[0]:.3g} at "
        f"p = {p[0]:.0f} and {plain[-1]:.3g} at p = {p[-1]:.0f}")


def _tuned_monotone(runs):
    p, plain, tuned, _ = _dd_curves(runs)
    return double_descent.largest_rise(tuned), (
        f"largest rise of the tuned curve above its running minimum, relative; tuned {tuned[0]:.3g} -> "
        f"{tuned[-1]:.3g}; the min-norm curve's largest rise is {double_descent.largest_rise(plain):.3g}")


def _peak_height(runs):
    p, plain, tuned, _ = _dd_curves(runs)
    top = int(np.argmax(plain))
    return float(plain[top] / tuned[top]), f"min-norm / tuned risk at p = {p[top]:.0f}"


def risk_figure(runs, path):
    """Excess risk against n for every spectrum (mean, min-max over members), with each bound's total dashed."""
    fig, axes = plots.figure(1, panel=(6.6, 4.6))
    ax = axes[0, 0]
    for k, (point, view) in enumerate(runs["sweep"]):
        benign_regression.risk_axes(ax, view, point["spectrum"], color=style.color(k))
        ax.plot(view.metric("n")[:, 0], view.metric("bound_total")[:, 0], "--", color=style.color(k), lw=0.8,
                label=f"bound: {point['spectrum']}")
    c = next(iter(runs["sweep"].views)).config
    plots.finish(ax, "excess risk of the min-norm interpolant (squared label units)",
                 title=f"benign-regression, d={c.d}, sigma={c.sigma:g} (dashed: bound terms, constants 1)")
    return plots.save(fig, path)


def flip_figure(runs, path):
    """Final test error of GD and of the max-margin classifier against the flip rate; and minus the flip rate."""
    rates, err = _final_over_flips(runs, "test_error")
    mm = np.array([m["mm_test_error"] for _, v in runs["sweep"] for m in v.member_summaries])
    fig, axes = plots.figure(2, panel=(5.2, 4.2))
    for ax, shift in zip(axes[0], (0.0, 1.0)):
        floor = 1e-16 if shift else -np.inf
        ax.plot(rates, np.maximum(err - shift * rates, floor), "o", ms=6, mfc="none", label="GD, last step (each seed)")
        ax.plot(rates, np.maximum(mm - shift * rates, floor), "x", color=style.color(3),
                label="l2 max-margin classifier")
        ax.set_xlabel("flip rate eta (fraction)")
    grid = np.array([0.0, max(FLIP_RATES)])
    axes[0, 0].plot(grid, grid, label="test error = eta (Bayes)", **style.reference_style(axes[0, 0]))
    style.reference(axes[0, 1], f"{NEAR} (the claim's tolerance)", y=NEAR)
    c = next(iter(runs["sweep"].views)).config
    plots.finish(axes[0, 0], "exact test error on noisy labels (fraction)")
    plots.finish(axes[0, 1], "test error - eta, floored at 1e-16 (fraction)", log=True)
    return plots.save(fig, path, title=f"benign-max-margin: n={c.n}, d={c.d}, ||mu||={c.mu_norm:g}")


TITLE = "Benign overfitting of linear interpolators and max-margin classifiers"

register_claims("benign-linear", TITLE, [
    Claim("benign-risk-falls",
          f"with label noise, the min-norm interpolant's excess risk falls with n for benign spectra {list(BENIGN)}: "
          f"at the largest n at most {FALL} of its value at the smallest n",
          REGRESSION, _benign_falls, "<=", FALL,
          paper_value="benign iff r_0 = o(n), k* = o(n), R_k* = omega(n) (Bartlett et al. 2020, Thm 4)"),
    Claim("isotropic-risk-stays",
          f"for Sigma = I the excess risk does not fall towards 0: at the largest n it keeps at least {STAY} of its "
          f"value at the smallest n (the benign spectra fall below {FALL})",
          REGRESSION, _isotropic_stays, ">=", STAY,
          paper_value="Sigma = I is not benign"),
    Claim("isotropic-matches-closed-form",
          f"for Sigma = I the measured excess risk matches (1 - n/d)||theta*||^2 + sigma^2 n/(d - n - 1) within "
          f"{NEAR:.0%} at every n",
          REGRESSION, _isotropic_closed_form, "<=", NEAR,
          paper_value="exact for isotropic Gaussian designs"),
    Claim("log-spectrum-risk-ratio",
          "for lambda_i = 1/(i log^2(i + 1)): risk at the largest n over risk at the smallest n",
          REGRESSION, _log_spectrum, "report",
          paper_value="benign as n -> infinity; k*/n ~ 1/log n, so the variance falls only logarithmically"),
    Claim("gd-direction-to-max-margin",
          "GD on the logistic loss ends within cosine 0.99 of the l2 max-margin direction (every flip rate and seed)",
          MARGIN, _gd_cosine, ">=", 0.99,
          paper_value="GD converges in direction to the max-margin classifier (Soudry et al. 2018)"),
    Claim("test-error-near-flip-rate",
          f"while fitting every flipped training label, the test error is within {NEAR} of the flip rate eta",
          MARGIN, _error_over_flip, "<=", NEAR,
          paper_value="error <= eta + exp(-c ||mu||^4 / d) in the benign regime (Chatterji and Long 2021)",
          rate=RATE),  # with probability >= 1 - delta over the sample
    Claim("excess-error-vs-signal",
          f"excess test error (test error - eta) of GD against ||mu||^4 / d (||mu|| in {list(MU_GRID)})",
          SIGNAL, _excess_vs_signal, "report",
          paper_value="error <= eta + exp(-c ||mu||^4 / d) (Chatterji and Long 2021)"),
    Claim("svm-all-support-vectors",
          "beyond d = 2 n log n every training point is a support vector (mean fraction >= 1 - 1/n at every such d)",
          SVM, _all_support, ">=", _one_over_n, target_text="1 - 1/n",
          paper_value="all points are support vectors once d >> n log n (Hsu, Muthukumar, Xu 2021)"),
    Claim("svm-fraction-below-one-near-n",
          "at d = n a tenth or more of the training points are not support vectors (mean fraction <= 0.9)",
          SVM, _near_n, "<=", 0.9, paper_value="proliferation needs d >> n"),
    Claim("svm-threshold-location",
          "d at which every point is a support vector with probability 1/2, in units of 2 n log n",
          SVM, _threshold_location, "report", paper_value="sharp threshold near d = 2 n log n (Ardeshir et al. 2021)"),
    Claim("double-descent-peak-at-n",
          "the min-norm test risk peaks where the number of random features reaches n (within a factor 1.5)",
          DOUBLE, _peak, "<=", 1.5, target_text="max(p*/n, n/p*)",
          paper_value="peak at the interpolation threshold p = n (Belkin et al. 2019)"),
    Claim("tuned-ridge-monotone",
          f"with the ridge penalty tuned on held-out data the test risk never rises more than {RISE:.0%} above its "
          "running minimum as p grows (no peak)",
          DOUBLE, _tuned_monotone, "<=", RISE,
          paper_value="optimal regularisation removes the peak (Nakkiran et al. 2021)"),
    Claim("double-descent-peak-height",
          "min-norm over tuned test risk at the min-norm peak",
          DOUBLE, _peak_height, "report", paper_value="large (the variance blows up at p = n)"),
], figures=[
    Figure("risk-vs-n", REGRESSION, risk_figure,
           "excess risk of min-norm interpolation against n for four spectra, with the bound terms"),
    Figure("test-error-vs-flip-rate", MARGIN, flip_figure,
           "final test error of GD (logistic loss) and of the max-margin classifier against the flip rate"),
    Figure("excess-error-vs-signal", SIGNAL, error_signal_figure,
           "excess test error of GD against ||mu||^4 / d, from outside the benign regime into it"),
])
