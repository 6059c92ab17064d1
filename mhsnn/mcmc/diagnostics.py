"""Convergence diagnostics from NumPyro: split R-hat and effective sample size.

Both take draws laid out chains first, draws second: [chains, draws, ...].
"""

from __future__ import annotations

import numpy as np
from numpyro import diagnostics

MIN_DRAWS = 4  # split R-hat halves each chain; fewer draws give no meaningful number


def rhat(draws: np.ndarray) -> np.ndarray:
    """Split Gelman-Rubin R-hat per trailing dimension (NaN if there are too few draws)."""
    draws = np.asarray(draws, np.float64)
    if draws.shape[0] < 2 or draws.shape[1] < MIN_DRAWS:
        return np.full(draws.shape[2:], np.nan)
    return np.asarray(diagnostics.split_gelman_rubin(draws))


def ess(draws: np.ndarray) -> np.ndarray:
    """Effective sample size over all chains, per trailing dimension."""
    draws = np.asarray(draws, np.float64)
    if draws.shape[1] < MIN_DRAWS:
        return np.full(draws.shape[2:], np.nan)
    return np.asarray(diagnostics.effective_sample_size(draws))
