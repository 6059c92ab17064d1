"""Subsampled random-walk MH by the austerity test (Korattikara, Chen & Welling 2014) or the
confidence sampler (Bardenet, Doucet & Holmes 2014), in BlackJAX's shape.

MH accepts theta' when mean_i l_i > mu0, with l_i = log p(x_i | theta') - log p(x_i |
theta) over the n rows and mu0 = (log u + log prior(theta) - log prior(theta')) / n. The
austerity test decides from a growing random subset: after k rows (batches of ``batch``,
without replacement, one permutation per step shared by the chains) it stops as soon as a
sequential test of mean l > mu0 is confident, i.e. 1 - Phi(|t|) < ``eps`` with
t = (mean l - mu0) / (s / sqrt(k) sqrt(1 - (k - 1)/(n - 1))) (a normal tail: batches of 30+
rows); otherwise it looks at every row and the decision is exact MH's. ``eps`` bounds the
probability of a wrong decision per test, which bounds the bias of the stationary law
(eps = 0: exact MH). Each row presented costs two presentations (theta and theta'); the
last batch of a step is presented whole, padding included.

``rule="confidence"`` replaces the normal-tail test by the confidence sampler's
concentration bound, which needs no normality: after k rows at the j-th look it stops when
|mean l - mu0| > c, c = s sqrt(2 log(3/d) / k) + 6 B log(3/d) / k, the empirical Bernstein
bound with d = eps / (2 j^2) (so the looks' errors sum to at most eps) and B a bound on
|l_i| that ``row_range(theta, theta')`` supplies. A loose B only makes it look at more
rows: with no early decision it reaches every row, and the decision is exact MH's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.stats import norm


class AusterityState(NamedTuple):
    position: jax.Array  # [C, P]


class AusterityInfo(NamedTuple):
    is_accepted: jax.Array  # [C]
    rows_used: jax.Array  # [C] rows each chain's decision looked at
    presentations: jax.Array  # () 2 x rows presented (whole batches), summed over chains


def init(position: jax.Array) -> AusterityState:
    return AusterityState(position)


def kernel(key: jax.Array, state: AusterityState,
           loglik_rows: Callable[[jax.Array, jax.Array], jax.Array],
           logprior: Callable[[jax.Array], jax.Array], n: int, step_size,
           batch: int = 50, eps: float = 0.05, masked: bool = False,
           rule: str = "austerity", row_range: Callable | None = None
           ) -> tuple[AusterityState, AusterityInfo]:
    """One step for every chain; ``loglik_rows(theta [C, P], rows [m]) -> [C, m]``
    (``masked``: ``loglik_rows(theta, rows, active [C])``, told which chains are still
    undecided, so a host chip runs only those). ``rule``: "austerity" or "confidence"
    (then ``row_range(theta, proposal) -> [C]`` bounds each row's |l_i|)."""
    if rule not in ("austerity", "confidence"):
        raise ValueError(f"rule={rule!r}: expected 'austerity' or 'confidence'")
    if rule == "confidence" and row_range is None:
        raise ValueError("rule='confidence' needs row_range, a bound on each row's |l_i|")
    k_prop, k_u, k_perm = jax.random.split(key, 3)
    theta = state.position
    C = theta.shape[0]
    proposal = theta + step_size * jax.random.normal(k_prop, theta.shape, theta.dtype)
    log_u = jnp.log(jax.random.uniform(k_u, (C,)))
    mu0 = (log_u + logprior(theta) - logprior(proposal)) / n
    bound = row_range(theta, proposal) if rule == "confidence" else None
    num_batches = -(-n // batch)
    order = jnp.concatenate([jax.random.permutation(k_perm, n),
                             jnp.full(num_batches * batch - n, -1)]).reshape(num_batches, batch)

    def cond(carry):
        j, _, _, _, decided, _, _ = carry
        return (j < num_batches) & ~jnp.all(decided)

    def body(carry):
        j, total, total_sq, k, decided, accept, shown = carry
        rows = order[j]
        real = rows >= 0
        safe = jnp.where(real, rows, 0)
        extra = (~decided,) if masked else ()
        diff = loglik_rows(proposal, safe, *extra) - loglik_rows(theta, safe, *extra)  # [C, m]
        live = (~decided)[:, None] & real[None]
        total = total + jnp.sum(jnp.where(live, diff, 0.0), -1)
        total_sq = total_sq + jnp.sum(jnp.where(live, diff**2, 0.0), -1)
        k = k + jnp.where(decided, 0, jnp.sum(real))
        shown = shown + jnp.where(decided, 0, batch)  # the last batch's padding runs too
        mean = total / k
        sd = jnp.sqrt(jnp.maximum(total_sq / k - mean**2, 0.0) * k / jnp.maximum(k - 1, 1))
        finite = 1.0 - (k - 1.0) / max(n - 1.0, 1.0)
        if rule == "austerity":
            t = (mean - mu0) / (sd / jnp.sqrt(k) * jnp.sqrt(jnp.maximum(finite, 0.0)) + 1e-30)
            confident = (1.0 - norm.cdf(jnp.abs(t)) < eps) | (k >= n)
        else:
            log_term = jnp.log(3.0 / (eps / (2.0 * (j + 1.0) ** 2)))
            c = sd * jnp.sqrt(2.0 * log_term / k) + 6.0 * bound * log_term / k
            confident = (eps > 0) & (jnp.abs(mean - mu0) > c) | (k >= n)
        now = ~decided & confident
        accept = jnp.where(now, mean > mu0, accept)
        return j + 1, total, total_sq, k, decided | now, accept, shown

    zeros = jnp.zeros((C,), theta.dtype)
    carry = (0, zeros, zeros, jnp.zeros((C,), theta.dtype), jnp.zeros((C,), bool),
             jnp.zeros((C,), bool), jnp.zeros((C,), jnp.int32))
    _, _, _, k, _, accept, shown = jax.lax.while_loop(cond, body, carry)
    new = AusterityState(jnp.where(accept[:, None], proposal, theta))
    return new, AusterityInfo(accept, k.astype(jnp.int32), 2 * jnp.sum(shown))
