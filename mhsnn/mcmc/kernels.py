"""Kernels in the driver's terms, and the one assembly of the proposal kernels: a proposal
(random walk, MALA, HMC), optionally wrapped by an adaptation of its scale.

Every kernel the driver (``mhsnn.mcmc.sample``) runs is a ``Kernel``: a step
``(key, state) -> (state, StepInfo)`` and the target chain's position and log density.
``StepInfo`` carries the density evaluations (chip queries) each chain made in that step, so
the driver counts a run's chip cost exactly, whatever the kernel (parallel tempering queries
every replica: ``pt_kernel``).

``sample_mh`` / ``sample_mala`` / ``sample_hmc`` (any density, one pool of chains) and the
SNN grid (``bayes.setup``: folds x cells x chains, one pool per cell) both build their
kernels here, so a sampler is one (proposal, adaptation) pair wherever it runs:

    SAMPLERS["rw_adapt_diag"] == ("rw", "diagonal")

Adaptation wraps any kernel with a proposal scale (``mhsnn.mcmc.adapt``): "step" tunes the
step size toward the proposal's optimal-scaling acceptance, "diagonal" and "full" also learn
a proposal covariance (random walk only). It runs in burn-in and is frozen after, so the kept
draws come from one fixed kernel.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mhsnn.mcmc import adapt, hmc, mala, mh, pt


class StepInfo(NamedTuple):
    """What the driver needs from one step of any kernel."""

    is_accepted: jax.Array  # [...] the target chain moved
    queries: jax.Array | int = 1  # [...] or scalar: density evaluations (chip queries) per
    # chain this step made; one chip query presents every training row once, so a step's
    # chip sample presentations are queries x rows (they may vary per step)


class Kernel(NamedTuple):
    """A kernel as the driver sees it.

    step(key, inner) -> (inner, StepInfo); target(inner) -> (position [..., dim],
    log density [...]) of the chain being sampled (for tempering, the beta = 1 replica);
    start_queries: the density evaluations per chain that scored the start.
    """

    step: Callable[[jax.Array, Any], tuple[Any, StepInfo]]
    target: Callable[[Any], tuple[jax.Array, jax.Array]]
    start_queries: int = 1


def pt_kernel(log_prior_fn: Callable, log_likelihood_fn: Callable, step_size,
              num_temperatures: int, noisy: bool = False) -> Kernel:
    """The parallel-tempering kernel in the driver's terms (its inner state a ``pt.PTChain``);
    the target is the beta = 1 slot, and each step queries all ``num_temperatures`` replicas.
    ``noisy``: ``log_likelihood_fn(theta, key)`` is a noisy estimate, scored with the step's
    own key (pseudo-marginal)."""
    def step(key, chain):
        ll = mh.at_step(log_likelihood_fn, key) if noisy else log_likelihood_fn
        chain, info = pt.step(key, chain, log_prior_fn, ll, step_size)
        return chain, StepInfo(info.is_accepted[..., -1], num_temperatures)

    return Kernel(step, lambda chain: pt.target(chain.state), num_temperatures)


PROPOSALS = ("rw", "mala", "hmc")
ADAPTATIONS = (None, "step", "diagonal", "full")

# The named samplers of the SNN grid: (proposal, adaptation). The gradient proposals
# always adapt their step there (they start from the random walk's step / 10).
SAMPLERS: dict[str, tuple[str, str | None]] = {
    "rw": ("rw", None), "rw_adapt": ("rw", "step"), "rw_adapt_diag": ("rw", "diagonal"),
    "rw_adapt_full": ("rw", "full"), "mala": ("mala", "step"), "hmc": ("hmc", "step")}


def _per_chain(eps, position: jax.Array):
    """A step size as one column per chain ([..., 1]) unless it already has the positions'
    rank (a per-coordinate scale [..., dim], a full covariance's [..., 1])."""
    return eps if jnp.ndim(eps) == position.ndim else jnp.asarray(eps)[..., None]


def proposal_step(proposal: str, density: Callable[[jax.Array], Callable],
                  grad_fn: Callable | None = None, num_leapfrog: int | None = None
                  ) -> Callable:
    """``step_fn(key, state, eps, factor=None) -> (state, acceptance prob, accepted)`` of one
    proposal with scale ``eps`` (and, for the random walk, a Cholesky ``factor``).

    ``density(key)`` is the step's log density (for a noisy chip, with that step's read
    noise: ``density_at``); ``grad_fn`` drives MALA / HMC proposals."""
    if proposal not in PROPOSALS:
        raise ValueError(f"proposal {proposal!r}: expected one of {', '.join(PROPOSALS)}")

    def step_fn(key, state, eps, factor=None):
        eps = _per_chain(eps, state.position)
        if proposal == "rw":
            state, info = mh.kernel(key, state, density(key), eps, factor=factor)
        elif proposal == "mala":
            state, info = mala.kernel(key, state, density(key), grad_fn, eps)
        else:
            state, info = hmc.kernel(key, state, density(key), grad_fn, eps, num_leapfrog)
        return state, info.acceptance_rate, info.is_accepted

    return step_fn


def init(proposal: str, positions: jax.Array, logdensity_fn: Callable,
         grad_fn: Callable | None = None):
    """The proposal kernel's state at ``positions``, scored by ``logdensity_fn``."""
    if proposal == "rw":
        return mh.init(positions, logdensity_fn)
    return mala.init(positions, logdensity_fn, grad_fn)


def _one_query(step: Callable) -> Callable:
    """A step returning ``accepted`` -> one returning ``StepInfo`` (one query per chain)."""
    def wrapped(key, state):
        state, accepted = step(key, state)
        return state, StepInfo(accepted)
    return wrapped


def assemble(proposal: str, adaptation: str | None, density: Callable, inner: Any,
             step_size, burn_in: int, *, grad_fn: Callable | None = None,
             num_leapfrog: int | None = None, target_acceptance: float | None = None,
             pool: Callable = jnp.mean, pool_positions: Callable | None = None
             ) -> tuple[Kernel, Any]:
    """(Kernel, its initial state) of ``proposal`` wrapped by ``adaptation``.

    ``inner``: the proposal kernel's state (``init``); ``step_size``: the fixed step, or the
    adaptation's start, shaped like a pool's ([], or [F, M] for the grid); ``pool`` reduces
    the chains' acceptance probabilities to that shape and ``pool_positions`` (diagonal,
    full) pools their positions' moments (default: all chains). ``target_acceptance``
    defaults to the proposal's optimal-scaling target (``adapt.TARGETS``)."""
    if adaptation not in ADAPTATIONS:
        raise ValueError(f"adaptation {adaptation!r}: expected one of "
                         f"{', '.join(map(str, ADAPTATIONS))}")
    if adaptation in ("diagonal", "full") and proposal != "rw":
        raise ValueError(f"adaptation {adaptation!r}: a learnt covariance needs the random "
                         f"walk, not {proposal}")
    step_fn = proposal_step(proposal, density, grad_fn, num_leapfrog)
    if adaptation is None:
        def fixed(key, state):
            state, _, accepted = step_fn(key, state, step_size)
            return state, accepted
        return Kernel(_one_query(fixed), lambda st: (st.position, st.logdensity)), inner
    target = adapt.TARGETS[proposal] if target_acceptance is None else target_acceptance
    if adaptation == "step":
        step = adapt.adaptive(step_fn, burn_in, target, pool)
        state = adapt.init(inner, step_size)
    else:
        build, start = adapt.COVARIANCES[adaptation]
        step = build(step_fn, burn_in, target, lambda st: st.position, pool, pool_positions)
        state = start(inner, step_size, inner.position)
    return (Kernel(_one_query(step), lambda st: (st.inner.position, st.inner.logdensity)),
            state)


ADAPTED_STATES = (adapt.AdaptState, adapt.DiagonalAdaptState, adapt.CovarianceAdaptState)


def step_size_of(state: Any):
    """The adapted step size of an ``assemble``d kernel's state (per pool, as the kept draws
    use it; a host array), or None for a kernel without adaptation."""
    if isinstance(state, ADAPTED_STATES):
        return np.exp(np.asarray(state.log_step_size))
    return None


def density_at(logdensity: Callable, stochastic: bool) -> Callable[[jax.Array], Callable]:
    """``key -> density``: for a noisy density ``logdensity(position, key)``, the density
    with the noise of the step whose key this is (``mh.at_step``); else the density itself.

    Every kernel then runs on a noisy chip as a pseudo-marginal kernel: each proposal is
    scored with fresh noise and every state keeps the estimate it was accepted with, so
    the chain is an exact MCMC on weights x noise whose weight marginal is the
    noise-averaged posterior p(W) E[L(D | W, noise)] (exp of the estimate is unbiased for
    that likelihood). This holds for the fixed-step random walk (``mh.kernel``), for the
    adaptive ones (adaptation stops at burn-in, so the kept draws come from one fixed
    kernel), for MALA / HMC (the model's gradient does not see the noise) and for DE-MC
    (the other chains are fixed while one moves). For PT it holds for the beta = 1
    replicas only: a tempered replica targets p(W) E[L^beta], not the tempered averaged
    posterior, so PT's schedule and stepping-stone evidence are biased on a noisy chip
    (``sample_pt(noisy=True)`` and its test). Tested against a known averaged posterior:
    the random walk, fixed and adapted, and PT (``tests/test_samplers.py``). The usual
    pseudo-marginal caveat: large noise makes chains sticky (a lucky over-estimate is
    hard to leave), which shows in their R-hat and ESS.
    """
    if not stochastic:
        return lambda key: logdensity
    return functools.partial(mh.at_step, logdensity)
