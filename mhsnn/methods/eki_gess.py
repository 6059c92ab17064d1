"""EKI for half the budget, then generalised elliptical slice sampling re-centred on its
ensemble (``mhsnn.mcmc.ess``, through ``sequence``): exact but for a counted cap, no step
size. A chain step costs n per point each chain evaluated on its ellipse (at most
``gess_rounds``; the slices stop at the budget); on a noisy chip J n more, the chains' start
scored on the step's read noise, on which the slice is cut."""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from mhsnn.mcmc import ess
from mhsnn.methods import eki
from mhsnn.methods.base import Algorithm, Entry, Target
from mhsnn.methods.sequence import Chains, cost, sequence


class Hyper(NamedTuple):  # fixed, untuned defaults (GESS's nu: docs/methods.md)
    batch: int = eki.Hyper._field_defaults["batch"]  # the EKI phase's, as EKI
    jitter: float = eki.Hyper._field_defaults["jitter"]
    pcn_step: float = 0.3  # the chains' starting adapted quantity
    gess_nu: float = 10.0  # the t degrees of freedom
    gess_rounds: int = 20  # the most points per chain and step


def chains(target: Target, hyper) -> Chains:
    """GESS chains re-centred on the first phase's ensemble (``hyper``'s gess_nu,
    gess_rounds and pcn_step), the second phase of ``sequence``."""
    J, n = target.J, target.n
    rescore = int(target.noisy)

    def step(key, k_query, chain, ref, scale, index, clock):
        def logdensity(x, a=None):
            return target.logdensity(x, k_query, a)

        c, extra = chain, 0
        if target.noisy:  # the slice is cut on this step's noise: score the start with it
            c, extra = chain._replace(logdensity=logdensity(chain.position)), J
        c, info = ess.kernel(key, c, logdensity, ref, hyper.gess_nu, hyper.gess_rounds,
                             (target.budget - clock.used) // n - extra)
        moved = jnp.sum(~info.capped).astype(jnp.float32)
        return c, (jnp.sum(info.evaluations) + extra) * n, c.logdensity, moved, \
            jnp.asarray(J, jnp.float32), scale

    return Chains(lambda theta0: ess.ESSState(theta0, jnp.zeros(J)),
                  lambda x, lp, ref: ess.ESSState(x, lp), step,
                  lambda phase, scale: J * n * (1 + rescore), hyper.pcn_step,
                  keep="presentations")


def build(target: Target, hyper: Hyper) -> Algorithm:
    return sequence(target, hyper, chains(target, hyper))


ENTRY = Entry("eki_gess", "sampler", True, False,
              ("EKI for half the budget, then generalised elliptical slice sampling "
               "re-centred on its ensemble"), build, cost, hyper=Hyper)
