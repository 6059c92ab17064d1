"""SNNClassifier: scikit-learn's own checks, every trainer on an external chip with its
presentations counted by the chip, string labels, pipelines, row-independent predictions,
chip faults and checkpoint resume."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_estimator

import mhsnn
from experiments.external_chip import NumpyChip
from mhsnn import chips


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    rng = np.random.default_rng(0)
    rows = rng.permutation(len(y))
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    return X[rows], names[rows]


class CountingChip:
    """A NumPy chip that counts what it is asked, independently of the engine."""

    def __init__(self, sizes):
        self.chip, self.presentations = NumpyChip(sigma=1.0, sizes=sizes), 0

    def __call__(self, weights, spikes):
        self.presentations += weights.shape[0] * spikes.shape[1]
        return self.chip(weights, spikes)


def test_scikit_learns_estimator_checks_pass_at_a_small_budget():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # time_steps=2: the checks test the API, and short trains compile faster
        results = check_estimator(mhsnn.SNNClassifier(presentations=3000, chains=2,
                                                      num_draws=2, time_steps=2),
                                  on_fail=None)
    failed = {r["check_name"]: str(r["exception"]).splitlines()[0] for r in results
              if r["status"] == "failed"}
    assert failed == {}
    assert len(results) > 40


@pytest.mark.parametrize("method", list(mhsnn.TRAINERS))
def test_every_trainer_fits_an_external_chip_from_a_start_and_counts_what_the_chip_ran(
        method, iris):
    X, y = iris[0][:60], iris[1][:60]
    chip = CountingChip((4, 3, 3))
    # a start unlike every method's own (i.i.d. draws), in the chip's unit: +-12 by a pattern
    P = mhsnn.snn.num_weights((4, 3, 3))
    start = np.where(np.arange(P) % 3 == 0, 12.0, -12.0).astype(np.float32)
    starts = mhsnn.TRAINERS[method].starts
    clf = mhsnn.SNNClassifier(chip=chip, hidden=(3,), method=method, presentations=2e4,
                              chains=4, num_draws=3, random_state=1, weight_scale=2.0,
                              init=start if starts else None)
    if not starts:
        with pytest.raises(ValueError, match="does not take a start"):
            clf.set_params(init=start).fit(X, y)
        chip.presentations = 0
        clf.set_params(init=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        clf.fit(X, y)
    # began at start / weight_scale 2 = +-6 engine units; a short run keeps the pattern
    kept = np.corrcoef(np.mean(clf.weight_sets_, 0), start)[0, 1]
    assert kept > 0.5 if starts else abs(kept) < 0.5
    np.testing.assert_allclose(clf.chip_point_, 2.0 * clf.point_)
    checked = clf.diagnostics_["check_presentations"]  # the chip's first, checking query
    assert checked == 2
    assert clf.presentations_ + checked == chip.presentations  # training, as the chip counted
    calibration = clf.diagnostics_["calibration_presentations"]  # the default predictive's
    assert 0 < calibration <= 0.02 * 2e4
    trained = clf.presentations_ - calibration
    assert (trained == 0) == (method in ("sg_offline", "ann_convert"))  # the model
    assert clf.presentations_ <= 2e4
    assert clf.diagnostics_["chip_presentations"] == chip.presentations
    probs = clf.predict_proba(X[:7])
    assert chip.presentations == clf.presentations_ + checked + 7 * len(clf.weight_sets_)
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-6)
    assert set(clf.predict(X[:7])) <= set(clf.classes_)
    kind = mhsnn.TRAINERS[method].kind
    assert (clf.posterior_ is not None) == (kind == "sampler")


def test_string_labels_pipeline_and_cross_val_score(iris):
    X, y = iris
    clf = make_pipeline(StandardScaler(), mhsnn.SNNClassifier(hidden=(4,), method="rw_adapt",
                                                              presentations=2e5, chains=4,
                                                              random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores = cross_val_score(clf, X, y, cv=3)
    assert scores.shape == (3,) and np.all(scores > 0.5)  # chance is 1/3
    fitted = clf.fit(X, y)[-1]
    assert list(fitted.classes_) == ["setosa", "versicolor", "virginica"]
    assert fitted.predict(X[:3]).dtype.kind == "U"


def test_a_rows_prediction_depends_only_on_that_row(iris):
    X, y = iris
    clf = mhsnn.SNNClassifier(chip=chips.noisy(0.1, chips.polynomial(1.0)), method="rw",
                              presentations=5e4, chains=2, random_state=0).fit(X, y)
    full = clf.predict_proba(X[:20])
    order = np.random.default_rng(0).permutation(20)
    np.testing.assert_array_equal(clf.predict_proba(X[:20][order]), full[order])
    np.testing.assert_array_equal(clf.predict_proba(X[5:6]), full[5:6])


def test_the_predictives_differ_as_defined(iris):
    X, y = iris
    clf = mhsnn.SNNClassifier(method="rw", presentations=1e5, chains=2, num_draws=4,
                              random_state=0).fit(X, y)
    assert clf.weight_sets_.shape == (8, 4 * 3 + 3 * 3)
    votes = clf.set_params(predictive="vote").predict_proba(X)
    assert np.all(np.isin(np.round(votes * 8, 6), np.arange(9)))  # shares of 8 draws
    point = clf.set_params(predictive="point").predict_proba(X)
    bma = clf.set_params(predictive="bma").predict_proba(X)
    assert not np.allclose(point, bma)


def test_an_unmixed_posterior_warns_and_summary_says_so(iris, capsys):
    X, y = iris
    with pytest.warns(Warning, match="not mixed"):
        clf = mhsnn.SNNClassifier(method="rw", presentations=3e4, chains=4, num_draws=5,
                                  random_state=0).fit(X, y)
    clf.summary()
    out = capsys.readouterr().out
    assert "rhat_logdensity" in out and "WARNING: the chains have not mixed" in out


def test_bad_parameters_are_one_line_errors(iris):
    X, y = iris
    for params, match in [({"method": "nuts"}, "method 'nuts'"),
                          ({"predictive": "mean"}, "predictive 'mean'"),
                          ({"presentations": 10.0}, "needs at least"),
                          ({"chains": 0}, "chains=0")]:
        with pytest.raises(ValueError, match=match):
            mhsnn.SNNClassifier(**params).fit(X, y)


# rw_adapt through the MCMC driver; eki_gess through the driven methods' one, dying in its
# chains' phase (after its EKI half and the switch)
@pytest.mark.parametrize("method, dies_at", [("rw_adapt", 30), ("eki_gess", 180)])
def test_a_chip_fault_raises_chiperror_and_fit_resumes_from_the_checkpoint(method, dies_at,
                                                                           iris, tmp_path):
    X, y = iris[0][:60], iris[1][:60]
    good = NumpyChip(sigma=1.0, sizes=(4, 3, 3))
    calls = []

    def dies_at_call_30(weights, spikes):
        calls.append(1)
        if len(calls) >= dies_at and not repaired:
            raise OSError("device unplugged")
        return good(weights, spikes)

    repaired = False
    params = {"chip": dies_at_call_30, "method": method, "presentations": 6e4, "chains": 4,
              "random_state": 3, "chip_retries": 1}
    with pytest.raises(mhsnn.ChipError) as err:
        mhsnn.SNNClassifier(**params, checkpoint_dir=tmp_path / "ck").fit(X, y)
    message = str(err.value)
    assert "\n" not in message and "dies_at_call_30" in message and "device unplugged" in message
    assert list((tmp_path / "ck" / "checkpoints").glob("*state.npz"))
    repaired = True
    resumed = mhsnn.SNNClassifier(**params, checkpoint_dir=tmp_path / "ck").fit(X, y)
    assert not (tmp_path / "ck" / "checkpoints").exists()  # finished: checkpoints gone
    clean = mhsnn.SNNClassifier(**params).fit(X, y)
    np.testing.assert_array_equal(resumed.weight_sets_, clean.weight_sets_)
    np.testing.assert_array_equal(resumed.predict_proba(X), clean.predict_proba(X))
    assert resumed.presentations_ == clean.presentations_


@pytest.mark.parametrize("method", ["rw_adapt", "demc", "pt", "snes", "spsa", "bj_ess"])
def test_model_free_methods_run_on_a_noisy_chip(method, iris):
    X, y = iris[0][:60], iris[1][:60]
    chip = chips.noisy(0.1, chips.polynomial(1.0))
    clf = mhsnn.SNNClassifier(chip=chip, hidden=(3,), method=method, presentations=2e4,
                              chains=4, num_draws=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(X, y)
    assert 0 < clf.presentations_ <= 2e4
    assert np.all(np.isfinite(clf.weight_sets_))
    np.testing.assert_allclose(clf.predict_proba(X[:4]).sum(1), 1.0, rtol=1e-6)


def test_init_from_a_fitted_estimator_or_an_offline_method_counts_what_it_cost(iris):
    X, y = iris[0][:60], iris[1][:60]
    first = mhsnn.SNNClassifier(hidden=(3,), method="spsa", presentations=2e4,
                                random_state=0, weight_scale=4.0).fit(X, y)
    chip = CountingChip((4, 3, 3))
    again = mhsnn.SNNClassifier(chip=chip, hidden=(3,), method="spsa", presentations=2e4,
                                random_state=0, weight_scale=2.0, init=first).fit(X, y)
    assert again.diagnostics_["init_presentations"] == first.presentations_ > 0
    # this fit's own, as the chip counted them (less its checking query), plus the init's
    assert again.presentations_ == first.presentations_ + chip.presentations - 2
    offline = mhsnn.SNNClassifier(hidden=(3,), method="sg_offline", random_state=0).fit(X, y)
    repaired = mhsnn.SNNClassifier(hidden=(3,), method="spsa", presentations=2e4,
                                   random_state=0, init="sg_offline").fit(X, y)
    assert repaired.diagnostics_["init_presentations"] == 0
    # SPSA's mean starts on the offline weights (the same fit: the same key), a tenth of
    # its spread around them, and a short run keeps them
    assert np.corrcoef(repaired.point_, offline.point_)[0, 1] > 0.8


@pytest.mark.parametrize("init, message", [
    (np.zeros(5), r"shape \(5,\), expected \(21,\)"),
    (np.full(21, np.nan), "finite"),
    ("rw", "one of sg_offline, ann_convert"),
    ("not weights", "one of sg_offline"),
])
def test_a_bad_init_is_one_line_naming_what_is_wrong(init, message, iris):
    with pytest.raises(ValueError, match=message):
        mhsnn.SNNClassifier(hidden=(3,), method="spsa", init=init).fit(iris[0][:30],
                                                                      iris[1][:30])


def test_a_cloned_init_estimator_is_refused_with_the_way_out(iris):
    from sklearn.base import clone

    first = mhsnn.SNNClassifier(hidden=(3,), method="sg_offline").fit(iris[0][:30],
                                                                      iris[1][:30])
    clf = clone(mhsnn.SNNClassifier(hidden=(3,), method="spsa", init=first))
    with pytest.raises(ValueError, match="chip_point_"):
        clf.fit(iris[0][:30], iris[1][:30])


def test_calibrated_predictive_is_a_counted_softmax_of_the_mean_rates():
    """predictive="calibrated": beta is learnt on training rows the chip ran (counted),
    and the probabilities are softmax(beta x the deployed sets' mean rates) by hand."""
    X, y = load_iris(return_X_y=True)
    chip = CountingChip((4, 3, 3))
    clf = mhsnn.SNNClassifier(chip=chip, hidden=(3,), method="eki", presentations=2e4,
                              chains=16, weight_scale=1.0, random_state=0)
    assert clf.predictive == "calibrated"  # the default
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(X[::2], y[::2])
    d = clf.diagnostics_
    sets = len(clf.weight_sets_)
    assert sets == 16
    # 2% of 2e4 = 400 kept out of training; 400 / 16 = 25 rows a set is under 64, so 64
    # rows for 400 // 64 = 6 of the sets
    assert (d["calibration_rows"], d["calibration_sets"]) == (64, 6)
    assert d["calibration_presentations"] == 6 * 64 <= 400
    assert clf.presentations_ <= 2e4
    assert chip.presentations == clf.presentations_ + d["check_presentations"]
    before = chip.presentations
    counts = clf.predict_counts(X[1::2])
    z = clf.calibration_ * counts.mean(0) / 10.0
    expected = np.exp(z - z.max(-1, keepdims=True))
    expected /= expected.sum(-1, keepdims=True)
    np.testing.assert_allclose(clf.predict_proba(X[1::2]), expected, rtol=1e-6)
    assert chip.presentations == before + 2 * sets * len(X[1::2])  # predictions: not training
    assert clf.calibration_ == d["calibration_factor"] > 0
    # test_repeats: k fresh draws per row, counts averaged, k times the chip's presentations
    before = chip.presentations
    mean3 = clf.set_params(test_repeats=3).predict_counts(X[1::2])
    assert chip.presentations == before + 3 * sets * len(X[1::2])
    rest = 3 * mean3 - counts  # draws 2 and 3: the first is the single presentation's
    np.testing.assert_allclose(rest, np.round(rest), atol=1e-4)
    assert rest.min() >= 0 and rest.max() <= 2 * 10 and not np.allclose(rest / 2, counts)
    twice = mhsnn.SNNClassifier(chip=chip, hidden=(3,), method="eki", presentations=2e4,
                                chains=16, weight_scale=1.0, random_state=0, test_repeats=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        twice.fit(X[::2], y[::2])
    np.testing.assert_array_equal(twice.weight_sets_, clf.weight_sets_)  # training as before
    # the same 400 cover (set, row) pairs shown twice: 200 // 16 < 64, so 64 rows x 3 sets
    d2 = twice.diagnostics_
    assert (d2["calibration_rows"], d2["calibration_sets"]) == (64, 3)
    assert d2["calibration_presentations"] == 64 * 3 * 2 <= 400
    late = mhsnn.SNNClassifier(chip=chip, hidden=(3,), method="eki", presentations=2e4,
                               chains=4, weight_scale=1.0, random_state=0, predictive="bma")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        late.fit(X[::2], y[::2])
    late.set_params(predictive="calibrated")
    with pytest.raises(ValueError, match="set after fit"):
        late.predict_proba(X[:3])
