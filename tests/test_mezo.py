"""MeZO (mhsnn.methods.mezo): its step against the exact central difference of a quadratic,
its convergence to the quadratic's minimiser, and its budget on a JAX and a host chip."""

import jax
import jax.numpy as jnp
import numpy as np

from experiments.external_chip import NumpyChip
from mhsnn import chips, data, snn, trainers
from mhsnn.methods import mezo


def quadratic(a):
    def loss(key, weights):  # L = |w - a|^2 / 2 for each point, [J, 2 D]
        return 0.5 * jnp.sum((weights - a) ** 2, -1)
    return loss


def test_first_step_moves_along_the_exact_projected_gradient():
    # For a quadratic the central difference is exact: g = z . (theta - a). With one
    # direction the first step is -lr sign(g) z (the RMS of one g is |g|), so z can be read
    # back from the move and g checked against it.
    P, lr = 7, 0.1
    a = jnp.linspace(-1.0, 1.0, P)
    theta = jnp.full((1, P), 2.0)
    hyper = mezo.Hyper(learning_rate=lr, eps=0.3, directions=1)
    new, g = mezo.update(jax.random.key(3), mezo.init(theta), quadratic(a), hyper)
    move = np.asarray(new.theta - theta)[0]
    z_signed = -move / lr  # sign(g) z
    np.testing.assert_allclose(float(jnp.abs(g[0, 0])), z_signed @ np.asarray(theta[0] - a),
                               rtol=1e-5)
    assert int(new.steps) == 1 and float(new.mean_square[0]) > 0


def test_converges_to_the_minimiser_of_a_quadratic():
    P = 10
    a = jnp.arange(P, dtype=jnp.float32) / P
    state = mezo.init(jnp.full((2, P), 3.0))  # two independent runs
    hyper = mezo.Hyper(learning_rate=0.01, eps=0.1, directions=4)

    def body(state, key):
        return mezo.update(key, state, quadratic(a), hyper)[0], None

    state, _ = jax.lax.scan(body, state, jax.random.split(jax.random.key(0), 3000))
    start = float(jnp.linalg.norm(3.0 - a))
    distance = np.asarray(jnp.linalg.norm(state.theta - a, axis=-1))
    assert np.all(distance < 0.1 * start), distance  # 9.3 -> within the step's jitter


def _problem():
    ds = data.load_breast_cancer()
    spikes = data.poisson_encode(jax.random.key(1), ds.X[:40, :6], 4)
    return trainers.one_fold_problem(spikes, ds.y[:40], 2), trainers.settings_for((6, 3, 2))


def test_budget_on_a_jax_and_a_host_chip():
    problem, settings = _problem()
    params = {"batch": 10, "directions": 2}
    per_step = 2 * 2 * 10
    jax_chip = chips.mismatch(jax.random.key(2), 0.2, chips.noisy(0.1, chips.polynomial(1.0)),
                              sizes=settings.sizes)

    external = chips.ExternalChip(NumpyChip(sigma=1.0, sizes=settings.sizes), (1, 1))
    for chip in (jax_chip, external):
        fitted = trainers.fit("mezo", jax.random.key(0), problem, chip, settings,
                              presentations=3000, method_params=params)
        assert fitted.presentations == fitted.diagnostics["steps_run"] * per_step
        assert 3000 - per_step < fitted.presentations <= 3000
        assert fitted.weight_sets.shape == (1, snn.num_weights(settings.sizes))
        assert fitted.draws is None
    assert external.presentations == fitted.presentations  # what the chip itself counted
