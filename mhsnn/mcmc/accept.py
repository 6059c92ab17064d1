"""The one Metropolis-Hastings accept step every kernel uses."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def log_ratio_or_reject(new: jax.Array, old: jax.Array, correction: jax.Array | float = 0.0
                        ) -> jax.Array:
    """log acceptance ratio new - old + correction, -inf wherever the proposal's log density
    is NaN or +-inf or the ratio is NaN: such a proposal is always rejected, so no NaN ever
    enters a chain."""
    ratio = jnp.where(jnp.isfinite(new), new - old + correction, -jnp.inf)
    return jnp.where(jnp.isnan(ratio), -jnp.inf, ratio)


def metropolis(key: jax.Array, log_ratio: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(accepted [...], acceptance probability min(1, exp(log_ratio)) [...])."""
    log_u = jnp.log(jax.random.uniform(key, log_ratio.shape, log_ratio.dtype))
    return log_u < log_ratio, jnp.exp(jnp.minimum(log_ratio, 0.0))


def select(accepted: jax.Array, new, old):
    """Per chain: the proposal's pytree where accepted, else the current one. Leaves are
    [..., *event]; ``accepted`` is [...]."""
    def pick(n, o):
        mask = accepted.reshape(accepted.shape + (1,) * (n.ndim - accepted.ndim))
        return jnp.where(mask, n, o)

    return jax.tree.map(pick, new, old)
