"""The deep ensemble for half the budget, then generalised elliptical slice sampling
re-centred on its members (``sequence`` with the deep ensemble as its first phase, the
chains of ``eki_gess``): a posterior around the deep ensemble, the question of "MultiSWAG"
(Wilson and Izmailov 2020) asked with chip forward runs only. Exact but for GESS's counted
cap. The first phase costs what ``sg_ensemble``'s steps cost (J B each), the chains what
``eki_gess``'s do."""

from __future__ import annotations

from typing import NamedTuple

from mhsnn.methods import eki_gess, sg_ensemble
from mhsnn.methods.base import Algorithm, Entry, Target
from mhsnn.methods.sequence import First, cost, sequence

_SG, _GESS = sg_ensemble.Hyper._field_defaults, eki_gess.Hyper._field_defaults


class Hyper(NamedTuple):  # the deep ensemble's settings, then GESS's (untuned, as eki_gess)
    learning_rate: float = _SG["learning_rate"]
    batch: int = _SG["batch"]
    init_mean1: float = _SG["init_mean1"]
    init_std1: float = _SG["init_std1"]
    init_mean2: float = _SG["init_mean2"]
    init_std2: float = _SG["init_std2"]
    pcn_step: float = _GESS["pcn_step"]
    gess_nu: float = _GESS["gess_nu"]
    gess_rounds: int = _GESS["gess_rounds"]


def build(target: Target, hyper: Hyper) -> Algorithm:
    first = First(sg_ensemble.build(target, hyper), sg_ensemble.cost(target.J, target.n, hyper))
    return sequence(target, hyper, eki_gess.chains(target, hyper), first)


ENTRY = Entry("sg_gess", "sampler", True, True,
              ("the deep ensemble for half the budget, then generalised elliptical slice "
               "sampling re-centred on its members"), build, cost, hyper=Hyper,
              draw_start=sg_ensemble.draw_start)
