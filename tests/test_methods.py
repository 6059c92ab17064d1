"""The one interface of the driven methods (mhsnn.methods, mhsnn.driver): the registry
holds their behaviour, a method's settings reach it by name, and the driver's budget is
the presentations the steps report."""

import jax
import jax.numpy as jnp
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
    assert trainers.method_hyper("eki", None) == methods.REGISTRY["eki"].hyper()
    # each method has its own settings: another method's are refused by name
    with pytest.raises(ValueError, match="smc has no setting jitter"):
        trainers.method_hyper("smc", {"jitter": 0.1})
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
    d = clf.diagnostics_  # training, then the calibrated predictive's counted rows
    assert d["steps_run"] * 4 * 10 + d["calibration_presentations"] == clf.presentations_
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


def _gaussian_target(budget, J, draws):
    """A conjugate linear-Gaussian ``Target`` (y = X theta + N(0, 1), prior N(0, 2^2 I),
    P = 2, n = 40): its posterior is N(m, S) in closed form."""
    from mhsnn.methods.base import Target

    n, P, prior_std = 40, 2, 2.0
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, P)).astype(np.float32)
    y = (X @ np.array([0.7, -1.2]) + rng.normal(size=n)).astype(np.float32)
    precision = X.T @ X + np.eye(P) / prior_std**2
    S = np.linalg.inv(precision)
    m = S @ X.T @ y
    Xj, yj = jnp.asarray(X), jnp.asarray(y)

    def loglik_rows(theta, rows=None, active=None, key=None, on=None):
        x, t = (Xj, yj) if rows is None else (Xj[rows], yj[rows])
        return -0.5 * (t[None] - theta @ x.T) ** 2

    def outputs(theta, rows, key=None):
        return (theta @ Xj[rows].T)[..., None]

    target = Target(n, 1, 1, P, J, None, yj[:, None], None, None, False, None, 1.0, prior_std,
                    0.5 * np.sqrt(P / 96.0), 50.0, float(budget), draws, loglik_rows, outputs)
    return target, m, S


@pytest.mark.parametrize("name", ["smc", "da", "mh_sub", "eki_pcn", "eki_gess"])
def test_exact_methods_sample_a_known_gaussian_posterior(name):
    from mhsnn import driver

    J = 16
    target, m, S = _gaussian_target(2.5e6, J, 100)
    entry = methods.REGISTRY[name]
    hyper = entry.hyper()  # the EKI phase's batch, for the methods that begin with one
    algorithm = entry.build(target, hyper._replace(batch=20) if "batch" in hyper._fields
                            else hyper)
    k_init, k_run = jax.random.split(jax.random.key(5))
    theta0 = 0.5 * jax.random.normal(k_init, (J, target.P))
    out = driver.run(name, algorithm, k_run, target, theta0, k_init, None, False, 4)
    draws = out["draws"].reshape(-1, target.P)  # the kept snapshots of every chain
    assert out["used"] <= target.budget and len(draws) >= 200
    # the posterior mean within 5 standard errors (an effective size of a tenth of the
    # draws, chains being correlated) and the variances within 35%; the prior's
    # mean (0) and spread (2) are far outside both
    se = np.sqrt(np.diag(S) / (len(draws) / 10))
    np.testing.assert_array_less(np.abs(draws.mean(0) - m), 5 * se)
    np.testing.assert_allclose(draws.var(0), np.diag(S), rtol=0.35)


def test_no_mixing_warning_on_a_trace_that_is_not_the_log_posterior(small):
    from mhsnn.estimator import _posterior_rhat

    problem, settings = small
    fitted = trainers.fit("mh_sub", jax.random.key(0), problem, chips.ideal(), settings,
                          presentations=3e4, chains=4, num_draws=4)
    assert fitted.diagnostics["logdensity"] == "the log prior"
    assert np.isnan(_posterior_rhat({**fitted.diagnostics, "rhat_logdensity": 5.0}))
    assert _posterior_rhat({"rhat_logdensity": 5.0, "logdensity": "log posterior"}) == 5.0


def test_the_posterior_has_lp_only_where_the_trace_is_the_log_posterior():
    ds = data.load_breast_cancer()
    X, y = ds.X[:30, :5], ds.y[:30]
    common = {"presentations": 1e4, "chains": 4, "time_steps": 4, "num_draws": 3,
              "weight_scale": 1.0, "random_state": 0}
    sub = SNNClassifier(method="mh_sub", **common).fit(X, y).posterior_
    assert "lp" not in sub.sample_stats and sub.attrs["trace"] == "the log prior"
    pcn = SNNClassifier(method="eki_pcn", **common).fit(X, y).posterior_
    assert "lp" in pcn.sample_stats and pcn.attrs["trace"] == "log posterior"


def test_the_least_budget_is_that_of_the_settings_given(small):
    problem, settings = small  # 24 rows: EKI's default batch is all 24, 4 x 24 a step
    with pytest.raises(ValueError, match="needs at least 192"):
        trainers.fit("eki", jax.random.key(0), problem, chips.ideal(), settings,
                     presentations=100, chains=4)
    fitted = trainers.fit("eki", jax.random.key(0), problem, chips.ideal(), settings,
                          presentations=100, chains=4, method_params={"batch": 8})
    assert fitted.presentations == 96  # three steps of 4 x 8


def test_the_configs_method_params_reach_a_grid_experiments_driven_method(small):
    from mhsnn import config
    from mhsnn.errors import ConfigError
    from experiments import runners

    problem, settings = small
    cfg = config.build("quick", ["method_params={eki = {batch = 8}}"])
    assert cfg.method_params == {"eki": {"batch": 8}}
    (fitted, _), = runners.fit_cells("eki", jax.random.key(0), problem, [1.0], settings, cfg,
                                     2000, chains=4).values()
    assert fitted.presentations == fitted.diagnostics["steps_run"] * 4 * 8
    for bad, words in (("{eki = {nope = 1}}", "eki has no setting nope"),
                       ("{rw = {batch = 8}}", "'rw' is not a driven method"),
                       ("{eki = 3}", "expected a table of its settings")):
        with pytest.raises(ConfigError, match=words):
            config.build("quick", [f"method_params={bad}"])


def test_every_familys_budget_buys_the_most_steps_that_fit():
    """Each registry line's family turns a budget into the most steps whose cost (the
    trainers docstring's table, written out here by hand) stays within it."""
    cfg, C, n = trainers.DEFAULTS, 4, 90
    K = cfg.pt.num_temperatures
    hand = {"rw": lambda s: C * n * (s + 1), "demc": lambda s: C * n * (s + 1),
            "pt": lambda s: C * K * n * (s + 1),
            "sg_in_loop": lambda s: s * -(-n // cfg.sg.batch_size) * cfg.sg.batch_size}
    for name, base in (("snes", "snes"), ("spsa", "spsa"), ("snes_mb", "snes")):
        hyper = trainers.es_hyper(cfg, name)
        m = 2 * hyper.num_perturbations if base == "spsa" else hyper.population
        rows = min(hyper.batch, n) if name.endswith("_mb") else n
        hand[name] = lambda s, m=m, rows=rows: m * rows * s
    budget = 3e6
    for name, cost in hand.items():
        steps = trainers.steps_for(name, budget, C, n, cfg)
        assert trainers.presentations_of(name, steps, C, n, cfg) == cost(steps), name
        assert cost(steps) <= budget, name
        if name != "sg_in_loop":  # SG stops at its epochs
            assert cost(steps + 1) > budget, name
    for name in ("sg_offline", "ann_convert"):  # trained on the model alone
        assert trainers.presentations_of(name, trainers.steps_for(name, budget, C, n), C,
                                         n) == 0
    with pytest.raises(ValueError, match="pt with 4 chains on 90 rows needs at least"):
        trainers.steps_for("pt", 2 * C * K * n, C, n, cfg)
