"""Tuning run for MH's c (proposal std), v (likelihood std) and the initial scale.

docs/paper.md does not give c, v or p. This grid is run at sigma = 0 on the TRAINING rows of the
first two outer folds only: each outer training set is split again (stratified 80/20) and
accuracy is measured on that inner validation part, never on an outer test fold. All
combinations x chains run as one jitted call (hyper-parameters are array axes).

    python -m experiments.tune_mh            # writes results/tuning/mh_tuning.csv
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from experiments import tables
from mhsnn import bayes, chips, data, keys, metrics, posterior, snn
from mhsnn.io import atomic_write_text
from mhsnn.mcmc.sample import Progress, Schedule

GRID = {"step_size": [0.2, 0.5, 1.0], "lik_std": [0.01, 0.02, 0.05], "init_std": ["c", 1.0]}


def inner_splits(y: np.ndarray, num_outer: int, seed: int) -> list[data.Split]:
    """Stratified 80/20 splits inside the training rows of the first outer folds."""
    out = []
    for outer in data.kfold_splits(y, 5, seed)[:num_outer]:
        inner = data.subset_splits(y[outer.train], int(0.8 * len(outer.train)), 1, seed)[0]
        out.append(data.Split(outer.train[inner.train], outer.train[inner.test]))
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=10000)
    ap.add_argument("--chains", type=int, default=8)
    ap.add_argument("--out", type=Path, default=Path("results/tuning"))
    args = ap.parse_args(argv)

    ds = data.load_breast_cancer()
    splits = inner_splits(ds.y, num_outer=2, seed=0)
    root = jax.random.key(0)
    problem = posterior.make_problem(ds, splits, root, name="tune_mh")
    combos = [dict(zip(GRID, vals)) for vals in itertools.product(*GRID.values())]
    for c in combos:
        c["init_std"] = c["step_size"] if c["init_std"] == "c" else c["init_std"]
    F, C = len(splits), args.chains

    def column(name):
        return jnp.tile(jnp.repeat(jnp.array([c[name] for c in combos], jnp.float32), C), (F, 1))

    chip = chips.Chip(sigma=jnp.zeros((F, len(combos) * C)))
    hyper = bayes.MHHyper(step_size=column("step_size"), lik_std=column("lik_std"),
                          prior_std=5.0, init_mean=0.0, init_std=column("init_std"))
    schedule = Schedule.with_draws(args.steps, None, 50)
    settings = posterior.SNNSettings(layout=snn.default_layout())
    t0 = time.perf_counter()
    state = bayes.run(keys.derive(root, "method", "tune_mh", "mh"), problem, chip, hyper, settings,
                      schedule, 1000, Progress("tune-mh", schedule, F * len(combos) * C))
    out = bayes.evaluate(state, problem, chip, settings, schedule,
                         keys.derive(root, "evaluate", "tune_mh", "mh"))
    wall = time.perf_counter() - t0

    rows = []
    for i, combo in enumerate(combos):
        sl = slice(i * C, (i + 1) * C)
        acc_mean, acc_bma = [], []
        for f in range(F):
            m, labels = tables.test_split(problem, f)
            acc_mean += [metrics.accuracy(p[m], labels) for p in out.wstar_probs[f, sl]]
            acc_bma.append(metrics.accuracy(out.bma_probs[f, sl].mean(0)[m], labels))
        rows.append({**combo, "prior_std": 5.0, "steps": args.steps, "chains": C,
                     "val_acc_mean_w": np.mean(acc_mean), "val_acc_bma": np.mean(acc_bma),
                     "acceptance": out.acceptance_rate[:, sl].mean()})
    lines = [",".join(rows[0])] + [",".join(f"{v:.4g}" if isinstance(v, float) else str(v)
                                            for v in r.values()) for r in rows]
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "mh_tuning.csv", "\n".join(lines) + "\n")
    best = max(rows, key=lambda r: r["val_acc_mean_w"])
    print(f"wall {wall:.0f}s; best by W* validation accuracy: {best}")


if __name__ == "__main__":
    main()
