"""Hamiltonian Monte Carlo whose leapfrog may use any gradient.

Leapfrog with a gradient field g of the position alone is a composition of shears, so it
preserves volume and is reversed by flipping the momentum, whatever g is. The accept step
uses the target's log density and the kinetic energy, so the chain targets
``logdensity_fn`` exactly even when g is a model's gradient and the density a chip's. Each
step costs one density evaluation (a chip query) and ``num_leapfrog`` gradients (model).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from mhsnn.mcmc import accept
from mhsnn.mcmc.mala import MALAInfo as HMCInfo  # same fields: acceptance, accepted, proposal
from mhsnn.mcmc.mala import MALAState as HMCState
from mhsnn.mcmc.mala import init

__all__ = ["HMCInfo", "HMCState", "init", "kernel"]


def kernel(key: jax.Array, state: HMCState, logdensity_fn: Callable, grad_fn: Callable,
           step_size, num_leapfrog: int) -> tuple[HMCState, HMCInfo]:
    """One HMC step: identity mass matrix, ``num_leapfrog`` leapfrog steps of size eps."""
    key_momentum, key_accept = jax.random.split(key)
    momentum = jax.random.normal(key_momentum, state.position.shape, state.position.dtype)

    def leapfrog(_, carry):
        x, p, g = carry
        p = p + 0.5 * step_size * g
        x = x + step_size * p
        g = grad_fn(x)
        return x, p + 0.5 * step_size * g, g

    x, p, g = jax.lax.fori_loop(0, num_leapfrog, leapfrog,
                                (state.position, momentum, state.grad))
    proposal_logdensity = logdensity_fn(x)
    kinetic_change = 0.5 * (jnp.sum(p**2, axis=-1) - jnp.sum(momentum**2, axis=-1))
    log_ratio = accept.log_ratio_or_reject(proposal_logdensity, state.logdensity,
                                           -kinetic_change)
    accepted, prob = accept.metropolis(key_accept, log_ratio)
    new = accept.select(accepted, HMCState(x, proposal_logdensity, g), state)
    return new, HMCInfo(prob, accepted, proposal_logdensity)
