"""The chunked driver: runs a kernel for many steps in jitted chunks and keeps summaries.

A kernel knows one step; the driver runs many. Between chunks the host reports progress
and may checkpoint. Memory is flat in the number of steps: the driver keeps a running mean
of the positions after burn-in (the posterior mean W*), ``num_draws`` thinned draws for
diagnostics, and the running sum of an ``observe`` function at those draws (for the SNN,
the test-set predictive, i.e. the Bayesian model average).
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mhsnn import runs
from mhsnn.mcmc import adapt, demc, diagnostics, kernels, mh, pt
from mhsnn.mcmc.kernels import Kernel, StepInfo, pt_kernel


@dataclass(frozen=True)
class Schedule:
    """Step counts: ``burn_in`` steps, then one draw kept every ``thin`` steps."""

    num_steps: int
    burn_in: int
    thin: int

    @classmethod
    def make(cls, num_steps: int, burn_in: int | None = None, thin: int = 1) -> Schedule:
        burn_in = num_steps // 2 if burn_in is None else burn_in
        if num_steps < 1:
            raise ValueError(f"num_steps: {num_steps}, must be >= 1")
        if not 0 <= burn_in < num_steps:
            raise ValueError(f"burn_in: {burn_in}, must be in [0, num_steps={num_steps})")
        if thin < 1:
            raise ValueError(f"thin: {thin}, must be >= 1")
        return cls(num_steps, burn_in, thin)

    @classmethod
    def with_draws(cls, num_steps: int, burn_in: int | None, num_draws: int) -> Schedule:
        """The thinning that keeps about ``num_draws`` draws after burn-in."""
        base = cls.make(num_steps, burn_in)
        return cls.make(num_steps, base.burn_in, max(1, (num_steps - base.burn_in) // num_draws))

    @property
    def num_draws(self) -> int:
        return (self.num_steps - self.burn_in) // self.thin


OBSERVE_KEY = 3  # fold_in constant: the key a draw's observation uses


class ChainState(NamedTuple):
    """Everything a run carries between chunks (and writes to a checkpoint)."""

    step: jax.Array  # int32 scalar: steps done
    key: jax.Array
    inner: Any  # the kernel's state
    accepted: jax.Array  # [...] accepted proposals after burn-in
    queries: jax.Array  # [...] density evaluations (chip queries) per chain, start included
    mean: jax.Array  # [..., dim] running mean of target positions after burn-in
    draws: jax.Array  # [..., num_draws, dim]
    draws_logdensity: jax.Array  # [..., num_draws]
    observed: Any  # running sum of observe(position) over the draws


def init_chains(key: jax.Array, inner: Any, kernel: Kernel, schedule: Schedule,
                observe: Callable | None = None) -> ChainState:
    """The driver's state before the first step."""
    position, logdensity = kernel.target(inner)
    lead = logdensity.shape
    observed = None if observe is None else jax.tree.map(
        lambda s: jnp.zeros(s.shape, s.dtype), jax.eval_shape(observe, position, key))
    return ChainState(
        step=jnp.zeros((), jnp.int32), key=key, inner=inner,
        accepted=jnp.zeros(lead, jnp.int32),
        queries=jnp.full(lead, kernel.start_queries, jnp.int32), mean=jnp.zeros_like(position),
        draws=jnp.zeros((*lead, schedule.num_draws, position.shape[-1]), position.dtype),
        draws_logdensity=jnp.zeros((*lead, schedule.num_draws), logdensity.dtype),
        observed=observed)


def make_advance(kernel: Kernel, schedule: Schedule, chunk_size: int,
                 observe: Callable | None = None) -> Callable[[ChainState], ChainState]:
    """A jitted function running the next ``chunk_size`` steps (steps past the end are no-ops).

    ``observe(position, key)`` is summed over the kept draws (the key serves a noisy chip).

    Every chunk has the same shape, so the whole run compiles once whatever its length,
    and a run resumed from any chunk boundary takes exactly the same steps.
    """
    burn_in, thin, num_draws = schedule.burn_in, schedule.thin, schedule.num_draws

    def one_step(state: ChainState) -> ChainState:
        key, sub = jax.random.split(state.key)
        inner, info = kernel.step(sub, state.inner)
        position, logdensity = kernel.target(inner)
        after = state.step >= burn_in
        n_kept = (state.step - burn_in + 1).astype(position.dtype)
        mean = jnp.where(after, state.mean + (position - state.mean) / n_kept, state.mean)
        new = state._replace(step=state.step + 1, key=key, inner=inner, mean=mean,
                             accepted=state.accepted + (after & info.is_accepted),
                             queries=state.queries + info.queries)
        draw_index = (state.step - burn_in + 1) // thin - 1
        is_draw = after & ((state.step - burn_in + 1) % thin == 0) & (draw_index < num_draws)

        def keep_draw(new):
            observed = new.observed
            if observe is not None:
                observed = jax.tree.map(jnp.add, observed,
                                        observe(position, jax.random.fold_in(sub, OBSERVE_KEY)))
            return new._replace(
                draws=new.draws.at[..., draw_index, :].set(position),
                draws_logdensity=new.draws_logdensity.at[..., draw_index].set(logdensity),
                observed=observed)

        return jax.lax.cond(is_draw, keep_draw, lambda s: s, new)

    @jax.jit
    def advance(state: ChainState, stop=schedule.num_steps) -> ChainState:
        """Up to ``chunk_size`` more steps, none at or past step ``stop`` (a traced
        scalar: any stop reuses the one compilation; skipped steps draw no keys)."""
        limit = jnp.minimum(stop, schedule.num_steps)

        def body(state, _):
            return jax.lax.cond(state.step < limit, one_step, lambda s: s, state), None

        return jax.lax.scan(body, state, None, length=chunk_size)[0]

    return advance


class Progress:
    """Host-side progress line: steps, chain-steps/s, acceptance, ETA (to stderr)."""

    def __init__(self, label: str, schedule: Schedule, num_chains: int, stream=sys.stderr):
        self.label, self.schedule, self.num_chains = label, schedule, num_chains
        self.num_steps = schedule.num_steps
        self.stream, self.t0, self.step0 = stream, time.perf_counter(), None

    def __call__(self, state: ChainState) -> None:
        step = int(state.step)
        if self.step0 is None:  # the first chunk includes compilation: time from its end
            self.step0, self.t0 = step, time.perf_counter()
            return
        elapsed = time.perf_counter() - self.t0
        rate = (step - self.step0) / max(elapsed, 1e-9)
        eta = (self.num_steps - step) / max(rate, 1e-9)
        kept = step - self.schedule.burn_in
        acc = f"{float(np.mean(np.asarray(state.accepted))) / kept:.3f}" if kept > 0 else "-"
        print(f"[{self.label}] step {step}/{self.num_steps}  "
              f"{rate * self.num_chains:,.0f} chain-steps/s  accepted {acc}  "
              f"ETA {eta:.0f}s", file=self.stream, flush=True)


def run_chunks(state: ChainState, advance: Callable, schedule: Schedule, chunk_size: int,
               on_chunk: Callable[[ChainState], None] | None = None) -> ChainState:
    """Call ``advance`` until all steps are done, through the one chunk driver
    (``runs.run_stage``, in memory); ``on_chunk`` sees the (host) state after each. Returns
    the final state on the host."""
    return runs.run_stage(None, "mcmc", lambda: state, advance,
                          lambda s: int(s.step) >= schedule.num_steps, lambda s: s, on_chunk)


@dataclass(frozen=True)
class MCMCResult:
    """Draws after burn-in and thinning, with their diagnostics."""

    samples: np.ndarray  # [chains, draws, dim]
    logdensity: np.ndarray  # [chains, draws]
    acceptance_rate: np.ndarray  # [chains], after burn-in
    rhat: np.ndarray  # [dim]
    ess: np.ndarray  # [dim]
    mean: np.ndarray  # [chains, dim] running mean of every step after burn-in
    step_size: float | None = None  # the step size the kept draws used (adapted or given)
    logdensity_evals: int = 0  # per chain, the start included: chip queries for a chip
    grad_evals: int = 0  # per chain: gradient (model) evaluations that drove proposals
    proposal_scale: np.ndarray | None = None  # [dim] with adapt_scales (adapt_covariance):
    # each coordinate's (marginal) proposal std in the kept draws


def summarize(state: ChainState, schedule: Schedule) -> dict:
    """Host-side arrays of a finished single-cell run ([chains, ...])."""
    samples = np.asarray(state.draws)
    kept = schedule.num_steps - schedule.burn_in
    return {"samples": samples, "logdensity": np.asarray(state.draws_logdensity),
            "acceptance_rate": np.asarray(state.accepted) / kept,
            "rhat": diagnostics.rhat(samples), "ess": diagnostics.ess(samples),
            "mean": np.asarray(state.mean)}


def _check_positions(init_positions) -> jax.Array:
    positions = jnp.asarray(init_positions, jnp.float32)
    if positions.ndim != 2:
        raise ValueError(f"init_positions: shape {positions.shape}, expected [chains, dim]")
    if not bool(jnp.all(jnp.isfinite(positions))):
        raise ValueError("init_positions: contains NaN or infinite values")
    return positions


def _check_step_size(step_size) -> None:
    if not (np.all(np.isfinite(step_size)) and np.all(np.asarray(step_size) > 0)):
        raise ValueError(f"step_size: {step_size}, must be > 0 and finite")


def _drive(key, kernel: Kernel, inner, schedule: Schedule, chunk_size: int) -> ChainState:
    state = init_chains(key, inner, kernel, schedule)
    chunk = min(chunk_size, schedule.num_steps)
    return run_chunks(state, make_advance(kernel, schedule, chunk), schedule, chunk)


def _finish(state: ChainState, schedule: Schedule, step_size, adapted: bool, **counts
            ) -> MCMCResult:
    if adapted:
        step_size = float(kernels.step_size_of(state.inner))
    if isinstance(state.inner, adapt.DiagonalAdaptState):
        counts["proposal_scale"] = step_size * np.asarray(state.inner.scale)[0]
    if isinstance(state.inner, adapt.CovarianceAdaptState):  # sqrt of L L^T's diagonal
        factor = np.asarray(state.inner.factor)[0]
        counts["proposal_scale"] = step_size * np.sqrt(np.sum(factor * factor, axis=-1))
    return MCMCResult(**summarize(state, schedule), step_size=float(step_size),
                      logdensity_evals=int(np.max(np.asarray(state.queries))), **counts)


def _adaptation(adapt_step_size: bool, adapt_scales: bool, adapt_covariance: bool):
    """The adaptation the flags of ``sample_*`` name (a covariance implies the step)."""
    if adapt_covariance:
        return "full"
    if adapt_scales:
        return "diagonal"
    return "step" if adapt_step_size else None


def sample_mh(key: jax.Array, logdensity_fn: mh.LogDensityFn, init_positions: jax.Array, *,
              num_steps: int, step_size: float, burn_in: int | None = None, thin: int = 1,
              chunk_size: int = 1000, adapt_step_size: bool = False,
              adapt_scales: bool = False, adapt_covariance: bool = False,
              noisy: bool = False,
              target_acceptance: float = adapt.TARGETS["rw"]) -> MCMCResult:
    """Random-walk Metropolis-Hastings on many chains of any log density.

    Args:
      key: a JAX PRNG key.
      logdensity_fn: one position f32[dim] -> scalar log density (unnormalised).
      init_positions: f32[chains, dim] starting points.
      num_steps: total steps per chain, burn-in included.
      step_size: the proposal's standard deviation c (proposal N(W, c^2 I)); with
        ``adapt_step_size`` the starting value.
      burn_in: steps discarded first; None means the first half, as in the paper.
      thin: keep one draw every ``thin`` steps after burn-in.
      adapt_step_size: tune c during burn-in toward ``target_acceptance`` (pooled over all
        chains; frozen after burn-in, see ``mhsnn.mcmc.adapt``).
      adapt_scales: also learn a per-coordinate proposal scale (a diagonal covariance) from
        all chains' positions in burn-in (``adapt.adaptive_diagonal``); implies
        ``adapt_step_size``.
      adapt_covariance: learn a full proposal covariance instead (``adapt.adaptive_covariance``:
        Haario et al. 2001; a dim x dim Cholesky every ``adapt.REFRESH`` burn-in steps);
        implies ``adapt_step_size``.
      noisy: ``logdensity_fn(position, key)`` is a noisy estimate whose exp is unbiased for
        the likelihood (a noisy chip, or a chip drawn afresh per query): pseudo-marginal MH,
        exact for the averaged target with a fixed step (see ``mh.kernel``); each chain gets
        its own key. Adaptation works too: the step (and covariance) are learnt in burn-in
        from the noisy chain and then frozen, so the kept draws still come from one fixed
        pseudo-marginal kernel.

    Returns:
      MCMCResult with samples [chains, (num_steps - burn_in) // thin, dim].
    """
    positions = _check_positions(init_positions)
    _check_step_size(step_size)
    schedule = Schedule.make(num_steps, burn_in, thin)
    adaptation = _adaptation(adapt_step_size, adapt_scales, adapt_covariance)
    if noisy:
        def batched(x, key):
            return jax.vmap(logdensity_fn)(x, jax.random.split(key, x.shape[0]))

        key, k_init = jax.random.split(key)
        inner = mh.init(positions, lambda x: batched(x, k_init))
    else:
        batched = jax.vmap(logdensity_fn)
        inner = mh.init(positions, batched)
    density = kernels.density_at(batched, noisy)
    kernel, inner = kernels.assemble("rw", adaptation, density, inner, step_size,
                                     schedule.burn_in, target_acceptance=target_acceptance)
    state = _drive(key, kernel, inner, schedule, chunk_size)
    return _finish(state, schedule, step_size, adaptation is not None)


def _sample_gradient(key, logdensity_fn, init_positions, num_steps, step_size, grad_fn,
                     burn_in, thin, chunk_size, adapt_step_size, target_acceptance,
                     num_leapfrog):
    positions = _check_positions(init_positions)
    _check_step_size(step_size)
    schedule = Schedule.make(num_steps, burn_in, thin)
    batched = jax.vmap(logdensity_fn)
    grads = jax.vmap(jax.grad(logdensity_fn) if grad_fn is None else grad_fn)
    proposal = "mala" if num_leapfrog is None else "hmc"
    kernel, inner = kernels.assemble(
        proposal, "step" if adapt_step_size else None, kernels.density_at(batched, False),
        kernels.init(proposal, positions, batched, grads), step_size, schedule.burn_in,
        grad_fn=grads, num_leapfrog=num_leapfrog, target_acceptance=target_acceptance)
    state = _drive(key, kernel, inner, schedule, chunk_size)
    return _finish(state, schedule, step_size, adapt_step_size,
                   grad_evals=num_steps * (num_leapfrog or 1) + 1)


def sample_mala(key: jax.Array, logdensity_fn: mh.LogDensityFn, init_positions: jax.Array, *,
                num_steps: int, step_size: float, grad_fn: Callable | None = None,
                burn_in: int | None = None, thin: int = 1, chunk_size: int = 1000,
                adapt_step_size: bool = False,
                target_acceptance: float = adapt.TARGETS["mala"]) -> MCMCResult:
    """Metropolis-adjusted Langevin on many chains (see ``mhsnn.mcmc.mala``).

    ``grad_fn(position f32[dim]) -> f32[dim]`` drives the proposal (default: the exact
    gradient of ``logdensity_fn``); acceptance always uses ``logdensity_fn`` and the
    proposal's density ratio, so the chain targets ``logdensity_fn`` whatever ``grad_fn``
    returns (a model's gradient for a chip's density). Other arguments as ``sample_mh``.
    """
    return _sample_gradient(key, logdensity_fn, init_positions, num_steps, step_size, grad_fn,
                            burn_in, thin, chunk_size, adapt_step_size, target_acceptance, None)


def sample_hmc(key: jax.Array, logdensity_fn: mh.LogDensityFn, init_positions: jax.Array, *,
               num_steps: int, step_size: float, num_leapfrog: int,
               grad_fn: Callable | None = None, burn_in: int | None = None, thin: int = 1,
               chunk_size: int = 1000, adapt_step_size: bool = False,
               target_acceptance: float = adapt.TARGETS["hmc"]) -> MCMCResult:
    """Hamiltonian Monte Carlo on many chains (see ``mhsnn.mcmc.hmc``): ``num_leapfrog``
    steps of size ``step_size`` driven by ``grad_fn`` (default: the exact gradient),
    accepted on ``logdensity_fn``. Other arguments as ``sample_mala``."""
    if num_leapfrog < 1:
        raise ValueError(f"num_leapfrog: {num_leapfrog}, must be >= 1")
    return _sample_gradient(key, logdensity_fn, init_positions, num_steps, step_size, grad_fn,
                            burn_in, thin, chunk_size, adapt_step_size, target_acceptance,
                            num_leapfrog)


def sample_demc(key: jax.Array, logdensity_fn: mh.LogDensityFn, init_positions: jax.Array, *,
                num_steps: int, burn_in: int | None = None, thin: int = 1,
                chunk_size: int = 1000, gamma: float | None = None, noise_std: float = 1e-4,
                jump_prob: float = 0.1) -> MCMCResult:
    """Differential-evolution MCMC (see ``mhsnn.mcmc.demc``): the chains of this call
    (>= 4) are the population whose differences propose each chain's moves."""
    positions = _check_positions(init_positions)
    if positions.shape[0] < 4:
        raise ValueError(f"init_positions: {positions.shape[0]} chains, DE-MC needs >= 4")
    schedule = Schedule.make(num_steps, burn_in, thin)
    batched = jax.vmap(logdensity_fn)
    settings = demc.DEMCSettings(gamma, noise_std, jump_prob)

    def step(k, st):
        st, info = demc.kernel(k, st, batched, settings)
        return st, StepInfo(info.is_accepted)

    kernel = Kernel(step, lambda st: (st.position, st.logdensity))
    state = _drive(key, kernel, demc.init(positions, batched), schedule, chunk_size)
    return MCMCResult(**summarize(state, schedule),
                      logdensity_evals=int(np.max(np.asarray(state.queries))))


@dataclass(frozen=True)
class PTResult(MCMCResult):
    """MCMCResult of the beta = 1 replicas plus the tempering report (after burn-in)."""

    betas: np.ndarray = None  # [K] final schedule
    swap_acceptance: np.ndarray = None  # [K-1] mean swap acceptance probability per pair
    barrier: float = None  # Lambda: the global communication barrier
    round_trips: np.ndarray = None  # [chains] round trips after burn-in
    round_trips_per_1000: np.ndarray = None  # [chains]
    log_evidence: float = None  # stepping-stone log Z (mean over chains), after burn-in
    log_evidence_se: float = None  # its standard error over chains
    recommended_temperatures: int = None  # about 2 Lambda + 1 (Syed et al. 2021)


def tempered_advance(advance: Callable, schedule: Schedule, round_unit: int, pool: Callable,
                     adapt: bool = True) -> Callable[[ChainState], ChainState]:
    """Wrap a PT ``advance`` with the schedule's life cycle, decided by the step count alone
    (so neither the chunk size nor a resume from a checkpoint changes any draw):

    - during burn-in, Pigeons-style rounds of doubling length (1, 2, 4, ... x ``round_unit``
      steps); after each the betas are re-placed from the pooled swap rejection rates
      (``pool`` sums the statistics of the chains that share a schedule and broadcasts them
      back). A call stops early at a round's end, so the adaptation lands on that step;
    - at the end of burn-in the schedule is frozen and the swap statistics and round-trip
      counts restart, so the report covers the kept part of the run.
    """
    ends, total = [], 0
    for n in (pt.adaptation_rounds(schedule.burn_in, round_unit) if adapt else []):
        total += n
        ends.append(total * round_unit)
    marks = sorted({*ends, schedule.burn_in})

    def wrapped(state: ChainState) -> ChainState:
        step = int(state.step)
        stop = next((m for m in marks if m > step), schedule.num_steps)
        state = advance(state, stop)
        step, (pts, sums) = int(state.step), state.inner
        if step in ends:
            betas = pt.adapt_betas(pt.rejection_rates(sums, pool), np.asarray(pts.betas))
            pts = pts._replace(betas=jnp.asarray(betas, jnp.float32).reshape(pts.betas.shape))
            sums = pt.reset_tally(sums)
        if step == schedule.burn_in:
            sums = pt.reset_tally(sums, round_trips=True)
        return state._replace(inner=pt.PTChain(pts, sums))

    return wrapped


# PT adaptation rounds are 1, 2, 4, ... units of burn_in / 128 steps: 7 rounds (127 units)
# fill the burn-in. (32 gave 5 rounds and left the rejection rates of a sharp Gaussian
# 0.16 apart instead of < 0.15: tests/test_pt.py.)
ROUNDS_PER_BURN_IN = 128


def build_pt(key: jax.Array, log_prior_fn: Callable, log_likelihood_fn: Callable,
             positions: jax.Array, betas: jax.Array, step_size, schedule: Schedule,
             chunk_size: int, pool: Callable, adapt: bool, observe: Callable | None = None,
             noisy: bool = False) -> tuple[ChainState, Callable[[ChainState], ChainState]]:
    """(initial ChainState, advance) of parallel tempering: the one assembly that
    ``sample_pt`` and the experiments' grid (``bayes.setup(..., sampler="pt")``) share.

    ``positions`` [..., dim] start every replica of their chain; ``betas`` [..., K] is the
    starting schedule; the density functions map [..., K, dim] to [..., K]. With ``adapt``
    the schedule adapts in Pigeons-style doubling rounds of ``burn_in / ROUNDS_PER_BURN_IN``
    steps (7 rounds fill the burn-in), counted in steps whatever the chunk size, from the
    swap statistics ``pool`` sums over the chains sharing a schedule."""
    K = betas.shape[-1]
    replicas = jnp.repeat(positions[..., None, :], K, axis=-2)
    first = (mh.at_step(log_likelihood_fn, jax.random.fold_in(key, 1)) if noisy
             else log_likelihood_fn)
    inner = jax.jit(pt.init, static_argnums=(2, 3))(replicas, betas, log_prior_fn, first)
    kernel = pt_kernel(log_prior_fn, log_likelihood_fn, step_size, K, noisy)
    state = init_chains(key, pt.PTChain(inner, pt.init_tally(inner)), kernel, schedule,
                        observe)
    advance = tempered_advance(make_advance(kernel, schedule, chunk_size, observe), schedule,
                               max(1, schedule.burn_in // ROUNDS_PER_BURN_IN), pool,
                               adapt=adapt and K > 1)
    return state, advance


def pool_all(x: np.ndarray) -> np.ndarray:
    """Pool over the leading (chain) axis: one schedule for all chains."""
    return np.broadcast_to(x.sum(0, keepdims=True), x.shape)


def pt_report(inner: pt.PTChain, schedule: Schedule, pool: Callable) -> dict:
    """Schedule, swap acceptance, barrier and round trips after burn-in."""
    rejection = pt.rejection_rates(inner.tally, pool)
    trips = np.asarray(inner.tally.round_trips)
    kept = max(schedule.num_steps - schedule.burn_in, 1)
    return {"swap_acceptance": 1.0 - rejection, "barrier": rejection.sum(-1),
            "round_trips": trips, "round_trips_per_1000": trips * 1000.0 / kept}


def _decays(log_prior_fn: Callable, start: jax.Array) -> bool:
    """Whether the log prior falls by more than 10 nats far out along a ray from ``start``:
    every proper density does (1e6 out, a Cauchy has fallen by ~28); a flat one does not."""
    ray = jnp.ones_like(start) / jnp.sqrt(start.size)
    far = [float(log_prior_fn(start + r * ray)) for r in (1e3, 1e6)]
    near = float(log_prior_fn(start))
    return all(not np.isfinite(f) or f < near - 10.0 for f in far)


def sample_pt(key: jax.Array, log_prior_fn: Callable, log_likelihood_fn: Callable,
              init_positions: jax.Array, *, num_steps: int, step_size: float,
              num_temperatures: int, burn_in: int | None = None, thin: int = 1,
              betas: np.ndarray | None = None, chunk_size: int = 1000,
              noisy: bool = False) -> PTResult:
    """Non-reversible parallel tempering on many chains of any prior and likelihood.

    Args:
      key: a JAX PRNG key.
      log_prior_fn: one position f32[dim] -> scalar log prior density.
      log_likelihood_fn: one position f32[dim] -> scalar log likelihood; the target at
        inverse temperature beta is prior x likelihood^beta (beta = 0: the prior).
      init_positions: f32[chains, dim]; every replica of a chain starts there.
      num_steps: steps per chain (each step moves every replica, then one DEO swap round).
      step_size: random-walk proposal standard deviation for every replica.
      num_temperatures: K replicas per chain (K = 1 is plain MH).
      burn_in: None means the first half; the schedule adapts during burn-in only.
      thin: keep one draw every ``thin`` steps after burn-in.
      betas: a fixed increasing schedule f32[K] from 0 to 1; None adapts from a linear one.
      noisy: ``log_likelihood_fn(position, key)`` is a noisy estimate whose exp is unbiased
        for the likelihood (a noisy chip): pseudo-marginal PT, each replica scored with its
        own key and keeping the estimate it accepted. The beta = 1 replicas then sample the
        noise-averaged posterior exactly; the others target p(W) E[L^beta], so the schedule
        and the stepping-stone ``log_evidence`` are biased (and not reported: NaN).

    Returns:
      PTResult: samples [chains, draws, dim] of the beta = 1 replicas, betas [K],
      swap_acceptance [K-1], barrier, round_trips [chains], diagnostics as sample_mh.
    """
    positions = _check_positions(init_positions)
    _check_step_size(step_size)
    if num_temperatures < 1:
        raise ValueError(f"num_temperatures: {num_temperatures}, must be >= 1")
    schedule = Schedule.make(num_steps, burn_in, thin)
    K = num_temperatures
    if betas is None:
        start, adapt = pt.linear_betas(K), K > 1
    else:
        start, adapt = np.asarray(betas, np.float64), False
        if start.shape != (K,) or start[-1] != 1.0 or start[0] < 0 or np.any(np.diff(start) <= 0):
            raise ValueError(f"betas: {betas}, must be {K} increasing values in [0, 1] ending at 1")
    lp = jax.vmap(jax.vmap(log_prior_fn))
    if noisy:
        def ll(theta, key):  # one key per replica of every chain
            keys = jax.random.split(key, theta.shape[:2])
            return jax.vmap(jax.vmap(log_likelihood_fn))(theta, keys)
    else:
        ll = jax.vmap(jax.vmap(log_likelihood_fn))
    chunk = min(chunk_size, num_steps)
    state, advance = build_pt(key, lp, ll, positions, jnp.broadcast_to(
        jnp.asarray(start, jnp.float32), (positions.shape[0], K)), step_size, schedule, chunk,
        pool_all, adapt, noisy=noisy)
    state = run_chunks(state, advance, schedule, chunk)
    report = pt_report(state.inner, schedule, pool_all)
    log_z = pt.log_evidence(state.inner.tally)
    if noisy:  # the tempered replicas target p(W) E[L^beta]: no stepping-stone estimate
        log_z = np.full_like(log_z, np.nan)
    if not _decays(log_prior_fn, positions[0]):
        warnings.warn("log_evidence: log_prior_fn does not fall off far from the start (an "
                      "improper or flat prior?), so log Z is undefined: NaN returned",
                      stacklevel=2)
        log_z = np.full_like(log_z, np.nan)
    return PTResult(**summarize(state, schedule), betas=np.asarray(state.inner.state.betas)[0],
                    swap_acceptance=report["swap_acceptance"][0],
                    barrier=float(report["barrier"][0]),
                    round_trips=report["round_trips"],
                    round_trips_per_1000=report["round_trips_per_1000"],
                    log_evidence=float(log_z.mean()),
                    log_evidence_se=float(log_z.std(ddof=1) / np.sqrt(len(log_z)))
                    if len(log_z) > 1 else float("nan"),
                    recommended_temperatures=int(np.ceil(2 * report["barrier"][0])) + 1,
                    logdensity_evals=int(np.max(np.asarray(state.queries))))
