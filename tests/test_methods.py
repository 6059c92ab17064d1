"""The one interface of the driven methods (mhsnn.methods, mhsnn.driver): the registry
holds their behaviour, a method's settings reach it by name, and the driver's budget is
the presentations the steps report."""

import jax
import numpy as np
import pytest

from mhsnn import SNNClassifier, chips, data, methods, trainers


@pytest.fixture(scope="module")
def small():
    """24 rows of the breast-cancer data, 6 features, T = 4: a 6-3-2 network."""
    ds = data.load_breast_cancer()
    X = ds.X[:24, :6]
    spikes = data.poisson_encode(jax.random.key(1), X, 4)
    problem = trainers.one_fold_problem(spikes, ds.y[:24], 2)
    return problem, trainers.settings_for((6, 3, 2))


def test_registry_entries_hold_behaviour():
    for name, entry in methods.REGISTRY.items():
        trainer = trainers.TRAINERS[name]
        assert trainer.driven is entry and trainer.exact == entry.exact
        assert trainer.starts == entry.starts and entry.deploys in ("draws", "ensemble", "point")
        hyper = entry.hyper()
        assert entry.cost(4, 100, hyper) > 0  # a step always costs something


def test_method_params_override_defaults_by_name():
    assert trainers.method_hyper("eki", {"batch": 16}).batch == 16
    assert trainers.method_hyper("eki", None) == methods.WideHyper()
    for params, words in (({"nope": 1}, "no setting nope"), ({"batch": 0}, "batch=0"),
                          ({"batch": 2.5}, "whole number")):
        with pytest.raises(ValueError, match=words) as err:
            trainers.method_hyper("eki", params)
        assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="from the config"):
        trainers.method_hyper("rw", {"step_size": 0.1})


def test_a_setting_reaches_the_method_and_the_budget_is_what_steps_report(small):
    problem, settings = small
    J, batch = 4, 8
    fitted = trainers.fit("eki", jax.random.key(0), problem, chips.polynomial(1.0), settings,
                          presentations=2000, chains=J, method_params={"batch": batch})
    steps = fitted.diagnostics["steps_run"]
    # every EKI step presents J x batch rows, and the driver stops before passing the budget
    assert fitted.presentations == steps * J * batch
    assert 2000 - J * batch < fitted.presentations <= 2000


def test_estimator_takes_method_params():
    ds = data.load_breast_cancer()
    clf = SNNClassifier(method="eki", presentations=4000, chains=4, time_steps=4,
                        weight_scale=1.0, random_state=0, method_params={"batch": 10})
    clf.fit(ds.X[:30, :5], ds.y[:30])
    assert clf.diagnostics_["steps_run"] * 4 * 10 == clf.presentations_
    with pytest.raises(ValueError, match="no setting"):
        SNNClassifier(method="eki", method_params={"jiter": 0.1}).fit(ds.X[:30, :5],
                                                                     ds.y[:30])


def test_positions_at_budgets_are_those_of_the_last_step_within_each(small):
    problem, settings = small
    seen = {}
    fitted = trainers.fit("eki", jax.random.key(0), problem, chips.ideal(), settings,
                          presentations=2000, chains=4, method_params={"batch": 8},
                          at_budgets=(10, 500, 1000, 2000),
                          on_budget=lambda used, sets: seen.update({used: sets}))
    # a step costs 4 x 8 = 32: the last steps within 500, 1000 and 2000 end at these counts
    # (none ends within 10)
    assert sorted(seen) == [480, 992, 1984] and fitted.presentations == 1984
    np.testing.assert_array_equal(seen[1984], fitted.weight_sets)
    assert not np.allclose(seen[480], seen[992])
    with pytest.raises(ValueError, match="not a driven method"):
        trainers.fit("spsa", jax.random.key(0), problem, chips.ideal(), settings,
                     presentations=2000, at_budgets=(1000,))
