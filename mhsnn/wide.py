"""Trainers for wide networks (thousands of weights): EKI, EKS, tempered SMC, delayed
acceptance and EKI followed by re-centred pCN, on any chip, through ``trainers.fit``.

Random-walk MH presents every training row for every proposal and its acceptance
collapses with the dimension; these methods use a chip query better:

    eki       ensemble Kalman inversion on mini-batches (an optimiser with an ensemble)
    eks       the ensemble Kalman sampler on mini-batches (approximate posterior)
    smc       adaptive tempered SMC, pCN mutations, full data (exact as N grows; log Z)
    da        delayed-acceptance RW: the ideal model screens, the chip decides (exact)
    mh_sub    subsampled RW MH: the austerity test decides from row subsets (eps-biased)
    mh_conf   subsampled RW MH by the confidence sampler: a concentration bound decides
    eki_pcn   EKI for half the budget, then pCN chains re-centred on its ensemble (exact)
    eki_gess  EKI for half the budget, then generalised elliptical slice sampling re-centred
              on its ensemble (exact but for a counted cap; no step size)
    bj_ess    the peer: the same EKI half, then BlackJAX's elliptical slice sampler under the
              ensemble's Gaussian (needs BlackJAX: the bench extra)
    bj_smc    the peer of smc: BlackJAX's adaptive tempered SMC, random-walk mutations scaled
              to the particles (needs BlackJAX)

The kernels are ``mhsnn.mcmc.ensemble``, ``smc``, ``da``, ``austerity``, ``pcn`` and ``ess``; this module wires
them to a problem and a chip, and to the one chunk driver (``runs.run_stage``: progress,
checkpoints, SIGTERM). Every step's chip presentations are counted in the state as the
step makes them (delayed acceptance's vary per step), and a run stops before the step that
would pass the budget. What a step costs, with J members / chains, n training rows and a
batch of B rows:

    eki, eks   J B                     (B = min(128, n))
    smc        J n x mutations         (and J n once for the start)
    da         n x (chains that pass the screen)    (and J n once for the start)
    mh_sub     2 x rows each undecided chain was shown, in whole batches of 50 (mh_conf too)
    eki_pcn    J B (EKI half), J n (pCN half)
    eki_gess   J B (EKI half), n x (points each chain evaluated on its ellipse) (GESS half)
    bj_ess     J B (EKI half), J n x (the most points any chain needed) (BlackJAX runs the
               chains in lockstep and evaluates every chain in every round)
    (eki_gess and bj_ess on a noisy chip: J n more per step, the chains' start scored on the
    step's read noise, on which the slice is cut; BlackJAX's loop, which has no cap, would
    not end otherwise)
    bj_smc     J n (mutations + 3) per stage (BlackJAX scores the particles for the next
               temperature, at each move's start, each move and for the new weights), and
               J n more for each snapshot's log density

Settings are fixed, untuned defaults (``WideHyper``); the observation noise is the MSE
likelihood's: gamma = v^2 B O, so a batch's misfit is an unbiased estimate of the
full-data -log likelihood.
"""

from __future__ import annotations

import math
import sys
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mhsnn import bayes, chips, posterior, runs, snn
from mhsnn.mcmc import austerity, da, ensemble, ess, pcn, smc

METHODS = {  # name: (kind, uses the ideal model, what it is)
    "eki": ("ensemble", False,
            "ensemble Kalman inversion on mini-batches: an optimiser with an ensemble"),
    "eks": ("sampler", False, "ensemble Kalman sampler on mini-batches: approximate posterior"),
    "smc": ("sampler", False,
            "adaptive tempered SMC, pCN mutations, full data: exact as particles grow; log Z"),
    "da": ("sampler", True, "delayed-acceptance RW MH: the ideal model screens, the chip decides"),
    "mh_conf": ("sampler", False, ("subsampled RW MH, the confidence sampler (empirical "
                                   "Bernstein bound, delta 0.05): decides from row subsets")),
    "mh_sub": ("sampler", False,
               "subsampled RW MH (austerity test, eps 0.05): decides from row subsets"),
    "eki_pcn": ("sampler", False,
                "EKI for half the budget, then pCN chains re-centred on its ensemble"),
    "eki_gess": ("sampler", False, ("EKI for half the budget, then generalised elliptical "
                                    "slice sampling re-centred on its ensemble")),
    "bj_ess": ("sampler", False, ("peer: EKI for half the budget, then BlackJAX's elliptical "
                                  "slice sampler under the ensemble's Gaussian")),
    "bj_smc": ("sampler", False, ("peer: BlackJAX's adaptive tempered SMC, random-walk "
                                  "mutations scaled to the particles, full data")),
}
EXACT = {"eki": False, "eks": False, "smc": True, "da": True, "mh_sub": False, "mh_conf": False,
         "eki_pcn": True, "eki_gess": True, "bj_ess": True, "bj_smc": True}
FROM_PRIOR = ("smc", "bj_smc")  # tempered from the prior: a start does not apply
RECENTRED = ("eki_pcn", "eki_gess", "bj_ess")  # EKI for half the budget, then chains on it
SUBSAMPLED = ("mh_sub", "mh_conf")  # MH deciding from row subsets


class WideHyper(NamedTuple):  # fixed, untuned defaults
    batch: int = 128  # rows per EKI/EKS step
    jitter: float = 0.2  # EKI's additive noise per step
    eks_dt0: float = 0.5  # EKS's step scale (dt = dt0 / ||D||)
    mutations: int = 5  # SMC's pCN moves per stage
    pcn_step: float = 0.3  # pCN's starting beta (adapted toward 0.25 acceptance)
    target_acceptance: float = 0.25  # DA, mh_sub and pCN, adapted in the first half
    sub_batch: int = 50  # mh_sub's rows per look
    sub_eps: float = 0.05  # mh_sub's austerity error per decision
    gess_nu: float = 10.0  # GESS's t degrees of freedom
    gess_rounds: int = 20  # GESS's most points per chain and step


class WideState(NamedTuple):
    key: jax.Array
    inner: Any  # the kernel's state
    used: jax.Array  # chip presentations so far
    step: jax.Array
    scale: jax.Array  # DA's log step size / pCN's beta (adapted in the first half)
    phase: jax.Array  # eki_pcn, eki_gess: 0 EKI, 1 chains
    draws: jax.Array  # [D, J, P] ring of snapshots
    draws_lp: jax.Array  # [D, J]
    stored: jax.Array  # snapshots written
    accepted: jax.Array  # accepted moves (samplers), for the acceptance rate
    moves: jax.Array


def cost_per_step(method: str, J: int, n: int, hyper: WideHyper | None = None) -> int:
    """The most chip presentations one step can cost (the slice samplers: one point of every
    chain; a step takes as many more as its slices need)."""
    hyper = hyper or WideHyper()
    B = min(hyper.batch, n)
    return {"eki": J * B, "eks": J * B, "smc": J * n * hyper.mutations, "da": J * n,
            "mh_sub": 2 * J * (-(-n // hyper.sub_batch)) * hyper.sub_batch, "eki_pcn": J * max(B, n),
            "mh_conf": 2 * J * (-(-n // hyper.sub_batch)) * hyper.sub_batch,
            "eki_gess": J * max(B, n), "bj_ess": J * max(B, n),
            "bj_smc": J * n * (hyper.mutations + 4)}[method]


def first_cost(method: str, J: int, n: int) -> int:
    """Presentations the start costs (a sampler scoring its start on full data)."""
    return J * n if method in ("smc", "da") else 0  # (mh_sub never scores a whole position)


def setup(method: str, key: jax.Array, problem: posterior.Problem, chip, settings,
          mh_hyper: bayes.MHHyper, budget: float, J: int, num_draws: int,
          hyper: WideHyper | None = None, start: jax.Array | None = None):
    """(initial state, jitted advance(state, steps), done(host state), max steps) of
    ``method`` with ``J`` members on the one-fold ``problem`` and ``chip`` (grid (1, J));
    the members start around ``start`` [P] when one is given (``bayes.init_positions``)."""
    if start is not None and method in FROM_PRIOR:
        raise ValueError(f"{method} tempers from its prior: a start does not apply")
    hyper = hyper or WideHyper()
    n = int(problem.train_mask.sum())
    T, O = problem.num_steps, problem.num_classes
    B = min(hyper.batch, n)
    P = snn.num_weights(settings.sizes)
    gamma = float(mh_hyper.lik_std) ** 2 * B * O
    prior_std = float(mh_hyper.prior_std)
    noisy = chips.is_noisy(chip)
    spikes, targets = problem.train_spikes[0], problem.train_targets[0]
    if spikes.shape[1] != n:
        raise ValueError(f"{method}: the problem's training rows must be unpadded "
                         f"({spikes.shape[1]} rows, {n} real); see trainers.one_fold_problem")
    grid = chip if isinstance(chip, chips.ExternalChip) else chips.broadcast(chip, (1, J))
    ideal = chips.broadcast(chips.ideal(), (1, J))

    def forward(key, theta):  # a batch of B rows: rates [J, B O] against one-hot [B O]
        k_rows, k_noise = jax.random.split(key)
        rows = jax.random.choice(k_rows, n, (B,), replace=False)
        counts = posterior.counts_on(theta[None], spikes[:, rows][None], grid, settings,
                                     k_noise if noisy else None)[0]
        observed = settings.lik.observed(counts / T)
        return observed.reshape(J, B * O), targets[rows].reshape(-1), jnp.asarray(J * B)

    def loglik_rows(theta, rows=None, active=None, key=None, on=None):  # each row's, [J, m]
        x, y = (spikes, targets) if rows is None else (spikes[:, rows], targets[rows])
        target = grid if on is None else on
        counts = posterior.counts_on(theta[None], x[None], target, settings,
                                     key if chips.is_noisy(target) else None,
                                     None if active is None else active[None])
        return posterior.row_log_likelihoods(counts, y[None], T, n, mh_hyper.lik_std,
                                             settings)[0]

    def loglik(theta, key=None, on=None, active=None):  # full data, [J]
        return loglik_rows(theta, None, active, key, on).sum(-1)

    def logprior(theta):
        return posterior.log_prior(theta, prior_std)

    # the most a row's log-likelihood term can change (the confidence sampler's B): the MSE
    # term is -e / (2 v^2 n O) with e in [0, O]; the categorical one a cross-entropy of
    # softmax(s rates), within s + log O
    row_bound = settings.lik.row_bound(float(mh_hyper.lik_std), n, O)
    budget = float(budget) - first_cost(method, J, n)
    per_step = cost_per_step(method, J, n, hyper)
    key_init, key_run = jax.random.split(key)
    theta0 = bayes.init_positions(key_init, mh_hyper, (1, J), P, start)[0]
    k0 = jax.random.fold_in(key_init, 1)
    if method in ("eki", "eks", *RECENTRED):
        inner = ensemble.init(theta0)
    elif method in SUBSAMPLED:
        inner = austerity.init(theta0)
    elif method == "smc":
        inner = jax.jit(lambda t: smc.init(t, lambda x: loglik(x, k0), hyper.pcn_step))(
            prior_std * jax.random.normal(key_init, (J, P)))
    elif method == "bj_smc":
        inner = _blackjax(method).smc.adaptive_tempered.init(
            prior_std * jax.random.normal(key_init, (J, P)))
    else:
        inner = jax.jit(lambda t: da.init(t, lambda x: loglik(x, k0) + logprior(x),
                                          lambda x: loglik(x, on=ideal) + logprior(x)))(theta0)
    used0 = first_cost(method, J, n)
    D = max(1, num_draws)
    if method in RECENTRED:  # the ensemble, the chains and their reference in one state
        ref0 = pcn.Reference(jnp.zeros(P), jnp.ones(P), jnp.zeros((P, J)))
        z = jnp.zeros(J)
        inner = (inner, pcn.PCNState(theta0, z, z) if method == "eki_pcn"
                 else ess.ESSState(theta0, z), ref0)
        if method == "bj_ess":
            _blackjax(method)  # refuse now, in one line, when BlackJAX is missing
        eki_steps = max(1, int(budget / 2 // (J * B)))
        steps_after = max(2, int((budget - eki_steps * J * B - J * n) // (J * n)))
    else:
        eki_steps, steps_after = 0, max(1, int(budget // per_step))
    scale0 = math.log(float(mh_hyper.step_size) / math.sqrt(P / 96.0)) \
        if method in ("da", *SUBSAMPLED) else hyper.pcn_step
    if method == "bj_ess":  # here: the most rounds a step has needed so far (its next cost)
        scale0 = 4.0
    state0 = WideState(key_run, inner, jnp.asarray(used0, jnp.int32), jnp.zeros((), jnp.int32),
                       jnp.asarray(scale0, jnp.float32), jnp.zeros((), jnp.int32),
                       jnp.zeros((D, J, P), jnp.float32), jnp.zeros((D, J), jnp.float32),
                       jnp.zeros((), jnp.int32), jnp.zeros((), jnp.float32),
                       jnp.zeros((), jnp.float32))
    total = budget + used0
    # snapshots every `thin` steps over the second half of the sampling steps (DA: of its
    # full-cost step count; it usually runs more)
    half = steps_after // 2
    thin = max(1, (steps_after - half) // D)

    # GESS's steps vary in cost: it snapshots each time its presentations cross one of D
    # even marks over the second half of what the chains may spend
    mid = eki_steps * J * B + J * n + used0
    mid = mid + (total - mid) / 2

    def next_cost(step, phase, state_scale):
        if method in RECENTRED:
            # a GESS step needs one round of every chain, then stops its slices at the budget;
            # a BlackJAX step cannot be stopped: it runs when its likeliest cost fits
            rescore = int(noisy and method != "eki_pcn")  # the chains' start, on this noise
            after = J * n * (1 + rescore) if method != "bj_ess" else jnp.where(
                phase == 1, J * n * (jnp.ceil(state_scale).astype(jnp.int32) + rescore), J * n)
            return jnp.where((phase == 0) & (step < eki_steps), J * B, after)
        return per_step

    def adapt(scale, rate, index):  # Robbins-Monro toward the target, first half only
        return jnp.where(index < half, scale + (rate - hyper.target_acceptance)
                         / jnp.sqrt(index + 1.0), scale)

    def one(state: WideState, _):
        # a step past the budget must not run at all: a host chip would be queried
        ok = state.used + next_cost(state.step, state.phase, state.scale) <= total
        return jax.lax.cond(ok, stepped, lambda s: s, state), None

    def stepped(state: WideState) -> WideState:
        key, k = jax.random.split(state.key)
        k_query = jax.random.fold_in(k, 7)
        s, acc, moves, write = state.inner, jnp.zeros(()), jnp.zeros(()), None
        scale, phase, index = state.scale, state.phase, state.step
        if method == "eki":
            s, info = ensemble.eki_step(k, s, forward, gamma, hyper.jitter)
            cost, lp = info.presentations, logprior(state.inner.particles) - info.misfit
        elif method == "eks":
            s, info = ensemble.eks_step(k, s, forward, gamma, prior_std, hyper.eks_dt0)
            # the batch estimate of the log posterior at the members' previous positions
            cost, lp = info.presentations, logprior(state.inner.particles) - info.misfit
        elif method == "smc":
            s, info = smc.step(k, s, lambda x: loglik(x, k_query), logprior, hyper.mutations)
            cost = info.evaluations * n
            acc, moves = info.acceptance_rate * J * hyper.mutations, J * hyper.mutations
            lp, write = s.loglik + logprior(s.particles), s.beta >= 1.0
        elif method == "bj_smc":
            bj = _blackjax(method)
            on = grid if isinstance(grid, chips.ExternalChip) else jax.tree.map(
                lambda f: f[:, :1], grid)  # one particle at a time: the (shared) chip's

            def one_loglik(x):
                return loglik(x[None], k_query, on=on)[0]

            kernel = bj.smc.adaptive_tempered.build_kernel(
                logprior, one_loglik, _rw_step, bj.mcmc.random_walk.init,
                bj.smc.resampling.systematic, 0.5)
            sigma = 2.38 / math.sqrt(P) * (jnp.std(s.particles, 0) + 1e-3)
            s, info = kernel(k, s, hyper.mutations, {"sigma": sigma[None]})
            write = s.tempering_param >= 1.0
            lp = jax.lax.cond(write, lambda x: loglik(x, k_query) + logprior(x),
                              lambda x: jnp.zeros(J), s.particles)
            cost = J * n * (hyper.mutations + 3) + jnp.where(write, J * n, 0)
            acc = jnp.sum(jnp.mean(info.update_info.is_accepted, 0))
            moves = jnp.asarray(J, jnp.float32)
        elif method == "da":
            s, info = da.kernel(k, s, lambda x, a: loglik(x, k_query, active=a) + logprior(x),
                                lambda x: loglik(x, on=ideal) + logprior(x), jnp.exp(scale),
                                masked=True)
            cost, lp = info.exact_queries * n, s.logdensity
            acc, moves = jnp.sum(info.is_accepted), J
            scale = adapt(scale, jnp.mean(info.is_accepted), index)
        elif method in SUBSAMPLED:
            s, info = austerity.kernel(
                k, s, lambda x, rows, a: loglik_rows(x, rows, a, k_query), logprior, n,
                jnp.exp(scale), hyper.sub_batch, hyper.sub_eps, masked=True,
                rule="austerity" if method == "mh_sub" else "confidence",
                row_range=lambda a, b: jnp.full(a.shape[0], row_bound))
            # its likelihood is never evaluated whole: the trace is the log prior
            cost, lp = info.presentations, logprior(s.position)
            acc, moves = jnp.sum(info.is_accepted), J
            scale = adapt(scale, jnp.mean(info.is_accepted), index)
        else:  # eki_pcn, eki_gess
            ens, chain, ref = s
            index = state.step - eki_steps - 1  # pCN steps done before this one

            def eki_branch(_):
                e, info = ensemble.eki_step(k, ens, forward, gamma, hyper.jitter)
                return (e, chain, ref), info.presentations, logprior(ens.particles) - info.misfit, \
                    jnp.zeros(()), jnp.zeros(()), scale, jnp.zeros((), jnp.int32)

            def switch_branch(_):
                r = pcn.Reference.from_ensemble(ens.particles)
                lp0 = loglik(ens.particles, k_query) + logprior(ens.particles)
                c = pcn.PCNState(ens.particles, lp0, lp0 - r.logpdf(ens.particles)) \
                    if method == "eki_pcn" else ess.ESSState(ens.particles, lp0)
                return (ens, c, r), jnp.asarray(J * n), lp0, jnp.zeros(()), jnp.zeros(()), \
                    scale, jnp.ones((), jnp.int32)

            def pcn_branch(_):
                c, info = pcn.kernel(k, chain, lambda x: loglik(x, k_query) + logprior(x), ref,
                                     scale)
                return (ens, c, ref), jnp.asarray(J * n), c.logdensity, \
                    jnp.sum(info.is_accepted).astype(jnp.float32), jnp.asarray(J, jnp.float32), \
                    jnp.clip(adapt(scale, jnp.mean(info.acceptance_rate), index), 0.01, 1.0), \
                    jnp.ones((), jnp.int32)

            def gess_branch(_):
                def target(x, a=None):
                    return loglik(x, k_query, active=a) + logprior(x)

                c, extra = chain, 0
                if noisy:  # the slice is cut on this step's noise: score the start with it
                    c, extra = chain._replace(logdensity=target(chain.position)), J
                c, info = ess.kernel(k, c, target, ref, hyper.gess_nu, hyper.gess_rounds,
                                     (total - state.used) // n - extra)
                moved = jnp.sum(~info.capped).astype(jnp.float32)
                return (ens, c, ref), (jnp.sum(info.evaluations) + extra) * n, c.logdensity, \
                    moved, jnp.asarray(J, jnp.float32), scale, jnp.ones((), jnp.int32)

            def bj_branch(_):
                def one_chain(key, state, j):  # BlackJAX's move is one chain's
                    on = grid if isinstance(grid, chips.ExternalChip) else jax.tree.map(
                        lambda f: jax.lax.dynamic_slice_in_dim(f, j, 1, axis=1), grid)
                    def lik(x):
                        return loglik(x[None], k_query, on=on)[0] + logprior(x) - ref.logpdf(x)

                    if noisy:  # BlackJAX's slice loop has no cap: the start must be scored
                        state = state._replace(logdensity=lik(state.position))  # this step
                    return slice_move.elliptical_proposal(
                        lik, lambda key, x: ref.mean + ref.sample(key, ()), ref.mean)(key, state)

                slice_move = _blackjax(method).mcmc.elliptical_slice
                lik = chain.logdensity - ref.logpdf(chain.position)  # BlackJAX's: the ratio
                new, info = jax.vmap(one_chain)(
                    jax.random.split(k, J),
                    slice_move.EllipSliceState(chain.position, lik), jnp.arange(J))
                lp_new = new.logdensity + ref.logpdf(new.position)
                rounds = jnp.max(info.subiter)
                return (ens, ess.ESSState(new.position, lp_new), ref), \
                    J * n * (rounds + int(noisy)), lp_new, \
                    jnp.asarray(J, jnp.float32), jnp.asarray(J, jnp.float32), \
                    jnp.maximum(scale, rounds.astype(jnp.float32)), jnp.ones((), jnp.int32)

            branch = jnp.where(phase == 1, 2, jnp.where(state.step >= eki_steps, 1, 0))
            chains = {"eki_pcn": pcn_branch, "eki_gess": gess_branch, "bj_ess": bj_branch}
            s, cost, lp, acc, moves, scale, phase = jax.lax.switch(
                branch, [eki_branch, switch_branch, chains[method]], None)
            if method == "eki_pcn":
                write = (branch == 2) & (index >= half) & ((index - half) % thin == 0)
            else:
                after = state.used + jnp.asarray(cost).astype(jnp.int32)
                mark = (jnp.floor((after - mid) * D / (total - mid))
                        > jnp.floor((state.used - mid) * D / (total - mid)))
                write = (branch == 2) & (after >= mid) & mark
        if write is None:
            write = (index >= half) & ((index - half) % thin == 0)
        slot = state.stored % D
        positions = _positions(method, s)
        new = WideState(key, s, state.used + jnp.asarray(cost).astype(jnp.int32),
                        state.step + 1, scale, phase,
                        jnp.where(write, state.draws.at[slot].set(positions), state.draws),
                        jnp.where(write, state.draws_lp.at[slot].set(lp), state.draws_lp),
                        state.stored + write.astype(jnp.int32), state.accepted + acc,
                        state.moves + moves)
        return new

    def advance(state, steps):
        return jax.lax.scan(one, state, None, length=steps)[0]

    def done(host) -> bool:
        return int(host.used) + int(next_cost(int(host.step), int(host.phase),
                                                 float(host.scale))) > total

    return state0, jax.jit(advance, static_argnums=1), done, eki_steps + steps_after


def _blackjax(method: str):
    """BlackJAX, for the peer ``method`` (BlackJAX is the bench extra), or a one-line error."""
    try:
        import blackjax
    except ImportError:
        raise ValueError(f"method={method!r} runs BlackJAX's sampler: "
                         "pip install 'mhsnn[bench]'") from None
    return blackjax


def _rw_step(key, state, logdensity_fn, sigma):  # BlackJAX's Gaussian random-walk MH move
    random_walk = _blackjax("bj_smc").mcmc.random_walk
    return random_walk.build_additive_step()(key, state, logdensity_fn,
                                             random_walk.normal(sigma))


def _positions(method, s):
    if method in ("da", *SUBSAMPLED):
        return s.position
    return s[1].position if method in RECENTRED else s.particles  # the re-centred chains


def fit(method, key, problem, chip, settings, mh_hyper, budget, J, num_draws, stages,
        progress, chunks, hyper: WideHyper | None = None, start=None) -> dict:
    """Run ``method`` to its budget; the host arrays ``trainers`` turns into a ``Fitted``."""
    state0, advance, done, expected = setup(method, key, problem, chip, settings, mh_hyper,
                                            budget, J, num_draws, hyper, start)
    chunk = max(1, -(-expected // chunks))
    report = None
    if progress:
        def report(host):
            print(f"[{method}] {int(host.used):,}/{int(budget):,} presentations",
                  file=sys.stderr, flush=True)

    def finish(host):
        stored = min(int(host.stored), host.draws.shape[0])
        out = {"draws": np.asarray(host.draws)[:stored], "draws_lp": np.asarray(host.draws_lp)
               [:stored], "used": np.asarray(host.used), "steps": np.asarray(host.step),
               "accepted": np.asarray(host.accepted), "moves": np.asarray(host.moves),
               "final": np.asarray(_positions(method, host.inner))}
        if method == "smc":
            out["beta"] = np.asarray(host.inner.beta)
            out["log_evidence"] = np.asarray(host.inner.log_evidence)
        if method == "bj_smc":
            out["beta"] = np.asarray(host.inner.tempering_param)
        return out

    return runs.run_stage(stages, method, lambda: state0, lambda s: advance(s, chunk), done,
                          finish, report)
