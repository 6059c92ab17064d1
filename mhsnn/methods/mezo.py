"""MeZO: zeroth-order SGD with seed-replayed perturbations (Malladi et al., "Fine-Tuning
Language Models with Just Forward Passes", NeurIPS 2023), an optimiser of one weight set.

Each step draws ``directions`` Gaussian directions z from the step's key, scores the
weights at theta + eps z and theta - eps z on one mini-batch of ``batch`` rows (both on the
same rows and the same read noise), and moves along the projected gradients
g = (L(theta + eps z) - L(theta - eps z)) / (2 eps):

    theta <- theta - learning_rate * mean_d(g_d z_d) / sqrt(m),

with L the mini-batch estimate of the negative log posterior (MH's, the rows' terms scaled
by n / B) and m the running mean square of g (decay ``decay``, bias-corrected). z is never
stored: it lives inside the step, drawn again from the key (MeZO's memory trick; the state
is the weights and one number). Our choice, not the paper's: dividing by the RMS of g makes
``learning_rate`` a step in weight units whatever the loss's scale (a chip's output range,
the likelihood's v, the rows), where plain ZO-SGD's step would scale with the loss.

A step costs 2 x directions x B presentations. The defaults are untuned: eps is SPSA's
tuned perturbation size (spike counts are discrete, so a small eps sees no difference),
the learning rate SPSA's tuned Adam step, the batch the mini-batched ES's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from mhsnn import chips
from mhsnn.methods.base import Algorithm, Entry, Info, Target


class Hyper(NamedTuple):
    learning_rate: float = 0.05  # the step, in weight units, of one RMS-sized gradient
    eps: float = 0.5  # the perturbation size
    batch: int = 128  # rows per step
    directions: int = 1  # directions per step (MeZO's n = 1)
    decay: float = 0.99  # of the running mean square of the projected gradient


class State(NamedTuple):
    theta: jax.Array  # [J, P] the weights (J independent runs; the estimator runs one)
    mean_square: jax.Array  # [J] running mean square of g
    steps: jax.Array  # () steps taken (the bias correction)


def init(theta: jax.Array) -> State:
    return State(theta, jnp.zeros(theta.shape[0], theta.dtype), jnp.zeros((), jnp.int32))


def update(key: jax.Array, state: State, loss: Callable[[jax.Array, jax.Array], jax.Array],
           hyper: Hyper) -> tuple[State, jax.Array]:
    """One MeZO step: ``loss(key, weights [J, 2 D, P]) -> [J, 2 D]`` scores the +eps
    directions then the -eps ones; returns the new state and the projected gradients
    [J, D]."""
    k_dir, k_loss = jax.random.split(key)
    J, P = state.theta.shape
    D, eps = hyper.directions, hyper.eps
    z = jax.random.normal(k_dir, (J, D, P), state.theta.dtype)
    both = jnp.concatenate([state.theta[:, None] + eps * z, state.theta[:, None] - eps * z], 1)
    values = loss(k_loss, both)
    g = (values[:, :D] - values[:, D:]) / (2.0 * eps)  # [J, D]
    steps = state.steps + 1
    mean_square = hyper.decay * state.mean_square + (1.0 - hyper.decay) * jnp.mean(g**2, -1)
    scale = jnp.sqrt(mean_square / (1.0 - hyper.decay ** steps.astype(g.dtype))) + 1e-12
    direction = jnp.einsum("jd,jdp->jp", g, z) / D
    theta = state.theta - hyper.learning_rate * direction / scale[:, None]
    return State(theta, mean_square, steps), g


def build(target: Target, hyper: Hyper) -> Algorithm:
    J, n, P = target.J, target.n, target.P
    B, D = min(hyper.batch, n), hyper.directions
    per_step = cost(J, n, hyper)
    # the 2 D points of each run are scored on the run's chip: repeat its grid column
    on = target.grid if isinstance(target.grid, chips.ExternalChip) else jax.tree.map(
        lambda f: jnp.repeat(f, 2 * D, axis=1), target.grid)

    def loss(key, weights):  # the batch's negative log posterior, [J, 2 D]
        k_rows, k_noise = jax.random.split(key)
        rows = jax.random.choice(k_rows, n, (B,), replace=False)
        flat = weights.reshape(J * 2 * D, P)
        rows_ll = target.loglik_rows(flat, rows, None, k_noise, on)
        return (-(n / B) * rows_ll.sum(-1) - target.logprior(flat)).reshape(J, 2 * D)

    def step(key, state, clock):
        new, g = update(key, state, loss, hyper)
        return new, Info(jnp.asarray(per_step), jnp.zeros(J))

    return Algorithm(lambda key, theta0: init(theta0), step, lambda state, steps: per_step,
                     lambda state: state.theta, max(1, int(target.budget // per_step)))


def cost(J: int, n: int, hyper: Hyper) -> int:
    return 2 * hyper.directions * J * min(hyper.batch, n)


ENTRY = Entry("mezo", "optimiser", False, False,
              "MeZO: zeroth-order SGD, seed-replayed Gaussian directions on mini-batches",
              build, cost, deploys="point", traces="nothing", hyper=Hyper)
