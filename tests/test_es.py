"""Evolution strategies and SPSA: a known quadratic, the population path, the std floor."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mhsnn import bayes, chips, es, posterior, snn

TARGET = jnp.array([3.0, -1.0, 0.5, 2.0, -2.5])


def _minimise(hyper, generations):
    algo = es.strategy(hyper, TARGET.size)
    state = algo.init(jax.random.key(0), jnp.zeros(TARGET.size))

    def gen(state, key):
        k_ask, k_tell = jax.random.split(key)
        population, state = algo.ask(k_ask, state)
        fitness = jnp.sum((population - TARGET) ** 2, axis=-1)
        return algo.tell(k_tell, population, fitness, state), None

    state = jax.lax.scan(gen, state, jax.random.split(jax.random.key(1), generations))[0]
    return np.asarray(algo.mean(state)), state


@pytest.mark.parametrize("name, generations", [("snes", 300), ("open_es", 600),
                                               ("cma_es", 200), ("sep_cma_es", 200),
                                               ("spsa", 1500)])
def test_each_method_finds_the_minimum_of_a_quadratic(name, generations):
    hyper = es.ESHyper(strategy=name, population=16, std_init=1.0, learning_rate=0.05)
    mean, _ = _minimise(hyper, generations)
    np.testing.assert_allclose(mean, np.asarray(TARGET), atol=0.1)


@pytest.mark.parametrize("name", ["cma_es", "sep_cma_es"])
def test_cma_std_floor_holds_on_a_flat_fitness(name):
    hyper = es.ESHyper(strategy=name, population=16, std_init=1.0, std_min=0.05)
    algo = es.strategy(hyper, 5)
    state = algo.init(jax.random.key(0), jnp.zeros(5))
    for g in range(60):  # a silent network: every member scores the same
        population, state = algo.ask(jax.random.key(g), state)
        state = algo.tell(jax.random.key(100 + g), population, jnp.ones(16), state)
    assert np.all(np.isfinite(np.asarray(population)))
    assert float(state.std) >= 0.05 - 1e-6


def test_population_fitness_equals_members_one_by_one(two_fold_problem):
    F, M, n = 2, 3, 4
    chip = chips.Chip(sigma=jnp.tile(jnp.array([[0.0, 2.0, 3.0]]), (F, 1)))
    hyper = es.ESHyper()
    settings = posterior.SNNSettings()
    members = 2.0 * jax.random.normal(jax.random.key(3), (F, M, n, snn.num_weights())) + 0.7
    together = np.asarray(es.objective_fn(two_fold_problem, chip, hyper, settings)(members))
    mh = bayes.MHHyper(0.5, hyper.lik_std, hyper.prior_std, 0.0, 0.5)
    for j in range(n):  # the same numbers as MH's log posterior, member by member
        one = bayes.log_posterior_fn(two_fold_problem, chip, mh, settings)(members[:, :, j])
        np.testing.assert_allclose(together[:, :, j], -np.asarray(one), rtol=1e-6)


@pytest.mark.parametrize("likelihood", ["mse", "categorical"])
def test_a_mini_batch_fitness_is_an_unbiased_estimate_of_the_full_one(two_fold_problem,
                                                                      likelihood):
    F, M, n, K = 2, 1, 3, 300
    chip = chips.Chip(sigma=jnp.full((F, M), 2.0))
    settings = posterior.SNNSettings(likelihood=likelihood)
    members = 1.5 * jax.random.normal(jax.random.key(4), (F, M, n, snn.num_weights()))
    full = np.asarray(es.objective_fn(two_fold_problem, chip, es.ESHyper(), settings)(members))
    objective = es.objective_fn(two_fold_problem, chip, es.ESHyper(batch=40), settings)
    batched = jax.jit(jax.vmap(lambda k: objective(members, None, k)))
    draws = np.asarray(batched(jax.random.split(jax.random.key(5), K)))  # [K, F, M, n]
    assert np.any(np.std(draws, 0) > 1.0)  # the batches differ
    error = np.abs(draws.mean(0) - full)  # within 4 standard errors (plus float32 rounding)
    assert np.all(error < 4.0 * draws.std(0) / np.sqrt(K) + 1e-5 * np.abs(full))


def test_grid_trainer_lowers_the_objective_and_counts_generations(two_fold_problem):
    F = 2
    chip = chips.Chip(sigma=jnp.tile(jnp.array([[0.0, 3.0]]), (F, 1)))
    hyper = es.ESHyper(strategy="snes", population=8)
    settings = posterior.SNNSettings()
    state, advance = es.grid_trainer(jax.random.key(0), two_fold_problem, chip, hyper,
                                     settings, 5)
    objective = es.objective_fn(two_fold_problem, chip, hyper, settings)
    start = np.asarray(objective(es.mean_of(state, hyper, 96)[:, :, None]))
    for _ in range(4):
        state = advance(state)
    assert int(state.generation) == 20
    end = np.asarray(objective(es.mean_of(state, hyper, 96)[:, :, None]))
    assert np.mean(end) < np.mean(start)
    # SPSA's "population" is its antithetic pairs, two evaluations each
    assert es.population_size(hyper._replace(strategy="spsa", num_perturbations=3)) == 6


def test_an_external_chip_counts_every_presentation_exactly(two_fold_problem):
    from experiments.external_chip import NumpyChip

    F, M, pop, gens = 2, 1, 6, 3
    counter = chips.ExternalChip(NumpyChip(sigma=2.0), (F, M))
    hyper = es.ESHyper(strategy="snes", population=pop)
    state, advance = es.grid_trainer(jax.random.key(0), two_fold_problem, counter, hyper,
                                     posterior.SNNSettings(), gens)
    advance(state)
    n = two_fold_problem.train_spikes.shape[2]  # padded rows are presented too
    assert counter.queries == gens * pop * F * M
    assert counter.presentations == gens * pop * F * M * n


# The query-budget experiment cut to one ES (CMA-ES: the richest state, 8 members), two
# budget points below one MH step of its 32 chains (so no MH stage runs) and a generation
# per chunk; with KILL_AFTER=n the process SIGKILLs itself as chunk n + 1 starts, after n
# checkpoints: a real kill -9 at a known place, not a race.
KILL_SCRIPT = """
import os, signal, sys
from experiments import query_budget as q
q.BUDGETS["quick"], q.ES_METHODS, q.GENERATIONS_PER_CHUNK = (1e3, 1.2e4), ("cma_es",), 1
kill_after, real = int(os.environ.get("KILL_AFTER", "0")), q.es.grid_trainer

def grid_trainer(*args, **kwargs):
    state, advance = real(*args, **kwargs)
    calls = []

    def dying(state):
        calls.append(1)
        if kill_after and len(calls) > kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
        return advance(state)
    return state, dying

q.es.grid_trainer = grid_trainer
q.main(sys.argv[1:])
"""
SMALL = ["--set", "folds=2", "--set", "sigmas=[3]", "--set", "mh.num_chains=32",
         "--set", "es.tuned=false", "--set", "es.population=8", "--set", "sg.epochs=2",
         "--set", "sg.epochs_per_chunk=1"]


def test_an_es_run_killed_with_sigkill_resumes_to_identical_csvs(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    def start(out, *extra, kill_after=0):
        return subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, *SMALL, "--out", str(out),
                                 *extra], cwd=Path(__file__).resolve().parents[1],
                                env={**os.environ, "KILL_AFTER": str(kill_after)},
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def run(out, *extra, kill_after=0):
        proc = start(out, *extra, kill_after=kill_after)
        err = proc.communicate(timeout=300)[1]
        return proc.returncode, err

    clean, killed = tmp_path / "clean", tmp_path / "killed"
    reference = start(clean)  # beside the run to be killed (two cores, compiles are serial)
    code, err = run(killed, kill_after=3)
    assert code == -9, err[-2000:]
    err = reference.communicate(timeout=300)[1]
    assert reference.returncode == 0, err[-2000:]
    stage = killed / "checkpoints" / "query_budget__cma_es__"
    assert Path(f"{stage}state.npz").exists() and not Path(f"{stage}outcome.npz").exists()
    code, err = run(killed, "--resume")
    assert code == 0 and "[cma_es] resumed from" in err, err[-2000:]
    for name in ("query_budget.csv", "query_budget_summary.csv",
                 "query_budget_predictions.csv.gz"):
        assert (killed / name).read_bytes() == (clean / name).read_bytes(), name
