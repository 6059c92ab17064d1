"""MCMC draws on disk as ArviZ ``InferenceData`` (NetCDF), for ArviZ's summaries and plots.

One file per stage, fold and cell. Groups and dims:

    posterior     weights       (chain, draw, weight)   the thinned draws after burn-in
    sample_stats  lp            (chain, draw)           log posterior density of each draw
                  acceptance_rate (chain, draw)         the chain's acceptance rate after
                                                        burn-in, repeated over its draws
    attrs         experiment, stage, fold, cell labels (sigma, ...), network, and for PT the
                  schedule (betas), swap acceptance per pair and the barrier

``arviz.ess(data, method="identity")`` and ``arviz.rhat(data, method="split")`` give the same
numbers as ``mhsnn.mcmc.diagnostics`` (NumPyro). ArviZ is an optional dependency
(``pip install -e ".[arviz]"``).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from mhsnn import io


def write(path: Path, draws: np.ndarray, logdensity: np.ndarray, acceptance: np.ndarray,
          attrs: dict) -> Path:
    """Write draws [chains, draws, P], their log densities [chains, draws] and per-chain
    acceptance [chains] to ``path`` (NetCDF), atomically and with the umask's permissions."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # ArviZ announces its 1.0 refactor
        import arviz as az

    draws, logdensity = np.asarray(draws), np.asarray(logdensity)
    chains, num_draws = logdensity.shape
    data = az.from_dict(
        posterior={"weights": draws},
        sample_stats={"lp": logdensity,
                      "acceptance_rate": np.broadcast_to(
                          np.asarray(acceptance, np.float64)[:, None], (chains, num_draws))},
        dims={"weights": ["weight"]}, coords={"weight": np.arange(draws.shape[-1])},
        attrs={k: _attr(v) for k, v in attrs.items()})
    path = Path(path)
    with io.atomic_path(path) as tmp:
        data.to_netcdf(tmp)
    return path


def _attr(value):
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (list, tuple, np.ndarray)):
        return np.asarray(value, np.float64)
    return value
