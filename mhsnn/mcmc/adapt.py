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
        gain = (state.count.astype(jnp.float32) + 1.0) ** -DECAY
        updated = state.log_step_size + gain * (pool(prob) - target)
        log_step = jnp.where(state.count < burn_in, updated, state.log_step_size)
        return AdaptState(inner, log_step, state.count + 1), accepted

    return step
