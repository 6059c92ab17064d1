"""The likelihoods the output rates enter: one object each, chosen once.

``SNNSettings.likelihood`` names one ("mse", the paper's; "categorical") and
``SNNSettings.lik`` is its object; everything that differs between them lives here, so the
samplers, the optimisers, SG and the predictive never branch on the name:

- ``loss``: the per-row loss the compiled forward pass sums (``snn.sample_loss``);
- ``log_likelihood`` / ``row_terms``: the log likelihood from the summed / per-row losses;
- ``batch_factor``: what makes a mini-batch's log likelihood unbiased for the full data;
- ``row_bound``: the most one row's term can change (the confidence sampler's range);
- ``mean_loss``: SG's mini-batch objective (the same likelihood, per row);
- ``predictive``: class probabilities of one weight set from its output counts;
- ``observed``: what the ensemble Kalman methods fit to the one-hot targets.

Rates are counts / T in [0, 1]; targets are one-hot; O is the number of classes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp

from mhsnn import snn
from mhsnn.metrics import probabilities

NAMES = ("mse", "categorical")


@dataclass(frozen=True)
class MSE:
    """The paper's: log L = -MSE / (2 v^2), the MSE of the rates to the one-hot targets over
    the n real rows and O classes (v = ``lik_std``). Predictive: the smoothed count share.

    ``scale`` stretches the rates first (1 / the chip's count range: a chip whose outputs
    reach only 3 of T = 10 counts has its 0.3 mapped onto the target 1)."""

    scale: float = 1.0
    name = "mse"
    probabilities_from = "counts"  # how ``predictive`` forms them (a results column)

    @property
    def loss(self):
        return ("mse", self.scale)

    def observed(self, rates):
        """What the Gaussian likelihood compares with the one-hot targets (the ensemble
        Kalman methods' observation): the stretched rates."""
        return self.scale * rates

    def log_likelihood(self, summed, num_rows, num_classes: int, lik_std):
        """From the summed squared errors [...] over ``num_rows`` rows."""
        return -(summed / (num_classes * num_rows)) / (2.0 * lik_std**2)

    def row_terms(self, per_row, num_rows, num_classes: int, lik_std):
        """Each row's term [..., N] (they sum to the log likelihood)."""
        return -per_row / (num_classes * num_rows) / (2.0 * lik_std**2)

    def batch_factor(self, rows, batch_rows):
        """A batch's MSE already averages rows: unbiased as it is."""
        return 1.0

    def row_bound(self, lik_std: float, num_rows: int, num_classes: int) -> float:
        """A row's term is -e / (2 v^2 n O) with e in [0, O max(1, scale)^2]."""
        return max(1.0, self.scale) ** 2 / (2.0 * float(lik_std) ** 2 * num_rows)

    def mean_loss(self, rates, targets, mask):
        """Mean squared error over the real rows and the classes."""
        sq = jnp.sum((self.scale * rates - targets) ** 2, axis=-1)
        return jnp.sum(sq * mask) / (targets.shape[-1] * jnp.maximum(jnp.sum(mask), 1.0))

    def predictive(self, counts, num_steps: int):
        return probabilities(counts)


@dataclass(frozen=True)
class Categorical:
    """log L = sum_n log softmax(s rates_n)_{y_n} (s = ``scale``; ``lik_std`` unused).
    Predictive: that softmax."""

    scale: float = 10.0
    name = "categorical"
    probabilities_from = "softmax"

    @property
    def loss(self):
        return ("categorical", self.scale)

    def observed(self, rates):
        """The ensemble Kalman methods' observation: the rates (their Gaussian misfit is
        not this likelihood; the count range enters through ``scale``)."""
        return rates

    def log_likelihood(self, summed, num_rows, num_classes: int, lik_std):
        return -summed

    def row_terms(self, per_row, num_rows, num_classes: int, lik_std):
        return -per_row

    def batch_factor(self, rows, batch_rows):
        """A batch's sum covers batch_rows of the rows: scale it up."""
        return rows / batch_rows

    def row_bound(self, lik_std: float, num_rows: int, num_classes: int) -> float:
        """A cross-entropy of softmax(s rates), rates in [0, 1]: within s + log O."""
        return self.scale + math.log(num_classes)

    def mean_loss(self, rates, targets, mask):
        """Mean cross-entropy over the real rows."""
        O = targets.shape[-1]
        ce = snn.sample_loss([rates[..., k] for k in range(O)],
                             [targets[..., k] for k in range(O)], *self.loss)
        return jnp.sum(ce * mask) / jnp.maximum(jnp.sum(mask), 1.0)

    def predictive(self, counts, num_steps: int):
        return jax.nn.softmax(self.scale * counts / num_steps, axis=-1)


Likelihood = MSE | Categorical


def of(name: str, softmax_scale: float = 10.0, count_range: float = 1.0) -> Likelihood:
    """The likelihood named ``name`` (a one-line ValueError for another name), its rates
    stretched by 1 / ``count_range``, the share of T the chip's outputs can reach."""
    if not 0.0 < float(count_range) <= 1.0:
        raise ValueError(f"count_range {count_range!r}: expected a share of T in (0, 1]")
    if name == "mse":
        return MSE(1.0 / float(count_range))
    if name == "categorical":
        return Categorical(float(softmax_scale) / float(count_range))
    raise ValueError(f"likelihood {name!r}: expected one of {', '.join(NAMES)}")
