"""EKS: the ensemble Kalman sampler on mini-batches (``mhsnn.mcmc.ensemble``), an
approximate posterior. A step costs J B presentations, as EKI's."""

from __future__ import annotations

from typing import NamedTuple

from mhsnn.mcmc import ensemble
from mhsnn.methods import eki
from mhsnn.methods.base import Algorithm, Entry, Info, Target


class Hyper(NamedTuple):  # fixed, untuned defaults
    batch: int = eki.Hyper._field_defaults["batch"]  # rows per step, as EKI
    eks_dt0: float = 0.5  # the step scale (dt = dt0 / ||D||)


def build(target: Target, hyper: Hyper) -> Algorithm:
    run, gamma = eki.forward(target, hyper)
    per_step = eki.cost(target.J, target.n, hyper)

    def step(key, state, clock):
        new, info = ensemble.eks_step(key, state, run, gamma, target.prior_std, hyper.eks_dt0)
        # the batch estimate of the log posterior at the members' previous positions
        return new, Info(info.presentations, target.logprior(state.particles) - info.misfit)

    return Algorithm(init=lambda key, theta0: ensemble.init(theta0), step=step,
                     next_cost=lambda state, steps: per_step,
                     positions=lambda state: state.particles,
                     steps=max(1, int(target.budget // per_step)))


ENTRY = Entry("eks", "sampler", False, False,
              "ensemble Kalman sampler on mini-batches: approximate posterior",
              build, eki.cost, traces="a mini-batch estimate", hyper=Hyper)
