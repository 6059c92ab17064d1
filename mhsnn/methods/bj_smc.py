"""The peer of smc: BlackJAX's adaptive tempered SMC with random-walk mutations scaled to
the particles, on full data (needs BlackJAX: the bench extra). It tempers from its prior,
so a start does not apply. A stage costs J n (mutations + 3): BlackJAX scores the particles
for the next temperature, at each move's start, each move and for the new weights; and
J n more for each snapshot's log density."""

from __future__ import annotations

from typing import NamedTuple

import math

import jax
import jax.numpy as jnp

from mhsnn import chips
from mhsnn.methods.base import Algorithm, Entry, Info, Target, blackjax, query_key


class Hyper(NamedTuple):  # fixed, untuned defaults
    mutations: int = 5  # random-walk moves per stage


def build(target: Target, hyper: Hyper) -> Algorithm:
    bj = blackjax("bj_smc")
    J, n, P, grid = target.J, target.n, target.P, target.grid
    per_step = cost(J, n, hyper)
    # one particle at a time: the (shared) chip's
    on = grid if isinstance(grid, chips.ExternalChip) else jax.tree.map(
        lambda f: f[:, :1], grid)

    def rw_step(key, state, logdensity_fn, sigma):  # BlackJAX's Gaussian random-walk move
        random_walk = bj.mcmc.random_walk
        return random_walk.build_additive_step()(key, state, logdensity_fn,
                                                 random_walk.normal(sigma))

    def step(key, state, clock):
        k_query = query_key(key)

        def one_loglik(x):
            return target.loglik(x[None], k_query, on=on)[0]

        kernel = bj.smc.adaptive_tempered.build_kernel(
            target.logprior, one_loglik, rw_step, bj.mcmc.random_walk.init,
            bj.smc.resampling.systematic, 0.5)
        sigma = 2.38 / math.sqrt(P) * (jnp.std(state.particles, 0) + 1e-3)
        new, info = kernel(key, state, hyper.mutations, {"sigma": sigma[None]})
        keep = new.tempering_param >= 1.0
        lp = jax.lax.cond(keep, lambda x: target.loglik(x, k_query) + target.logprior(x),
                          lambda x: jnp.zeros(J), new.particles)
        return new, Info(J * n * (hyper.mutations + 3) + jnp.where(keep, J * n, 0), lp,
                         jnp.sum(jnp.mean(info.update_info.is_accepted, 0)),
                         jnp.asarray(J, jnp.float32), keep)

    return Algorithm(
        lambda key, theta0: bj.smc.adaptive_tempered.init(
            target.prior_std * jax.random.normal(key, (J, P))),
        step, lambda state, steps: per_step, lambda state: state.particles,
        max(1, int(target.budget // per_step)),
        report=lambda host: {"beta": float(host.tempering_param)})


def cost(J: int, n: int, hyper: Hyper) -> int:
    return J * n * (hyper.mutations + 4)


ENTRY = Entry("bj_smc", "sampler", True, False,
              ("peer: BlackJAX's adaptive tempered SMC, random-walk mutations scaled to the "
               "particles, full data"), build, cost, starts=False, hyper=Hyper)
