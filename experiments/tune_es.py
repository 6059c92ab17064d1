"""Tuning run for the evolution strategies and SPSA, at the tuning budget MH had.

The same protocol as ``tune_mh``: sigma = 0, the TRAINING rows of the first two outer folds
only, each split again (stratified 80/20), scored on that inner validation part, never on
an outer test fold. Every strategy starts its search mean where SG starts (``sg.init_*``),
as in ``query_budget``, and minimises MH's negative log posterior (v = 0.02, p = 5).

Equal budget: MH's tuning grid was 18 settings x 8 chains x 10,001 forward passes of the
training rows per inner split, 1.44M weight sets. Each strategy here gets 9 settings x 2
seeds x ``PER_RUN`` = 80,000 weight sets (the same 1.44M per inner split), and is scored
by the validation accuracy of its search mean at the end. Tuned per strategy:

    snes, cma_es   initial std {0.3, 1, 3} x population {16, 64, 256}
    open_es        initial std {0.1, 0.3, 1} x Adam learning rate {0.01, 0.05, 0.2} (pop. 64)
    spsa           perturbation c {0.1, 0.5, 2} x Adam learning rate {0.01, 0.05, 0.2}
                   (4 antithetic pairs per step)

The winners are ``mhsnn.es.TUNED``, which ``query_budget`` uses unless ``es.tuned=false``.

    python -m experiments.tune_es            # writes results/tuning/es_tuning.csv
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import jax
import numpy as np

from experiments import tables
from experiments.tune_mh import inner_splits
from mhsnn import chips, data, es, keys, metrics, posterior, sgd, snn, trainers
from mhsnn.io import write_csv

PER_RUN = 80_000  # weight sets one setting and seed may present (x the inner training rows)
SEEDS = 2
GRIDS = {
    "snes": {"std_init": [0.3, 1.0, 3.0], "population": [16, 64, 256]},
    "cma_es": {"std_init": [0.3, 1.0, 3.0], "population": [16, 64, 256]},
    "open_es": {"std_init": [0.1, 0.3, 1.0], "learning_rate": [0.01, 0.05, 0.2]},
    "spsa": {"std_init": [0.1, 0.5, 2.0], "learning_rate": [0.01, 0.05, 0.2]},
}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--strategies", nargs="+", default=list(GRIDS), choices=list(GRIDS))
    ap.add_argument("--per-run", type=int, default=PER_RUN,
                    help="weight sets per setting and seed (default: MH's tuning budget)")
    ap.add_argument("--out", type=Path, default=Path("results/tuning"))
    args = ap.parse_args(argv)

    ds = data.load_breast_cancer()
    splits = inner_splits(ds.y, num_outer=2, seed=0)
    root = jax.random.key(0)
    problem = posterior.make_problem(ds, splits, root, name="tune_es")
    settings = posterior.SNNSettings(layout=snn.default_layout())
    F, dim = len(splits), snn.num_weights(settings.sizes)
    chip = chips.Chip(sigma=np.zeros((F, SEEDS), np.float32))
    sg = trainers.sg_hyper()  # the SG start the experiments use (its tuned init)
    n_train = int(np.asarray(problem.train_mask).sum(-1).max())
    rows = []
    for strategy in args.strategies:
        grid = GRIDS[strategy]
        for values in itertools.product(*grid.values()):
            hyper = es.ESHyper(strategy, **dict(zip(grid, values)))
            generations = max(1, args.per_run // es.population_size(hyper))
            k_run = keys.derive(root, "method", "tune_es", strategy)
            starts = jax.vmap(lambda k: sgd.init_theta(k, sg, settings.sizes))(
                jax.random.split(jax.random.fold_in(k_run, 1), F * SEEDS)).reshape(
                    F, SEEDS, dim)
            t0 = time.perf_counter()
            state, advance = es.grid_trainer(k_run, problem, chip, hyper, settings,
                                             generations, starts)
            state = advance(state)
            mean = es.mean_of(state, hyper, dim)
            probs = np.asarray(sgd.deployed_probabilities(
                mean, problem, chip, settings, keys.derive(root, "evaluate", "tune_es",
                                                           strategy)))
            accs = []
            for f in range(F):
                mask, labels = tables.test_split(problem, f)
                accs += [metrics.accuracy(p[mask], labels) for p in probs[f]]
            rows.append({"strategy": strategy, **dict(zip(grid, values)),
                         "generations": generations, "seeds": SEEDS,
                         "presentations_per_run": generations * es.population_size(hyper)
                         * n_train,
                         "val_accuracy": float(np.mean(accs)),
                         "val_accuracy_std": float(np.std(accs)),
                         "best_member_objective": float(np.mean(np.asarray(
                             state.best_fitness))),
                         "wall_s": round(time.perf_counter() - t0, 2)})
            print(rows[-1], flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(args.out / "es_tuning.csv", rows)
    for strategy in args.strategies:
        best = max((r for r in rows if r["strategy"] == strategy),
                   key=lambda r: r["val_accuracy"])
        print(f"best {strategy}: {best}")


if __name__ == "__main__":
    main()
