"""Ensemble Kalman inversion (EKI) and the ensemble Kalman sampler (EKS), derivative-free,
in BlackJAX's shape: ``init`` and a kernel ``(key, state) -> (state, Info)``.

Both move an ensemble of J weight vectors [J, P] using only forward runs: each member's
whole output vector G(theta_j) [M] (on a network: its output rates on a batch of rows,
flattened), compared with observations y [M] under Gaussian noise Gamma = gamma I. Every
linear algebra step is done in the J-dimensional ensemble space (Woodbury), so a step costs
O(J^2 (P + M)) and never forms a P x P or M x M matrix: P = 9,536 weights is cheap.

- EKI (Iglesias, Law & Stuart 2013), perturbed observations:
  theta_j += C_tg (C_gg + Gamma)^-1 (y + eta_j - G_j), eta_j ~ N(0, Gamma), plus an additive
  ``jitter`` N(0, jitter^2 I) per step that keeps the ensemble from collapsing onto a
  subspace. An optimiser with an ensemble: its spread is not a posterior.
- EKS (Garbuno-Inigo, Hoffmann, Li & Stuart 2020), with the finite-ensemble correction of
  Nuesken & Reich (ALDI) when J > P + 1:
  theta_j <- theta_j - dt/J sum_k <G_k - mean G, Gamma^-1 (G_j - y)> theta_k
             + dt (P + 1)/J (theta_j - mean theta)       [only when J > P + 1]
             - dt C Sigma0^-1 theta_j(next)  (implicit)  + sqrt(2 dt C) xi_j,
  with C the ensemble covariance, Sigma0 = p^2 I the prior, and the adaptive step
  dt = dt0 / (||D||_F + 1e-8) of Kovachki & Stuart. For a linear forward model G(theta) =
  A theta its stationary law is the Gaussian posterior itself (exactly with the
  correction, in the mean-field limit without it). For a non-linear G it is an
  approximation (exact = False in every table).

Mini-batches: ``forward`` may evaluate a random batch of B of the n rows each step (the
caller's choice); the misfit is then scaled by n / B (``scale``), an unbiased estimate of
the full-data misfit, which makes EKS a stochastic approximation, not exact.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

# (key, particles [J, P]) -> (G [J, M], y [M], presentations this evaluation made)
ForwardFn = Callable[[jax.Array, jax.Array], tuple[jax.Array, jax.Array, jax.Array]]


class EnsembleState(NamedTuple):
    particles: jax.Array  # [J, P]


class EnsembleInfo(NamedTuple):
    presentations: jax.Array  # chip sample presentations the step made
    misfit: jax.Array  # [J] |G_j - y|^2 / (2 gamma) on the step's batch (EKS: times scale)
    dt: jax.Array  # EKS's adaptive step (EKI: 1)


def init(particles: jax.Array) -> EnsembleState:
    return EnsembleState(jnp.asarray(particles))


def _anomalies(x: jax.Array) -> jax.Array:
    """(x - mean) / sqrt(J): A^T A is the ensemble covariance."""
    return (x - x.mean(0)) / jnp.sqrt(x.shape[0])


def eki_step(key: jax.Array, state: EnsembleState, forward: ForwardFn, gamma: float,
             jitter: float = 0.0) -> tuple[EnsembleState, EnsembleInfo]:
    """One EKI update with perturbed observations (see the module docstring)."""
    k_fwd, k_obs, k_jit = jax.random.split(key, 3)
    theta = state.particles
    G, y, cost = forward(k_fwd, theta)
    J = theta.shape[0]
    A_t, A_g = _anomalies(theta), _anomalies(G)  # [J, P], [J, M]
    D = y + jnp.sqrt(gamma) * jax.random.normal(k_obs, G.shape, G.dtype) - G  # [J, M]
    S = A_g @ A_g.T + gamma * jnp.eye(J, dtype=G.dtype)  # [J, J]
    # theta_j += A_t^T S^-1 A_g d_j: C_tg (C_gg + Gamma)^-1 through Woodbury
    theta = theta + jnp.linalg.solve(S, A_g @ D.T).T @ A_t
    theta = theta + jitter * jax.random.normal(k_jit, theta.shape, theta.dtype)
    misfit = jnp.sum((G - y) ** 2, -1) / (2.0 * gamma)
    return EnsembleState(theta), EnsembleInfo(cost, misfit, jnp.ones((), G.dtype))


def eks_step(key: jax.Array, state: EnsembleState, forward: ForwardFn, gamma: float,
             prior_std: float, dt0: float = 1.0, scale: float = 1.0,
             correction: bool = True) -> tuple[EnsembleState, EnsembleInfo]:
    """One EKS step (see the module docstring); ``scale`` multiplies the data misfit
    (n / B for a batch of B of n rows)."""
    k_fwd, k_noise = jax.random.split(key)
    theta = state.particles
    J, P = theta.shape
    G, y, cost = forward(k_fwd, theta)
    # D_jk = <G_k - mean G, Gamma^-1 (G_j - y)>, times the batch's scale
    D = scale * (G - y) @ (G - G.mean(0)).T / gamma  # [J, J]
    dt = dt0 / (jnp.linalg.norm(D) + 1e-8)
    mean = theta.mean(0)
    A_t = _anomalies(theta)  # C = A_t^T A_t
    drift = -(D @ (theta - mean)) / J
    if correction and J > P + 1:
        drift = drift + (P + 1) / J * (theta - mean)
    noise = jnp.sqrt(2.0 * dt) * jax.random.normal(k_noise, (J, J), theta.dtype) @ A_t
    x = theta + dt * drift + noise
    # (I + dt/p^2 C) theta_next = x, solved in the smaller of weight and ensemble space
    if P < J:
        lhs = jnp.eye(P, dtype=theta.dtype) + (dt / prior_std**2) * (A_t.T @ A_t)
        theta = jnp.linalg.solve(lhs, x.T).T
    else:  # Woodbury: J x J
        inner = (prior_std**2 / dt) * jnp.eye(J, dtype=theta.dtype) + A_t @ A_t.T
        theta = x - jnp.linalg.solve(inner, A_t @ x.T).T @ A_t
    misfit = jnp.sum((G - y) ** 2, -1) / (2.0 * gamma) * scale
    return EnsembleState(theta), EnsembleInfo(cost, misfit, dt)
