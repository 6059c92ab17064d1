"""The peer of eki_gess: EKI for half the budget (``sequence``), then BlackJAX's elliptical
slice sampler under the ensemble's Gaussian (needs BlackJAX: the bench extra). BlackJAX
runs the chains in lockstep and evaluates every chain in every round, so a chain step costs
J n x the most points any chain needed; its loop cannot be stopped, so a step runs only
when its likeliest cost (the most rounds a step has needed so far) fits. On a noisy chip J n
more per step: the chains' start scored on the step's read noise (BlackJAX's loop, which
has no cap, would not end otherwise)."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from mhsnn import chips
from mhsnn.mcmc import ess
from mhsnn.methods import eki
from mhsnn.methods.base import Algorithm, Entry, Target, blackjax
from mhsnn.methods.sequence import Chains, cost, sequence


class Hyper(NamedTuple):  # the EKI phase's settings (the ESS move has none)
    batch: int = eki.Hyper._field_defaults["batch"]  # the EKI phase's, as EKI
    jitter: float = eki.Hyper._field_defaults["jitter"]


def build(target: Target, hyper: Hyper) -> Algorithm:
    J, n, grid = target.J, target.n, target.grid
    slice_move = blackjax("bj_ess").mcmc.elliptical_slice  # refuse now, in one line
    rescore = int(target.noisy)

    def step(key, k_query, chain, ref, scale, index, clock):
        def one_chain(key, state, j):  # BlackJAX's move is one chain's
            on = grid if isinstance(grid, chips.ExternalChip) else jax.tree.map(
                lambda f: jax.lax.dynamic_slice_in_dim(f, j, 1, axis=1), grid)

            def lik(x):
                return target.loglik(x[None], k_query, on=on)[0] + target.logprior(x) \
                    - ref.logpdf(x)

            if target.noisy:  # BlackJAX's slice loop has no cap: the start must be scored
                state = state._replace(logdensity=lik(state.position))  # this step
            return slice_move.elliptical_proposal(
                lik, lambda key, x: ref.mean + ref.sample(key, ()), ref.mean)(key, state)

        lik = chain.logdensity - ref.logpdf(chain.position)  # BlackJAX's: the ratio
        new, info = jax.vmap(one_chain)(
            jax.random.split(key, J), slice_move.EllipSliceState(chain.position, lik),
            jnp.arange(J))
        lp_new = new.logdensity + ref.logpdf(new.position)
        rounds = jnp.max(info.subiter)
        return ess.ESSState(new.position, lp_new), J * n * (rounds + rescore), lp_new, \
            jnp.asarray(J, jnp.float32), jnp.asarray(J, jnp.float32), \
            jnp.maximum(scale, rounds.astype(jnp.float32))

    def step_cost(phase, rounds):
        return jnp.where(phase == 1, J * n * (jnp.ceil(rounds).astype(jnp.int32) + rescore),
                         J * n)

    return sequence(target, hyper, Chains(
        lambda theta0: ess.ESSState(theta0, jnp.zeros(J)),
        lambda x, lp, ref: ess.ESSState(x, lp), step, step_cost, 4.0,
        keep="presentations"))


ENTRY = Entry("bj_ess", "sampler", True, False,
              ("peer: EKI for half the budget, then BlackJAX's elliptical slice sampler "
               "under the ensemble's Gaussian"), build, cost, hyper=Hyper)
