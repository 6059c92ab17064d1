"""The combinator "an ensemble for half the budget, then chains re-centred on it": one
``Algorithm`` of three phases, switched in the compiled step (``lax.switch``):

    0  the first phase's steps, for half the budget: EKI's (``mhsnn.methods.eki``, J B
       presentations each) unless the method names another ensemble ``Algorithm`` whose
       steps cost the same each (``First``; the deep ensemble's, in ``sg_gess``);
    1  the switch: a Gaussian reference fitted to the ensemble (``pcn.Reference``), the
       ensemble scored on full data as the chains' start (J n);
    2  the chains' steps (``Chains.step``) for what is left.

A chain method (eki_pcn, eki_gess, bj_ess) is its ``Chains``; its snapshots are taken
either every ``thin`` chain steps over their second half (``keep="steps"``) or each time
the presentations cross one of D even marks over the second half of what the chains may
spend (``keep="presentations"``: steps whose cost varies).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from mhsnn.mcmc import pcn
from mhsnn.methods import eki
from mhsnn.methods.base import Algorithm, Info, Target, query_key, thinning


class First(NamedTuple):
    """The first phase: an ensemble ``Algorithm`` and what each of its steps costs."""

    algorithm: Algorithm
    per_step: int


def eki_first(target: Target, hyper) -> First:
    """EKI on mini-batches (``hyper``'s batch and jitter) as the first phase."""
    return First(eki.build(target, hyper), eki.cost(target.J, target.n, hyper))


class Chains(NamedTuple):
    """The second phase of a ``sequence``."""

    init: Callable[[jax.Array], Any]  # placeholder chain state at positions [J, P]
    start: Callable[[jax.Array, jax.Array, pcn.Reference], Any]  # (positions, lp, ref)
    # (key, k_query, chain, ref, scale, index, clock) ->
    #     (chain, presentations, logdensity, accepted, moves, scale)
    step: Callable[..., tuple]
    cost: Callable[[jax.Array, jax.Array], jax.Array]  # (phase, scale): a chain step's most
    scale0: float = 0.0  # the chains' adapted quantity (pCN's beta; BlackJAX's rounds)
    keep: str = "steps"  # or "presentations"


def plan(target: Target, per_step: int) -> tuple[int, int]:
    """(first-phase steps, chain steps) of the budget: half for the first phase (steps of
    ``per_step`` presentations), the rest for the chains."""
    J, n = target.J, target.n
    first_steps = max(1, int(target.budget / 2 // per_step))
    return first_steps, max(2, int((target.budget - first_steps * per_step - J * n) // (J * n)))


def sequence(target: Target, hyper, chains: Chains, first: First | None = None) -> Algorithm:
    J, n = target.J, target.n
    first = first or eki_first(target, hyper)
    first_steps, steps_after = plan(target, first.per_step)
    half, thin = thinning(steps_after, target.draws)
    total, D = target.budget, target.draws
    mid = first_steps * first.per_step + J * n
    mid = mid + (total - mid) / 2

    def init(key, theta0):
        P = target.P
        # the reference's factor is [P, J], or [P, P] with more members than weights
        ref0 = pcn.Reference(jnp.zeros(P), jnp.ones(P), jnp.zeros((P, min(J, P))))
        return (first.algorithm.init(key, theta0), chains.init(theta0), ref0,
                jnp.asarray(chains.scale0, jnp.float32), jnp.zeros((), jnp.int32))

    def step(key, state, clock):
        ens, chain, ref, scale, phase = state
        k_query = query_key(key)
        index = clock.step - first_steps - 1  # chain steps done before this one
        zero, one = jnp.zeros((), jnp.int32), jnp.ones((), jnp.int32)

        def before(_):
            e, info = first.algorithm.step(key, ens, clock)
            return (e, chain, ref, scale, zero), info.presentations, info.logdensity, \
                jnp.zeros(()), jnp.zeros(())

        def switch(_):
            x = first.algorithm.positions(ens)
            r = pcn.Reference.from_ensemble(x)
            lp0 = target.loglik(x, k_query) + target.logprior(x)
            return (ens, chains.start(x, lp0, r), r, scale, one), \
                jnp.asarray(J * n), lp0, jnp.zeros(()), jnp.zeros(())

        def then(_):
            c, cost, lp, acc, moves, s = chains.step(key, k_query, chain, ref, scale, index,
                                                     clock)
            return (ens, c, ref, s, one), cost, lp, acc, moves

        branch = jnp.where(phase == 1, 2, jnp.where(clock.step >= first_steps, 1, 0))
        new, cost, lp, acc, moves = jax.lax.switch(branch, [before, switch, then], None)
        if chains.keep == "steps":
            keep = (branch == 2) & (index >= half) & ((index - half) % thin == 0)
        else:
            after = clock.used + jnp.asarray(cost).astype(jnp.int32)
            mark = (jnp.floor((after - mid) * D / (total - mid))
                    > jnp.floor((clock.used - mid) * D / (total - mid)))
            keep = (branch == 2) & (after >= mid) & mark
        return new, Info(cost, lp, acc, moves, keep)

    def next_cost(state, steps):
        phase, scale = state[4], state[3]
        return jnp.where((phase == 0) & (steps < first_steps), first.per_step,
                         chains.cost(phase, scale))

    return Algorithm(init, step, next_cost, lambda state: state[1].position,
                     first_steps + steps_after)


def half_of(target: Target, first: First) -> int:
    """The chain steps in the first half (adaptation's end)."""
    return thinning(plan(target, first.per_step)[1], target.draws)[0]


def cost(J: int, n: int, hyper) -> int:
    """The most one step can cost: a chain step of one point per chain, J n (a first-phase
    step's J min(batch, n) is never more)."""
    return J * n
