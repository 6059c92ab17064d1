"""Delayed-acceptance random-walk MH (Christen & Fox 2005), in BlackJAX's shape.

A cheap screen (on a network: the ideal model's log posterior, no chip query) judges each
Gaussian random-walk proposal first; only a proposal that passes is sent to the exact log
density (the chip). Stage 1 accepts with min(1, s(theta') / s(theta)); stage 2 with
min(1, [p(theta') s(theta)] / [p(theta) s(theta')]). The two stages together satisfy
detailed balance for p whatever the screen s is: a wrong screen costs acceptance, never
exactness. ``Info.exact_queries`` counts the proposals that reached stage 2, which is what
a chip pays per step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from mhsnn.mcmc import accept


class DAState(NamedTuple):
    position: jax.Array  # [..., P]
    logdensity: jax.Array  # [...] exact (chip) log density
    screen: jax.Array  # [...] the screen's log density


class DAInfo(NamedTuple):
    is_accepted: jax.Array
    screened: jax.Array  # passed stage 1: the exact density was needed
    exact_queries: jax.Array  # number of exact evaluations this step (sum of screened)


def init(position, logdensity_fn: Callable, screen_fn: Callable) -> DAState:
    return DAState(position, logdensity_fn(position), screen_fn(position))


def kernel(key: jax.Array, state: DAState, logdensity_fn: Callable, screen_fn: Callable,
           step_size, masked: bool = False) -> tuple[DAState, DAInfo]:
    """One delayed-acceptance step. ``masked``: ``logdensity_fn(positions, active)`` is told
    which proposals passed the screen and may skip the others (a host chip then runs only
    those: ``exact_queries``); their values are never used."""
    k_prop, k1, k2 = jax.random.split(key, 3)
    proposal = state.position + step_size * jax.random.normal(k_prop, state.position.shape,
                                                              state.position.dtype)
    screen = screen_fn(proposal)
    log_a1 = accept.log_ratio_or_reject(screen, state.screen)
    passed, _ = accept.metropolis(k1, log_a1)
    exact = logdensity_fn(proposal, passed) if masked else logdensity_fn(proposal)
    log_a2 = accept.log_ratio_or_reject(exact, state.logdensity, state.screen - screen)
    second, _ = accept.metropolis(k2, log_a2)
    accepted = passed & second
    new = accept.select(accepted, DAState(proposal, exact, screen), state)
    return new, DAInfo(accepted, passed, jnp.sum(passed))
