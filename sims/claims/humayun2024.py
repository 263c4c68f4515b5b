"""Humayun, Balestriero, Baraniuk (2024), "Deep networks always grok and here is why": local complexity (LC) of the
input-space partition through training, with the large-init image MLP of Omnigrok (Liu, Michaud, Tegmark 2022),
random labels (Zhang et al. 2017) and a class flip (distributional generalisation, Nakkiran and Bansal 2021).

Every LC claim runs on MNIST-1D (the image-grokking preset) and on scikit-learn's digits (weight decay 0.02,
radius 0.1), so the page says what holds where. Phases are found by `sims.transitions` (turning points with a
5% zig-zag filter; the three phases: a minimum, a maximum, a fall of at least 20% of it). The runs that differ only
in member-wise fields (seed, weight decay, label noise, flips) train as one ensemble each: the MNIST-1D main
run with its strong-weight-decay member, the digits main run with its strong-weight-decay and random-label
members, and the random-labels grid over noise fractions with the flip members.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import spearmanr

from lc.keys import lc_keys

from .. import plots, style, transitions
from ..settings.images.grokking import migration_at
from ..settings.images.base import lc_name, lc_peak, lc_phases
from . import Claim, Figure, NotApplicable, RunSpec, Sweep, final, register_claims
from . import rounded as _r

IG, RL, CNN = "image-grokking", "random-labels", "image-cnn"
DIGITS = dict(dataset="digits", weight_decay=0.02, lc_radius=0.1, lc_radii="0.3")
STRONG_WD = 0.1
GROK = 0.1  # a seed groks when its test accuracy rises by at least this after its training set is fitted
FALL = 0.2  # the final descent: LC falls by at least this fraction of its peak
NOISE = (0.0, 0.25, 0.5, 0.75, 1.0)
FLIP = dict(label_noise=0.0, flip_from=1, flip_to=7, flip_fraction=0.3, lc=False)



RUNS = {
    "mnist1d": RunSpec.of(IG, seeds=3),
    "mnist1d-wd": RunSpec.of(IG, weight_decay=STRONG_WD),
    "mnist1d-bn": RunSpec.of(IG, batch_norm=True, snapshots=0),
    "digits": RunSpec.of(IG, seeds=3, **DIGITS),
    "digits-wd": RunSpec.of(IG, **{**DIGITS, "weight_decay": STRONG_WD}),
    "digits-bn": RunSpec.of(IG, **DIGITS, batch_norm=True, snapshots=0),
    "random-large": RunSpec.of(IG, **DIGITS, label_noise=1.0),
    "random-small": RunSpec.of(IG, **DIGITS, label_noise=1.0, n_train=250, snapshots=0),
    "fit": Sweep.of(RL, {"label_noise": NOISE}, seeds=2, lc=False),
    "flip": RunSpec.of(RL, seeds=3, **FLIP),
    "cnn": RunSpec.of(CNN),
    "cnn-bn": RunSpec.of(CNN, batch_norm=True),
}


def _records(run) -> list[dict]:
    return run.summary.get("transitions") or [{} for _ in run.seeds]


# ------------------------------------------------------------------------------------------------- measures

def _three_phases(name):
    def measure(runs):
        r = runs[name]
        found = lc_phases(r, min_fall=FALL)
        parts = [f"seed {s}: " + ("none" if p is None else
                                  f"min {p['min'].value:.3g} @{p['min'].step}, max {p['max'].value:.3g} @{p['max'].step},"
                                  f" fall {p['fall']:.0%} (by step {p['fall_step']})")
                 for s, p in zip(r.seeds, found)]
        lc0 = r.metric(lc_name(r.config))[0]
        return float(np.mean([p is not None for p in found])), (
            f"share of seeds with the three phases of LC at train points (r = {r.config.lc_radius:g}; LC at init "
            f"{_r(lc0, 2)}): " + "; ".join(parts))
    return measure


def _grokking(name):
    """min over the seeds that grok (test acc rises >= GROK after the training set is fitted) of test acc at the end
    minus at the LC peak; n/a when no seed groks (the claim's premise)."""
    def measure(runs):
        r = runs[name]
        acc, peaks = r.metric("test_acc"), lc_peak(r)
        at_peak = np.array([acc[list(r.steps).index(s), e] for e, (s, _) in enumerate(peaks)])
        rise = acc[-1] - at_peak
        fit = [transitions.crossing(r.steps, r.metric("train_acc")[:, e], 1 - 1e-9) for e in range(r.n_members)]
        at_fit = np.array([np.nan if f is None else acc[f.index, e] for e, f in enumerate(fit)])
        groks = np.nan_to_num(acc[-1] - at_fit, nan=-np.inf) >= GROK  # [E]
        text = (f"test acc at the LC peak (steps {[s for s, _ in peaks]}) {_r(at_peak)} -> {_r(acc[-1])} at step "
                f"{r.steps[-1]}; training set fitted at steps {[None if f is None else int(f.step) for f in fit]}, "
                f"test acc there {_r(at_fit)}")
        if not groks.any():
            raise NotApplicable(f"no seed groks (test acc rises by < {GROK} after the fit): {text}")
        skipped = [s for s, g in zip(r.seeds, groks) if not g]
        return float(np.min(rise[groks])), ("min over the seeds that grok of test acc at the end minus at the LC peak"
                                            + (f" (seeds {skipped} do not grok)" if skipped else "") + f"; {text}")
    return measure


def _migration(name):
    def measure(runs):
        slices = [rec.get("slices") for rec in _records(runs[name])]
        if not slices or not all(slices):
            return math.nan, "no slice records (snapshots off, or not an MLP)"
        peak, end = [migration_at(s, "peak") for s in slices], [migration_at(s, "end") for s in slices]
        same = [s["phases"]["peak"] == s["phases"]["end"] for s in slices]
        gain = [math.nan if k else b["boundary_ratio"] - a["boundary_ratio"] for a, b, k in zip(peak, end, same)]
        pair = lambda key, d: [f"{a[key]:.{d}f}->{b[key]:.{d}f}" for a, b in zip(peak, end)]
        return float(np.min(gain)), (
            "min over seeds of the change, LC peak -> end, of (share of region-boundary length within 0.05 extent of "
            f"the decision boundary) / (share of area there) (NaN when the peak is at the end); per seed "
            f"{pair('boundary_ratio', 2)}; raw length share {pair('boundary_share', 3)}; near the three training "
            f"points (0.1 extent) ratio {pair('points_ratio', 2)}; snapshot steps peak/end "
            f"{[(s['phases']['peak'], s['phases']['end']) for s in slices]}")
    return measure


def _peaks(run) -> np.ndarray:
    return np.array([v for _, v in lc_peak(run)])


def _bn_fall(name):
    def measure(runs):
        r = runs[name]
        lc, peaks = r.metric(lc_name(r.config)), lc_peak(r)
        end = [transitions.smooth(lc[:, e])[-1] for e in range(r.n_members)]
        fall = [1 - x / v for x, (_, v) in zip(end, peaks)]
        return float(np.max(fall)), (f"max over seeds of 1 - LC(end) / LC(peak) with batch norm (running median of 3 "
                                     f"evaluations); peak {_r([v for _, v in peaks], 2)} at steps "
                                     f"{[s for s, _ in peaks]}, end {_r(end, 2)}")
    return measure


def _ratio_of_peaks(name, base, what):
    def measure(runs):
        a, b = _peaks(runs[name]), _peaks(runs[base])
        return float(a.mean() / b.mean()), (f"mean LC peak at train points {what} {_r(a, 2)} / without {_r(b, 2)}; "
                                            f"LC at the end {_r(final(runs[name], lc_name(runs[name].config)), 2)} "
                                            f"vs {_r(final(runs[base], lc_name(runs[base].config)), 2)}")
    return measure


def _random_labels(key):
    def measure(runs):
        big, small = lc_peak(runs["random-large"])[0], lc_peak(runs["random-small"])[0]
        fits = [transitions.crossing(runs[k].steps, runs[k].metric("train_acc")[:, 0], 1 - 1e-9)
                for k in ("random-small", "random-large")]
        value = big[0] / small[0] if key == "step" else big[1] / small[1]
        return float(value), (f"all labels random; LC peak (step, value) with 250 points {small[0]}, {small[1]:.3g}; "
                              f"with 1000 points {big[0]}, {big[1]:.3g} (of {runs['random-large'].steps[-1]} steps); "
                              f"fitted at steps {[None if f is None else int(f.step) for f in fits]}")
    return measure


def _fit_steps(runs) -> tuple[list[float], list[float]]:
    """(noise fraction, first eval step with every training label fitted) per member of the fit sweep."""
    noise, steps = [], []
    for point, view in runs["fit"]:
        for e in range(view.n_members):
            hit = transitions.crossing(view.steps, view.metric("train_acc")[:, e], 1 - 1e-9)
            noise.append(point["label_noise"])
            steps.append(math.inf if hit is None else float(view.steps[hit.index]))
    return noise, steps


def _fits_everything(runs):
    accs = [float(final(v, "train_acc").min()) for _, v in runs["fit"]]
    return min(accs), f"min over seeds of the final training accuracy per noise fraction {list(NOISE)}: {_r(accs)}"


def _fit_time(runs):
    noise, steps = _fit_steps(runs)
    rho = spearmanr(noise, steps).statistic if len(set(steps)) > 1 else math.nan  # constant: all alike, or none fit
    return float(rho), (f"Spearman(noise fraction, steps to fit every label) over {len(noise)} runs; steps per noise "
                        f"fraction {_by_noise(noise, steps)}")


def _by_noise(noise, steps) -> dict:
    return {z: [s for n, s in zip(noise, steps) if n == z] for z in NOISE}


def _noise_slows(runs):
    noise, steps = _fit_steps(runs)
    clean = max(s for n, s in zip(noise, steps) if n == 0)
    noisy = min(s for n, s in zip(noise, steps) if n > 0)
    return float(noisy / clean), (f"(fewest steps to fit with noise > 0) / (most steps to fit with clean labels); "
                                  f"steps per noise fraction {_by_noise(noise, steps)}")


def _flip(runs):
    r = runs["flip"]
    share, fitted = final(r, "flip_test"), final(r, "flip_train")
    return float(share.mean()), (f"mean over seeds of the share of class-1 test points predicted 7 at the end; per "
                                 f"seed {_r(share)}; flipped training points predicted 7 {_r(fitted)}; train acc "
                                 f"{_r(final(r, 'train_acc'))}, test acc {_r(final(r, 'test_acc'))}")


def _exact(runs):
    rows = [(k, rec["slices"]["exact"]) for k in ("mnist1d", "digits") for rec in _records(runs[k]) if "slices" in rec]
    if not rows:
        return math.nan, "no slice records"
    full = [x["spearman_full"] for _, x in rows]
    return float(np.min(full)), (
        "min over the seeds of both datasets of Spearman(exact regions meeting a disc of radius 0.05 extent, LC there "
        f"with {runs['mnist1d'].config.lc_dirs} random directions); per run {[(k, round(x['spearman_full'], 3)) for k, x in rows]}; "
        f"in-plane frame (P = 2) {[round(x['spearman_plane'], 3) for _, x in rows]}; mean exact count "
        f"{[round(x['exact_mean'], 1) for _, x in rows]}")


def _cnn_bn(runs):
    a, b = runs["cnn-bn"], runs["cnn"]
    la, lb = a.metric(lc_name(a.config)), b.metric(lc_name(b.config))
    ratio = la[1:].mean() / lb[1:].mean()
    return float(ratio), (f"mean over evals after init of LC at train points, with / without batch norm; LC at init, "
                          f"min, end: with {_r([la[0, 0], la.min(), la[-1, 0]], 1)}, without "
                          f"{_r([lb[0, 0], lb.min(), lb[-1, 0]], 1)}; {a.config.lc_dirs} directions, "
                          f"r = {a.config.lc_radius:g}; test acc {_r(final(a, 'test_acc'))} / {_r(final(b, 'test_acc'))}")


def _other_points(name):
    def measure(runs):
        r = runs[name]
        parts = []
        for s in ("test", "random"):
            found = lc_phases(r, s, min_fall=FALL)
            parts.append(f"{s}: three phases in {sum(p is not None for p in found)}/{len(found)} seeds, falls "
                         f"{[None if p is None else round(p['fall'], 2) for p in found]}")
        return float(np.mean([p is not None for p in lc_phases(r, "test", min_fall=FALL)])), "; ".join(parts)
    return measure


# -------------------------------------------------------------------------------------------------- figures

def _lc_figure(runs, path):
    """Per dataset: LC at train / test / random points and train / test accuracy on one step axis."""
    fig, axes = plots.figure(2, 2)
    for col, name in enumerate(("mnist1d", "digits")):
        r = runs[name]
        for s in plots.LC_SETS:
            plots.band(axes[0, col], r.steps, r.metric(lc_name(r.config, s)), f"LC at {s} points")
        ax2 = axes[0, col].twinx()
        plots.band(ax2, r.steps, r.metric("test_acc"), "test accuracy (right)", color="k", ls="--")
        plots.band(ax2, r.steps, r.metric("train_acc"), "train accuracy (right)", color="0.5", ls=":")
        ax2.set_ylim(0, 1.02)
        ax2.set_ylabel("accuracy, black and grey lines (fraction)")
        ax2.legend(fontsize=7, loc="center right")
        plots.finish(axes[0, col], f"LC at r = {r.config.lc_radius:g} (crossed units per neighbourhood)", steps=r.steps,
                     title=f"{name}: {r.n_members} seeds")
        for s in plots.LC_SETS:
            other = [k for k in lc_keys(r.metric_names, total=True)
                     if k.points == s and k.radius is not None and str(k) != lc_name(r.config, s)]
            for k in other:
                plots.band(axes[1, col], r.steps, r.metric(str(k)), f"{s}, r = {k.radius:g}")
        plots.finish(axes[1, col], "LC at the larger radius (crossed units per neighbourhood)", steps=r.steps)
    return plots.save(fig, path, title="image-grokking: LC through training with the accuracies (mean, min-max over seeds)")


def _ablation_figure(runs, path):
    """LC at train points: main run, strong weight decay, batch norm (per dataset); the CNN with and without BN."""
    fig, axes = plots.figure(3)
    for ax, name in zip(axes[0], ("mnist1d", "digits")):
        for key, label in ((name, f"wd {runs[name].config.weight_decay:g}"), (f"{name}-wd", f"wd {STRONG_WD:g}"),
                           (f"{name}-bn", "batch norm")):
            r = runs[key]
            plots.band(ax, r.steps, r.metric(lc_name(r.config)), label)
        plots.finish(ax, "LC at train points (crossed units per neighbourhood)", steps=runs[name].steps, title=name)
    for key, label in (("cnn", "CNN"), ("cnn-bn", "CNN + batch norm")):
        r = runs[key]
        plots.band(axes[0, 2], r.steps, r.metric(lc_name(r.config)), label)
    plots.finish(axes[0, 2], "LC at train points (crossed conv units per neighbourhood)", steps=runs["cnn"].steps,
                 title="digits, small CNN")
    return plots.save(fig, path, title="ablations: weight decay, batch norm, a small CNN")


def _migration_figure(runs, path):
    """Per dataset: the boundary and points ratios of every seed at its LC peak and at the end, and member 0's at
    every snapshot."""
    fig, axes = plots.figure(2, 2)
    for col, name in enumerate(("mnist1d", "digits")):
        recs = [rec.get("slices") for rec in _records(runs[name])]
        for seed, rec in zip(runs[name].seeds, recs):
            if rec:
                for key, mark in (("boundary_ratio", "o-"), ("points_ratio", "s--")):
                    axes[0, col].plot(["LC peak", "end"], [migration_at(rec, p)[key] for p in ("peak", "end")], mark,
                                      label=f"seed {seed}, {key.split('_')[0]}")
        plots.finish(axes[0, col], "length share / area share (unitless)", title=f"{name}: every seed")
        axes[0, col].set_xlabel("point of training (phase)")
        if recs and recs[0]:
            steps = sorted(int(s) for s in recs[0]["series"])
            for key in ("boundary_ratio", "points_ratio"):
                vals = [recs[0]["series"][str(s)][key] for s in steps]
                axes[1, col].plot(steps, [math.nan if v is None else v for v in vals], "o-", label=key)
            plots.finish(axes[1, col], "length share / area share (unitless)", steps=steps, title=f"{name}: seed "
                         f"{runs[name].seeds[0]}, every snapshot")
    for ax in axes.flat:
        style.reference(ax, "length share = area share", y=1.0)
        ax.legend(fontsize=7)
    return plots.save(fig, path, title="migration on the plane through three training points (one plane per seed): "
                      "boundary = near the decision boundary, points = near the three points")


def _random_figure(runs, path):
    """LC with random labels at two set sizes; steps to fit against the noise fraction; the flip share over time."""
    fig, axes = plots.figure(3)
    for key, label in (("random-small", "250 points"), ("random-large", "1000 points")):
        r = runs[key]
        plots.band(axes[0, 0], r.steps, r.metric(lc_name(r.config)), label)
    plots.finish(axes[0, 0], "LC at train points, all labels random (crossed units per neighbourhood)",
                 steps=runs["random-large"].steps)
    noise, steps = _fit_steps(runs)
    axes[0, 1].plot(noise, steps, "o")
    axes[0, 1].set_xlabel("label noise (fraction)")
    plots.finish(axes[0, 1], "steps until every training label is fitted (optimiser steps)")
    r = runs["flip"]
    plots.band(axes[0, 2], r.steps, r.metric("flip_test"), "class-1 test points predicted 7")
    plots.band(axes[0, 2], r.steps, r.metric("flip_train"), "flipped training points predicted 7")
    style.reference(axes[0, 2], "flip fraction", y=r.config.flip_fraction)
    plots.finish(axes[0, 2], "share of points (fraction)", steps=r.steps)
    return plots.save(fig, path, title="random labels (Zhang et al. 2017) and a class flip (Nakkiran and Bansal 2021)")


def _pick(*names):
    return {k: RUNS[k] for k in names}


def _claim(id, statement, names, measure, op, target=math.nan, **kw) -> Claim:
    return Claim(id, statement, _pick(*names), measure, op, target, **kw)


CLAIMS = []
for ds in ("mnist1d", "digits"):
    CLAIMS += [
        _claim(f"lc-three-phases-{ds}", f"{ds}: LC at the training points falls to a minimum, rises to a maximum and "
               f"then falls by at least {FALL:.0%} of it (every seed)", [ds], _three_phases(ds), ">=", 1.0,
               paper_value="descent, ascent (memorisation), final descent"),
        _claim(f"grokking-in-final-descent-{ds}", f"{ds}: where the run groks (test accuracy rises by >= {GROK} "
               "after the training set is fitted), test accuracy at the end exceeds test accuracy at the LC "
               "peak by at least 0.1 (min over the seeds that grok)", [ds], _grokking(ds), ">=", 0.1,
               paper_value="the final descent accompanies delayed generalisation"),
        _claim(f"migration-to-boundary-{ds}", f"{ds}: from the LC peak to the end, the region boundaries on the plane "
               "through three training points crowd towards the decision boundary (boundary-length share over area "
               "share grows in every seed)", [ds], _migration(ds), ">=", 0.0,
               paper_value="regions migrate from the data to the decision boundary"),
        _claim(f"batch-norm-removes-final-descent-{ds}", f"{ds}: with batch norm LC at the training points falls by "
               f"less than {FALL:.0%} of its peak by the end", [f"{ds}-bn"], _bn_fall(f"{ds}-bn"), "<=", FALL,
               paper_value="batch norm removes the final descent"),
        _claim(f"batch-norm-raises-lc-{ds}", f"{ds}: batch norm raises the LC peak at the training points",
               [ds, f"{ds}-bn"], _ratio_of_peaks(f"{ds}-bn", ds, "with batch norm"), ">=", 1.0,
               paper_value="batch norm raises LC"),
        _claim(f"weight-decay-lowers-peak-{ds}", f"{ds}: weight decay {STRONG_WD:g} gives a lower LC peak than the "
               "preset's", [ds, f"{ds}-wd"], _ratio_of_peaks(f"{ds}-wd", ds, f"at wd {STRONG_WD:g}"), "<=", 1.0,
               paper_value="stronger weight decay delays or removes the peak"),
        _claim(f"lc-test-points-{ds}", f"{ds}: share of seeds whose LC at test points also shows the three phases "
               "(random points reported)", [ds], _other_points(ds), "report", paper_value="LC at test points follows"),
    ]
CLAIMS += [
    _claim("random-labels-longer-ascent", "all labels random (digits): with 1000 training points the LC ascent lasts "
           "at least 1.2x as long as with 250 (step of the LC peak)", ["random-large", "random-small"],
           _random_labels("step"), ">=", 1.2, paper_value="a larger training set lengthens the ascent"),
    _claim("random-labels-higher-peak", "all labels random (digits): with 1000 training points the LC peak is at "
           "least 1.1x that with 250", ["random-large", "random-small"], _random_labels("value"), ">=", 1.1,
           paper_value="a larger training set raises the peak"),
    _claim("fits-random-labels", "the MLP fits every training label at every noise fraction (min final train acc)",
           ["fit"], _fits_everything, ">=", 1.0, paper_value="Zhang et al.: networks fit random labels"),
    _claim("fit-time-grows-with-noise", "the time to fit every training label grows with the noise fraction 0 .. 1 "
           "(Spearman over runs)", ["fit"], _fit_time, ">=", 0.8,
           paper_value="Zhang et al.: training time grows with label noise"),
    _claim("noisy-labels-fit-slower", "with any label noise the fit takes at least twice as long as the slowest clean "
           "fit", ["fit"], _noise_slows, ">=", 2.0,
           paper_value="Zhang et al.: random labels take a small constant factor longer to fit"),
    _claim("class-flip-share", "with 30% of the class-1 training labels flipped to 7, the share of class-1 test "
           "points classified 7 is 0.3 +- 0.1 (mean over seeds)", ["flip"], _flip, "==",
           lambda runs: runs["flip"].config.flip_fraction, tol=0.1, target_text="flip_fraction",
           paper_value="distributional generalisation: test predictions reproduce the flip"),
    _claim("lc-tracks-exact-regions", "on the plane through three training points of a trained MLP, LC ranks points "
           "like the exact number of linear regions around them (Spearman, min over runs)", ["mnist1d", "digits"],
           _exact, ">=", 0.7, paper_value="LC agrees with SplineCAM region counts"),
    _claim("cnn-batch-norm-raises-lc", "small CNN on digits: batch norm raises LC over the conv units (mean over "
           "training)", ["cnn", "cnn-bn"], _cnn_bn, ">=", 1.0, paper_value="batch norm raises LC (their CNNs)"),
]

TITLE = "Deep networks always grok: local complexity on images (Humayun, Balestriero, Baraniuk 2024)"

register_claims("humayun2024", TITLE, CLAIMS, figures=[
    Figure("lc-and-accuracy", _pick("mnist1d", "digits"), _lc_figure,
           "LC at train / test / random points with the accuracies, MNIST-1D and digits"),
    Figure("ablations", _pick("mnist1d", "mnist1d-wd", "mnist1d-bn", "digits", "digits-wd", "digits-bn", "cnn",
                              "cnn-bn"), _ablation_figure, "weight decay, batch norm, small CNN"),
    Figure("migration", _pick("mnist1d", "digits"), _migration_figure, "boundary and points ratios per phase"),
    Figure("random-labels", _pick("random-large", "random-small", "fit", "flip"), _random_figure,
           "random labels, time to fit, class flip"),
])
