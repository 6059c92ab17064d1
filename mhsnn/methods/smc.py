"""Adaptive tempered SMC with pCN mutations on full data (``mhsnn.mcmc.smc``): exact as the
particles grow, with a log-evidence estimate. It tempers from its prior, so a start does
not apply. A stage costs J n presentations per mutation; the start J n once."""

from __future__ import annotations

from typing import NamedTuple

import jax

from mhsnn.mcmc import smc
from mhsnn.methods.base import Algorithm, Entry, Info, Target, query_key


class Hyper(NamedTuple):  # fixed, untuned defaults
    mutations: int = 5  # pCN moves per stage
    pcn_step: float = 0.3  # pCN's starting beta


def build(target: Target, hyper: Hyper) -> Algorithm:
    J, n = target.J, target.n
    first, per_step = first_cost(J, n), cost(J, n, hyper)

    def init(key, theta0):
        k0 = jax.random.fold_in(key, 1)
        return jax.jit(lambda t: smc.init(t, lambda x: target.loglik(x, k0), hyper.pcn_step))(
            target.prior_std * jax.random.normal(key, (J, target.P)))

    def step(key, state, clock):
        k_query = query_key(key)
        new, info = smc.step(key, state, lambda x: target.loglik(x, k_query), target.logprior,
                             hyper.mutations)
        return new, Info(info.evaluations * n, new.loglik + target.logprior(new.particles),
                         info.acceptance_rate * J * hyper.mutations, J * hyper.mutations,
                         keep=new.beta >= 1.0)

    def report(host):
        return {"beta": float(host.beta), "log_evidence": float(host.log_evidence)}

    return Algorithm(init, step, lambda state, steps: per_step, lambda state: state.particles,
                     max(1, int((target.budget - first) // per_step)), first, report)


def cost(J: int, n: int, hyper: Hyper) -> int:
    return J * n * hyper.mutations


def first_cost(J: int, n: int) -> int:
    return J * n


ENTRY = Entry("smc", "sampler", True, False,
              "adaptive tempered SMC, pCN mutations, full data: exact as particles grow; log Z",
              build, cost, first_cost, starts=False, hyper=Hyper)
