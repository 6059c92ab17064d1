"""Which model-free method reaches a given accuracy with the fewest chip queries?

Test accuracy against cumulative chip sample presentations (one weight set on one training
sample = one presentation), at each sigma of the config (default 0 and 3), 5 folds, on the
config's network (default the paper's 30-3-2; ``--set "snn.hidden=[32]"`` for a wide one):

    mh_mean / mh_bma    random-walk MH (Algorithm 1, c = 0.5): one run per budget point,
                        ``mh.num_chains`` chains with half burn-in; W* and the BMA
    rw_adapt_bma        random walk with its step adapted in burn-in (the sampler experiment)
    snes, open_es,      evolution strategies (evosax) and SPSA, one run each, the search
    cma_es, spsa        mean recorded at every budget point (anytime)
    mezo                the driven methods of ``DRIVEN`` (``mhsnn.methods``): one run per
                        cell through ``trainers.fit``, started where the ES start, the
                        positions at every budget point kept by the driver (``at_budgets``)
    sg_in_loop          surrogate-gradient Adam, forward on the chip, after every 10 epochs
    ann_convert         ANN-to-SNN conversion (mhsnn.convert): no chip query at all; its
                        presentations are the offline model's (Adam steps x rows)

Hyper-parameters: MH's are the tuned ones (results/tuning/mh_tuning.csv); each ES's and
SPSA's are ``mhsnn.es.TUNED`` (``es.tuned=true``, the default): chosen by
``experiments/tune_es.py`` on inner validation splits of training rows at MH's tuning
budget (results/tuning/es_tuning.csv: initial std x population or learning rate, 9
settings each). Every strategy minimises MH's negative log posterior and starts its mean
where the SG baseline starts (``sg.init_*``: hidden weights ~ N(0.3, 0.3^2), output
~ N(4, 2^2)): from MH's zero-mean start the network is silent, every member scores the
same, and the prior term pulls the search mean further into silence (measured: every
strategy but SNES stayed at the silent network's 0.37 at sigma 0). The quick preset on a
network of more than ``WIDE_WEIGHTS`` weights stops at 3e7 presentations (a forward costs
about 10x the paper network's there), and there full CMA-ES (a d x d covariance and its
eigendecomposition every generation: ~1M entries at d = 1,024) gives way to sep-CMA-ES
(diagonal covariance), run with CMA-ES's tuned initial std and population (not re-tuned).
Writes query_budget.csv (method, network, sigma, fold, presentations, test_accuracy),
query_budget_summary.csv, query_budget_predictions.csv.gz (every test prediction of each
method at its last budget point, with its ``presentations``; see tables.prediction_rows)
and query_budget.png.

    python -m experiments.query_budget [--preset quick|paper|gpu] [--set KEY=VALUE] [--out DIR] [--resume | --fresh]
"""

from __future__ import annotations

import dataclasses
import sys

import jax.numpy as jnp
import numpy as np

from experiments import methods, runners, tables
from mhsnn import convert, data, es, experiment, keys, posterior, sgd, snn, trainers
from mhsnn.io import write_csv
from mhsnn.runs import run_once, run_stage

EXPERIMENT = "query_budget"
DEFAULTS = ["sigmas=[0, 3]", "methods=['mh', 'sg_offline', 'sg_in_loop', 'ann_convert']",
            "sg.seeds=1"]
BUDGETS = {"quick": (3e5, 1e6, 3e6, 1e7, 3e7, 1e8), "paper": (3e5, 1e6, 3e6, 1e7, 3e7, 1e8,
                                                              3e8, 1e9)}
ES_METHODS = ("snes", "open_es", "cma_es", "spsa")
DRIVEN = ("mezo",)  # driven methods (mhsnn.methods), their untuned defaults
WIDE_WEIGHTS, WIDE_MAX_BUDGET = 512, 3e7  # quick preset on a wider network: budgets <= 3e7
GENERATIONS_PER_CHUNK = 10
THRESHOLDS = (0.85, 0.88)


def run(cfg, out, mode) -> list[dict]:
    run_ = experiment.start(out, cfg, EXPERIMENT, mode)
    stages, ds, key = run_.stages, run_.dataset, run_.key
    splits = data.kfold_splits(ds.y, cfg.folds, cfg.seed)
    problem = posterior.make_problem(ds, splits, key, cfg.snn.time_steps, EXPERIMENT)
    settings = methods.settings_of(cfg, problem)
    network = "-".join(map(str, settings.sizes))
    n_train = int(np.asarray(problem.train_mask).sum(-1).max())
    budgets = BUDGETS[cfg.preset]
    if cfg.preset == "quick" and snn.num_weights(settings.sizes) > WIDE_WEIGHTS:
        budgets = tuple(b for b in budgets if b <= WIDE_MAX_BUDGET)  # ~10x the forward cost
    F, S = problem.train_spikes.shape[0], len(cfg.sigmas)
    rows, last = [], {}

    def record(method, presentations, probs):  # probs [F, S, R, Nte, O]
        last[method] = (presentations, probs)
        pooled = method.endswith("_bma")
        for r in tables.cell_rows(method, probs, problem, cfg.sigmas, pooled):
            rows.append({"method": method, "network": network, "sigma": r["sigma"],
                         "fold": r["fold"], "presentations": int(presentations),
                         "test_accuracy": r["test_accuracy"]})

    # MH: a proper run (half burn-in) per budget point.
    for sampler in ("rw", "rw_adapt"):
        for b in budgets:
            steps = int(b // (cfg.mh.num_chains * n_train)) - 1
            if steps < 4:
                continue
            run_cfg = dataclasses.replace(cfg, mh=dataclasses.replace(
                cfg.mh, num_steps=steps, chunk_size=min(cfg.mh.chunk_size, steps),
                num_draws=min(cfg.mh.num_draws, steps // 2)))
            name = f"{sampler}_{steps}"
            outcome = runners.run_mh(stages, name, run_cfg, problem,
                                    keys.derive(key, "method", EXPERIMENT, name),
                                    keys.derive(key, "evaluate", EXPERIMENT, name),
                                    sampler=sampler)
            used = methods.training_presentations("mh", run_cfg, n_train)
            prefix = "mh" if sampler == "rw" else sampler
            if sampler == "rw":
                record(f"{prefix}_mean", used, outcome.wstar_probs)
            record(f"{prefix}_bma", used, outcome.bma_probs)

    # Evolution strategies and SPSA: one anytime run each, started where SG starts.
    dim = snn.num_weights(settings.sizes)
    g = cfg.sg
    sg_hyper = trainers.sg_hyper(cfg)
    wide = dim > WIDE_WEIGHTS
    for name in (("sep_cma_es" if wide and m == "cma_es" else m) for m in ES_METHODS):
        hyper = trainers.es_hyper(cfg, name)
        chip = methods.grid_chip(F, cfg.sigmas, 1)
        per_gen = es.population_size(hyper) * n_train
        chunk_presentations = per_gen * GENERATIONS_PER_CHUNK
        k_run = keys.derive(key, "method", EXPERIMENT, name)
        starts = runners.sg_starts(k_run, F, S, settings.sizes, cfg)
        state0, advance = es.grid_trainer(k_run, problem, chip, hyper, settings,
                                          GENERATIONS_PER_CHUNK, starts)
        init = (state0, jnp.zeros((len(budgets), F, S, dim)), jnp.zeros(len(budgets)))

        def step(state, advance=advance, hyper=hyper, per_gen=per_gen):
            # (a resumed state comes back as NumPy arrays: no .at until they are jnp again)
            es_state, snaps, taken = advance(state[0]), jnp.asarray(state[1]), jnp.asarray(state[2])
            used = int(es_state.generation) * per_gen
            mean = es.mean_of(es_state, hyper, dim)
            for i, b in enumerate(budgets):
                if used >= b and float(taken[i]) == 0:
                    snaps, taken = snaps.at[i].set(mean), taken.at[i].set(used)
            return es_state, snaps, taken

        def finish(state, chip=chip, name=name):
            k_eval = keys.derive(key, "evaluate", EXPERIMENT, name)
            return {"probs": np.stack([np.asarray(sgd.deployed_probabilities(
                        snap, problem, chip, settings, k_eval)) for snap in state[1]]),
                    "used": np.asarray(state[2])}

        def progress(state, name=name, per_gen=per_gen):  # a line per budget point reached
            used = int(state[0].generation) * per_gen
            if used in np.asarray(state[2]):
                print(f"[{name}] {used:.3g} presentations per cell", file=sys.stderr,
                      flush=True)

        total = budgets[-1] + chunk_presentations
        outcome = stages.run(name, lambda init=init: init, step,
                             lambda s, total=total, per_gen=per_gen:
                             int(s[0].generation) * per_gen >= total - 1, finish, progress)
        for i, used in enumerate(outcome["used"]):
            record(name, used, outcome["probs"][i][:, :, None])

    # The driven methods: one run per cell, its positions at every budget point (the mean of
    # its members: an optimiser's one set).
    chip = methods.grid_chip(F, cfg.sigmas, 1)
    for name in DRIVEN:
        k_run = keys.derive(key, "method", EXPERIMENT, name)
        starts = runners.sg_starts(k_run, F, S, settings.sizes, cfg)
        outcome = run_once(stages, name, lambda name=name, k_run=k_run, starts=starts:
                           _driven(name, k_run, problem, cfg, settings, budgets, starts),
                           _snapshots(len(budgets), F, S, dim))
        k_eval = keys.derive(key, "evaluate", EXPERIMENT, name)
        for i in range(len(budgets)):
            used = outcome["used"][i]
            if used.min() > 0:  # every cell reached this point
                probs = sgd.deployed_probabilities(jnp.asarray(outcome["snaps"][i]), problem,
                                                   chip, settings, k_eval)
                record(name, int(used.max()), np.asarray(probs)[:, :, None])

    # SG in the loop: the weights after every chunk of epochs.
    chip = methods.grid_chip(F, cfg.sigmas, g.seeds)
    state, advance = sgd.grid_trainer(keys.derive(key, "method", EXPERIMENT, "sg_in_loop"),
                                      problem, chip, sg_hyper, True, settings,
                                      g.epochs_per_chunk)
    k_eval = keys.derive(key, "evaluate", EXPERIMENT, "sg_in_loop")

    def record_sg(state):  # the weights after every chunk, on the one chunk driver
        probs = np.asarray(sgd.deployed_probabilities(state.theta, problem, chip, settings,
                                                      k_eval))
        record("sg_in_loop", int(state.epoch.min()) * n_train,
               probs.reshape(F, S, g.seeds, *probs.shape[2:]))

    run_stage(None, "sg_in_loop", lambda: state, advance,
              lambda s: int(s.epoch.min()) >= g.epochs, lambda s: s, record_sg)

    # ANN-to-SNN conversion: trained offline on the model, no chip query; its presentations
    # are the model's (Adam steps x training rows).
    if "ann_convert" in cfg.methods:
        outcome = runners.run_ann(stages, "ann_convert", cfg, problem,
                                  keys.derive(key, "method", EXPERIMENT, "ann_convert"),
                                  keys.derive(key, "evaluate", EXPERIMENT, "ann_convert"))
        record("ann_convert", convert.model_presentations(trainers.ann_hyper(cfg), n_train),
               outcome.probs)

    summary = summarise(rows, budgets)
    write_csv(out / "query_budget.csv", rows)
    write_csv(out / "query_budget_summary.csv", summary)
    tables.write_predictions(out / "query_budget_predictions.csv.gz", [
        row for method, (used, probs) in last.items() for row in tables.prediction_rows(
            {method: probs}, problem, cfg.sigmas, tables.probability_name(cfg),
            {"network": network, "presentations": int(used)})])
    _figure(rows, out / "query_budget.png", network)
    experiment.write_manifest(out, cfg, EXPERIMENT, run_.elapsed(), stages)
    for r in summary:
        print("  ".join(f"{k}={v}" for k, v in r.items()))
    return rows


def _driven(name, k_run, problem, cfg, settings, budgets, starts) -> dict[str, np.ndarray]:
    """A driven method run once per cell (fold x sigma) to the last budget
    (``runners.fit_cells``): its members' mean at each budget point ([K, F, S, P]) and the
    presentations then ([K, F, S])."""
    out = _snapshots(len(budgets), *starts.shape)
    snaps, used = out["snaps"], out["used"]
    fits = runners.fit_cells(name, k_run, problem, cfg.sigmas, settings, cfg, budgets[-1],
                             starts=starts, at_budgets=budgets)
    for (f, s), (_, points) in fits.items():
        for i, b in enumerate(budgets):
            within = [u for u in points if u <= b]
            if within:
                used[i, f, s] = max(within)
                snaps[i, f, s] = points[max(within)].mean(0)
    return out


def _snapshots(K: int, F: int, S: int, P: int) -> dict[str, np.ndarray]:
    """Empty positions at K budget points per cell and the presentations then."""
    return {"snaps": np.zeros((K, F, S, P), np.float32), "used": np.zeros((K, F, S), np.int64)}


def _curves(rows):
    """(method, sigma) -> sorted [(presentations, mean accuracy over folds, std)]."""
    out: dict[tuple, dict[int, list[float]]] = {}
    for r in rows:
        out.setdefault((r["method"], r["sigma"]), {}).setdefault(
            r["presentations"], []).append(r["test_accuracy"])
    return {k: sorted((p, float(np.mean(a)), float(np.std(a))) for p, a in v.items())
            for k, v in out.items()}


def summarise(rows, budgets) -> list[dict]:
    """Per method and sigma: presentations to reach each threshold (mean over folds), and
    the accuracy at the last point within each budget of 1e6, 1e7 and 1e8 (blank for a
    budget beyond the run's last budget point: the quick preset's wide network stops at
    3e7)."""
    out = []
    for (method, sigma), curve in _curves(rows).items():
        row = {"method": method, "sigma": sigma}
        for t in THRESHOLDS:
            hit = next((p for p, m, _ in curve if m >= t), None)
            row[f"presentations_to_{t:g}"] = hit if hit is not None else "not reached"
        for b in (1e6, 1e7, 1e8):
            within = [m for p, m, _ in curve if p <= b * 1.05]
            row[f"accuracy_at_{b:.0e}"] = (round(within[-1], 4) if within
                                           and b <= budgets[-1] * 1.05 else "")
        row["final_presentations"], row["final_accuracy"] = curve[-1][0], round(curve[-1][1], 4)
        out.append(row)
    return out


def _figure(rows, path, network) -> None:
    from mhsnn.plots import STYLE, plt, save

    curves = _curves(rows)
    sigmas = sorted({s for _, s in curves})
    fig, axes = plt.subplots(1, len(sigmas), figsize=(6 * len(sigmas), 4.2), sharey=True,
                             squeeze=False)
    for ax, sigma in zip(axes[0], sigmas):
        for i, method in enumerate(dict.fromkeys(m for m, _ in curves)):
            c = np.array(curves[(method, sigma)])
            color, marker, ls = STYLE.get(method, (f"C{i % 10}", "o", "-"))
            ax.plot(c[:, 0], c[:, 1], marker=marker, ls=ls, color=color, label=method, ms=3)
            ax.fill_between(c[:, 0], c[:, 1] - c[:, 2], c[:, 1] + c[:, 2], color=color,
                            alpha=0.12)
        for t in THRESHOLDS:
            ax.axhline(t, color="grey", lw=0.7, ls=":")
        ax.set(xscale="log", xlabel="chip sample presentations per cell (training)",
               title=f"{network}, sigma = {sigma:g}", ylim=(0.3, 1.0))
    axes[0, 0].set_ylabel("test accuracy (mean, band: std over folds)")
    axes[0, -1].legend(fontsize=7)
    save(fig, path)


def main(argv=None) -> None:
    experiment.cli(run, __doc__, argv, DEFAULTS)


if __name__ == "__main__":
    main()
