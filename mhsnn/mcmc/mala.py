"""Metropolis-adjusted Langevin (MALA) whose drift may come from any gradient.

The proposal is x' ~ N(x + (eps^2 / 2) g(x), eps^2 I) with g = ``grad_fn``; the accept step
uses the target's log density and the proposal's density ratio q(x | x') / q(x' | x), with g
evaluated at both points. So the chain targets ``logdensity_fn`` exactly whatever g is: g can
be a model's gradient (the ideal SNN's surrogate gradient) while the density is the chip's.
Each step costs one density evaluation (a chip query) and one gradient (a model query).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from mhsnn.mcmc import accept


class MALAState(NamedTuple):
    position: jax.Array  # [..., dim]
    logdensity: jax.Array  # [...]
    grad: jax.Array  # [..., dim] the drift's gradient at position


class MALAInfo(NamedTuple):
    acceptance_rate: jax.Array
    is_accepted: jax.Array
    proposal_logdensity: jax.Array


def init(position: jax.Array, logdensity_fn: Callable, grad_fn: Callable) -> MALAState:
    logdensity = logdensity_fn(position)
    return MALAState(position, jnp.where(jnp.isnan(logdensity), -jnp.inf, logdensity),
                     grad_fn(position))


def _log_q(to: jax.Array, start: jax.Array, grad: jax.Array, step_size) -> jax.Array:
    """log N(to; start + (eps^2 / 2) grad, eps^2 I) up to the constant that cancels."""
    diff = (to - start - 0.5 * step_size**2 * grad) / step_size
    return -0.5 * jnp.sum(diff**2, axis=-1)


def kernel(key: jax.Array, state: MALAState, logdensity_fn: Callable, grad_fn: Callable,
           step_size) -> tuple[MALAState, MALAInfo]:
    """One MALA step; ``step_size`` eps is a scalar or [..., 1] per chain."""
    key_proposal, key_accept = jax.random.split(key)
    x, g = state.position, state.grad
    noise = jax.random.normal(key_proposal, x.shape, x.dtype)
    proposal = x + 0.5 * step_size**2 * g + step_size * noise
    proposal_logdensity, proposal_grad = logdensity_fn(proposal), grad_fn(proposal)
    correction = (_log_q(x, proposal, proposal_grad, step_size)
                  - _log_q(proposal, x, g, step_size))
    log_ratio = accept.log_ratio_or_reject(proposal_logdensity, state.logdensity, correction)
    accepted, prob = accept.metropolis(key_accept, log_ratio)
    new = accept.select(accepted, MALAState(proposal, proposal_logdensity, proposal_grad), state)
    return new, MALAInfo(prob, accepted, proposal_logdensity)
