"""Samplers: random-walk Metropolis-Hastings and non-reversible parallel tempering."""

from mhsnn.mcmc.sample import MCMCResult, PTResult, sample_mh, sample_pt

__all__ = ["MCMCResult", "PTResult", "sample_mh", "sample_pt"]
