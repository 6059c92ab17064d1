"""Differential-evolution MCMC (ter Braak 2006): the other chains are the proposal.

Chains are split into two halves; each half moves in turn with proposals
x' = x + gamma (x_a - x_b) + e, where x_a != x_b are drawn from the other half (fixed while
this half moves, so the proposal is symmetric and each half-step is an exact MH kernel),
gamma = 2.38 / sqrt(2 dim) (1 with probability ``jump_prob``, to hop between modes) and
e ~ N(0, noise_std^2 I). Model-free: it needs only densities, and thousands of chains of a
cell become information about the posterior's scale and shape instead of repetition.

Positions are [..., M, dim] with the M chains of one population on axis -2 (M >= 4).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from mhsnn.mcmc import accept
from mhsnn.mcmc.mh import MHInfo as DEMCInfo
from mhsnn.mcmc.mh import MHState as DEMCState
from mhsnn.mcmc.mh import init

__all__ = ["DEMCInfo", "DEMCState", "init", "kernel"]


class DEMCSettings(NamedTuple):
    gamma: float | None = None  # None: 2.38 / sqrt(2 dim)
    noise_std: float = 1e-4
    jump_prob: float = 0.1


def _half_step(key, state: DEMCState, logdensity_fn, moving: slice, other: slice,
               settings: DEMCSettings):
    x = state.position[..., moving, :]
    population = state.position[..., other, :]
    n_other, dim = population.shape[-2], x.shape[-1]
    k_a, k_b, k_jump, k_noise, k_accept = jax.random.split(key, 5)
    lead = x.shape[:-1]
    a = jax.random.randint(k_a, lead, 0, n_other)
    b = (a + jax.random.randint(k_b, lead, 1, n_other)) % n_other  # b != a, uniform

    def pick(idx):
        return jnp.take_along_axis(population, jnp.broadcast_to(idx[..., None],
                                                                (*idx.shape, dim)), axis=-2)

    gamma = settings.gamma if settings.gamma is not None else 2.38 / math.sqrt(2 * dim)
    gamma = jnp.where(jax.random.uniform(k_jump, lead) < settings.jump_prob, 1.0, gamma)
    proposal = (x + gamma[..., None] * (pick(a) - pick(b))
                + settings.noise_std * jax.random.normal(k_noise, x.shape, x.dtype))
    proposal_logdensity = logdensity_fn(proposal)
    current = state.logdensity[..., moving]
    log_ratio = accept.log_ratio_or_reject(proposal_logdensity, current)
    accepted, prob = accept.metropolis(k_accept, log_ratio)
    new_x, new_ld = accept.select(accepted, (proposal, proposal_logdensity), (x, current))
    position = state.position.at[..., moving, :].set(new_x)
    logdensity = state.logdensity.at[..., moving].set(new_ld)
    return DEMCState(position, logdensity), (prob, accepted, proposal_logdensity)


DEFAULT_SETTINGS = DEMCSettings()


def kernel(key: jax.Array, state: DEMCState, logdensity_fn: Callable,
           settings: DEMCSettings = DEFAULT_SETTINGS) -> tuple[DEMCState, DEMCInfo]:
    """One DE-MC step: the first half of the chains moves, then the second."""
    M = state.position.shape[-2]
    if M < 4:
        raise ValueError(f"DE-MC needs >= 4 chains in a population, got {M}")
    first, second = slice(0, M // 2), slice(M // 2, M)
    k1, k2 = jax.random.split(key)
    state, info1 = _half_step(k1, state, logdensity_fn, first, second, settings)
    state, info2 = _half_step(k2, state, logdensity_fn, second, first, settings)
    info = DEMCInfo(*(jnp.concatenate([a, b], axis=-1) for a, b in zip(info1, info2)))
    return state, info
