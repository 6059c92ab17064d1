import jax
import jax.numpy as jnp
import numpy as np

from mhsnn import chips, data, posterior, sgd


def _problem():
    ds = data.load_breast_cancer()
    return posterior.make_problem(ds, data.subset_splits(ds.y, 64, 1, 0), jax.random.key(0))


def _train(problem, epochs, seed=0, in_loop=False, sigma=0.0):
    hyper = sgd.SGHyper(learning_rate=0.03, epochs=epochs, init_mean1=0.5, init_std1=0.5,
                        init_mean2=8.0, init_std2=4.0)
    chip = chips.Chip(sigma=jnp.full((1, 2), sigma))
    return sgd.train_grid(jax.random.key(seed), problem, chip, hyper, in_loop,
                          posterior.SNNSettings(), epochs_per_chunk=epochs)


def _train_mse(problem, theta):
    return np.asarray(posterior.mse(theta, problem, chips.Chip(jnp.zeros(theta.shape[:2])),
                                    posterior.SNNSettings()))


def test_training_lowers_training_loss():
    problem = _problem()
    before = _train(problem, epochs=0 + 1)  # one epoch as the reference point
    after = _train(problem, epochs=30)
    assert np.all(_train_mse(problem, after.theta) < _train_mse(problem, before.theta))
    assert not bool(after.failed.any())


def test_same_seed_identical_weights():
    problem = _problem()
    a, b = _train(problem, 3, seed=4), _train(problem, 3, seed=4)
    np.testing.assert_array_equal(np.asarray(a.theta), np.asarray(b.theta))
    c = _train(problem, 3, seed=5)
    assert not np.array_equal(np.asarray(a.theta), np.asarray(c.theta))


def test_in_loop_training_runs_on_the_chip():
    problem = _problem()
    offline = _train(problem, 3, seed=1, in_loop=False, sigma=3.0)
    in_loop = _train(problem, 3, seed=1, in_loop=True, sigma=3.0)
    assert not np.array_equal(np.asarray(offline.theta), np.asarray(in_loop.theta))
    # on the ideal chip the chip is the model: in-loop training is offline training exactly
    np.testing.assert_array_equal(
        np.asarray(_train(problem, 3, seed=1, in_loop=True, sigma=0.0).theta),
        np.asarray(_train(problem, 3, seed=1, in_loop=False, sigma=0.0).theta))


def test_non_finite_loss_stops_the_cell_cleanly():
    problem = _problem()
    # An infinite learning rate turns the first update non-finite: the cell must stop there,
    # keep its last finite weights, and say so.
    hyper = sgd.SGHyper(learning_rate=float("inf"), epochs=5, init_mean1=0.5, init_std1=0.5,
                        init_mean2=8.0, init_std2=4.0)
    state = sgd.train_grid(jax.random.key(0), problem, chips.Chip(jnp.full((1, 1), 3.0)), hyper,
                           True, posterior.SNNSettings(), epochs_per_chunk=5)
    assert bool(state.failed.all())
    assert np.all(np.isfinite(np.asarray(state.theta)))



def test_categorical_likelihood_one_definition_for_mh_sg_and_the_predictive():
    """MH's log likelihood, SG's loss and the predictive all use softmax(s x rates):
    checked against a float64 cross-entropy computed here from the spike counts."""
    problem = _problem()  # one split of 64 training rows
    settings = posterior.SNNSettings(likelihood="categorical", softmax_scale=5.0)
    theta = 0.5 + jax.random.normal(jax.random.key(1), (1, 3, 96))
    chip = chips.Chip(sigma=jnp.array([[0.0, 1.5, 3.0]]))
    ll = np.asarray(posterior.log_likelihood(theta, problem, chip, 0.02, settings))
    counts = np.asarray(posterior.counts_on(theta, problem.train_spikes, chip, settings),
                        np.float64)[0]  # [3, N, 2]
    z = 5.0 * counts / problem.num_steps
    log_p = z - np.logaddexp(z[..., 0], z[..., 1])[..., None]
    labels = np.asarray(problem.train_targets[0]).argmax(-1)
    mask = np.asarray(problem.train_mask[0])
    expected = (log_p[:, np.arange(len(labels)), labels] * mask).sum(-1)
    np.testing.assert_allclose(ll[0], expected, rtol=1e-5)
    for m in range(3):  # SG's minibatch loss over all rows: the mean of the same terms
        one = chips.Chip(sigma=chip.sigma[0, m])
        loss = sgd.batch_loss(theta[0, m], problem.train_spikes[0], problem.train_targets[0],
                              problem.train_mask[0], one, True, settings)
        np.testing.assert_allclose(float(loss) * mask.sum(), -expected[m], rtol=1e-4)
    probs = np.asarray(posterior.test_probabilities(theta, problem, chip, settings))
    test_counts = np.asarray(posterior.counts_on(theta, problem.test_spikes, chip, settings))
    soft = np.exp(5.0 * test_counts / problem.num_steps)
    np.testing.assert_allclose(probs, soft / soft.sum(-1, keepdims=True), rtol=1e-5)
