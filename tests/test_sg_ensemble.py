"""The deep ensemble of SG-in-the-loop networks (mhsnn.methods.sg_ensemble): one step is
one Adam step of every member on the surrogate gradient, and the budget is exact."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mhsnn import chips, data, methods, sgd, snn, trainers
from mhsnn.methods import sg_ensemble
from mhsnn.methods.base import Clock


@pytest.fixture(scope="module")
def small():
    ds = data.load_breast_cancer()
    spikes = data.poisson_encode(jax.random.key(1), ds.X[:40, :6], 5)
    return trainers.one_fold_problem(spikes, ds.y[:40], 2), trainers.settings_for((6, 4, 2))


def test_a_step_is_one_adam_step_of_each_member_on_its_surrogate_gradient(small):
    problem, settings = small
    J, hyper = 3, sg_ensemble.Hyper(batch=10)
    target = methods.make_target(problem, chips.broadcast(chips.ideal(), (1, J)), settings,
                                 trainers.mh_hyper(), 1e4, J, 2, "sg_ensemble")
    algorithm = sg_ensemble.build(target, hyper)
    theta0 = sg_ensemble.draw_start(jax.random.key(2), target, hyper)
    assert theta0.shape == (J, snn.num_weights(settings.sizes))
    assert not np.allclose(theta0[0], theta0[1])  # each member its own initialisation
    key = jax.random.key(3)
    state, info = algorithm.step(key, algorithm.init(None, theta0), Clock(0, 0))
    assert int(info.presentations) == J * 10
    # by hand: on the ideal chip the chip's values are the model's, so the straight-through
    # gradient is SG's own (sgd.batch_loss, offline), and Adam's first step follows
    rows = jax.random.choice(jax.random.split(key)[0], 40, (10,), replace=False)
    for j in range(J):
        grad = jax.grad(sgd.batch_loss)(theta0[j], target.spikes[:, rows],
                                        target.targets[rows], jnp.ones(10), chips.ideal(),
                                        False, settings)
        adam = optax.adam(hyper.learning_rate)
        update, _ = adam.update(grad, adam.init(theta0[j]), theta0[j])
        np.testing.assert_allclose(state.theta[j], theta0[j] + update, rtol=1e-5, atol=1e-6)


def test_the_budget_is_exact_on_a_jax_chip_and_on_a_host_chip(small):
    problem, settings = small
    fitted = trainers.fit("sg_ensemble", jax.random.key(0), problem, chips.polynomial(2.0),
                          settings, presentations=2000, chains=4,
                          method_params={"batch": 8})
    steps = fitted.diagnostics["steps_run"]
    assert fitted.presentations == steps * 4 * 8 and 2000 - 32 < fitted.presentations <= 2000
    assert fitted.weight_sets.shape == (4, snn.num_weights(settings.sizes))

    shown = []

    def host(weights, spikes):
        shown.append(weights.shape[0] * spikes.shape[1])
        return _counts(weights, spikes, settings)

    chip = chips.ExternalChip(host, (1, 4), sizes=settings.sizes)
    fitted = trainers.fit("sg_ensemble", jax.random.key(0), problem, chip, settings,
                          presentations=1000, chains=4, method_params={"batch": 8})
    assert fitted.presentations == sum(shown) == chip.presentations


def _counts(weights, spikes, settings):
    W = jnp.asarray(weights)
    out = jax.vmap(lambda w: snn.forward(snn.unflatten(w, settings.sizes), jnp.asarray(spikes),
                                         alpha=settings.alpha, threshold=settings.threshold))(W)
    return np.asarray(jnp.round(out * spikes.shape[0]), np.float32)


def test_sg_gess_hands_the_deep_ensembles_members_to_its_chains(small):
    """sg_gess's first phase is the deep ensemble step for step (same keys, same states);
    the switch starts the GESS chains at its members, scored on full data."""
    from mhsnn.methods import sg_gess
    from mhsnn.methods.sequence import plan

    problem, settings = small
    J = 3
    target = methods.make_target(problem, chips.broadcast(chips.ideal(), (1, J)), settings,
                                 trainers.mh_hyper(), 600, J, 2, "sg_gess")
    hyper = sg_gess.Hyper(batch=10)
    first_steps, _ = plan(target, J * 10)
    assert first_steps == 600 // 2 // (J * 10)
    mine, theirs = sg_gess.build(target, hyper), sg_ensemble.build(target, hyper)
    step, step_alone = jax.jit(mine.step), jax.jit(theirs.step)
    theta0 = sg_gess.ENTRY.draw_start(jax.random.key(2), target, hyper)
    state, alone, used = mine.init(None, theta0), theirs.init(None, theta0), 0
    for i, key in enumerate(jax.random.split(jax.random.key(4), first_steps)):
        state, info = step(key, state, Clock(jnp.asarray(i), jnp.asarray(used)))
        alone, _ = step_alone(key, alone, Clock(jnp.asarray(i), jnp.asarray(used)))
        assert int(info.presentations) == J * 10 and int(state[4]) == 0
        used += J * 10
    np.testing.assert_array_equal(state[0].theta, alone.theta)
    assert not np.allclose(alone.theta, theta0)  # the phase trained
    state, info = step(jax.random.key(9), state, Clock(jnp.asarray(first_steps),
                                                        jnp.asarray(used)))
    assert int(state[4]) == 1 and int(info.presentations) == J * 40  # full data, 40 rows
    np.testing.assert_array_equal(mine.positions(state), alone.theta)
    np.testing.assert_allclose(state[1].logdensity, target.logdensity(alone.theta), rtol=1e-6)
