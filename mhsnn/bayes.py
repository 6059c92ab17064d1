"""Metropolis-Hastings training of the SNN on a grid: folds x cells x chains in one jitted call.

Hyper-parameters are data ([F, M] arrays), not constants baked into the compiled code, so a
grid over sigma, or over c, v and p in a tuning run, is one more stretch of the chain axis.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mhsnn import chips, posterior, snn
from mhsnn.chips import Chip
from mhsnn.mcmc import demc, kernels, mh, pt
from mhsnn.mcmc.kernels import Kernel, StepInfo, density_at
from mhsnn.mcmc.sample import (
    ChainState,
    Schedule,
    build_pt,
    init_chains,
    make_advance,
    run_chunks,
)


class MHHyper(NamedTuple):
    """Algorithm 1's constants, each broadcastable to [F, M]."""

    step_size: jax.Array  # c: proposal standard deviation
    lik_std: jax.Array  # v
    prior_std: jax.Array  # p
    init_mean: jax.Array  # chains start from N(init_mean, init_std^2 I)
    init_std: jax.Array


def _col(x, shape) -> jax.Array:
    return jnp.broadcast_to(jnp.asarray(x, jnp.float32), shape)


def log_posterior_fn(problem: posterior.Problem, chip: Chip, hyper: MHHyper,
                     settings: posterior.SNNSettings) -> Callable[[jax.Array], jax.Array]:
    """Positions [F, M, P] (and, for a noisy chip, a key) -> log posterior [F, M].

    The likelihood runs on the chip; a noisy chip makes it a noisy estimate (see mh.kernel).
    """

    def logdensity(theta, key=None):
        return (posterior.log_likelihood(theta, problem, chip, hyper.lik_std, settings, key)
                + posterior.log_prior(theta, hyper.prior_std))

    return logdensity


def init_positions(key: jax.Array, hyper: MHHyper, shape: tuple[int, int],
                   dim: int, start: jax.Array | None = None) -> jax.Array:
    """Starting weights [F, M, dim] drawn from N(init_mean, init_std^2 I), or around
    ``start`` [dim] (``snn.around``) when one is given."""
    noise = jax.random.normal(key, (*shape, dim))
    std = _col(hyper.init_std, shape)[..., None]
    if start is not None:
        return snn.around(start, std, noise)
    return _col(hyper.init_mean, shape)[..., None] + std * noise


SAMPLERS = (*kernels.SAMPLERS, "demc", "pt")


def setup(key: jax.Array, problem: posterior.Problem, chip: Chip, hyper: MHHyper,
          settings: posterior.SNNSettings, schedule: Schedule, chunk_size: int,
          observe: bool = True, sampler: str = "rw", chains_per_cell: int | None = None,
          num_leapfrog: int = 3, resample_chip: Callable[[jax.Array], Chip] | None = None,
          num_temperatures: int = 1, start: jax.Array | None = None):
    """(initial ChainState, advance) for a sampler on every chain of the grid.

    ``sampler``: "rw" (random-walk MH with step ``hyper.step_size``, Algorithm 1),
    "rw_adapt" (its step adapted during burn-in toward 0.234 acceptance, pooled over the
    chains of each cell), "rw_adapt_diag" (also a diagonal proposal covariance learnt from
    the cell's chains in burn-in, ``adapt.adaptive_diagonal``), "rw_adapt_full" (a full
    covariance likewise, ``adapt.adaptive_covariance``), "demc" (differential
    evolution, the chains of a cell being the
    population), "mala" / "hmc" (proposals driven by the ideal model's surrogate gradient of
    the log posterior, accepted on the chip's; the step adapts during burn-in toward 0.574 /
    0.65 per cell, starting from ``hyper.step_size`` / 10), "pt" (non-reversible parallel
    tempering with ``num_temperatures`` replicas per chain: ``tempered``). Each is a
    (proposal, adaptation) pair of ``mcmc.kernels.SAMPLERS`` but "demc" and "pt". Cells are
    consecutive blocks of ``chains_per_cell`` chains. Every sampler makes one chip query
    (training-set forward) per chain and step, PT one per replica; the driver counts them
    (``ChainState.queries``). ``observe``: accumulate the test-set predictive at every kept
    draw (the BMA); off, no test query is made inside the run.

    On a noisy chip every sampler runs pseudo-marginal (``density_at``): its draws target
    the noise-averaged posterior (PT's beta = 1 replicas; its tempered ones do not).

    ``resample_chip(key) -> Chip`` (grid leaves [F, M, ...]): every likelihood query runs on
    a fresh chip drawn from it (e.g. a new mismatch instance), so exp(log likelihood) is an
    unbiased estimate of the likelihood averaged over chips, and random-walk MH is
    pseudo-marginal for the posterior p(W) E_chip[L(D | W, chip)], exact for the chip
    distribution, as for a noisy chip. ``chip`` then serves the test predictive only.

    ``start`` [P]: the chains start around these weights (``init_positions``)."""
    posterior.check_network(problem, settings)
    shape = chips.grid_shape(chip)
    stochastic = chips.is_noisy(chip)
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler {sampler!r}: expected one of {', '.join(SAMPLERS)}")
    per_cell = chains_per_cell or shape[1]

    def test_predictive(theta, key):
        return posterior.test_predictive(theta, problem, chip, settings, key)

    observe_fn = test_predictive if observe else None
    if sampler == "pt":
        if resample_chip is not None:
            raise ValueError("sampler 'pt': resample_chip is not supported")
        return tempered(key, problem, chip, hyper, settings, schedule, chunk_size,
                        num_temperatures, per_cell, observe_fn, start)
    logdensity = log_posterior_fn(problem, chip, hyper, settings)
    if resample_chip is not None:
        stochastic = True

        def over_chips(theta, key):  # one fresh chip per query
            k_chip, k_noise = jax.random.split(key)
            return log_posterior_fn(problem, resample_chip(k_chip), hyper, settings)(
                theta, k_noise)

        logdensity = over_chips
    key_init, key_run = jax.random.split(key)
    positions = init_positions(key_init, hyper, shape, snn.num_weights(settings.sizes), start)
    kernel, inner = _grid_kernel(sampler, density_at(logdensity, stochastic), key_init,
                                 positions, problem, chip, hyper, settings, schedule,
                                 shape, per_cell, num_leapfrog, resample_chip is not None,
                                 logdensity)
    state = init_chains(key_run, inner, kernel, schedule, observe_fn)
    return state, make_advance(kernel, schedule, chunk_size, observe_fn)


def model_gradient_fn(problem: posterior.Problem, hyper: MHHyper,
                      settings: posterior.SNNSettings) -> Callable[[jax.Array], jax.Array]:
    """Positions [F, M, P] -> gradient of the IDEAL model's log posterior (sigma = 0, the
    surrogate spike derivative), through the reference layout (the fastest gradient)."""
    ideal_settings = settings._replace(layout="reference")

    def total(theta):
        ideal = chips.broadcast(chips.ideal(), theta.shape[:2])
        return jnp.sum(log_posterior_fn(problem, ideal, hyper, ideal_settings)(theta))

    return jax.grad(total)


def cell_pool(shape: tuple[int, int], per_cell: int) -> Callable:
    """The mean over each cell's chains (consecutive blocks of ``per_cell``), broadcast back
    to them: [F, M, ...] -> [F, M, ...]."""
    F, M = shape

    def pool(x):
        return jnp.repeat(x.reshape(F, M // per_cell, per_cell, *x.shape[2:]).mean(2),
                          per_cell, axis=1)

    return pool


def _grid_kernel(sampler, density, key_init, positions, problem, chip, hyper, settings,
                 schedule, shape, per_cell, num_leapfrog, over_chips, raw_logdensity):
    first = jax.random.fold_in(key_init, 1)
    logdensity = density(first)  # the start's density
    if sampler == "rw":  # Algorithm 1 scores its start with the key itself (as it always has)
        logdensity = functools.partial(raw_logdensity, key=first)
    if sampler == "demc":
        return _demc_kernel(density, first, positions, problem, chip, hyper, settings,
                            shape, per_cell, over_chips)
    proposal, adaptation = kernels.SAMPLERS[sampler]
    step_size = _col(hyper.step_size, shape)
    grad = None
    if proposal == "rw":
        inner = jax.jit(lambda p: mh.init(p, logdensity))(positions)
    else:
        grad = model_gradient_fn(problem, hyper, settings)
        inner = jax.jit(lambda p: kernels.init(proposal, p, logdensity, grad))(positions)
        step_size = step_size / 10
    pool = cell_pool(shape, per_cell)
    return kernels.assemble(proposal, adaptation, density, inner, step_size,
                            schedule.burn_in, grad_fn=grad, num_leapfrog=num_leapfrog,
                            pool=pool, pool_positions=pool)


def _demc_kernel(density, first, positions, problem, chip, hyper, settings, shape, per_cell,
                 over_chips):
    """DE-MC on the grid: each cell's chains are one population (``demc``)."""
    F, M = shape
    cells = M // per_cell

    # Each half of a cell's chains moves in turn, so the density is asked for n < M
    # chains per fold; the chains of a cell share their chip (and hyper-parameters),
    # so the first n of each cell's serve any n of them.
    def first_of_each_cell(tree, n):
        def cut(leaf):
            leaf = jnp.asarray(leaf)
            if leaf.ndim < 2 or leaf.shape[:2] != (F, M):
                return leaf
            rest = leaf.shape[2:]
            return leaf.reshape(F, cells, per_cell, *rest)[:, :, :n].reshape(F, -1, *rest)
        return jax.tree.map(cut, tree)

    if over_chips:
        raise ValueError("sampler 'demc': resample_chip is not supported (the half "
                         "populations would need half grids of chips)")

    def cells_density(key):
        def ld_cells(x):
            n = x.shape[2]
            cut = chip if isinstance(chip, chips.ExternalChip) else \
                first_of_each_cell(chip, n)
            ld = density_at(log_posterior_fn(problem, cut, first_of_each_cell(hyper, n),
                                             settings), chips.is_noisy(chip))(key)
            return ld(x.reshape(F, cells * n, x.shape[-1])).reshape(F, cells, n)
        return ld_cells

    def step(key, state):
        state, info = demc.kernel(key, state, cells_density(key))
        return state, StepInfo(info.is_accepted.reshape(F, M))

    def target(state):
        return (state.position.reshape(F, M, -1), state.logdensity.reshape(F, M))

    to_cells = positions.reshape(F, cells, per_cell, positions.shape[-1])
    return Kernel(step, target), jax.jit(lambda p: demc.init(p, cells_density(first)))(
        to_cells)


def tempered(key: jax.Array, problem: posterior.Problem, chip: Chip, hyper: MHHyper,
             settings: posterior.SNNSettings, schedule: Schedule, chunk_size: int,
             num_temperatures: int, chains_per_cell: int, observe: Callable | None,
             start: jax.Array | None = None):
    """(initial ChainState, advance) for parallel tempering on every chain of the grid
    (``setup(..., sampler="pt")``; ``swap_pool`` pools its swap statistics for a report).

    Any chip: a noisy one makes PT pseudo-marginal (see ``density_at``), an ``ExternalChip``
    gets all M x K replicas of a fold in one query. Each chain carries K replicas
    ([F, M, K, P]); all M x K replicas' likelihoods are one batched forward pass. The
    chains of one cell (consecutive blocks of ``chains_per_cell``) share a schedule,
    adapted from their pooled swap statistics during burn-in.
    ``observe``: the test query summed over kept draws (None: none inside the run).
    """
    posterior.check_network(problem, settings)
    shape, K = chips.grid_shape(chip), num_temperatures
    F, M = shape
    lik_std = jnp.repeat(_col(hyper.lik_std, shape), K, axis=1)
    chip_k = chip if isinstance(chip, chips.ExternalChip) else jax.tree.map(
        lambda leaf: jnp.repeat(leaf, K, axis=1), chip)

    def log_lik(theta, key=None):  # [F, M, K, P] -> [F, M, K]
        flat = theta.reshape(F, M * K, theta.shape[-1])
        return posterior.log_likelihood(flat, problem, chip_k, lik_std, settings,
                                        key).reshape(F, M, K)

    def log_prior(theta):
        return posterior.log_prior(theta, _col(hyper.prior_std, shape)[..., None])

    key_init, key_run = jax.random.split(key)
    positions = init_positions(key_init, hyper, shape, snn.num_weights(settings.sizes), start)
    betas = jnp.broadcast_to(jnp.asarray(pt.linear_betas(K), jnp.float32), (F, M, K))

    state, advance = build_pt(key_run, log_prior, log_lik, positions, betas,
                              _col(hyper.step_size, shape)[..., None, None], schedule,
                              chunk_size, swap_pool(shape, chains_per_cell), adapt=True,
                              observe=observe, noisy=chips.is_noisy(chip))
    return state, advance


def swap_pool(shape: tuple[int, int], per_cell: int) -> Callable:
    """PT's swap statistics [F, M, K-1] summed over the chains of each cell, broadcast back
    (host arrays): the chains of a cell share one schedule."""
    F, M = shape

    def pool(x):
        cells = x.reshape(F, M // per_cell, per_cell, x.shape[-1])
        return np.broadcast_to(cells.sum(2, keepdims=True), cells.shape).reshape(x.shape)

    return pool


def run(key, problem, chip, hyper, settings, schedule: Schedule, chunk_size: int = 1000,
        on_chunk: Callable[[ChainState], None] | None = None) -> ChainState:
    """Run MH to the end of ``schedule`` on every chain; see ``evaluate`` for the results."""
    state, advance = setup(key, problem, chip, hyper, settings, schedule, chunk_size)
    return run_chunks(state, advance, schedule, chunk_size, on_chunk)


class GridOutcome(NamedTuple):
    """Per-chain results on the test set, numpy, [F, M, ...]."""

    wstar_probs: np.ndarray  # [F, M, Nte, O] predictive of W* (the chain's posterior mean weights)
    bma_probs: np.ndarray  # [F, M, Nte, O] mean predictive over the chain's kept draws
    vote_probs: np.ndarray  # [F, M, Nte, O] fraction of the kept draws voting for each class
    acceptance_rate: np.ndarray  # [F, M]
    draws: np.ndarray  # [F, M, draws, P]
    train_mse_mean: np.ndarray  # [F, M] training MSE of W*


def evaluate(state: ChainState, problem, chip, settings, schedule: Schedule,
             key: jax.Array) -> GridOutcome:
    """Test predictions of W* (each chain's posterior mean) and of the chain's BMA.

    ``key`` (the tree's "evaluate" key) draws the read noise of a noisy chip for the W*
    evaluation; a deterministic chip ignores it.
    """
    k_test, k_train = jax.random.split(key)

    @jax.jit
    def on_mean(theta):
        return (posterior.test_probabilities(theta, problem, chip, settings, k_test),
                posterior.mse(theta, problem, chip, settings, k_train))

    wstar_probs, train_mse = on_mean(state.mean)
    num_draws = max(schedule.num_draws, 1)
    return GridOutcome(
        wstar_probs=np.asarray(wstar_probs), bma_probs=np.asarray(state.observed[0]) / num_draws,
        vote_probs=np.asarray(state.observed[1]) / num_draws,
        acceptance_rate=np.asarray(state.accepted) / (schedule.num_steps - schedule.burn_in),
        draws=np.asarray(state.draws), train_mse_mean=np.asarray(train_mse))
