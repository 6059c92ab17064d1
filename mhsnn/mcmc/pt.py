"""Non-reversible parallel tempering (Syed, Bouchard-Cote, Deligiannidis, Doucet 2021).

Each chain holds K replicas targeting prior x likelihood^beta, 0 = beta_1 < ... < beta_K = 1.
One step = a random-walk MH move in every replica, then a deterministic even-odd (DEO) swap
round: even steps propose the pairs (1,2), (3,4), ...; odd steps (2,3), (4,5), ...; a swap of
neighbours i, i+1 is accepted with probability min(1, exp((beta_{i+1} - beta_i)(l_i - l_{i+1}))),
l the log-likelihood. The replicas' log-prior and log-likelihood are stored apart, so a swap
costs no new density evaluation.

The schedule adapts as Pigeons.jl does: during burn-in, rounds of doubling length; after each
round the swap rejection rates r_i of neighbouring pairs give the cumulative communication
barrier Lambda(beta) (piecewise linear, so monotone, through the points (beta_i, sum_{j<i} r_j)),
and the new betas invert it on a uniform grid, which equalises the rejection rates. After
burn-in the schedule is frozen, so the kept draws come from a fixed, valid Markov chain.

Positions are [..., K, dim]; ``log_prior_fn`` and ``log_likelihood_fn`` map [..., dim] to [...].
``kernel(key, PTState, ...) -> (PTState, PTInfo)`` is one step, as BlackJAX's kernels are;
``PTTally`` sums the infos (swap counts, round trips, stepping-stone terms) since the last
reset, and ``PTChain`` pairs the two for the chunked driver (``step``).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mhsnn.mcmc import accept

SWAP_KEY = 7  # fold_in constant: the swap key is derived so that K = 1 is exactly MH


class PTState(NamedTuple):
    """The sampler's state: where the replicas are and which temperature each slot holds."""

    position: jax.Array  # [..., K, dim]; slot k is at temperature betas[k]
    log_prior: jax.Array  # [..., K]
    log_lik: jax.Array  # [..., K]
    betas: jax.Array  # [..., K] (broadcastable), increasing, last = 1
    ids: jax.Array  # [..., K] int32: which replica sits in slot k
    phase: jax.Array  # [..., K] int32 per replica: 0 unknown, 1 left beta=0, 2 reached beta=1
    parity: jax.Array  # int32 scalar: 0 -> even pairs next, 1 -> odd


class PTInfo(NamedTuple):
    """What one step did (BlackJAX style: the kernel returns it beside the state)."""

    is_accepted: jax.Array  # [..., K] the local move of each slot
    swap_proposed: jax.Array  # [..., K-1] bool: the pairs this round proposed
    swap_accepted: jax.Array  # [..., K-1] bool
    swap_prob: jax.Array  # [..., K-1] acceptance probability of each proposed swap, else 0
    round_trips: jax.Array  # [...] int32: 0 -> 1 -> 0 trips completed by this round


class PTTally(NamedTuple):
    """Sums of ``PTInfo`` (and the stepping-stone terms) since the last reset; the schedule
    adaptation, the swap report and the evidence read them."""

    swap_accepts: jax.Array  # [..., K-1]
    swap_attempts: jax.Array  # [..., K-1]
    swap_prob_sum: jax.Array  # [..., K-1]
    round_trips: jax.Array  # [...]
    # Stepping stone: running logsumexp over steps of (b_{k+1} - b_k) l_k (forward, samples
    # at b_k) and of -(b_{k+1} - b_k) l_{k+1} (backward, at b_{k+1}).
    ss_forward: jax.Array  # [..., K-1]
    ss_backward: jax.Array  # [..., K-1]
    ss_count: jax.Array  # [...] steps accumulated


class PTChain(NamedTuple):
    """What the chunked driver carries per chain: the state and its tally."""

    state: PTState
    tally: PTTally


def linear_betas(num_temperatures: int) -> np.ndarray:
    """Equally spaced 0, ..., 1 (the starting schedule)."""
    return np.linspace(0.0, 1.0, num_temperatures) if num_temperatures > 1 else np.ones(1)


def init(position: jax.Array, betas: jax.Array, log_prior_fn, log_likelihood_fn) -> PTState:
    """Replicas at ``position`` [..., K, dim] with schedule ``betas`` [..., K]."""
    lead = position.shape[:-1]
    K = lead[-1]
    lp, ll = _finite(log_prior_fn(position)), _finite(log_likelihood_fn(position))
    return PTState(position, lp, ll, jnp.asarray(betas, jnp.float32),
                   jnp.broadcast_to(jnp.arange(K, dtype=jnp.int32), lead),
                   jnp.zeros(lead, jnp.int32), jnp.zeros((), jnp.int32))


def init_tally(state: PTState) -> PTTally:
    """Empty sums for ``state``'s chains."""
    lead = state.log_lik.shape[:-1]
    zeros = jnp.zeros((*lead, max(state.log_lik.shape[-1] - 1, 0)), jnp.float32)
    count = jnp.zeros(lead, jnp.int32)
    return PTTally(zeros, zeros, zeros, count, zeros - jnp.inf, zeros - jnp.inf, count)


def _finite(x):
    return jnp.where(jnp.isnan(x), -jnp.inf, x)


def local_move(key, state: PTState, log_prior_fn, log_likelihood_fn, step_size):
    """Random-walk MH in every replica on prior x likelihood^beta; returns (state, accepted).

    Uses the key exactly as ``mh.kernel`` does, so with K = 1 (beta = 1) PT is MH.
    """
    key_proposal, key_accept = jax.random.split(key)
    noise = jax.random.normal(key_proposal, state.position.shape, state.position.dtype)
    proposal = state.position + step_size * noise
    lp, ll = log_prior_fn(proposal), log_likelihood_fn(proposal)
    # beta * ll with beta = 0 and ll = -inf would be NaN: a zero-weight likelihood counts 0.
    def tempered(prior, lik):
        return prior + jnp.where(state.betas > 0, state.betas * lik, 0.0)

    log_ratio = accept.log_ratio_or_reject(tempered(lp, ll),
                                           tempered(state.log_prior, state.log_lik))
    accepted, _ = accept.metropolis(key_accept, log_ratio)
    moved = accept.select(accepted, (proposal, lp, ll),
                          (state.position, state.log_prior, state.log_lik))
    return state._replace(position=moved[0], log_prior=moved[1], log_lik=moved[2]), accepted


def deo_swap(key, state: PTState):
    """One deterministic even-odd swap round over neighbouring slots: (state, proposed,
    accepted, probability [..., K-1], round trips completed [...])."""
    K = state.position.shape[-2]
    if K < 2:
        none = jnp.zeros((*state.log_lik.shape[:-1], 0))
        return (state._replace(parity=1 - state.parity), none.astype(bool), none.astype(bool),
                none, jnp.zeros(state.log_lik.shape[:-1], jnp.int32))
    betas = jnp.broadcast_to(state.betas, state.log_lik.shape)
    ll = state.log_lik
    log_a = (betas[..., 1:] - betas[..., :-1]) * (ll[..., :-1] - ll[..., 1:])
    log_a = jnp.where(jnp.isnan(log_a), -jnp.inf, log_a)
    prob = jnp.exp(jnp.minimum(log_a, 0.0))
    pair = jnp.arange(K - 1)
    # even round: pairs (0,1), (2,3), ... (0-based)
    proposed = jnp.broadcast_to((pair % 2) == state.parity, prob.shape)
    u = jax.random.uniform(key, prob.shape)
    swap = proposed & (u < prob)
    # slot j takes from j+1 if pair j swaps, from j-1 if pair j-1 swaps, else stays.
    pad = jnp.zeros((*swap.shape[:-1], 1), bool)
    up, down = jnp.concatenate([swap, pad], -1), jnp.concatenate([pad, swap], -1)
    source = jnp.arange(K) + up.astype(jnp.int32) - down.astype(jnp.int32)

    def take(x, extra_dims=0):
        idx = source.reshape(source.shape + (1,) * extra_dims)
        return jnp.take_along_axis(x, jnp.broadcast_to(idx, x.shape), axis=-1 - extra_dims)

    ids = take(state.ids)
    # Round trips: a replica reaching slot 0 after having reached slot K-1 completes one.
    phase = state.phase
    bottom, top = ids[..., 0], ids[..., -1]
    phase_bottom = jnp.take_along_axis(phase, bottom[..., None], -1)[..., 0]
    trips = (phase_bottom == 2).astype(jnp.int32)
    phase = _set(phase, bottom, jnp.ones_like(bottom))
    phase_top = jnp.take_along_axis(phase, top[..., None], -1)[..., 0]
    phase = _set(phase, top, jnp.where(phase_top == 1, 2, phase_top))
    state = state._replace(
        position=take(state.position, 1), log_prior=take(state.log_prior),
        log_lik=take(state.log_lik), ids=ids, phase=phase, parity=1 - state.parity)
    return state, proposed, swap, jnp.where(proposed, prob, 0.0), trips


def _set(x, index, value):
    """x[..., index] = value along the last axis, per leading element."""
    onehot = jax.nn.one_hot(index, x.shape[-1], dtype=bool)
    return jnp.where(onehot, value[..., None], x)


def kernel(key, state: PTState, log_prior_fn, log_likelihood_fn, step_size
           ) -> tuple[PTState, PTInfo]:
    """One PT step: local moves in every replica, then a DEO swap round."""
    state, accepted = local_move(key, state, log_prior_fn, log_likelihood_fn, step_size)
    state, proposed, swapped, prob, trips = deo_swap(jax.random.fold_in(key, SWAP_KEY), state)
    return state, PTInfo(accepted, proposed, swapped, prob, trips)


def tally(sums: PTTally, state: PTState, info: PTInfo) -> PTTally:
    """Add one step's info and its replicas' stepping-stone terms (see ``log_evidence``)."""
    sums = sums._replace(swap_accepts=sums.swap_accepts + info.swap_accepted,
                         swap_attempts=sums.swap_attempts + info.swap_proposed,
                         swap_prob_sum=sums.swap_prob_sum + info.swap_prob,
                         round_trips=sums.round_trips + info.round_trips,
                         ss_count=sums.ss_count + 1)
    if state.position.shape[-2] < 2:
        return sums
    betas = jnp.broadcast_to(state.betas, state.log_lik.shape)
    gap = betas[..., 1:] - betas[..., :-1]
    # A replica with l = -inf contributes exp(-inf) = 0 forward; gap * l is NaN at gap 0.
    fwd = jnp.where(gap > 0, gap * state.log_lik[..., :-1], 0.0)
    bwd = jnp.where(gap > 0, -gap * state.log_lik[..., 1:], 0.0)
    return sums._replace(ss_forward=jnp.logaddexp(sums.ss_forward, fwd),
                         ss_backward=jnp.logaddexp(sums.ss_backward, bwd))


def step(key, chain: PTChain, log_prior_fn, log_likelihood_fn, step_size
         ) -> tuple[PTChain, PTInfo]:
    """``kernel`` with the tally kept up to date: the driver's step."""
    state, info = kernel(key, chain.state, log_prior_fn, log_likelihood_fn, step_size)
    return PTChain(state, tally(chain.tally, state, info)), info


def log_evidence(sums: PTTally) -> np.ndarray:
    """Stepping-stone estimate of log Z = log integral prior x likelihood, per chain [...].

    log Z = sum_k log E_{b_k}[exp((b_{k+1} - b_k) l)] (forward) = -sum_k log
    E_{b_{k+1}}[exp(-(b_{k+1} - b_k) l)] (backward), each expectation estimated from the
    replicas' draws since the last reset; the two are biased in opposite directions and
    their mean is returned (as Pigeons.jl reports both). Exact for a normalised prior.
    """
    n = np.maximum(np.asarray(sums.ss_count, np.float64), 1.0)[..., None]
    forward = np.sum(np.asarray(sums.ss_forward, np.float64) - np.log(n), axis=-1)
    backward = -np.sum(np.asarray(sums.ss_backward, np.float64) - np.log(n), axis=-1)
    return 0.5 * (forward + backward)


def target(state: PTState):
    """The beta = 1 replica: (position [..., dim], log density [...])."""
    return state.position[..., -1, :], state.log_prior[..., -1] + state.log_lik[..., -1]


def barrier(rejection: np.ndarray, betas: np.ndarray) -> np.ndarray:
    """Cumulative communication barrier Lambda at each beta: [..., K], Lambda(beta_1) = 0."""
    return np.concatenate([np.zeros((*rejection.shape[:-1], 1)), np.cumsum(rejection, -1)], -1)


def adapt_betas(rejection: np.ndarray, betas: np.ndarray) -> np.ndarray:
    """New schedule [..., K] equalising the rejection rates (inverse of the barrier)."""
    betas = np.broadcast_to(betas, (*rejection.shape[:-1], rejection.shape[-1] + 1))
    lam = barrier(rejection, betas)
    out = np.empty_like(betas, dtype=np.float64)
    for idx in np.ndindex(lam.shape[:-1]):
        total = lam[idx][-1]
        if total <= 0:
            out[idx] = betas[idx]
            continue
        # Strictly increasing barrier for np.interp (flat stretches have zero rejection).
        lam_i = lam[idx] + 1e-9 * np.arange(lam.shape[-1])
        grid = np.linspace(lam_i[0], lam_i[-1], lam.shape[-1])
        out[idx] = np.interp(grid, lam_i, betas[idx])
    out[..., 0], out[..., -1] = 0.0, 1.0
    return np.maximum.accumulate(out, axis=-1)


def reset_tally(sums: PTTally, round_trips: bool = False) -> PTTally:
    """Restart the swap statistics and the stepping-stone sums (a new schedule); with
    ``round_trips``, the round-trip count too."""
    z = jnp.zeros_like(sums.swap_accepts)
    return sums._replace(swap_accepts=z, swap_attempts=z, swap_prob_sum=z,
                         ss_forward=z - jnp.inf, ss_backward=z - jnp.inf,
                         ss_count=jnp.zeros_like(sums.ss_count),
                         round_trips=jnp.zeros_like(sums.round_trips) if round_trips
                         else sums.round_trips)


def rejection_rates(sums: PTTally, pool=None) -> np.ndarray:
    """Swap rejection per neighbouring pair, 1 - mean acceptance probability [..., K-1].

    ``pool`` (optional) sums the statistics over the chains that share a schedule and
    broadcasts the sums back to every chain.
    """
    prob = np.asarray(sums.swap_prob_sum, np.float64)
    tries = np.asarray(sums.swap_attempts, np.float64)
    if pool is not None:
        prob, tries = pool(prob), pool(tries)
    return 1.0 - prob / np.maximum(tries, 1.0)


def adaptation_rounds(burn_in: int, unit: int) -> list[int]:
    """Units of ``unit`` steps per round, doubling (1, 2, 4, ...), within the burn-in."""
    rounds, total, n = [], 0, 1
    while total + n <= burn_in // unit:
        rounds.append(n)
        total += n
        n *= 2
    return rounds
