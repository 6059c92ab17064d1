"""Typed outcomes of the grid runners (``experiments.runners``): host arrays over folds x
cells x chains (or seeds), [F, S, C, ...].

A stage's checkpointed outcome is a flat dict of named arrays (what ``runs.Stages`` stores);
``from_arrays`` reads one back into its type, so readers ask ``outcome.tempering`` rather
than whether a key exists.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Tempering(NamedTuple):
    """Parallel tempering's report per chain, after burn-in."""

    betas: np.ndarray  # [F, S, C, K] the schedule (shared by a cell's chains)
    swap_acceptance: np.ndarray  # [F, S, C, K-1] mean swap acceptance per adjacent pair
    round_trips_per_1000: np.ndarray  # [F, S, C]
    log_evidence: np.ndarray | None  # [F, S, C] stepping-stone log Z per chain


class MCMCOutcome(NamedTuple):
    """One MCMC stage (any sampler of ``bayes.SAMPLERS``)."""

    wstar_probs: np.ndarray  # [F, S, C, Nte, O] test predictive of each chain's W*
    bma_probs: np.ndarray  # [F, S, C, Nte, O] mean predictive over the chain's kept draws
    vote_probs: np.ndarray  # [F, S, C, Nte, O] share of the kept draws voting for a class
    acceptance: np.ndarray  # [F, S, C] after burn-in
    mean: np.ndarray  # [F, S, C, P] W*, each chain's posterior mean
    draws: np.ndarray  # [F, S, C, D, P] kept draws
    draws_logdensity: np.ndarray  # [F, S, C, D]
    step_size: np.ndarray | None  # [F, S, C] an adapted step as the kept draws used it
    tempering: Tempering | None  # PT only

    def arrays(self) -> dict[str, np.ndarray]:
        """The flat dict a stage stores (None fields left out)."""
        out = {k: v for k, v in self._asdict().items() if k != "tempering" and v is not None}
        if self.tempering is not None:
            out.update(self.tempering._asdict())
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> MCMCOutcome:
        tempering = (Tempering(**{k: arrays.get(k) for k in Tempering._fields})
                     if "betas" in arrays else None)
        return cls(**{k: arrays.get(k) for k in cls._fields if k != "tempering"},
                   tempering=tempering)


class Deployed(NamedTuple):
    """Weights trained once per cell and seed (SG, ANN conversion), tested on each chip."""

    probs: np.ndarray  # [F, S, R, Nte, O] test probabilities
    theta: np.ndarray  # [F, S, R, P] the deployed weights
    failed: np.ndarray | None  # [F, S, R] SG runs that diverged (None: not SG)

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> Deployed:
        return cls(arrays["probs"], arrays["theta"], arrays.get("failed"))
