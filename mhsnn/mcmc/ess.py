"""Generalised elliptical slice sampling (Nishihara, Murray & Adams, JMLR 2014), re-centred,
batched over chains, in BlackJAX's shape.

The target p(theta) is written as T(theta) x [p(theta) / T(theta)] with T a multivariate t
with nu degrees of freedom, location m and scale C (a ``pcn.Reference``). A step first draws
the t's scale-mixture variable s ~ InvGamma((nu + P) / 2, (nu + q) / 2), q the Mahalanobis
distance of the current point, then makes one elliptical slice move (Murray, Adams & MacKay
2010) under N(m, s C) on the log-likelihood p / T. The move always accepts; what it costs is
the number of points on the ellipse it evaluates before one lands inside the slice, which
varies per chain and per step (``ESSInfo.evaluations``). Like re-centred pCN it is exact for
p whatever m and C are, and robust to the dimension when they fit p; unlike pCN it has no
step size to adapt.

Chains run in lockstep: each round evaluates only the chains whose slice is still open
(``logdensity_fn(positions, active)``), so a host chip runs only those. A step ends after
``max_rounds`` rounds, or when the next round would pass ``max_evaluations``; a chain still
open then keeps its position (``ESSInfo.capped``). That cap is the one departure from
exactness, and it is counted. On a noisy chip the slice is cut on one noisy evaluation per
point (``mhsnn.methods.eki_gess`` scores the start again on each step's noise), so the sampler targets
the chip's posterior only approximately.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from mhsnn.mcmc.pcn import Reference


class ESSState(NamedTuple):
    position: jax.Array  # [J, P]
    logdensity: jax.Array  # [J] target log density


class ESSInfo(NamedTuple):
    evaluations: jax.Array  # [J] log-density evaluations each chain made this step
    capped: jax.Array  # [J] its slice was still open when the step ended (it did not move)


def init(position, logdensity_fn: Callable) -> ESSState:
    return ESSState(position, logdensity_fn(position))


def log_t(reference: Reference, theta: jax.Array, nu: float) -> jax.Array:
    """log of the multivariate t density with ``nu`` degrees of freedom, up to a constant."""
    P = reference.mean.shape[-1]
    return -0.5 * (nu + P) * jnp.log1p(reference.mahalanobis(theta) / nu)


def kernel(key: jax.Array, state: ESSState, logdensity_fn: Callable, reference: Reference,
           nu: float = 10.0, max_rounds: int = 20, max_evaluations=None
           ) -> tuple[ESSState, ESSInfo]:
    """One generalised elliptical slice step of every chain. ``logdensity_fn(positions,
    active)`` returns [J] and may skip the inactive chains (their values are unused)."""
    x, lp = state
    J, P = x.shape
    m = reference.mean
    k_s, k_nu, k_u, k_theta, k_loop = jax.random.split(key, 5)
    q = reference.mahalanobis(x)
    s = 0.5 * (nu + q) / jax.random.gamma(k_s, 0.5 * (nu + P), (J,), x.dtype)
    direction = jnp.sqrt(s)[:, None] * reference.sample(k_nu, (J,))
    log_lik = lp - log_t(reference, x, nu)
    log_y = log_lik + jnp.log(jax.random.uniform(k_u, (J,), x.dtype))
    angle = jax.random.uniform(k_theta, (J,), x.dtype, 0.0, 2.0 * jnp.pi)
    budget = jnp.asarray(J * max_rounds if max_evaluations is None else max_evaluations)

    def cond(carry):
        _, _, _, _, _, active, count, rounds = carry
        return (rounds < max_rounds) & jnp.any(active) & (jnp.sum(count) + jnp.sum(active)
                                                          <= budget)

    def body(carry):
        new_x, new_lp, angle, lo, hi, active, count, rounds = carry
        point = m + (x - m) * jnp.cos(angle)[:, None] + direction * jnp.sin(angle)[:, None]
        lp_point = logdensity_fn(point, active)
        inside = active & jnp.isfinite(lp_point) & (lp_point - log_t(reference, point, nu)
                                                    > log_y)
        new_x = jnp.where(inside[:, None], point, new_x)
        new_lp = jnp.where(inside, lp_point, new_lp)
        shrink = active & ~inside
        lo = jnp.where(shrink & (angle < 0), angle, lo)
        hi = jnp.where(shrink & (angle >= 0), angle, hi)
        fresh = jax.random.uniform(jax.random.fold_in(k_loop, rounds), (J,), x.dtype, lo, hi)
        return (new_x, new_lp, jnp.where(shrink, fresh, angle), lo, hi, shrink,
                count + active.astype(jnp.int32), rounds + 1)

    start = (x, lp, angle, angle - 2.0 * jnp.pi, angle, jnp.ones(J, bool),
             jnp.zeros(J, jnp.int32), jnp.zeros((), jnp.int32))
    new_x, new_lp, _, _, _, active, count, _ = jax.lax.while_loop(cond, body, start)
    return ESSState(new_x, new_lp), ESSInfo(count, active)
