"""EKI for half the budget, then pCN chains re-centred on its ensemble (``mhsnn.mcmc.pcn``,
through ``sequence``): exact. A chain step costs J n; pCN's beta adapts toward
``target_acceptance`` over the chains' first half."""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from mhsnn.mcmc import pcn
from mhsnn.methods import eki
from mhsnn.methods.base import Algorithm, Entry, Target, adapt
from mhsnn.methods.sequence import Chains, cost, eki_first, half_of, sequence


class Hyper(NamedTuple):  # fixed, untuned defaults (GESS's nu: docs/methods.md)
    batch: int = eki.Hyper._field_defaults["batch"]  # the EKI phase's, as EKI
    jitter: float = eki.Hyper._field_defaults["jitter"]
    pcn_step: float = 0.3  # pCN's starting beta
    target_acceptance: float = 0.25  # beta's aim, adapted in the chains' first half


def build(target: Target, hyper: Hyper) -> Algorithm:
    J, n = target.J, target.n
    first = eki_first(target, hyper)
    half = half_of(target, first)

    def step(key, k_query, chain, ref, scale, index, clock):
        c, info = pcn.kernel(key, chain, lambda x: target.logdensity(x, k_query), ref, scale)
        beta = jnp.clip(adapt(scale, jnp.mean(info.acceptance_rate), index, half,
                              hyper.target_acceptance), 0.01, 1.0)
        return c, jnp.asarray(J * n), c.logdensity, \
            jnp.sum(info.is_accepted).astype(jnp.float32), jnp.asarray(J, jnp.float32), beta

    def init(theta0):
        z = jnp.zeros(J)
        return pcn.PCNState(theta0, z, z)

    return sequence(target, hyper, Chains(
        init, lambda x, lp, ref: pcn.PCNState(x, lp, lp - ref.logpdf(x)), step,
        lambda phase, scale: J * n, hyper.pcn_step), first)


ENTRY = Entry("eki_pcn", "sampler", True, False,
              "EKI for half the budget, then pCN chains re-centred on its ensemble",
              build, cost, hyper=Hyper)
