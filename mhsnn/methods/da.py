"""Delayed-acceptance random-walk MH (``mhsnn.mcmc.da``): the ideal model screens a
proposal, the chip decides; exact. A step costs n presentations per chain that passes the
screen (the start J n once); the log step adapts toward ``target_acceptance`` in the first
half."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from mhsnn.mcmc import da
from mhsnn.methods.base import (Algorithm, Entry, Info, Target, adapt, log_step,
                                query_key, thinning)


class Hyper(NamedTuple):  # fixed, untuned defaults
    target_acceptance: float = 0.25  # the log step's aim, adapted in the first half


def build(target: Target, hyper: Hyper) -> Algorithm:
    J, n = target.J, target.n
    first, per_step = first_cost(J, n), cost(J, n, hyper)
    steps = max(1, int((target.budget - first) // per_step))
    half, _ = thinning(steps, target.draws)

    def init(key, theta0):
        k0 = jax.random.fold_in(key, 1)
        inner = jax.jit(lambda t: da.init(t, lambda x: target.logdensity(x, k0),
                                          target.screen))(theta0)
        return inner, jnp.asarray(log_step(target), jnp.float32)

    def step(key, state, clock):
        inner, scale = state
        k_query = query_key(key)
        inner, info = da.kernel(key, inner, lambda x, a: target.logdensity(x, k_query, a),
                                target.screen, jnp.exp(scale), masked=True)
        scale = adapt(scale, jnp.mean(info.is_accepted), clock.step, half,
                      hyper.target_acceptance)
        return (inner, scale), Info(info.exact_queries * n, inner.logdensity,
                                    jnp.sum(info.is_accepted), J)

    return Algorithm(init, step, lambda state, steps: per_step,
                     lambda state: state[0].position, steps, first)


def cost(J: int, n: int, hyper: Hyper) -> int:
    return J * n


def first_cost(J: int, n: int) -> int:
    return J * n


ENTRY = Entry("da", "sampler", True, True,
              "delayed-acceptance RW MH: the ideal model screens, the chip decides",
              build, cost, first_cost, hyper=Hyper)
