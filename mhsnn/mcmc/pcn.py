"""Re-centred preconditioned Crank-Nicolson (pCN; Cotter, Roberts, Stuart & White 2013), in
BlackJAX's shape.

The proposal theta' = m + sqrt(1 - beta^2) (theta - m) + beta xi, xi ~ N(0, C), is
reversible for the Gaussian reference N(m, C), so MH accepts with the ratio of
Phi(theta) = log p(theta) - log N(theta; m, C) alone: exact for the target p whatever m and C
are, and its acceptance does not decay with the dimension when the reference fits the
target. Re-centring is what makes it fit: m and C come from an optimiser's or an ensemble's
solution (``Reference.from_ensemble``: the ensemble mean, and its covariance plus a diagonal
floor, stored low-rank so P = 10^4 weights cost O(P r)).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from mhsnn.mcmc import accept


class Reference(NamedTuple):
    """N(mean, diag(d) + U U^T): mean [P], d [P] > 0, U [P, r]."""

    mean: jax.Array
    diag: jax.Array
    factor: jax.Array

    @classmethod
    def from_ensemble(cls, particles: jax.Array, floor: float = 1e-2) -> Reference:
        """The ensemble's mean and covariance, plus ``floor`` x its mean variance on the
        diagonal (the ensemble spans at most J - 1 directions)."""
        J, P = particles.shape
        mean = particles.mean(0)
        U = ((particles - mean) / jnp.sqrt(J - 1.0)).T  # [P, J]
        var = jnp.sum(U**2, -1)
        if J > P:  # more members than weights: a P x P factor is the smaller one
            U = jnp.linalg.cholesky(U @ U.T + 1e-9 * jnp.eye(P, dtype=U.dtype))
        return cls(mean, jnp.full_like(mean, floor * jnp.mean(var) + 1e-6), U)

    def sample(self, key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
        """Centred draws of N(0, C), [*shape, P]."""
        k1, k2 = jax.random.split(key)
        z1 = jax.random.normal(k1, (*shape, self.mean.shape[-1]), self.mean.dtype)
        z2 = jax.random.normal(k2, (*shape, self.factor.shape[-1]), self.mean.dtype)
        return jnp.sqrt(self.diag) * z1 + z2 @ self.factor.T

    def _capacitance(self):
        Dinv_U = self.factor / self.diag[:, None]
        cap = jnp.eye(self.factor.shape[-1], dtype=Dinv_U.dtype) + self.factor.T @ Dinv_U
        return Dinv_U, jnp.linalg.cholesky(cap)

    def mahalanobis(self, theta: jax.Array) -> jax.Array:
        """(theta - mean)^T C^-1 (theta - mean), [...] (Woodbury: the r x r capacitance
        matrix only)."""
        x = theta - self.mean
        Dinv_U, chol = self._capacitance()
        w = jax.scipy.linalg.cho_solve((chol, True), (x @ Dinv_U).T).T
        return jnp.sum(x**2 / self.diag, -1) - jnp.sum((x @ Dinv_U) * w, -1)

    def logpdf(self, theta: jax.Array) -> jax.Array:
        """log N(theta; mean, C) up to a constant, [...] (the determinant lemma for log|C|)."""
        _, chol = self._capacitance()
        logdet = jnp.sum(jnp.log(self.diag)) + 2.0 * jnp.sum(jnp.log(jnp.diag(chol)))
        return -0.5 * (self.mahalanobis(theta) + logdet)


class PCNState(NamedTuple):
    position: jax.Array  # [..., P]
    logdensity: jax.Array  # [...] target log density
    phi: jax.Array  # [...] logdensity - reference logpdf


class PCNInfo(NamedTuple):
    is_accepted: jax.Array
    acceptance_rate: jax.Array


def init(position, logdensity_fn: Callable, reference: Reference) -> PCNState:
    lp = logdensity_fn(position)
    return PCNState(position, lp, lp - reference.logpdf(position))


def kernel(key: jax.Array, state: PCNState, logdensity_fn: Callable, reference: Reference,
           beta) -> tuple[PCNState, PCNInfo]:
    """One pCN step with step ``beta`` in (0, 1] (broadcast per chain as [..., 1])."""
    k_prop, k_acc = jax.random.split(key)
    xi = reference.sample(k_prop, state.position.shape[:-1])
    m = reference.mean
    proposal = m + jnp.sqrt(1.0 - beta**2) * (state.position - m) + beta * xi
    lp = logdensity_fn(proposal)
    phi = lp - reference.logpdf(proposal)
    log_ratio = accept.log_ratio_or_reject(phi, state.phi)
    accepted, prob = accept.metropolis(k_acc, log_ratio)
    return accept.select(accepted, PCNState(proposal, lp, phi), state), PCNInfo(accepted, prob)
