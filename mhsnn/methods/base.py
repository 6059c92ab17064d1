"""The one interface of the driven methods: an ``Algorithm`` is an (init, step) pair over a
``Target``, and an ``Entry`` is what the registry knows of a method (its behaviour, not a
description to dispatch on elsewhere).

A method's file (``mhsnn/methods/<name>.py``) builds an ``Algorithm`` from a ``Target`` (the
problem, the chip and the budget, with the log-likelihood and the forward runs the method
may query) and its settings (its file's ``Hyper``). The driver (``mhsnn.driver``)
runs it to its budget: it checks before every step that the step's most expensive outcome
fits (``Algorithm.next_cost``; a host chip must never be queried past the budget), counts
the presentations each step reports in its ``Info``, keeps snapshots and cuts the run into
checkpointed chunks. A method never counts its own budget and never tests another's name.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from mhsnn import chips, posterior, snn


class NoSettings(NamedTuple):
    """The settings of a method that has none."""


class Clock(NamedTuple):
    """What the driver has counted before a step; a method reads it and never keeps it."""

    step: jax.Array  # steps run so far
    used: jax.Array  # chip presentations so far


class Info(NamedTuple):
    """What one step did. ``presentations`` is always the chip presentations it made."""

    presentations: jax.Array
    logdensity: jax.Array  # [J] at the new positions (see ``Entry.traces``)
    accepted: jax.Array | float = 0.0  # moves accepted (samplers), for the acceptance rate
    moves: jax.Array | float = 0.0  # moves decided
    keep: jax.Array | None = None  # these positions are a draw (None: the driver's thinning)


class Algorithm(NamedTuple):
    """A method bound to one target: pure functions of its state, jitted by the driver."""

    init: Callable[[jax.Array, jax.Array], Any]  # (key, start positions [J, P]) -> state
    step: Callable[[jax.Array, Any, Clock], tuple[Any, Info]]  # (key, state, clock)
    next_cost: Callable[[Any, jax.Array], jax.Array]  # (state, steps run): the next step's most
    positions: Callable[[Any], jax.Array]  # state -> [J, P], the weight sets it holds
    steps: int  # the steps the budget is expected to buy (chunking, snapshot thinning)
    first_cost: int = 0  # presentations the start costs (scoring it on full data)
    report: Callable[[Any], dict] = lambda state: {}  # host state -> extra diagnostics


class Entry(NamedTuple):
    """A registry line: what the method is and what it does, read by the fitting code."""

    name: str
    kind: str  # "sampler" or "ensemble" (an optimiser with an ensemble)
    exact: bool  # its stationary law is the posterior (up to a counted cap)
    uses_model: bool  # the ideal model serves beside the chip
    about: str
    build: Callable[..., Algorithm]  # (target, hyper) -> Algorithm
    cost: Callable[[int, int, Any], int]  # (J, n, hyper): the most a step costs
    first_cost: Callable[[int, int], int] = lambda J, n: 0  # the start's, before any step
    starts: bool = True  # takes a start; False: tempered from its prior
    deploys: str = "draws"  # "draws" (the chains' snapshots), "ensemble" or "point" (the
    #                          end positions of the members, or of an optimiser's one set)
    traces: str = "log posterior"  # what ``Info.logdensity`` is
    hyper: type = NoSettings  # its ``Hyper``: a NamedTuple of its settings, with defaults
    # (key, target, hyper) -> [J, P]: its own start when none is given (None: the driver's,
    # MH's N(init_mean, init_std^2) draws)
    draw_start: Callable[..., jax.Array] | None = None


class Target(NamedTuple):
    """One fold's training rows on one chip, for J members, within a budget."""

    n: int  # training rows
    T: int
    O: int  # noqa: E741 - outputs
    P: int  # weights
    J: int  # members / chains
    spikes: jax.Array  # [T, n, F]
    targets: jax.Array  # [n, O] one-hot
    grid: Any  # the chip broadcast to (1, J), or the external chip
    ideal: chips.Chip  # the ideal model on the same grid (delayed acceptance's screen)
    noisy: bool
    settings: posterior.SNNSettings
    lik_std: float
    prior_std: float
    step_size: float  # MH's c at the paper's 96 weights
    row_bound: float  # the most one row's log-likelihood term can change
    budget: float  # chip presentations in all, the start's included
    draws: int  # snapshots kept per chain
    loglik_rows: Callable[..., jax.Array]  # (theta [J, P], rows, active, key, on) -> [J, m]
    outputs: Callable[..., jax.Array]  # (theta [J, P], rows [B], key) -> observed [J, B, O]
    rates: Callable[..., jax.Array] | None = None  # (theta, rows, key) -> chip rates [J, B, O]

    def loglik(self, theta, key=None, on=None, active=None):  # full data, [J]
        return self.loglik_rows(theta, None, active, key, on).sum(-1)

    def logprior(self, theta):
        return posterior.log_prior(theta, self.prior_std)

    def logdensity(self, theta, key=None, active=None):
        return self.loglik(theta, key, active=active) + self.logprior(theta)

    def screen(self, theta):  # the ideal model's log posterior
        return self.loglik(theta, on=self.ideal) + self.logprior(theta)


def make_target(problem: posterior.Problem, chip, settings: posterior.SNNSettings,
                mh_hyper, budget: float, J: int, num_draws: int, label: str) -> Target:
    """The ``Target`` of the one-fold ``problem`` on ``chip`` for J members (``label`` names
    the method in the error for padded rows)."""
    n = int(problem.train_mask.sum())
    T, O = problem.num_steps, problem.num_classes
    spikes, targets = problem.train_spikes[0], problem.train_targets[0]
    if spikes.shape[1] != n:
        raise ValueError(f"{label}: the problem's training rows must be unpadded "
                         f"({spikes.shape[1]} rows, {n} real); see trainers.one_fold_problem")
    grid = chip if isinstance(chip, chips.ExternalChip) else chips.broadcast(chip, (1, J))

    def counts(theta, rows=None, active=None, key=None, on=None):  # [1, J, m, O]
        x = spikes if rows is None else spikes[:, rows]
        at = grid if on is None else on
        return posterior.counts_on(theta[None], x[None], at, settings,
                                   key if chips.is_noisy(at) else None,
                                   None if active is None else active[None])

    def loglik_rows(theta, rows=None, active=None, key=None, on=None):  # each row's, [J, m]
        y = targets if rows is None else targets[rows]
        return posterior.row_log_likelihoods(counts(theta, rows, active, key, on), y[None], T,
                                             n, mh_hyper.lik_std, settings)[0]

    def rates(theta, rows, key=None):  # the chip's output counts / T
        return counts(theta, rows, key=key)[0] / T

    def outputs(theta, rows, key=None):  # what the likelihood compares with the targets
        return settings.lik.observed(rates(theta, rows, key))

    # the MSE row term is -e / (2 v^2 n O) with e in [0, O]; the categorical one a
    # cross-entropy of softmax(s rates), within s + log O
    row_bound = settings.lik.row_bound(float(mh_hyper.lik_std), n, O)
    return Target(n, T, O, snn.num_weights(settings.sizes), J, spikes, targets, grid,
                  chips.broadcast(chips.ideal(), (1, J)), chips.is_noisy(chip), settings,
                  float(mh_hyper.lik_std), float(mh_hyper.prior_std),
                  float(mh_hyper.step_size), row_bound, float(budget), max(1, num_draws),
                  loglik_rows, outputs, rates)


def query_key(key: jax.Array) -> jax.Array:
    """The key of a step's chip queries (a noisy chip's read noise), from the step's key."""
    return jax.random.fold_in(key, 7)


def thinning(steps: int, draws: int) -> tuple[int, int]:
    """(half, thin): snapshots every ``thin`` steps over the second half of ``steps``."""
    half = steps // 2
    return half, max(1, (steps - half) // draws)


def kept(index, half: int, thin: int) -> jax.Array:
    """Whether step ``index`` (0-based) is a snapshot under ``thinning``."""
    return (index >= half) & ((index - half) % thin == 0)


def adapt(scale, rate, index, half: int, target_rate: float):
    """Robbins-Monro on a log step (or pCN's beta) toward ``target_rate``, first half only."""
    return jnp.where(index < half, scale + (rate - target_rate) / jnp.sqrt(index + 1.0), scale)


def log_step(target: Target, dim: int | None = None) -> float:
    """A random walk's starting log step: MH's c, scaled from 96 weights to the ``dim``
    it moves (default all P)."""
    return math.log(target.step_size / math.sqrt((dim or target.P) / 96.0))


def blackjax(name: str):
    """BlackJAX, for the peer ``name`` (BlackJAX is the bench extra), or a one-line error."""
    try:
        import blackjax as bj
    except ImportError:
        raise ValueError(f"method={name!r} runs BlackJAX's sampler: "
                         "pip install 'mhsnn[bench]'") from None
    return bj
