"""Samplers: random-walk Metropolis-Hastings and non-reversible parallel tempering."""

from mhsnn.mcmc.sample import MCMCResult, sample_mh

__all__ = ["MCMCResult", "sample_mh"]
