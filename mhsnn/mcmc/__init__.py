"""Samplers: random-walk MH, MALA, HMC, DE-MC and non-reversible parallel tempering; for
wide networks the ensemble Kalman methods (``ensemble``), tempered SMC (``smc``), delayed
acceptance (``da``) and re-centred pCN (``pcn``), wired to chips by ``mhsnn.methods``."""

from mhsnn.mcmc.sample import (
    MCMCResult,
    PTResult,
    Schedule,
    sample_demc,
    sample_hmc,
    sample_mala,
    sample_mh,
    sample_pt,
)

__all__ = ["MCMCResult", "PTResult", "Schedule", "sample_demc", "sample_hmc", "sample_mala", "sample_mh",
           "sample_pt"]
