"""Chip-in-the-loop training of a chip with no JAX model: a NumPy simulator behind a callback.

The simulator below stands for real hardware: plain NumPy, no JAX, with its own
non-idealities (the paper's f_sigma plus frozen per-neuron threshold mismatch). MH trains it
through ``jax.pure_callback``, knowing nothing of its insides; the engine counts every
forward run (query) and sample presentation it costs. Writes external_chip.csv (test
accuracy of the chains' current weights against training queries, after every chunk),
external_chip.png and a manifest with the chip's fault and retry counts. Checkpointed like
every experiment (``--resume``); a chip fault that persists after ``chip.retries`` stops
the run with exit code 3 at its last whole chunk.

    python -m experiments.external_chip [--set KEY=VALUE] [--out DIR]

``--set chip.path=module:callable`` (and ``chip.args={...}``) runs a user's chip instead of
the simulator (docs/your-chip.md): it first answers one counted checking query (one weight
set on two rows, ``train_chip_presentations`` in the manifest includes it), and the
manifest records its import path and declared sizes.
"""

from __future__ import annotations

import itertools
import time

import jax
import jax.numpy as jnp
import numpy as np

from experiments import methods
from mhsnn import bayes, chips, config, data, experiment, keys, posterior, snn, trainers
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


def make_chip(cfg, sizes):
    """The chip of ``chip.path`` (a user's, ``chips.load``), else the simulated hardware:
    f_sigma with sigma = 2 and 20% threshold mismatch."""
    if cfg.chip.path:
        try:
            return chips.load(cfg.chip.path, cfg.chip.args, sizes)
        except ValueError as err:
            raise config.ConfigError(str(err)) from None
    return NumpyChip(sigma=2.0, threshold_spread=0.2, seed=cfg.seed, sizes=sizes)


def chip_record(cfg, chip, sizes) -> dict:
    """The manifest's record of a user's chip (``chips.source``), or nothing."""
    return {"chip": chips.source(cfg.chip.path, cfg.chip.args, chip, sizes)} \
        if cfg.chip.path else {}


def external(fn, cfg, shape, sizes=None) -> chips.ExternalChip:
    """``fn`` behind the engine's fault handling, with the config's retries and timeout;
    a user's chip (``chip.path``) answers one checking query first (``preflight``)."""
    c = cfg.chip
    return chips.ExternalChip(fn, shape, retries=c.retries, timeout_s=c.timeout_s,
                              backoff_s=c.backoff_s,
                              sizes=None if sizes is None else tuple(sizes))


def run(cfg, out, mode) -> list[dict]:
    run_ = experiment.start(out, cfg, EXPERIMENT, mode, folds=5)
    stages, ds, root = run_.stages, run_.dataset, run_.key
    splits = data.kfold_splits(ds.y, 5, cfg.seed)[: cfg.folds]
    problem = posterior.make_problem(ds, splits, root, cfg.snn.time_steps, EXPERIMENT)
    settings = methods.settings_of(cfg, problem)
    F, C, m = len(splits), cfg.mh.num_chains, cfg.mh
    simulator = make_chip(cfg, settings.sizes)
    train_chip = external(simulator, cfg, (F, C), settings.sizes)
    if cfg.chip.path:  # a user's chip of the wrong size or layout stops here, in one line
        train_chip.preflight(np.asarray(problem.train_spikes[0]), settings.sizes[-1],
                             snn.num_weights(settings.sizes))
    hyper = trainers.mh_hyper(cfg)
    schedule = Schedule.with_draws(m.num_steps, config.burn_in_steps(m), m.num_draws)
    chunk = min(m.chunk_size, m.num_steps)
    # Test queries go to a second handle on the same chip so that training queries (the
    # cost of learning) are counted apart from evaluation queries.
    eval_chip = external(simulator, cfg, (F, C))
    state0, advance_chains = bayes.setup(keys.derive(root, "method", EXPERIMENT, "mh"),
                                         problem, train_chip, hyper, settings, schedule,
                                         chunk, observe=False)
    num_chunks = -(-schedule.num_steps // chunk)
    labels, mask = problem.test_labels, problem.test_mask

    def accuracies(position):  # (chains' mean, pooled) test accuracy of the current weights
        probs = posterior.test_probabilities(position, problem, eval_chip, settings)
        right = (jnp.argmax(probs, -1) == labels[:, None]) * mask[:, None]  # [F, C, N]
        per_chain = right.sum(-1) / mask.sum(-1)[:, None]
        pooled = ((jnp.argmax(probs.mean(1), -1) == labels) * mask).sum(-1) / mask.sum(-1)
        return jnp.stack([per_chain.mean(), pooled.mean()])

    @jax.jit
    def score(state, table):
        index = (state.step + chunk - 1) // chunk - 1
        return table.at[index].set(accuracies(state.inner.position))

    def advance(carry):
        state, table = carry
        state = advance_chains(state)
        return state, score(state, table)

    progress = Progress(EXPERIMENT, schedule, F * C)
    wall = time.perf_counter()
    table = stages.run(
        "mh", lambda: (state0, jnp.zeros((num_chunks, 2), jnp.float32)), advance,
        lambda c: int(c[0].step) >= schedule.num_steps,
        lambda c: {"table": np.asarray(c[1])}, lambda c: progress(c[0]))["table"]
    rows = []
    for i, (acc_mean, acc_pooled) in enumerate(table):
        step = min((i + 1) * chunk, schedule.num_steps)
        queries = F * C * (step + 1)  # the start, then one proposal per chain and step
        rows.append({"step": step, "train_queries": queries,
                     "train_presentations": queries * problem.train_spikes.shape[2],
                     "test_acc_chains_mean": float(acc_mean),
                     "test_acc_chains_pooled": float(acc_pooled)})
    wall = time.perf_counter() - wall
    write_csv(out / "external_chip.csv", rows)
    _figure(rows, out / "external_chip.png")
    faults = {f"train_{k}": v for k, v in train_chip.fault_counts().items()}
    faults.update({f"eval_{k}": v for k, v in eval_chip.fault_counts().items()})
    experiment.write_manifest(out, cfg, EXPERIMENT, run_.elapsed(), stages,
                              {"callback_chain_steps_per_s": schedule.num_steps * F * C / wall,
                               "train_queries": rows[-1]["train_queries"],
                               "train_presentations": rows[-1]["train_presentations"],
                               **faults, **chip_record(cfg, simulator, settings.sizes)})
    print(f"{rows[-1]['train_queries']:,} training queries ({rows[-1]['train_presentations']:,} "
          f"sample presentations); final test accuracy {rows[-1]['test_acc_chains_mean']:.3f} "
          f"(chains' mean), {rows[-1]['test_acc_chains_pooled']:.3f} (pooled); "
          f"{train_chip.faults} chip faults, {train_chip.retried} retries")
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
