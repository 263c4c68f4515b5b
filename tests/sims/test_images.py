"""Image settings (Humayun et al. 2024, Zhang et al. 2017): the offline image loaders (IDX / npz files written here,
digits, MNIST-1D), label corruption, the ensemble CNN and per-member MLP init against the member loop, members of
the image simulations against single runs, slice measures on known sets, and the humayun2024 claims at ci."""

import gzip
import random
import struct

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

import sims
from sims import data, registry
from sims.claims.runner import reproduce
from sims.config import ConfigError
from sims.nn import MLP, SmallCNN, make_generators
from sims.settings.images import slices as image_slices

F64 = torch.float64


# ------------------------------------------------------------------------------------------------- IDX / npz

def _idx(array: np.ndarray) -> bytes:
    """The IDX encoding of a uint8 array: 00 00 08 ndim, big-endian int32 sizes, the bytes."""
    return bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape) + array.tobytes()


def _write_mnist(folder, n_train=12, n_test=6, seed=0, gz=False):
    rng = np.random.default_rng(seed)
    arrays = {"train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
              "train_labels": rng.integers(0, 10, n_train, dtype=np.uint8),
              "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
              "test_labels": rng.integers(0, 10, n_test, dtype=np.uint8)}
    folder.mkdir(parents=True, exist_ok=True)
    for key, name in data.MNIST_FILES.items():
        raw = _idx(arrays[key])
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(raw))
        else:
            (folder / name).write_bytes(raw)
    return arrays


@pytest.mark.parametrize("gz", [False, True])
def test_idx_files_read_back_exactly(tmp_path, gz):
    arrays = _write_mnist(tmp_path / "m", gz=gz)
    for key, name in data.MNIST_FILES.items():
        got = data.read_idx(tmp_path / "m" / (name + (".gz" if gz else "")))
        np.testing.assert_array_equal(got, arrays[key])
    parts = data.mnist_images(str(tmp_path / "m"))
    x, y = parts["train"]
    assert x.shape == (12, 784) and x.dtype == F64 and float(x.max()) <= 1.0
    np.testing.assert_array_equal((x * 255).round().numpy().astype(np.uint8), arrays["train_images"].reshape(12, -1))
    np.testing.assert_array_equal(parts["test"][1].numpy(), arrays["test_labels"])


def test_npz_reads_like_idx(tmp_path):
    arrays = _write_mnist(tmp_path / "idx")
    np.savez(tmp_path / "mnist.npz", x_train=arrays["train_images"], y_train=arrays["train_labels"],
             x_test=arrays["test_images"], y_test=arrays["test_labels"])
    a, b = data.mnist_images(str(tmp_path / "idx")), data.mnist_images(str(tmp_path / "mnist.npz"))
    for part in ("train", "test"):
        assert all(torch.equal(u, v) for u, v in zip(a[part], b[part]))


def test_truncated_missing_and_malformed_files_are_named(tmp_path):
    _write_mnist(tmp_path / "m")
    path = tmp_path / "m" / data.MNIST_FILES["train_images"]
    path.write_bytes(path.read_bytes()[:-100])  # truncated
    with pytest.raises(ValueError, match="train-images-idx3-ubyte is malformed.*truncated"):
        data.mnist_images(str(tmp_path / "m"))
    path.write_bytes(b"\x00\x00\x0d\x03")  # a float IDX, not unsigned bytes
    with pytest.raises(ValueError, match="train-images-idx3-ubyte is not an unsigned-byte IDX file"):
        data.read_idx(path)
    (tmp_path / "m" / data.MNIST_FILES["test_labels"]).unlink()
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte.*not found"):
        data.mnist_images(str(tmp_path / "m"))
    np.savez(tmp_path / "bad.npz", x_train=np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(ValueError, match="bad.npz lacks the arrays"):
        data.mnist_images(str(tmp_path / "bad.npz"))
    with pytest.raises(ValueError, match="data_dir"):
        data.image_split("mnist", 4, 2, generator=torch.Generator(), data_dir=str(tmp_path / "nowhere"))


# ------------------------------------------------------------------------------------------------- loaders

@pytest.mark.parametrize("dataset", ["digits", "mnist1d", "mnist"])
def test_loaders_are_deterministic_per_seed_and_differ_between_seeds(tmp_path, dataset):
    if dataset == "mnist1d":
        pytest.importorskip("mnist1d")
    folder = tmp_path / "m"
    _write_mnist(folder, n_train=40, n_test=20)
    draw = lambda s: data.image_split(dataset, 10, 8, generator=torch.Generator().manual_seed(s), data_dir=str(folder))
    a, b, c = draw(3), draw(3), draw(4)
    assert [t.shape[0] for t in a] == [10, 10, 8, 8]
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert not torch.equal(a[0], c[0])
    assert a[1].dtype == torch.int64 and int(a[1].min()) >= 0 and int(a[1].max()) <= 9


def test_mnist1d_restores_the_global_random_states():
    pytest.importorskip("mnist1d")
    np.random.seed(5)
    random.seed(5)
    expected = (np.random.rand(), random.random())
    np.random.seed(5)
    random.seed(5)
    data.mnist1d_images(20, generator=torch.Generator().manual_seed(0))
    assert (np.random.rand(), random.random()) == expected


@settings(max_examples=20, deadline=None)
@given(n=st.integers(10, 200), fraction=st.floats(0, 1), seed=st.integers(0, 1000))
def test_random_labels_touch_only_the_chosen_fraction(n, fraction, seed):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 10, (n,), generator=g)
    noisy = data.random_labels(y, fraction, 10, generator=g)
    assert int((noisy != y).sum()) <= round(fraction * n)
    assert int(noisy.min()) >= 0 and int(noisy.max()) <= 9


@settings(max_examples=20, deadline=None)
@given(n=st.integers(20, 300), fraction=st.floats(0, 1), seed=st.integers(0, 1000))
def test_class_flip_relabels_exactly_that_share_of_one_class(n, fraction, seed):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 10, (n,), generator=g)
    flipped = data.flip_class(y, 1, 7, fraction, generator=g)
    changed = flipped != y
    assert int(changed.sum()) == round(fraction * int((y == 1).sum()))
    assert bool((y[changed] == 1).all()) and bool((flipped[changed] == 7).all())


# ------------------------------------------------------------------------------------------------- models

@pytest.mark.parametrize("batch_norm", [False, True])
def test_ensemble_cnn_equals_its_members(batch_norm):
    E = 3
    model = SmallCNN((1, 8, 8), 10, make_generators(range(E)), batch_norm=batch_norm, init_scale=[1.0, 2.0, 8.0],
                     dtype=F64)
    x = torch.rand(E, 20, 64, generator=torch.Generator().manual_seed(0), dtype=F64)
    for train in (True, False):
        model.train(train)
        out = model(x)
        for e in range(E):
            member = model.member(e).train(train)
            torch.testing.assert_close(member(x[e]), out[e], rtol=1e-12, atol=1e-12)
    single = SmallCNN((1, 8, 8), 10, make_generators([1]), batch_norm=batch_norm, init_scale=2.0, dtype=F64)
    for (k, p), q in zip(model.named_parameters(), single.parameters()):
        torch.testing.assert_close(p[1:2], q, rtol=0, atol=0, msg=k)  # member 1 is the one-member net of seed 1


def test_mlp_per_member_init_scale_equals_single_nets():
    alpha = [1.0, 8.0]
    model = MLP(40, 16, 10, 3, make_generators([0, 1]), init_scale=alpha, batch_norm=True, dtype=F64)
    for e, a in enumerate(alpha):
        single = MLP(40, 16, 10, 3, make_generators([e]), init_scale=a, batch_norm=True, dtype=F64)
        for p, q in zip(model.parameters(), single.parameters()):
            torch.testing.assert_close(p[e:e + 1], q, rtol=0, atol=0)


def test_lc_counts_the_conv_units_of_each_member():
    import lc

    model = SmallCNN((1, 8, 8), 10, make_generators([0, 1]), dtype=F64).eval()
    x = torch.rand(2, 5, 64, generator=torch.Generator().manual_seed(1), dtype=F64)
    res = lc.local_complexity(model, x, radius=0.1, n_dirs=6)
    assert res.units.tolist() == [16 * 64, 32 * 16]
    for e in range(2):
        one = lc.local_complexity(model.member(e), x[e], radius=0.1, n_dirs=6)
        assert torch.equal(one.counts, res.counts[e])


# --------------------------------------------------------------------------------------------- simulations

def test_config_errors_name_the_field():
    sim = registry.get("image-grokking")
    with pytest.raises(ConfigError, match="arch='cnn' needs 2-D images"):
        registry.resolve(sim, "ci", {"arch": "cnn"})
    with pytest.raises(ConfigError, match="n_train=1797 leaves no test images"):
        registry.resolve(sim, "ci", {"dataset": "digits", "n_train": 1797})
    with pytest.raises(ConfigError, match="flip_to=1 must differ"):
        registry.resolve(sim, "ci", {"flip_from": 1, "flip_to": 1})
    with pytest.raises(ConfigError, match="lc_radii"):
        registry.resolve(sim, "ci", {"lc_radii": "0.1,x"})


@pytest.mark.parametrize("name,grid", [
    ("image-grokking", {"init_scale": [1.0, 8.0], "lr": [3e-3, 1e-2], "weight_decay": [0.0, 0.1]}),
    ("random-labels", {"label_noise": [0.0, 0.5], "flip_from": [-1, 1]}),
    ("image-cnn", {"init_scale": [1.0, 4.0], "lr": [1e-3, 3e-3]}),
])
def test_members_equal_single_runs(tmp_path, name, grid):
    base = dict(steps=12, n_evals=4, dtype="float64", n_train=40, n_test=30, batch_size=16, lc_points=10, lc_dirs=4,
                dataset="digits", snapshots=0)
    index = sims.sweep.sweep(name, grid, preset="ci", base=base, out=tmp_path / "sweep", device="cpu", threads=1)
    [group] = index["groups"]
    run = sims.load(group["dir"])
    for e in (0, len(group["members"]) - 1):
        over = group["members"][e]
        one = sims.run(name, preset="ci", device="cpu", out=tmp_path / "one", figures=False, threads=1,
                       **{**base, **over})
        for metric in one.metric_names:
            np.testing.assert_allclose(run.metric(metric)[:, e], one.metric(metric)[:, 0], rtol=1e-9, atol=1e-12,
                                       err_msg=f"{metric} of member {over}")


# ------------------------------------------------------------------------------------------------- slices

def _plane_net(coincide: bool):
    """A ReLU net on R^2 whose only region boundary is the line x = 0: hidden units relu(x) and relu(-x); the
    output (x, 0.02) puts the decision boundary at x = 0.02, next to that line; (relu(x), 0.5) at x = 0.5."""
    net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU(), torch.nn.Linear(2, 2)).double()
    w2 = [[1.0, -1.0], [0.0, 0.0]] if coincide else [[1.0, 0.0], [0.0, 0.0]]
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 0.0], [-1.0, 0.0]]))
        net[0].bias.zero_()
        net[2].weight.copy_(torch.tensor(w2))
        net[2].bias.copy_(torch.tensor([0.0, 0.02 if coincide else 0.5]))
    return net


@pytest.mark.parametrize("coincide", [True, False])
def test_migration_numbers_of_a_hand_built_net(coincide):
    """Training points (-1, -1), (1, -1), (0, 1): the plane's coordinates are (x, y + 1/3), extent 2, box
    [-1.6, 1.6] x [-1.27, 1.93] (area 10.24). The one region boundary x = 0 has length 3.2; it lies 0.02 from the
    decision boundary (share 1 at delta = 0.05 extent = 0.1) or 0.5 from it (share 0); within 0.2 of the point (0, 1)
    lies 0.4 of it; the three discs of radius 0.2 cover 3 pi 0.04 of the area, the band |x - 0.02| <= 0.1 0.64."""
    sl = image_slices.plane(np.array([[-1.0, -1.0], [1.0, -1.0], [0.0, 1.0]]))
    assert sl["extent"] == pytest.approx(2.0)
    m = image_slices.migration(image_slices.partition(_plane_net(coincide), sl), sl)
    area = 3.2 * 3.2
    assert m["regions"] == 2 and m["length"] == pytest.approx(3.2)
    assert m["boundary_share"] == pytest.approx(1.0 if coincide else 0.0, abs=1e-9)
    assert m["points_share"] == pytest.approx(0.4 / 3.2)
    assert m["points_area"] == pytest.approx(3 * np.pi * 0.04 / area, rel=0.03)
    if coincide:
        assert m["boundary_area"] == pytest.approx(2 * 0.1 * 3.2 / area, rel=0.03)
        assert m["boundary_ratio"] == pytest.approx(area / 0.64, rel=0.03)


# ------------------------------------------------------------------------------------------------- claims

def test_claims_run_at_ci(tmp_path):
    report = reproduce("humayun2024", preset="ci", out=tmp_path / "h", device="cpu", log=lambda m: None)
    assert not report["run_failures"]
    rows = {r["id"]: r for r in report["rows"]}
    assert len(rows) == 22 and {r["verdict"] for r in rows.values()} <= {"PASS", "FAIL", "n/a", "reported"}
    assert rows["fits-random-labels"]["measured"] is not None
    assert np.isfinite(rows["lc-tracks-exact-regions"]["measured"])
    assert {"humayun2024-lc-and-accuracy.png", "humayun2024-migration.png"} <= set(report["figures"])


# ------------------------------------------------------------------------- claims flip with the phenomenon

class _FakeRun:
    """A run view with given curves: steps [T], metrics {name: [T, E]}, member configs, transition records."""

    def __init__(self, steps, metrics, cfg, records=None):
        self.steps, self._m, self.config = np.asarray(steps), {k: np.asarray(v, float) for k, v in metrics.items()}, cfg
        self.n_members = next(iter(self._m.values())).shape[1]
        self.seeds, self.metric_names = list(range(self.n_members)), list(self._m)
        self.summary = {"transitions": records} if records is not None else {}

    def metric(self, name):
        return self._m[name]


STEPS = [0, 10, 100, 1000, 2000, 4000, 6000, 8000, 10000, 12000]
THREE = [6.0, 5.6, 5.2, 5.3, 7.0, 9.0, 9.2, 7.0, 5.0, 4.0]  # descent, ascent, final fall of 57%
RISING = [6.0, 6.1, 6.3, 6.6, 7.0, 7.5, 8.0, 8.5, 9.0, 9.5]
GROKS = [0.1, 0.1, 0.1, 0.1, 0.1, 0.15, 0.2, 0.35, 0.45, 0.5]


def _verdicts(runs, ids):
    from sims.claims import evaluate, get_claims

    return {c.id: evaluate(c, runs)["verdict"] for c in get_claims("humayun2024").claims if c.id in ids}


def _cfg(**over):
    return registry.resolve(registry.get("image-grokking"), "ci", {"lc_radii": "", **over})


def _lc_run(lc, test, records=None, **over):
    two = lambda c: np.stack([c, c], 1)
    return _FakeRun(STEPS, {"lc_train": two(lc), "test_acc": two(test), "train_acc": two(np.ones(len(STEPS)))},
                    _cfg(**over), records)


def _record(peak, end, step_peak=10000 // 2 + 1000, step_end=12000):
    row = lambda r: dict(boundary_ratio=r, boundary_share=0.2, points_ratio=1.0, regions=10)
    return {"slices": {"phases": {"init": 0, "min": 100, "peak": step_peak, "end": step_end},
                       "series": {str(step_peak): row(peak), str(step_end): row(end)}, "exact": {}}}


def test_lc_claims_hold_with_the_phenomenon_and_fail_without():
    ids = {"lc-three-phases-mnist1d", "grokking-in-final-descent-mnist1d", "migration-to-boundary-mnist1d"}
    good = _lc_run(THREE, GROKS, [_record(1.1, 1.4)] * 2)
    assert set(_verdicts({"mnist1d": good}, ids).values()) == {"PASS"}
    flat = _lc_run(RISING, [0.1] * len(STEPS), [_record(1.4, 1.1)] * 2)
    grok = "grokking-in-final-descent-mnist1d"
    assert set(_verdicts({"mnist1d": flat}, ids - {grok}).values()) == {"FAIL"}
    assert _verdicts({"mnist1d": flat}, {grok}) == {grok: "n/a"}  # no grokking: the premise is absent
    early = _lc_run(THREE, [0.1, 0.5] + [0.6] * (len(STEPS) - 2))  # groks before the LC peak, not in its fall
    assert _verdicts({"mnist1d": early}, {grok}) == {grok: "FAIL"}
    same = _lc_run(THREE, GROKS, [_record(1.1, 1.4, step_peak=12000)] * 2)  # the LC peak is the last snapshot
    assert _verdicts({"mnist1d": same}, {"migration-to-boundary-mnist1d"}) == {"migration-to-boundary-mnist1d": "FAIL"}


def test_ablation_claims_flip_with_the_curves():
    ids = {"batch-norm-removes-final-descent-mnist1d", "batch-norm-raises-lc-mnist1d", "weight-decay-lowers-peak-mnist1d"}
    main, high = _lc_run(THREE, GROKS), _lc_run([v * 1.5 for v in RISING], GROKS)
    low = _lc_run([v * 0.7 for v in RISING], GROKS)
    assert set(_verdicts({"mnist1d": main, "mnist1d-bn": high, "mnist1d-wd": low}, ids).values()) == {"PASS"}
    taller = _lc_run([v * 2 for v in RISING], GROKS)
    assert set(_verdicts({"mnist1d": high, "mnist1d-bn": main, "mnist1d-wd": taller}, ids).values()) == {"FAIL"}


def test_random_label_claims_flip_with_the_curves():
    from sims.claims import SweepRuns

    noise = [0.0, 0.25, 0.5, 0.75, 1.0]

    def fit(order):
        acc = lambda k: np.stack([np.clip(np.arange(len(STEPS)) / k, 0, 1)] * 2, 1)  # fitted at eval index k
        return SweepRuns([{"label_noise": z} for z in noise],
                         [_FakeRun(STEPS, {"train_acc": acc(k)}, _cfg()) for k in order])

    ids = {"fit-time-grows-with-noise", "noisy-labels-fit-slower", "fits-random-labels"}
    assert set(_verdicts({"fit": fit([2, 4, 5, 6, 7])}, ids).values()) == {"PASS"}
    assert set(_verdicts({"fit": fit([7, 6, 5, 4, 3])}, ids - {"fits-random-labels"}).values()) == {"FAIL"}
    flip = lambda share: _FakeRun(STEPS, {k: np.full((len(STEPS), 3), v) for k, v in
                                          (("flip_test", share), ("flip_train", 1.0), ("train_acc", 1.0),
                                           ("test_acc", 0.95))}, _cfg(flip_from=1))
    assert _verdicts({"flip": flip(0.28)}, {"class-flip-share"}) == {"class-flip-share": "PASS"}
    assert _verdicts({"flip": flip(0.05)}, {"class-flip-share"}) == {"class-flip-share": "FAIL"}
    ids = {"random-labels-longer-ascent", "random-labels-higher-peak"}
    small, tall = _lc_run(THREE, GROKS), _lc_run([v * 2 for v in RISING], GROKS)
    assert set(_verdicts({"random-large": tall, "random-small": small}, ids).values()) == {"PASS"}
    assert set(_verdicts({"random-large": small, "random-small": tall}, ids).values()) == {"FAIL"}
