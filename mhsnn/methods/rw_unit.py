"""Random-walk MH one hidden unit at a time (Metropolis within Gibbs): step k moves unit
j = k mod H1 of the first hidden layer in every chain (its fan-in column of w1 and its
fan-out row of w2) and accepts or rejects on the chip. Exact: each move is a Metropolis
step that leaves the posterior invariant, and so is a sweep of them.

On a JAX chip without read noise whose first hidden layer is wide
(``snn.unit_cache_pays``), the chains keep their first layer's spike trains
(``snn.unit_cache``), so a step runs unit j and the layers above it only
(``snn.unit_counts``): the counts of a full forward for a fraction of its work. Otherwise
(a host chip, read noise, a narrow layer the fused forward runs faster) a step runs the
whole network, as rw does; the chains are the same either way. A step costs
J n presentations either way (the start J n once); the log step, from MH's c scaled to
the F + H2 weights a unit moves, adapts toward ``target_acceptance`` in the first half."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mhsnn import chips, posterior, snn
from mhsnn.mcmc.accept import log_ratio_or_reject, metropolis
from mhsnn.methods.base import (Algorithm, Entry, Info, Target, adapt, log_step,
                                query_key, thinning)


class Hyper(NamedTuple):  # fixed, untuned defaults
    target_acceptance: float = 0.234  # the log step's aim, adapted in the first half


def unit_masks(sizes) -> np.ndarray:
    """[H1, P]: the weights each unit of the first hidden layer moves (``snn.flatten``'s
    layout: w1 [F, H1] row-major, then w2 [H1, H2])."""
    F, H1, H2 = sizes[:3]
    masks = np.zeros((H1, snn.num_weights(sizes)), bool)
    for j in range(H1):
        masks[j, j:F * H1:H1] = True
        masks[j, F * H1 + j * H2:F * H1 + (j + 1) * H2] = True
    return masks


def build(target: Target, hyper: Hyper, cache: bool | None = None) -> Algorithm:
    """``cache``: keep the first layer's trains (None: where it can and it pays,
    ``snn.unit_cache_pays``)."""
    J, n, settings = target.J, target.n, target.settings
    sizes = settings.sizes
    if len(sizes) < 3:
        raise ValueError(f"method='rw_unit' moves hidden units: the network "
                         f"{'-'.join(map(str, sizes))} has none")
    masks = jnp.asarray(unit_masks(sizes))
    first, per_step = first_cost(J, n), cost(J, n, hyper)
    steps = max(1, int((target.budget - first) // per_step))
    half, _ = thinning(steps, target.draws)
    can = isinstance(target.grid, chips.Chip) and not target.noisy
    if cache and not can:
        raise ValueError("rw_unit: only a JAX chip without read noise keeps its trains")
    cached = can and (snn.unit_cache_pays(sizes) if cache is None else cache)
    chip = None if not cached else jax.tree.map(lambda f: f[0], target.grid)  # [J] sets
    physics = dict(chip=chip, alpha=settings.alpha, threshold=settings.threshold)

    def density(theta, counts):
        lik = posterior.row_log_likelihoods(counts[None], target.targets[None], target.T, n,
                                            target.lik_std, settings)[0]
        return lik.sum(-1) + target.logprior(theta)

    def init(key, theta0):  # the start scored as any proposal of the uncached walk
        cache = snn.unit_cache(snn.unflatten(theta0, sizes), target.spikes, **physics) \
            if cached else None
        return theta0, target.logdensity(theta0, query_key(key)), cache, \
            jnp.asarray(log_step(target, sizes[0] + sizes[2]), jnp.float32)

    def step(key, state, clock):
        theta, logdensity, cache, scale = state
        unit = clock.step % sizes[1]
        k_move, k_accept = jax.random.split(key)
        move = jax.random.normal(k_move, theta.shape) * masks[unit]
        proposal = theta + jnp.exp(scale) * move
        if cached:
            counts, own = snn.unit_counts(snn.unflatten(proposal, sizes), cache, unit,
                                          target.spikes, **physics)
            new = density(proposal, counts)
        else:
            new = target.logdensity(proposal, query_key(key))
        accepted, _ = metropolis(k_accept, log_ratio_or_reject(new, logdensity))
        theta = jnp.where(accepted[:, None], proposal, theta)
        logdensity = jnp.where(accepted, new, logdensity)
        if cached:
            cache = snn.unit_accept(cache, own, unit, accepted)
        scale = adapt(scale, jnp.mean(accepted), clock.step, half, hyper.target_acceptance)
        return (theta, logdensity, cache, scale), Info(jnp.asarray(per_step), logdensity,
                                                       jnp.sum(accepted), J)

    return Algorithm(init, step, lambda state, steps: per_step, lambda state: state[0],
                     steps, first)


def cost(J: int, n: int, hyper: Hyper) -> int:
    return J * n


def first_cost(J: int, n: int) -> int:
    return J * n


ENTRY = Entry("rw_unit", "sampler", True, False,
              "RW MH one hidden unit at a time (Metropolis within Gibbs); caches the first "
              "layer's trains on a JAX chip", build, cost, first_cost, hyper=Hyper)
