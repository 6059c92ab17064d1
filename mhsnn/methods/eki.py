"""EKI: ensemble Kalman inversion on mini-batches, an optimiser with an ensemble
(``mhsnn.mcmc.ensemble``). A step costs J B presentations (B = min(batch, n) rows); the
observation noise is the MSE likelihood's, gamma = v^2 B O, so a batch's misfit is an
unbiased estimate of the full-data -log likelihood."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from mhsnn.mcmc import ensemble
from mhsnn.methods.base import Algorithm, Entry, Info, Target


class Hyper(NamedTuple):  # fixed, untuned defaults
    batch: int = 128  # rows per step
    jitter: float = 0.2  # additive noise per step


def batch(target: Target, hyper: Hyper) -> int:
    return min(hyper.batch, target.n)


def forward(target: Target, hyper: Hyper):
    """(forward, gamma): the members' output rates on a random batch of B rows, [J, B O],
    against the batch's one-hot targets [B O], and the observation noise."""
    B, J = batch(target, hyper), target.J

    def run(key, theta):
        k_rows, k_noise = jax.random.split(key)
        rows = jax.random.choice(k_rows, target.n, (B,), replace=False)
        observed = target.outputs(theta, rows, k_noise)
        return observed.reshape(J, B * target.O), target.targets[rows].reshape(-1), \
            jnp.asarray(J * B)

    return run, target.lik_std ** 2 * B * target.O


def step(target: Target, hyper: Hyper):
    """One EKI step as (key, ensemble) -> (ensemble, Info)."""
    run, gamma = forward(target, hyper)

    def one(key, state):
        new, info = ensemble.eki_step(key, state, run, gamma, hyper.jitter)
        # the batch estimate of the log posterior at the members' previous positions
        return new, Info(info.presentations, target.logprior(state.particles) - info.misfit)

    return one


def build(target: Target, hyper: Hyper) -> Algorithm:
    one, per_step = step(target, hyper), cost(target.J, target.n, hyper)
    return Algorithm(init=lambda key, theta0: ensemble.init(theta0),
                     step=lambda key, state, clock: one(key, state),
                     next_cost=lambda state, steps: per_step,
                     positions=lambda state: state.particles,
                     steps=max(1, int(target.budget // per_step)))


def cost(J: int, n: int, hyper: Hyper) -> int:
    return J * min(hyper.batch, n)


ENTRY = Entry("eki", "ensemble", False, False,
              "ensemble Kalman inversion on mini-batches: an optimiser with an ensemble",
              build, cost, deploys="ensemble", traces="a mini-batch estimate", hyper=Hyper)
