"""Warm-up adaptation of a kernel's step size, frozen after burn-in.

Robbins-Monro on log(step size): after each burn-in step, log eps += t^-0.6 (a - target),
a the step's mean acceptance probability pooled over the chains that share the step size;
from ``burn_in`` on the step size is fixed, so the kept draws come from one fixed, exact
kernel. The state carries the step count, so the schedule of decisions depends on the
step count alone (identical across chunk sizes and resumes).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

TARGETS = {"rw": 0.234, "mala": 0.574, "hmc": 0.65}  # optimal-scaling acceptance targets
DECAY = 0.6


class AdaptState(NamedTuple):
    inner: Any  # the kernel's state
    log_step_size: jax.Array  # [...] per pool (broadcast against the chains)
    count: jax.Array  # int32 scalar: steps taken


def init(inner: Any, step_size) -> AdaptState:
    return AdaptState(inner, jnp.log(jnp.asarray(step_size, jnp.float32)),
                      jnp.zeros((), jnp.int32))


def adaptive(step_fn: Callable, burn_in: int, target: float,
             pool: Callable[[jax.Array], jax.Array] = jnp.mean) -> Callable:
    """``step_fn(key, inner, step_size) -> (inner, acceptance_prob [...], accepted [...])``
    -> ``step(key, AdaptState) -> (AdaptState, accepted)``; ``pool`` reduces the chains'
    acceptance probabilities to the shape of ``log_step_size`` (default: all chains)."""

    def step(key, state: AdaptState):
        inner, prob, accepted = step_fn(key, state.inner, jnp.exp(state.log_step_size))
        log_step = _robbins_monro(state.log_step_size, state.count, pool(prob), target,
                                  burn_in)
        return AdaptState(inner, log_step, state.count + 1), accepted

    return step


def _window_average(average, value, count, start: int, burn_in: int):
    """The running mean of ``value`` over the steps [start, burn_in); unchanged outside."""
    n = jnp.maximum(count - start + 1, 1).astype(jnp.float32)
    return jnp.where((count >= start) & (count < burn_in), average + (value - average) / n,
                     average)


def _pool_all(x):
    """The mean over every chain (axis 0), broadcast back to each."""
    return jnp.broadcast_to(jnp.mean(x, axis=0, keepdims=True), x.shape)


def _robbins_monro(log_step, count, acceptance, target: float, burn_in: int):
    """log eps += t^-DECAY (a - target) during burn-in; unchanged from then on."""
    gain = (count.astype(jnp.float32) + 1.0) ** -DECAY
    return jnp.where(count < burn_in, log_step + gain * (acceptance - target), log_step)


class DiagonalAdaptState(NamedTuple):
    """``AdaptState`` plus a per-coordinate proposal scale learnt from the chains."""

    inner: Any  # the kernel's state
    log_step_size: jax.Array  # [...] per pool
    count: jax.Array  # int32 scalar: steps taken
    mean: jax.Array  # [..., dim] running mean of the pooled chains' positions in the window
    sq: jax.Array  # [..., dim] running mean of their squares
    scale: jax.Array  # [..., dim] the proposal's relative scale per coordinate (mean 1)


def init_diagonal(inner: Any, step_size, position: jax.Array) -> DiagonalAdaptState:
    zeros = jnp.zeros_like(position)
    return DiagonalAdaptState(inner, jnp.log(jnp.asarray(step_size, jnp.float32)),
                              jnp.zeros((), jnp.int32), zeros, zeros, jnp.ones_like(position))


def adaptive_diagonal(step_fn: Callable, burn_in: int, target: float,
                      position_fn: Callable[[Any], jax.Array],
                      pool: Callable[[jax.Array], jax.Array] = jnp.mean,
                      pool_positions: Callable[[jax.Array], jax.Array] | None = None
                      ) -> Callable:
    """Step size and a diagonal proposal covariance, adapted in burn-in (Haario, Saksman and
    Tamminen 2001, diagonal form, pooled over the chains that share them), then frozen.

    The proposal is N(W, (eps s)^2) per coordinate: eps adapts as in ``adaptive``; s is the
    posterior standard deviation per coordinate estimated from the chains' positions over
    the window [burn_in / 4, burn_in) (pooled over chains by ``pool_positions``, mean over
    axis 0 by default) and normalised to a mean square of 1, so eps keeps its meaning. The
    first quarter is left out so that the start's spread does not inflate s; s is used from
    burn_in / 2 on, re-estimated every step until burn-in ends.
    ``step_fn(key, inner, step_size [..., dim])`` as in ``adaptive``.
    """
    start, use = burn_in // 4, burn_in // 2
    pool_positions = pool_positions or _pool_all

    def step(key, state: DiagonalAdaptState):
        eps = jnp.exp(state.log_step_size)[..., None] * state.scale
        inner, prob, accepted = step_fn(key, state.inner, eps)
        log_step = _robbins_monro(state.log_step_size, state.count, pool(prob), target,
                                  burn_in)
        adapting = state.count < burn_in
        x = position_fn(inner)
        mean = _window_average(state.mean, pool_positions(x), state.count, start, burn_in)
        sq = _window_average(state.sq, pool_positions(x * x), state.count, start, burn_in)
        var = jnp.maximum(sq - mean * mean, 0.0) + 1e-12
        estimate = jnp.sqrt(var / jnp.mean(var, axis=-1, keepdims=True))
        scale = jnp.where(adapting & (state.count + 1 >= use), estimate, state.scale)
        return DiagonalAdaptState(inner, log_step, state.count + 1, mean, sq, scale), accepted

    return step


class CovarianceAdaptState(NamedTuple):
    """``AdaptState`` plus a full proposal covariance learnt from the chains."""

    inner: Any  # the kernel's state
    log_step_size: jax.Array  # [...] per pool
    count: jax.Array  # int32 scalar: steps taken
    mean: jax.Array  # [..., dim] running mean of the pooled chains' positions in the window
    second: jax.Array  # [..., dim, dim] running mean of their outer products
    factor: jax.Array  # [..., dim, dim] Cholesky factor of the proposal's relative covariance


REFRESH = 25  # burn-in steps between refreshes of a full covariance's Cholesky factor


def init_covariance(inner: Any, step_size, position: jax.Array) -> CovarianceAdaptState:
    dim = position.shape[-1]
    eye = jnp.broadcast_to(jnp.eye(dim, dtype=position.dtype), (*position.shape, dim))
    return CovarianceAdaptState(inner, jnp.log(jnp.asarray(step_size, jnp.float32)),
                                jnp.zeros((), jnp.int32), jnp.zeros_like(position),
                                jnp.zeros_like(eye), eye)


def adaptive_covariance(step_fn: Callable, burn_in: int, target: float,
                        position_fn: Callable[[Any], jax.Array],
                        pool: Callable[[jax.Array], jax.Array] = jnp.mean,
                        pool_positions: Callable[[jax.Array], jax.Array] | None = None
                        ) -> Callable:
    """Step size and a full proposal covariance adapted in burn-in (Haario, Saksman and
    Tamminen 2001, pooled over the chains that share them), then frozen.

    The proposal is N(W, eps^2 L L^T): eps adapts as in ``adaptive``; L L^T is the
    covariance of the chains' positions over the window [burn_in / 4, burn_in) (pooled by
    ``pool_positions``, as in ``adaptive_diagonal``), scaled to a mean variance of 1 so that
    eps keeps its meaning, with 1e-6 added to its diagonal. L is refreshed every
    ``REFRESH`` steps from burn_in / 2 on and at the last burn-in step (a Cholesky costs
    dim^3 / 3 per pool; a failed one keeps the previous L).
    ``step_fn(key, inner, step_size [..., 1], factor [..., dim, dim])`` as in ``adaptive``.
    """
    start, use = burn_in // 4, burn_in // 2
    pool_positions = pool_positions or _pool_all

    def factor_of(mean, second):
        cov = second - mean[..., :, None] * mean[..., None, :]
        scale = jnp.mean(jnp.diagonal(cov, axis1=-2, axis2=-1), axis=-1)[..., None, None]
        eye = jnp.eye(cov.shape[-1], dtype=cov.dtype)
        return jnp.linalg.cholesky(cov / jnp.maximum(scale, 1e-30) + 1e-6 * eye)

    def step(key, state: CovarianceAdaptState):
        eps = jnp.exp(state.log_step_size)[..., None]
        inner, prob, accepted = step_fn(key, state.inner, eps, state.factor)
        log_step = _robbins_monro(state.log_step_size, state.count, pool(prob), target,
                                  burn_in)
        x = position_fn(inner)

        def moments():  # (skipped outside the window: dim^2 per chain)
            return (_window_average(state.mean, pool_positions(x), state.count, start, burn_in),
                    _window_average(state.second,
                                    pool_positions(x[..., :, None] * x[..., None, :]),
                                    state.count, start, burn_in))

        mean, second = jax.lax.cond((state.count >= start) & (state.count < burn_in), moments,
                                    lambda: (state.mean, state.second))
        t = state.count + 1
        refresh = (t >= use) & (t <= burn_in) & (((t - use) % REFRESH == 0) | (t == burn_in))

        def refreshed():
            new = factor_of(mean, second)
            ok = jnp.all(jnp.isfinite(new), axis=(-2, -1), keepdims=True)
            return jnp.where(ok, new, state.factor)

        factor = jax.lax.cond(refresh, refreshed, lambda: state.factor)
        return CovarianceAdaptState(inner, log_step, t, mean, second, factor), accepted

    return step


# The learnt proposal covariances by kind: (step builder, state initialiser).
COVARIANCES = {"diagonal": (adaptive_diagonal, init_diagonal),
               "full": (adaptive_covariance, init_covariance)}
