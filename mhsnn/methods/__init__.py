"""The driven methods, one file each: every file builds an ``Algorithm`` (``base``) from a
``Target`` and exports its registry ``ENTRY``. ``REGISTRY`` collects them in this order;
``mhsnn.trainers.TRAINERS`` lists them beside the chain samplers, the ES and the baselines,
and ``mhsnn.driver`` runs any of them to its budget. A new method is a file here and its
line below."""

from __future__ import annotations

from mhsnn.methods import (bj_ess, bj_smc, da, eki, eki_gess, eki_pcn, eks, mezo, mh_conf,
                           mh_sub, smc)
from mhsnn.methods.base import Algorithm, Entry, Info, Target, WideHyper, make_target

REGISTRY: dict[str, Entry] = {m.ENTRY.name: m.ENTRY for m in (
    eki, eks, smc, da, mh_conf, mh_sub, eki_pcn, eki_gess, bj_ess, bj_smc, mezo)}

__all__ = ["REGISTRY", "Algorithm", "Entry", "Info", "Target", "WideHyper", "make_target"]
