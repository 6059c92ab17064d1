"""Subsampled random-walk MH by the confidence sampler (``mhsnn.mcmc.austerity``,
rule "confidence": the empirical Bernstein bound, delta ``sub_eps``, with the likelihood's
row bound). Costs as ``mh_sub``."""

from __future__ import annotations

from mhsnn.methods import mh_sub
from mhsnn.methods.base import Entry

ENTRY = Entry("mh_conf", "sampler", False, False,
              ("subsampled RW MH, the confidence sampler (empirical Bernstein bound, "
               "delta 0.05): decides from row subsets"),
              mh_sub.subsampled("confidence"), mh_sub.cost, traces="the log prior",
              hyper=mh_sub.Hyper)
