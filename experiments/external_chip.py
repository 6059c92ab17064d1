"""Chip-in-the-loop training of a chip with no JAX model: a NumPy simulator behind a callback.

The simulator below stands for real hardware: plain NumPy, no JAX, with its own
non-idealities (the paper's f_sigma plus frozen per-neuron threshold mismatch). MH trains it
through ``jax.pure_callback``, knowing nothing of its insides; the engine counts every
forward run (query) and sample presentation it costs. Writes external_chip.csv (test
accuracy of the chains' current weights against training queries) and external_chip.png.

    python -m experiments.external_chip [--set KEY=VALUE] [--out DIR]
"""

from __future__ import annotations

import itertools
import time

import jax
import numpy as np

from experiments import methods, tables
from mhsnn import bayes, chips, config, data, experiment, keys, metrics, posterior, snn
from mhsnn.io import write_csv
from mhsnn.mcmc.sample import Progress, Schedule

EXPERIMENT = "external_chip"
DEFAULTS = ["folds=2", "mh.num_chains=16", "mh.num_steps=6000", "mh.chunk_size=250"]


class NumpyChip:
    """A LIF chip simulated in NumPy: f_sigma on the membrane and per-neuron thresholds.

    ``__call__(weights [C, P], spikes [T, N, F]) -> counts [C, N, O]`` for the network with
    layer ``sizes`` (weights laid out as ``chips.ExternalChip`` documents).
    """

    def __init__(self, sigma: float = 2.0, threshold_spread: float = 0.0, seed: int = 0,
                 alpha: float = snn.ALPHA, sizes: tuple[int, ...] = chips.PAPER_NETWORK):
        rng = np.random.default_rng(seed)
        self.sigma, self.alpha, self.sizes = np.float32(sigma), np.float32(alpha), sizes
        self.thresholds = np.maximum(
            1.0 + threshold_spread * rng.standard_normal(chips.num_neurons(sizes)),
            0.05).astype(np.float32)

    def _layer(self, v, current, threshold):
        u = np.clip(self.alpha * v + (np.float32(1) - self.alpha) * current, -1e4, 1e4)
        s = self.sigma
        vt = u + (s / 2) * u**2 + (s / 6) * u**3
        spikes = (vt >= threshold).astype(np.float32)
        return np.where((vt >= 0) & (vt < threshold), vt, np.float32(0)), spikes

    def __call__(self, weights: np.ndarray, spikes: np.ndarray) -> np.ndarray:
        C, sizes = weights.shape[0], self.sizes
        ws, at = [], 0
        for a, b in itertools.pairwise(sizes):
            ws.append(weights[:, at:at + a * b].reshape(C, a, b))
            at += a * b
        T, N, _ = spikes.shape
        vs = [np.zeros((N, C, b), np.float32) for b in sizes[1:]]
        bounds = np.cumsum([0, *sizes[1:]])
        counts = np.zeros((N, C, sizes[-1]), np.float32)
        for t in range(T):
            s = spikes[t]
            for i, w in enumerate(ws):
                if i == 0:  # one product for every weight set: [N, F] x [F, C * H1]
                    current = (s @ w.transpose(1, 0, 2).reshape(w.shape[1], -1)).reshape(
                        N, C, w.shape[2])
                else:
                    current = np.einsum("nch,chk->nck", s, w)
                vs[i], s = self._layer(vs[i], current, self.thresholds[bounds[i]:bounds[i + 1]])
            counts += s
        return counts.transpose(1, 0, 2)


def run(cfg, out, mode) -> list[dict]:
    t0 = time.perf_counter()
    ds = experiment.load_data(cfg, folds=5)
    root = jax.random.key(cfg.seed)
    splits = data.kfold_splits(ds.y, 5, cfg.seed)[: cfg.folds]
    problem = posterior.make_problem(ds, splits, root, cfg.snn.time_steps, EXPERIMENT)
    settings = methods.settings_of(cfg, problem)
    out.mkdir(parents=True, exist_ok=True)
    F, C, m = len(splits), cfg.mh.num_chains, cfg.mh
    simulator = NumpyChip(sigma=2.0, threshold_spread=0.2, seed=cfg.seed, sizes=settings.sizes)
    train_chip = chips.ExternalChip(simulator, (F, C))
    hyper = bayes.MHHyper(m.step_size, m.lik_std, m.prior_std, m.init_mean, m.init_std)
    schedule = Schedule.with_draws(m.num_steps, config.burn_in_steps(m),
                                   m.num_draws)
    # Test queries go to a second handle on the same chip so that training queries (the
    # cost of learning) are counted apart from evaluation queries.
    eval_chip = chips.ExternalChip(simulator, (F, C))
    state, advance = bayes.setup(keys.derive(root, "method", EXPERIMENT, "mh"), problem,
                                 train_chip, hyper, settings, schedule, m.chunk_size,
                                 observe=False)
    progress = Progress(EXPERIMENT, schedule, F * C)
    test_probs = jax.jit(lambda th: posterior.test_probabilities(th, problem, eval_chip,
                                                                  settings))
    rows = []
    wall = time.perf_counter()
    while int(state.step) < schedule.num_steps:
        state = advance(state)
        progress(state)
        position = state.inner.position
        probs = np.asarray(test_probs(position))
        accs, pooled = [], []
        for f in range(F):
            mask, labels = tables.test_split(problem, f)
            accs += [metrics.accuracy(p[mask], labels) for p in probs[f]]
            pooled.append(metrics.accuracy(probs[f].mean(0)[mask], labels))
        rows.append({"step": int(state.step), "train_queries": train_chip.queries,
                     "train_presentations": train_chip.presentations,
                     "test_acc_chains_mean": float(np.mean(accs)),
                     "test_acc_chains_pooled": float(np.mean(pooled)),
                     "wall_s": time.perf_counter() - wall})
    chain_steps = schedule.num_steps * F * C
    rate = chain_steps / (time.perf_counter() - wall)
    write_csv(out / "external_chip.csv", rows)
    _figure(rows, out / "external_chip.png")
    experiment.write_manifest(out, cfg, EXPERIMENT, time.perf_counter() - t0, None,
                          {"callback_chain_steps_per_s": rate,
                           "train_queries": train_chip.queries,
                           "train_presentations": train_chip.presentations,
                           "eval_queries": eval_chip.queries})
    print(f"{train_chip.queries:,} training queries ({train_chip.presentations:,} sample "
          f"presentations); final test accuracy {rows[-1]['test_acc_chains_mean']:.3f} "
          f"(chains' mean), {rows[-1]['test_acc_chains_pooled']:.3f} (pooled); "
          f"{rate:,.0f} chain-steps/s through the callback")
    return rows


def _figure(rows, path) -> None:
    from mhsnn.plots import plt, save

    fig, ax = plt.subplots(figsize=(5.5, 4))
    q = [r["train_queries"] for r in rows]
    ax.plot(q, [r["test_acc_chains_mean"] for r in rows], "o-", label="chains' weights (mean)")
    ax.plot(q, [r["test_acc_chains_pooled"] for r in rows], "s-", label="pooled predictive")
    ax.set(xscale="log", xlabel="training queries (forward runs on the chip)",
           ylabel="test accuracy", title="MH on a NumPy chip through a callback", ylim=(0.3, 1))
    ax.legend()
    save(fig, path)


def main(argv=None) -> None:
    experiment.cli(run, __doc__, argv, DEFAULTS)


if __name__ == "__main__":
    main()
