"""ANN-to-SNN conversion: the baseline a hardware engineer tries first.

Train a ReLU network of the SNN's layer sizes, without biases, offline with optax on the
training rows' input spike rates (each feature's spike count / T of its encoded train),
then convert it to the LIF network by data-based weight normalisation (Diehl et al.
2015): layer l's weights are scaled by lambda_{l-1} / lambda_l, where lambda_l is a high
percentile of layer l's ReLU activations over the training rows (lambda_0 = 1: input rates
are at most 1). Here the percentile is the 99.9th, not the maximum (Rueckauer et al. 2017):
one outlier row would otherwise set the scale of every other row's current, leaving most
neurons far below threshold.

Our LIF neuron leaks (V <- alpha V + (1 - alpha) I), so a normalised activation of 1 must
give the current that fires every step: a constant current I reaches the threshold mu in one
step when (1 - alpha) I = mu. Every layer's scaled weights are therefore multiplied by
``gain = mu / (1 - alpha)`` (10 for the paper's neuron). Below threshold a leaky neuron is
silent and above it its rate is concave in the current, so converted rates follow the ANN's
activations in order, not in proportion (``tests/test_convert.py`` checks a hand-computed
case).

Its settings (Adam's learning rate and steps, the percentile) are these literature-style
defaults, not tuned on inner splits as the other methods' were.

The conversion makes no chip query: its cost is model presentations (Adam steps x rows),
reported as such; the converted weights are deployed on every chip of the grid.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from mhsnn import snn


class ANNHyper(NamedTuple):
    learning_rate: float = 0.01  # Adam, full batch
    steps: int = 1000  # Adam steps over all training rows
    percentile: float = 99.9  # lambda_l: this percentile of layer l's training activations
    init_scale: float = 1.0  # weights ~ N(0, init_scale^2 x 2 / fan_in) (He)


DEFAULT = ANNHyper()


def input_rates(spikes: jax.Array) -> jax.Array:
    """Each row's per-feature spike rate [..., N, F] of spike trains [..., T, N, F]."""
    return jnp.mean(spikes, axis=-3)


def relu_forward(weights: list[jax.Array], rates: jax.Array) -> list[jax.Array]:
    """Every layer's ReLU activations [N, H_l] (the last: ReLU of the output logits)."""
    acts, a = [], rates
    for w in weights:
        a = jax.nn.relu(a @ w)
        acts.append(a)
    return acts


def _logits(weights, rates):
    a = rates
    for w in weights[:-1]:
        a = jax.nn.relu(a @ w)
    return a @ weights[-1]


def train_relu(key: jax.Array, rates: jax.Array, targets: jax.Array, mask: jax.Array,
               sizes: tuple[int, ...], hyper: ANNHyper = DEFAULT) -> list[jax.Array]:
    """A bias-free ReLU network of layer ``sizes`` trained by Adam on softmax cross-entropy
    over the real rows (``mask``) of ``rates`` [N, F] with one-hot ``targets`` [N, K]."""
    keys = jax.random.split(key, len(sizes) - 1)
    weights = [hyper.init_scale * jnp.sqrt(2.0 / a) * jax.random.normal(k, (a, b))
               for k, a, b in zip(keys, sizes[:-1], sizes[1:], strict=True)]
    optimizer = optax.adam(hyper.learning_rate)

    def loss(ws):
        ce = optax.softmax_cross_entropy(_logits(ws, rates), targets)
        return jnp.sum(ce * mask) / jnp.maximum(jnp.sum(mask), 1.0)

    def step(carry, _):
        ws, opt = carry
        grads = jax.grad(loss)(ws)
        updates, opt = optimizer.update(grads, opt, ws)
        return (optax.apply_updates(ws, updates), opt), None

    (weights, _), _ = jax.lax.scan(step, (weights, optimizer.init(weights)), None,
                                   length=hyper.steps)
    return weights


def _masked_percentile(acts: jax.Array, mask: jax.Array, q: float) -> jax.Array:
    """The q-th percentile of the activations of the real rows (all neurons pooled)."""
    real = jnp.where(mask[:, None] > 0, acts, jnp.nan)
    return jnp.nanpercentile(real, q)


def normalise(weights: list[jax.Array], rates: jax.Array, mask: jax.Array,
              percentile: float, alpha: float = snn.ALPHA,
              threshold: float = snn.THRESHOLD) -> list[jax.Array]:
    """The SNN's weights: W_l lambda_{l-1} / lambda_l x threshold / (1 - alpha)."""
    gain = threshold / (1.0 - alpha)
    out, previous = [], jnp.asarray(1.0)
    for w, a in zip(weights, relu_forward(weights, rates), strict=True):
        lam = _masked_percentile(a, mask, percentile)
        lam = jnp.where(lam > 0, lam, 1.0)  # a layer silent on every row: leave its scale
        out.append(w * previous / lam * gain)
        previous = lam
    return out


def convert(key: jax.Array, spikes: jax.Array, targets: jax.Array, mask: jax.Array,
            sizes: tuple[int, ...], hyper: ANNHyper = DEFAULT, alpha: float = snn.ALPHA,
            threshold: float = snn.THRESHOLD) -> jax.Array:
    """Train and convert on one fold's training spikes [T, N, F]: the flat SNN weights [P]."""
    rates = input_rates(spikes)
    weights = train_relu(key, rates, targets, mask, sizes, hyper)
    snn_weights = normalise(weights, rates, mask, hyper.percentile, alpha, threshold)
    return snn.flatten({f"w{i + 1}": w for i, w in enumerate(snn_weights)})


def model_presentations(hyper: ANNHyper, n_train: int) -> int:
    """Rows the offline training presents to the model (never to the chip)."""
    return hyper.steps * n_train
