"""ANN-to-SNN conversion against hand-computed cases."""

import jax
import jax.numpy as jnp
import numpy as np

from mhsnn import chips, convert, snn


def test_data_based_normalisation_by_hand():
    # rows with input rates 0.5 and 1; w1 = 2, w2 = 3: layer activations (1, 2) and (3, 6),
    # so lambda_1 = 2, lambda_2 = 6 (100th percentile) and with gain 1 / (1 - 0.9) = 10:
    # w1' = 2 x 1 / 2 x 10 = 10, w2' = 3 x 2 / 6 x 10 = 10
    rates = jnp.array([[0.5], [1.0]])
    out = convert.normalise([jnp.array([[2.0]]), jnp.array([[3.0]])], rates, jnp.ones(2),
                            percentile=100.0, alpha=0.9, threshold=1.0)
    np.testing.assert_allclose([float(w[0, 0]) for w in out], [10.0, 10.0], rtol=1e-6)


def test_converted_rates_follow_the_activations_on_the_ideal_chip():
    # one input spiking every step; output neuron k gets the converted current 10 a_k.
    # By hand, V <- 0.9 V + 0.1 I with reset: I = 10 fires every step (rate 1); I = 5 gives
    # V = 0.5, 0.95, 1.355 -> a spike every 3rd step; I = 2.5 gives 0.25, 0.475, 0.6775,
    # 0.85975, 1.0237 -> every 5th; I = 0.5 never reaches 1.
    activations = jnp.array([1.0, 0.5, 0.25, 0.05])
    w = (activations * 1.0 / (1 - snn.ALPHA))[None, :]
    rates = snn.forward({"w1": w}, jnp.ones((300, 1, 1)), chip=chips.ideal())
    np.testing.assert_allclose(np.asarray(rates[0]), [1.0, 1 / 3, 1 / 5, 0.0], atol=1e-6)


def test_conversion_keeps_most_decisions_of_the_ann():
    key = jax.random.key(0)
    X = jax.random.uniform(key, (200, 6))
    y = (X[:, 0] + X[:, 1] > X[:, 2] + X[:, 3]).astype(int)
    spikes = (jax.random.uniform(jax.random.key(1), (400, 200, 6)) < X).astype(jnp.float32)
    targets = jax.nn.one_hot(y, 2)
    sizes = (6, 8, 2)
    rates = convert.input_rates(spikes)
    ann = convert.train_relu(jax.random.key(2), rates, targets, jnp.ones(200), sizes)
    theta = convert.convert(jax.random.key(2), spikes, targets, jnp.ones(200), sizes)
    ann_decision = np.argmax(np.asarray(convert._logits(ann, rates)), -1)
    snn_rates = snn.forward(snn.unflatten(theta, sizes), spikes)
    snn_decision = np.argmax(np.asarray(snn_rates), -1)
    assert np.mean(ann_decision == np.asarray(y)) > 0.9
    assert np.mean(snn_decision == ann_decision) > 0.8
