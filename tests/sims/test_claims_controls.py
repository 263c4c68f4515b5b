"""Controls: every checked claim of benign-linear, hu2020, lyu2024, humayun2024 and (the four not in test_dmf.py)
arora2019 FAILS (or is n/a, never a pass) on a ci-size run without its phenomenon, measured with the claim's own
measure. Where the ci run with the phenomenon is on the paper's side at this size, the same claim is checked to pass
there, so the flip is the phenomenon's."""

import pytest

import sims
from sims import api, registry
from sims.claims import SweepRuns, evaluate, get_claims


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Small problems: one intra-op thread (the `one_thread` fixture of tests/conftest.py) for every test here."""


def _verdicts(key, runs, ids):
    """{claim id: verdict} of paper `key`'s claims `ids` on `runs` (names as the claims' own)."""
    claims = {c.id: c for c in get_claims(key).claims}
    assert set(ids) <= set(claims), set(ids) - set(claims)
    return {i: evaluate(claims[i], runs)["verdict"] for i in ids}


def _ci(sim, seeds=1, **over):
    return sims.run(sim, preset="ci", seeds=seeds, device="cpu", figures=False, threads=1, **over)


def _members(sim, member_overrides, **over):
    """One ci ensemble with a member per entry of `member_overrides`; returns one view per member."""
    s = registry.get(sim)
    run = api.run_members(s, "ci", registry.members(s, "ci", over, member_overrides=member_overrides), device="cpu",
                          figures=False, threads=1)
    return [run.view([e]) for e in range(len(member_overrides))]


class _Renamed:
    """A run view whose metric `a` reads the view's metric `names[a]` (to put one curve in another's place)."""

    def __init__(self, view, names):
        self._view, self._names = view, names

    def metric(self, name):
        return self._view.metric(self._names.get(name, name))

    def __getattr__(self, attr):
        return getattr(self._view, attr)


# benign-linear ------------------------------------------------------------------------------------------------

def test_benign_regression_claims_fail_on_the_wrong_spectrum(runs_dir):
    from sims.claims.benign_linear import SPECTRA

    by = {s: _ci("benign-regression", seeds=2, spectrum=s) for s in SPECTRA}

    def sweep(**swap):  # the spectrum named k measured on the run of spectrum swap[k]
        return {"sweep": SweepRuns([{"spectrum": s} for s in SPECTRA], [by[swap.get(s, s)] for s in SPECTRA])}

    ids = ("benign-risk-falls", "isotropic-risk-stays", "isotropic-matches-closed-form")
    assert set(_verdicts("benign-linear", sweep(), ids).values()) == {"PASS"}
    assert _verdicts("benign-linear", sweep(**{"power-law": "isotropic", "two-tier": "isotropic"}),
                     ["benign-risk-falls"]) == {"benign-risk-falls": "FAIL"}
    assert _verdicts("benign-linear", sweep(isotropic="two-tier"), ids[1:]) == dict.fromkeys(ids[1:], "FAIL")


def test_max_margin_claims_fail_below_the_benign_regime(runs_dir):
    sweep = lambda v: {"sweep": SweepRuns([{"noise_rate": v.config.noise_rate}], [v])}
    ids = ("gd-direction-to-max-margin", "test-error-near-flip-rate")
    main = _ci("benign-max-margin", seeds=2)
    assert set(_verdicts("benign-linear", sweep(main), ids).values()) == {"PASS"}
    # d = 40 < 2 n log n = 120: not every point a support vector, the direction converges like 1 / log t
    low_d = _ci("benign-max-margin", seeds=2, d=40)
    assert _verdicts("benign-linear", sweep(low_d), ids[:1]) == {ids[0]: "FAIL"}
    weak = _ci("benign-max-margin", seeds=2, mu_norm=1.0)  # ||mu||^4 / d ~ 0: outside the benign regime
    assert _verdicts("benign-linear", sweep(weak), ids[1:]) == {ids[1]: "FAIL"}


def test_svm_and_double_descent_claims_fail_without_their_phenomenon(runs_dir):
    svm = {"svm": _ci("svm-proliferation", seeds=20)}
    assert set(_verdicts("benign-linear", svm, ["svm-all-support-vectors", "svm-fraction-below-one-near-n"]).values()
               ) == {"PASS"}
    below = {"svm": _ci("svm-proliferation", seeds=20, ratio_max=2.0)}  # d <= 2 n < 2 n log n
    above = {"svm": _ci("svm-proliferation", seeds=20, ratio_min=10.0, ratio_max=20.0)}  # never near d = n
    assert _verdicts("benign-linear", below, ["svm-all-support-vectors"]) == {"svm-all-support-vectors": "FAIL"}
    assert _verdicts("benign-linear", above, ["svm-fraction-below-one-near-n"]) == {
        "svm-fraction-below-one-near-n": "FAIL"}
    dd = _ci("double-descent", seeds=3)
    ids = ("double-descent-peak-at-n", "tuned-ridge-monotone")
    assert set(_verdicts("benign-linear", {"dd": dd}, ids).values()) == {"PASS"}
    swapped = _Renamed(dd, {"risk_min_norm": "risk_tuned", "risk_tuned": "risk_min_norm"})  # tuned <-> min-norm
    assert _verdicts("benign-linear", {"dd": swapped}, ids) == dict.fromkeys(ids, "FAIL")


# hu2020 -------------------------------------------------------------------------------------------------------

HU = dict(d=60, n=300, width=1000, lr=1000.0, steps=80, n_test=100)  # n = 5 d as the default; large enough to pass


def test_hu_claims_pass_and_fail_without_the_linear_phase(runs_dir):
    ids = ("gap-small-while-linear-learns", "gap-grows-later")
    assert set(_verdicts("hu2020", {"net": _ci("early-time", seeds=2, **HU)}, ids).values()) == {"PASS"}
    big = _ci("early-time", seeds=2, **dict(HU, init_scale=1.0, lr=10.0))  # kappa 1, the same lr kappa^2
    assert _verdicts("hu2020", {"net": big}, ids[:1]) == {ids[0]: "FAIL"}
    short = _ci("early-time", seeds=2, **dict(HU, steps=16))  # stopped just after the linear loss halved (~14)
    assert _verdicts("hu2020", {"net": short}, ids[1:]) == {ids[1]: "FAIL"}


def test_hu_kernel_gap_claim_fails_at_a_tiny_width(runs_dir):
    from sims.claims.hu2020 import N_PER_D

    kernel = lambda width: {f"d{d}": _ci("early-time", seeds=2, d=d, n=N_PER_D * d, n_test=10, steps=0, width=width)
                            for d in (25, 50, 100)}
    claim = "kernel-gap-decreases-with-d"
    assert _verdicts("hu2020", kernel(1000), [claim]) == {claim: "PASS"}
    assert _verdicts("hu2020", kernel(10), [claim]) == {claim: "FAIL"}  # finite-width fluctuations dominate


# lyu2024 ------------------------------------------------------------------------------------------------------

def _lyu(views, ids, name):
    """Verdicts of lyu2024 claims `ids` on each view (the run the claims call `name`)."""
    return [_verdicts("lyu2024", {name: v}, ids) for v in views]


def test_lyu_sparse_claims_fail_without_a_kernel_phase_or_weight_decay(runs_dir):
    main, small_alpha, no_wd = _members("dichotomy-sparse", [{}, dict(alpha=2.0), dict(weight_decay=0.0)])
    early, late = ("early-predictor-near-l2", "early-test-acc-of-l2"), ("late-predictor-near-l1", "late-test-acc-of-l1")
    [ok] = _lyu([main], early + late, "sparse")
    assert set(ok.values()) == {"PASS"}  # at ci size the l2 classifier is above chance: the premise holds
    [bad_early] = _lyu([small_alpha], early, "sparse")  # alpha 2: the small init is rich by t*/4
    [bad_late] = _lyu([no_wd], late, "sparse")  # no weight decay: the kernel predictor stays
    assert set(bad_early.values()) == set(bad_late.values()) == {"FAIL"}


def test_lyu_transition_time_claims_fail_without_a_kernel_phase(runs_dir):
    from sims.claims.lyu2024 import LAMBDAS, SWEEP

    over, ids = dict(SWEEP["sweep"].overrides), ["transition-time-slope", "transition-time-linear"]
    for alphas, want in (((16.0, 64.0, 256.0, 1024.0), "PASS"), ((1.5, 2.0, 3.0, 4.0), "FAIL")):  # no kernel phase
        points = [dict(alpha=a, weight_decay=lam) for lam in LAMBDAS for a in alphas]
        views = _members("dichotomy-sparse", points, **over)
        assert _verdicts("lyu2024", {"sweep": SweepRuns(points, views)}, ids) == dict.fromkeys(ids, want), alphas


def test_lyu_misgrokking_claims_fail_without_their_phenomenon(runs_dir):
    ids = ("misgrokking-early-high", "misgrokking-late-low", "misgrokking-train-stays-1")
    main, no_wd, strong = _lyu(_members("dichotomy-misgrokking", [{}, dict(weight_decay=0.0), dict(weight_decay=1.0)]),
                               ids, "misgrok")
    assert set(main.values()) == {"PASS"}
    assert no_wd["misgrokking-late-low"] == "FAIL"  # no weight decay: the l2 predictor stays, test accuracy high
    assert strong["misgrokking-train-stays-1"] == "FAIL"  # weight decay 1: the net collapses to w = 0 after fitting
    [weak] = _lyu([_ci("dichotomy-misgrokking", gamma=3.0)], ids[:1], "misgrok")  # the kernel predictor fails too
    assert weak == {"misgrokking-early-high": "FAIL"}


def test_lyu_completion_claims_fail_without_their_phenomenon(runs_dir):
    """completion-fits-early fails at the ci run itself (the fit comes ~10% of the predicted step, not 1%): only
    its control is checked here, as on the page; the others pass at ci and fail on their controls."""
    ids = ("completion-fits-early", "completion-test-plateau", "completion-test-falls", "completion-min-nuclear-norm")
    main, alpha1, no_wd = _lyu(_members("dichotomy-completion", [{}, dict(alpha=1.0), dict(weight_decay=0.0)]),
                               ids, "completion")
    assert {k: main[k] for k in ids[1:]} == dict.fromkeys(ids[1:], "PASS")
    assert {k: alpha1[k] for k in ids[:3]} == dict.fromkeys(ids[:3], "FAIL")  # alpha 1: no fit before the fall
    assert no_wd["completion-min-nuclear-norm"] == no_wd["completion-test-falls"] == "FAIL"  # W stays at the fit


def test_lyu_modadd_claims_fail_without_weight_decay(runs_dir):
    ids = ("modadd-test-jumps", "modadd-delay")
    main, no_wd = _lyu(_members("modular-addition", [{}, dict(weight_decay=0.0)]), ids, "modadd")
    assert set(main.values()) == {"PASS"} and set(no_wd.values()) == {"FAIL"}


# arora2019 (its other checked claims: tests/sims/test_dmf.py) --------------------------------------------------

def _arora_d1(sim, **over):
    """{"d1": a ci depth-1 run with its nuclear-norm baseline, "deep": no other depth}, as the claims see it."""
    return {"d1": _ci(sim, seeds=2, depth=1, baseline=True, **over), "deep": SweepRuns([], [])}


@pytest.mark.parametrize("sim, claim", [("dmf-completion", "nuclear-norm-below-depth1"),
                                        ("dmf-sensing", "sensing-nuclear-norm-below-depth1")])
def test_arora_nuclear_norm_claims_fail_on_a_full_rank_target(runs_dir, sim, claim):
    assert _verdicts("arora2019", _arora_d1(sim), [claim]) == {claim: "PASS"}  # rank 2 of n = 20
    # rank n: no low rank for the nuclear norm to find; depth 1 (minimum Frobenius norm) errs less
    assert _verdicts("arora2019", _arora_d1(sim, rank=20), [claim]) == {claim: "FAIL"}


def test_arora_depth2_claim_fails_from_a_large_init(runs_dir):
    claim, runs = "depth2-not-above-nuclear-norm", _arora_d1("dmf-completion")
    depth2 = lambda scale: dict(runs, deep=SweepRuns([{"depth": 2}], [
        _ci("dmf-completion", seeds=2, depth=2, baseline=False, init_scale=scale)]))
    assert _verdicts("arora2019", depth2(1e-4), [claim]) == {claim: "PASS"}
    assert _verdicts("arora2019", depth2(1.0), [claim]) == {claim: "FAIL"}  # no pull to low rank from init 1


def test_arora_sharper_jumps_claim_fails_from_a_large_init(runs_dir):
    claim, depths = "sharper-jumps-with-depth", (1, 2, 3, 4)
    dynamics = lambda **over: {"all": SweepRuns([{"depth": d} for d in depths],
                                                [_ci("dmf-dynamics", depth=d, **over) for d in depths])}
    assert _verdicts("arora2019", dynamics(), [claim]) == {claim: "PASS"}  # init 1e-4: one jump, sharper with depth
    assert _verdicts("arora2019", dynamics(init_scale=1.0), [claim]) == {claim: "FAIL"}  # no incremental jumps


# humayun2024 --------------------------------------------------------------------------------------------------
# Real ci-size runs (digits or MNIST-1D) in the claims' run slots. The ci preset itself shows no LC phases, so the
# controls below are runs whose premise is absent or whose effect is reversed; where a slightly larger run is on
# the paper's side, the same claim is checked to pass on it.

def _humayun(runs, ids):
    return _verdicts("humayun2024", runs, ids)


def _groups(sim, groups, **over):
    """One ci ensemble with a member per override of every group; returns one view per group (its members)."""
    s = registry.get(sim)
    flat = [m for g in groups for m in g]
    run = api.run_members(s, "ci", registry.members(s, "ci", over, member_overrides=flat), device="cpu",
                          figures=False, threads=1)
    starts = [sum(map(len, groups[:i])) for i in range(len(groups))]
    return [run.view(list(range(a, a + len(g)))) for a, g in zip(starts, groups)]


@pytest.mark.parametrize("ds", ["mnist1d", "digits"])
def test_humayun_lc_claims_fail_without_grokking(runs_dir, ds):
    from sims.claims.humayun2024 import DIGITS

    base = DIGITS if ds == "digits" else {}
    # alpha 1 and no weight decay: the net generalises as it fits, LC keeps rising (its peak is the last evaluation)
    plain = _ci("image-grokking", seeds=2, **{**base, "init_scale": 1.0, "weight_decay": 0.0})
    ids = (f"lc-three-phases-{ds}", f"migration-to-boundary-{ds}", f"grokking-in-final-descent-{ds}")
    assert _humayun({ds: plain}, ids) == {ids[0]: "FAIL", ids[1]: "FAIL", ids[2]: "n/a"}


@pytest.mark.parametrize("ds", ["mnist1d", "digits"])
def test_humayun_batch_norm_claims_fail_without_batch_norm(runs_dir, ds):
    from sims.claims.humayun2024 import DIGITS

    base = {**(DIGITS if ds == "digits" else {}), "snapshots": 0}
    falls = _ci("image-grokking", **{**base, "weight_decay": 1.0, "steps": 600})  # no batch norm: LC falls by 38-61%
    removes, raises = f"batch-norm-removes-final-descent-{ds}", f"batch-norm-raises-lc-{ds}"
    assert _humayun({f"{ds}-bn": falls}, [removes]) == {removes: "FAIL"}
    plain, bn = _ci("image-grokking", **base), _ci("image-grokking", **base, batch_norm=True)
    assert _humayun({ds: plain, f"{ds}-bn": bn}, [raises]) == {raises: "PASS"}
    assert _humayun({ds: bn, f"{ds}-bn": plain}, [raises]) == {raises: "FAIL"}  # the run without it in its slot


@pytest.mark.parametrize("ds", ["mnist1d", "digits"])
def test_humayun_weight_decay_claim_fails_without_weight_decay(runs_dir, ds):
    from sims.claims.humayun2024 import DIGITS

    base = {**(DIGITS if ds == "digits" else {}), "snapshots": 0}
    none, strong = _groups("image-grokking", [[dict(weight_decay=0.0)], [dict(weight_decay=1.0)]], **base)
    claim = f"weight-decay-lowers-peak-{ds}"
    assert _humayun({ds: none, f"{ds}-wd": strong}, [claim]) == {claim: "PASS"}
    assert _humayun({ds: strong, f"{ds}-wd": none}, [claim]) == {claim: "FAIL"}  # no weight decay in its slot


def test_humayun_random_label_claims_fail_with_clean_labels(runs_dir):
    from sims.claims.humayun2024 import DIGITS

    def pair(noise):
        return {k: _ci("image-grokking", **DIGITS, label_noise=noise, n_train=n, snapshots=0)
                for k, n in (("random-large", 1000), ("random-small", 250))}

    ids = ("random-labels-longer-ascent", "random-labels-higher-peak")
    assert _humayun(pair(1.0), ids[:1]) == {ids[0]: "PASS"}  # the higher peak needs more than ci (1.02 at ci)
    assert _humayun(pair(0.0), ids) == dict.fromkeys(ids, "FAIL")


def test_humayun_fit_claims_fail_with_clean_labels(runs_dir):
    from sims.claims import SweepRuns
    from sims.claims.humayun2024 import NOISE

    points = [{"label_noise": z} for z in NOISE]
    views = _groups("random-labels", [[dict(label_noise=z, seed=s) for s in (0, 1)] for z in NOISE], steps=400,
                    lr=3e-3, lc=False)
    noisy, clean = {"fit": SweepRuns(points, views)}, {"fit": SweepRuns(points, views[:1] * len(NOISE))}
    ids = ("fits-random-labels", "fit-time-grows-with-noise", "noisy-labels-fit-slower")
    assert _humayun(noisy, [ids[0], ids[2]]) == {ids[0]: "PASS", ids[2]: "PASS"}  # Spearman 0.69 at this size
    assert _humayun(clean, ids[1:]) == dict.fromkeys(ids[1:], "FAIL")  # clean labels in every slot: no slow-down
    short = _ci("random-labels", seeds=2, steps=40, lc=False)  # stopped before the random labels are fitted
    assert _humayun({"fit": SweepRuns([{"label_noise": 1.0}], [short])}, ids[:1]) == {ids[0]: "FAIL"}


def test_humayun_flip_claim_fails_before_the_flips_are_fitted(runs_dir):
    from sims.claims.humayun2024 import FLIP

    flip = lambda steps: {"flip": _ci("random-labels", seeds=3, steps=steps, lr=1e-2, n_train=1000, n_test=700,
                                      **FLIP)}
    assert _humayun(flip(400), ["class-flip-share"]) == {"class-flip-share": "PASS"}
    assert _humayun(flip(30), ["class-flip-share"]) == {"class-flip-share": "FAIL"}  # train acc 0.85-0.88


def test_humayun_exact_region_claim_fails_with_one_direction(runs_dir):
    from sims.claims.humayun2024 import DIGITS

    claim = "lc-tracks-exact-regions"
    for dirs, want in ((8, "PASS"), (1, "FAIL")):  # LC from one random direction: too coarse to rank the counts
        run = _ci("image-grokking", lc_dirs=dirs, **DIGITS)
        assert _humayun({"mnist1d": run, "digits": run}, [claim]) == {claim: want}, dirs


def test_humayun_cnn_batch_norm_claim_fails_without_batch_norm(runs_dir):
    plain, bn = _ci("image-cnn"), _ci("image-cnn", batch_norm=True)
    claim = "cnn-batch-norm-raises-lc"
    assert _humayun({"cnn": plain, "cnn-bn": bn}, [claim]) == {claim: "PASS"}
    assert _humayun({"cnn": bn, "cnn-bn": plain}, [claim]) == {claim: "FAIL"}
