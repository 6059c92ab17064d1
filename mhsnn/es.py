"""Model-free optimisers through the same batched likelihood: evolution strategies and SPSA.

Every method here asks for a population of weight sets, has the chip score them, and
updates a search distribution: the population is the chain axis of the same fast
likelihood kernel as MH, on the same chip grid (folds x cells). The objective, minimised,
is the negative of MH's log posterior, MSE / (2 v^2) + |W|^2 / (2 p^2): the same data fit,
with the prior as a penalty (without it, ES weights grow without bound: docs/design.md).

- evolution strategies from evosax (its 0.3 API: ``ask`` / ``tell`` on flat solutions):
  ``snes``, ``open_es`` (OpenAI-ES, antithetic, Adam), ``cma_es``, ``sep_cma_es``. Deployed
  weights: the strategy's mean. The CMA variants get a std floor ``std_min`` (evosax's
  default 0 collapsed to a zero step and NaN on the silent network's flat fitness).
- ``spsa`` (Spall 1992): ``num_perturbations`` antithetic Rademacher pairs W +- c D per
  step, the gradient estimate (f+ - f-) / (2c) D averaged over the pairs, an Adam step.

Chip cost: one generation (step) presents ``population_size(hyper)`` weight sets to every
training row of the cell, or, with ``ESHyper.batch`` = B > 0 (the ``*_mb`` trainers), to B
rows drawn afresh each generation without replacement: the fitness is then an unbiased
estimate of the full-data one (``posterior.batch_log_likelihood``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mhsnn import chips, posterior, snn

STRATEGIES = ("snes", "open_es", "cma_es", "sep_cma_es", "spsa")
OPTIMISERS = {  # this family's lines of the registry (mhsnn.TRAINERS), in its order
    "snes": "separable natural evolution strategy (evosax)",
    "open_es": "OpenAI-ES, antithetic, Adam (evosax)",
    "cma_es": "CMA-ES (evosax)",
    "sep_cma_es": "separable CMA-ES (evosax), for wide networks",
    "spsa": "SPSA: antithetic Rademacher pairs, Adam on the estimate",
    "snes_mb": "SNES scored on a fresh mini-batch of es.batch rows per generation",
    "spsa_mb": "SPSA scored on a fresh mini-batch of es.batch rows per step"}
# Per strategy, the ESHyper fields chosen on inner validation splits of training rows at
# MH's tuning budget (experiments/tune_es.py, results/tuning/es_tuning.csv); the
# query-budget experiment uses them unless es.tuned=false.
TUNED: dict[str, dict] = {
    "snes": {"std_init": 3.0, "population": 64},  # val. 0.893 (256: 0.893 too, first kept)
    "cma_es": {"std_init": 0.3, "population": 256},  # 0.898
    "open_es": {"std_init": 0.3, "learning_rate": 0.2},  # 0.896, at the grid's edge
    "spsa": {"std_init": 0.5, "learning_rate": 0.05},  # 0.879 (the prototype's values)
    # mini-batched SNES on digits 64-32-10 (experiments/tune_wide.py, wide_tuning.csv):
    # validation NLL 0.873 at std 0.3 against 2.279 at SNES's 3 (a silent start)
    "snes_mb": {"std_init": 0.3, "population": 64},
}


class ESHyper(NamedTuple):
    strategy: str = "snes"
    population: int = 64  # members per generation (spsa: 2 x num_perturbations)
    std_init: float = 1.0  # initial search std (spsa: the perturbation size c)
    std_min: float = 1e-2  # std floor of the CMA variants
    learning_rate: float = 0.05  # open_es and spsa: Adam's learning rate
    num_perturbations: int = 4  # spsa: antithetic pairs per step
    init_mean: float = 0.0  # the search starts at W ~ N(init_mean, init_std^2 I)
    init_std: float = 0.5
    lik_std: float = 0.02  # v and p of the objective (MH's)
    prior_std: float = 5.0
    batch: int = 0  # rows per generation (0: every training row)


def population_size(hyper: ESHyper) -> int:
    return 2 * hyper.num_perturbations if hyper.strategy == "spsa" else hyper.population


def rows_per_generation(hyper: ESHyper, n_train: int) -> int:
    return min(hyper.batch, n_train) if hyper.batch > 0 else n_train


class SPSAState(NamedTuple):
    mean: jax.Array  # [P] the current weights
    opt_state: Any
    delta: jax.Array  # [q, P] the perturbations of the last ask


class Strategy(NamedTuple):
    """ask(key, state) -> (population [n, P], state); tell(key, population, fitness,
    state) -> state; mean(state) -> [P]; init(key, mean [P]) -> state."""

    init: Callable
    ask: Callable
    tell: Callable
    mean: Callable


def strategy(hyper: ESHyper, dim: int) -> Strategy:
    """The ask/tell functions of one cell's optimiser (vmap them over cells)."""
    if hyper.strategy not in STRATEGIES:
        raise ValueError(f"es.strategy={hyper.strategy!r}: expected one of "
                         f"{', '.join(STRATEGIES)}")
    if hyper.strategy == "spsa":
        return _spsa(hyper, dim)
    from evosax.algorithms import CMA_ES, SNES, Open_ES, Sep_CMA_ES

    dummy = jnp.zeros(dim)
    if hyper.strategy == "open_es":
        algo = Open_ES(hyper.population, dummy, optimizer=optax.adam(hyper.learning_rate),
                       std_schedule=optax.constant_schedule(hyper.std_init))
        params = algo.default_params
    else:
        cls = {"snes": SNES, "cma_es": CMA_ES, "sep_cma_es": Sep_CMA_ES}[hyper.strategy]
        algo = cls(hyper.population, dummy)
        params = algo.default_params.replace(std_init=jnp.asarray(hyper.std_init))
        if hyper.strategy != "snes":
            params = params.replace(std_min=hyper.std_min)

    def tell(key, population, fitness, state):
        return algo.tell(key, population, fitness, state, params)[0]

    return Strategy(lambda key, mean: algo.init(key, mean, params),
                    lambda key, state: algo.ask(key, state, params), tell,
                    lambda state: state.mean)


def _spsa(hyper: ESHyper, dim: int) -> Strategy:
    q, c = hyper.num_perturbations, hyper.std_init
    optimizer = optax.adam(hyper.learning_rate)

    def init(key, mean):
        return SPSAState(mean, optimizer.init(mean), jnp.zeros((q, dim)))

    def ask(key, state):
        delta = jax.random.rademacher(key, (q, dim), jnp.float32)
        population = jnp.concatenate([state.mean + c * delta, state.mean - c * delta])
        return population, state._replace(delta=delta)

    def tell(key, population, fitness, state):
        diff = (fitness[:q] - fitness[q:]) / (2 * c)
        grad = jnp.mean(diff[:, None] * state.delta, axis=0)  # Rademacher: 1/D_i = D_i
        grad = jnp.where(jnp.isfinite(grad), grad, 0.0)
        updates, opt_state = optimizer.update(grad, state.opt_state, state.mean)
        return state._replace(mean=optax.apply_updates(state.mean, updates),
                              opt_state=opt_state)

    return Strategy(init, ask, tell, lambda state: state.mean)


NOISE_TAG = 0x6D68_7303
ROWS_TAG = 0x6D68_7304  # a mini-batch's rows: another key far from ``ask``'s


class ESState(NamedTuple):
    inner: Any  # the strategy's state per cell, leaves [F, M, ...]
    key: jax.Array
    generation: jax.Array  # int32 scalar
    best_fitness: jax.Array  # [F, M] best member so far
    best: jax.Array  # [F, M, P] that member


def objective_fn(problem: posterior.Problem, chip: chips.Chip, hyper: ESHyper,
                 settings: posterior.SNNSettings) -> Callable[[jax.Array], jax.Array]:
    """Members [F, M, n, P] (and, for a noisy chip, a key for its read noise) -> negative
    log posterior [F, M, n] on the chip (one batched forward of all M x n weight sets per
    fold; an ``ExternalChip`` gets them in one call)."""
    N = problem.train_mask.shape[-1]  # rows per fold, padding included
    n_real = int(np.min(np.asarray(problem.train_mask).sum(-1)))
    B = rows_per_generation(hyper, n_real)
    batched = B < n_real  # else every row, as without a batch

    def objective(members, key=None, rows_key=None):
        F, M, n, P = members.shape
        chip_n = chip if isinstance(chip, chips.ExternalChip) else jax.tree.map(
            lambda leaf: jnp.repeat(leaf, n, axis=1), chip)
        flat = members.reshape(F, M * n, P)
        if batched:  # a fresh batch of B real rows per fold: an unbiased estimate of the fit
            def pick(k, mask):
                return jax.random.choice(k, N, (B,), replace=False, p=mask / mask.sum())
            rows = jax.vmap(pick)(jax.random.split(rows_key, F), problem.train_mask)
            take = jax.vmap(lambda x, r: jnp.take(x, r, axis=1))
            batch = problem._replace(
                train_spikes=take(problem.train_spikes, rows),
                train_targets=jax.vmap(lambda x, r: x[r])(problem.train_targets, rows),
                train_mask=jax.vmap(lambda x, r: x[r])(problem.train_mask, rows))
            lik = posterior.batch_log_likelihood(flat, batch, problem.train_mask.sum(-1),
                                                 chip_n, hyper.lik_std, settings, key)
        else:
            lik = posterior.log_likelihood(flat, problem, chip_n, hyper.lik_std, settings, key)
        prior = posterior.log_prior(flat, hyper.prior_std)
        fitness = -(lik + prior).reshape(F, M, n)
        return jnp.where(jnp.isnan(fitness), jnp.inf, fitness)

    return objective


def grid_trainer(key: jax.Array, problem: posterior.Problem, chip: chips.Chip, hyper: ESHyper,
                 settings: posterior.SNNSettings, generations_per_chunk: int,
                 start: jax.Array | None = None
                 ) -> tuple[ESState, Callable[[ESState], ESState]]:
    """(initial state, jitted advance by ``generations_per_chunk`` generations) for one
    optimiser per cell of the grid (chip leaves [F, M]). ``start``: the initial search
    means, [F, M, P] as given, or [P] drawn around (``snn.around``); default
    N(init_mean, init_std^2 I) draws."""
    posterior.check_network(problem, settings)
    F, M = chips.grid_shape(chip)
    dim = snn.num_weights(settings.sizes)
    algo = strategy(hyper, dim)
    objective = objective_fn(problem, chip, hyper, settings)
    k_mean, k_init, k_run = jax.random.split(key, 3)
    noise = jax.random.normal(k_mean, (F, M, dim))
    if start is None:
        means = hyper.init_mean + hyper.init_std * noise
    elif jnp.ndim(start) == 1:
        means = snn.around(start, hyper.init_std, noise)
    else:
        means = jnp.asarray(start, jnp.float32)
    cells = jax.vmap(jax.vmap(algo.init))
    inner = jax.jit(cells)(jax.random.split(k_init, F * M).reshape(F, M), means)
    state = ESState(inner, k_run, jnp.zeros((), jnp.int32), jnp.full((F, M), jnp.inf),
                    means)
    ask, tell = jax.vmap(jax.vmap(algo.ask)), jax.vmap(jax.vmap(algo.tell))

    def generation(state: ESState, _):
        key, k_ask, k_tell = jax.random.split(state.key, 3)
        population, inner = ask(jax.random.split(k_ask, F * M).reshape(F, M), state.inner)
        # a noisy chip's read noise: a key far from the indices ``ask`` splits k_ask into
        noise = jax.random.fold_in(k_ask, NOISE_TAG) if chips.is_noisy(chip) else None
        rows = jax.random.fold_in(k_ask, ROWS_TAG) if hyper.batch > 0 else None
        fitness = objective(population, noise, rows)
        inner = tell(jax.random.split(k_tell, F * M).reshape(F, M), population, fitness,
                     inner)
        i = jnp.argmin(fitness, axis=-1)
        member_fit = jnp.take_along_axis(fitness, i[..., None], -1)[..., 0]
        member = jnp.take_along_axis(population, i[..., None, None], -2)[..., 0, :]
        better = member_fit < state.best_fitness
        return ESState(inner, key, state.generation + 1,
                       jnp.where(better, member_fit, state.best_fitness),
                       jnp.where(better[..., None], member, state.best)), None

    @jax.jit
    def advance(state: ESState) -> ESState:
        return jax.lax.scan(generation, state, None, length=generations_per_chunk)[0]

    return state, advance


def mean_of(state: ESState, hyper: ESHyper, dim: int) -> jax.Array:
    """The deployed weights [F, M, P]: each cell's search mean."""
    return jax.vmap(jax.vmap(strategy(hyper, dim).mean))(state.inner)
