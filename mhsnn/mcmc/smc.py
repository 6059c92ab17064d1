"""Adaptive tempered SMC (Kantas, Beskos & Jasra 2014) with pCN mutations, in BlackJAX's
shape: one ``step`` is one tempering stage.

Particles start from the prior; each stage raises the inverse temperature beta of the
likelihood by the largest increment that keeps the effective sample size of the incremental
weights at ``target_ess`` x N (bisection), adds the log mean weight to the log evidence,
resamples (systematic) and moves every particle by ``num_mutations`` pCN steps
(``mcmc.pcn``) for prior x likelihood^beta, their Gaussian reference the particles' own mean
and covariance (so a mutation scales with the dimension), their step adapted toward 0.3
acceptance. At beta = 1 the particles are a sample of the posterior (exact as N grows; the
likelihood is full-data) and ``log_evidence`` estimates log Z, unbiased on the Z scale.
Once beta = 1 a stage only mutates.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from mhsnn.mcmc import accept, pcn


class SMCState(NamedTuple):
    particles: jax.Array  # [N, P]
    loglik: jax.Array  # [N]
    beta: jax.Array  # () inverse temperature of the likelihood
    log_evidence: jax.Array  # () running log Z estimate
    pcn_step: jax.Array  # () the mutations' pCN beta


class SMCInfo(NamedTuple):
    evaluations: jax.Array  # likelihood evaluations of the stage (particles x mutations)
    acceptance_rate: jax.Array
    ess: jax.Array  # effective sample size share of the stage's weights


def init(particles: jax.Array, loglik_fn: Callable, pcn_step: float = 0.5) -> SMCState:
    z = jnp.zeros((), particles.dtype)
    return SMCState(particles, loglik_fn(particles), z, z, jnp.asarray(pcn_step, z.dtype))


def _ess_share(logw: jax.Array) -> jax.Array:
    w = jnp.exp(logw - jnp.max(logw))
    return jnp.sum(w) ** 2 / jnp.sum(w**2) / logw.shape[0]


def _next_increment(loglik: jax.Array, room: jax.Array, target: float) -> jax.Array:
    ll = jnp.where(jnp.isfinite(loglik), loglik, -1e30)

    def bisect(_, bounds):
        lo, hi = bounds
        mid = 0.5 * (lo + hi)
        ok = _ess_share(mid * ll) >= target
        return jnp.where(ok, mid, lo), jnp.where(ok, hi, mid)

    lo, _ = jax.lax.fori_loop(0, 40, bisect, (jnp.zeros_like(room), room))
    return jnp.where(_ess_share(room * ll) >= target, room, jnp.maximum(lo, 1e-12 * room))


def _systematic(key: jax.Array, logw: jax.Array) -> jax.Array:
    N = logw.shape[0]
    w = jax.nn.softmax(logw)
    positions = (jax.random.uniform(key, ()) + jnp.arange(N)) / N
    return jnp.clip(jnp.searchsorted(jnp.cumsum(w), positions), 0, N - 1)


def step(key: jax.Array, state: SMCState, loglik_fn: Callable, logprior_fn: Callable,
         num_mutations: int = 5, target_ess: float = 0.5) -> tuple[SMCState, SMCInfo]:
    """One tempering stage (see the module docstring)."""
    k_res, k_mut = jax.random.split(key)
    N = state.particles.shape[0]
    delta = _next_increment(state.loglik, 1.0 - state.beta, target_ess)
    logw = jnp.where(jnp.isfinite(state.loglik), delta * state.loglik, -jnp.inf)
    log_evidence = state.log_evidence + jax.nn.logsumexp(logw) - jnp.log(N)
    ess = _ess_share(logw)
    idx = _systematic(k_res, logw)
    particles, loglik = state.particles[idx], state.loglik[idx]
    beta = jnp.minimum(state.beta + delta, 1.0)
    reference = pcn.Reference.from_ensemble(particles)

    def target(theta):
        ll = loglik_fn(theta)
        return beta * ll + logprior_fn(theta), ll

    def mutate(carry, k):
        theta, ll, lp, phi, step_size = carry
        k_prop, k_acc = jax.random.split(k)
        m = reference.mean
        prop = m + jnp.sqrt(1.0 - step_size**2) * (theta - m) + step_size * reference.sample(
            k_prop, (N,))
        lp_new, ll_new = target(prop)
        phi_new = lp_new - reference.logpdf(prop)
        accepted, prob = accept.metropolis(k_acc, accept.log_ratio_or_reject(phi_new, phi))
        theta, ll, lp, phi = accept.select(accepted, (prop, ll_new, lp_new, phi_new),
                                           (theta, ll, lp, phi))
        rate = jnp.mean(prob)
        step_size = jnp.clip(step_size * jnp.exp(rate - 0.3), 0.01, 1.0)
        return (theta, ll, lp, phi, step_size), rate

    lp0 = beta * loglik + logprior_fn(particles)
    carry = (particles, loglik, lp0, lp0 - reference.logpdf(particles), state.pcn_step)
    (particles, loglik, _, _, pcn_step), rates = jax.lax.scan(
        mutate, carry, jax.random.split(k_mut, num_mutations))
    new = SMCState(particles, loglik, beta, log_evidence, pcn_step)
    return new, SMCInfo(jnp.asarray(N * num_mutations), jnp.mean(rates), ess)
