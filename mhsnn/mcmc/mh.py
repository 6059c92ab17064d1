"""Random-walk Metropolis-Hastings in BlackJAX's shape: ``init`` and a pure ``kernel``.

Positions may carry any leading batch axes ([..., dim]); the log density then maps them to
[...] in one call, so thousands of chains are one computation. A single-position density is
lifted with ``jax.vmap`` by the driver.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from mhsnn.mcmc import accept

LogDensityFn = Callable[[jax.Array], jax.Array]


class MHState(NamedTuple):
    """Current positions [..., dim] and their log densities [...]."""

    position: jax.Array
    logdensity: jax.Array


class MHInfo(NamedTuple):
    """What diagnostics need from one step."""

    acceptance_rate: jax.Array  # min(1, p(proposal) / p(current)), 0 for a non-finite proposal
    is_accepted: jax.Array
    proposal_logdensity: jax.Array


def init(position: jax.Array, logdensity_fn: LogDensityFn) -> MHState:
    """Start chains at ``position``; a non-finite start density is stored as -inf."""
    return MHState(position, _finite_or_minus_inf(logdensity_fn(position)))


def _finite_or_minus_inf(logdensity: jax.Array) -> jax.Array:
    return jnp.where(jnp.isfinite(logdensity) | (logdensity == jnp.inf), logdensity, -jnp.inf)


QUERY_KEY = 2  # fold_in constant for a stochastic density's key (proposal/accept keys unchanged)


def at_step(logdensity_fn: Callable, key: jax.Array) -> Callable[[jax.Array], jax.Array]:
    """A noisy density ``logdensity_fn(position, key)`` with the read noise of the step whose
    key this is: the one place a step's query key is derived."""
    return lambda position: logdensity_fn(position, jax.random.fold_in(key, QUERY_KEY))


def kernel(key: jax.Array, state: MHState, logdensity_fn: LogDensityFn,
           step_size: jax.Array | float, stochastic: bool = False,
           factor: jax.Array | None = None) -> tuple[MHState, MHInfo]:
    """One Gaussian random-walk step, N(W, step_size^2 I), accepted in log space.

    ``step_size`` broadcasts against the positions (a scalar, or one value per chain as
    [..., 1]). ``factor`` [..., dim, dim] (a Cholesky factor L) makes the proposal
    N(W, step_size^2 L L^T). A proposal whose log density is NaN or +-inf is always
    rejected, so no NaN ever enters a chain.

    ``stochastic=True``: ``logdensity_fn(position, key)`` is a noisy estimate (a chip with
    read noise). The proposal is evaluated with fresh noise and the current state keeps
    the estimate it was accepted with, never re-evaluated: this is pseudo-marginal MH, exact
    for the posterior under the noise-averaged likelihood p(W) E[L(D | W, noise)], because
    exp(log-density estimate) is an unbiased, non-negative estimate of that likelihood.
    """
    key_proposal, key_accept = jax.random.split(key)
    noise = jax.random.normal(key_proposal, state.position.shape, state.position.dtype)
    if factor is not None:
        noise = jnp.einsum("...ij,...j->...i", factor, noise)
    proposal = state.position + step_size * noise
    proposal_logdensity = (at_step(logdensity_fn, key) if stochastic else logdensity_fn)(
        proposal)
    log_ratio = accept.log_ratio_or_reject(proposal_logdensity, state.logdensity)
    accepted, prob = accept.metropolis(key_accept, log_ratio)
    new_state = accept.select(accepted, MHState(proposal, proposal_logdensity), state)
    info = MHInfo(prob, accepted, jnp.where(jnp.isfinite(proposal_logdensity),
                                            proposal_logdensity, -jnp.inf))
    return new_state, info
