"""Subsampled random-walk MH by the austerity test (``mhsnn.mcmc.austerity``, eps
``sub_eps``): each decision looks at growing row subsets; eps-biased. A step costs 2 x the
rows each undecided chain was shown, in whole batches of ``sub_batch``. Its likelihood is
never evaluated whole, so the trace is the log prior."""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from mhsnn.mcmc import austerity
from mhsnn.methods.base import (Algorithm, Entry, Info, Target, adapt, log_step,
                                query_key, thinning)


class Hyper(NamedTuple):  # fixed, untuned defaults
    sub_batch: int = 50  # rows per look
    sub_eps: float = 0.05  # the austerity error (the confidence sampler's delta) per decision
    target_acceptance: float = 0.25  # the log step's aim, adapted in the first half


def subsampled(rule: str):
    """The builder of subsampled MH deciding by ``rule`` (austerity.kernel's)."""

    def build(target: Target, hyper: Hyper) -> Algorithm:
        J, n = target.J, target.n
        per_step = cost(J, n, hyper)
        steps = max(1, int(target.budget // per_step))
        half, _ = thinning(steps, target.draws)

        def step(key, state, clock):
            inner, scale = state
            k_query = query_key(key)
            inner, info = austerity.kernel(
                key, inner, lambda x, rows, a: target.loglik_rows(x, rows, a, k_query),
                target.logprior, n, jnp.exp(scale), hyper.sub_batch, hyper.sub_eps,
                masked=True, rule=rule,
                row_range=lambda a, b: jnp.full(a.shape[0], target.row_bound))
            scale = adapt(scale, jnp.mean(info.is_accepted), clock.step, half,
                          hyper.target_acceptance)
            return (inner, scale), Info(info.presentations, target.logprior(inner.position),
                                        jnp.sum(info.is_accepted), J)

        return Algorithm(lambda key, theta0: (austerity.init(theta0),
                                              jnp.asarray(log_step(target), jnp.float32)),
                         step, lambda state, steps: per_step, lambda state: state[0].position,
                         steps)

    return build


def cost(J: int, n: int, hyper: Hyper) -> int:
    return 2 * J * (-(-n // hyper.sub_batch)) * hyper.sub_batch


ENTRY = Entry("mh_sub", "sampler", False, False,
              "subsampled RW MH (austerity test, eps 0.05): decides from row subsets",
              subsampled("austerity"), cost, traces="the log prior", hyper=Hyper)
