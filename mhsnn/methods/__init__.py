"""The driven methods, one file each: every file builds an ``Algorithm`` (``base``) from a
``Target`` and exports its registry ``ENTRY``. ``REGISTRY`` collects them in this order;
``mhsnn.trainers.TRAINERS`` lists them beside the chain samplers, the ES and the baselines,
and ``mhsnn.driver`` runs any of them to its budget. A new method is a file here and its
line below."""

from __future__ import annotations

import math
import numbers

from mhsnn.methods import (bj_ess, bj_smc, da, eki, eki_gess, eki_pcn, eks, mezo, mh_conf,
                           mh_sub, rw_unit, sg_ensemble, sg_gess, smc)
from mhsnn.methods.base import Algorithm, Entry, Info, Target, make_target

REGISTRY: dict[str, Entry] = {m.ENTRY.name: m.ENTRY for m in (
    eki, eks, smc, da, mh_conf, mh_sub, eki_pcn, eki_gess, bj_ess, bj_smc, mezo, sg_ensemble,
    sg_gess, rw_unit)}


def hyper_of(name: str, params: dict | None = None):
    """The driven method ``name``'s ``Hyper``: its defaults with ``params`` (names of its
    fields) over them, or a ValueError of one line naming what is wrong. The one check of a
    method's settings: the estimator's and ``trainers.fit``'s ``method_params`` and the
    config's ``method_params`` all pass here."""
    if name not in REGISTRY:
        raise ValueError(f"method_params: {name!r} is not a driven method (one of "
                         f"{', '.join(REGISTRY)})")
    hyper = REGISTRY[name].hyper()
    params = dict(params or {})
    unknown = sorted(set(params) - set(hyper._fields))
    if unknown:
        raise ValueError(f"method_params: {name} has no setting {', '.join(unknown)} "
                         f"(it has {', '.join(hyper._fields) or 'none'})")
    for field, value in params.items():
        whole = isinstance(getattr(hyper, field), int)
        if not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(
                value) or value <= 0 or (whole and value != int(value)):
            raise ValueError(f"method_params: {name}'s {field}={value!r}: expected a "
                             f"{'whole ' if whole else ''}number > 0")
    return hyper._replace(**{k: type(getattr(hyper, k))(v) for k, v in params.items()})


__all__ = ["REGISTRY", "Algorithm", "Entry", "Info", "Target", "hyper_of", "make_target"]
