"""Which sampler makes the most of each chip query? Eight samplers at equal chip presentations.

On the config's network (default: the paper's 30-3-2) and data, 5 folds, at each sigma of
the config (default 0 and 3), every sampler gets the same chip budget: ``mh.num_chains``
chains x ``mh.num_steps`` training-set forwards per cell (PT: ``num_steps / K`` steps of K
replicas). The samplers (``mhsnn.bayes.SAMPLERS`` and PT):

    rw        random-walk MH, fixed step c (Algorithm 1, the paper)
    rw_adapt  random walk, step adapted during burn-in toward 0.234 acceptance per cell
    rw_adapt_diag  and a diagonal proposal covariance learnt from the cell's chains (Haario)
    rw_adapt_full  and a full one (a Cholesky factor per cell, refreshed every 25 burn-in steps)
    demc      differential evolution, the 8 chains of a cell being the population
    mala      Langevin proposals from the IDEAL model's surrogate gradient, accepted on the chip
    hmc       Hamiltonian proposals (3 leapfrog steps) likewise; step adapted like mala
    pt        non-reversible parallel tempering (``pt.num_temperatures`` replicas)

Per (sampler, sigma, fold): ESS of the log density across chains (the permutation-invariant
summary) and ESS per million chip presentations, its R-hat, acceptance, the step the kept
draws used, test accuracy of W* and of the BMA, model-gradient evaluations, stage wall time.
Writes samplers.csv, samplers_summary.csv, samplers_predictions.csv.gz (every test
prediction, see tables.prediction_rows) and samplers.png.

    python -m experiments.samplers [--preset quick|paper|gpu] [--set KEY=VALUE] [--out DIR] [--resume | --fresh]
"""

from __future__ import annotations

import dataclasses

import numpy as np

from experiments import methods, runners, tables
from mhsnn import data, experiment, keys, posterior
from mhsnn.io import write_csv

EXPERIMENT = "samplers"
DEFAULTS = ["sigmas=[0, 3]", "mh.num_steps=4000", "mh.num_draws=50", "pt.num_temperatures=4"]
SAMPLERS = ("rw", "rw_adapt", "rw_adapt_diag", "rw_adapt_full", "demc", "mala", "hmc", "pt")
NUM_LEAPFROG = 3


def run(cfg, out, mode) -> list[dict]:
    run_ = experiment.start(out, cfg, EXPERIMENT, mode)
    stages, ds, key = run_.stages, run_.dataset, run_.key
    splits = data.kfold_splits(ds.y, cfg.folds, cfg.seed)
    problem = posterior.make_problem(ds, splits, key, cfg.snn.time_steps, EXPERIMENT)
    n_train = int(np.asarray(problem.train_mask).sum(-1).max())
    K = cfg.pt.num_temperatures
    rows, predictions = [], []
    for sampler in SAMPLERS:
        run_cfg = cfg if sampler != "pt" else dataclasses.replace(cfg, mh=dataclasses.replace(
            cfg.mh, num_steps=max(cfg.mh.num_steps // K, 2)))
        outcome = runners.run_mh(stages, sampler, run_cfg, problem,
                                keys.derive(key, "method", EXPERIMENT, sampler),
                                keys.derive(key, "evaluate", EXPERIMENT, sampler),
                                tempered=sampler == "pt",
                                sampler="rw" if sampler == "pt" else sampler)
        predictions += tables.prediction_rows(tables.mcmc_raw(outcome, sampler), problem,
                                              cfg.sigmas, tables.probability_name(cfg))
        presentations = methods.training_presentations("pt" if sampler == "pt" else "mh",
                                                      run_cfg, n_train)
        steps = run_cfg.mh.num_steps
        grads = {"mala": steps + 1, "hmc": steps * NUM_LEAPFROG + 1}.get(sampler, 0)
        wall = stages.timings.get(sampler, float("nan"))
        for s, f, cell in tables.chain_cells(outcome, problem, cfg.sigmas):
            ess = cell["ess_logdensity"]
            rows.append({"sampler": sampler, "sigma": cell["sigma"], "fold": f,
                         "presentations": presentations, "ess_logdensity": ess,
                         "ess_per_million_presentations": ess / presentations * 1e6,
                         "rhat_logdensity": cell["rhat_logdensity"],
                         "acceptance": float(outcome.acceptance[f, s].mean()),
                         "step_size": float(outcome.step_size[f, s].mean())
                         if outcome.step_size is not None else run_cfg.mh.step_size,
                         "acc_mean": cell["acc_mean"], "acc_bma": cell["acc_bma"],
                         "model_gradients_per_chain": grads, "wall_s": wall})
    summary = summarise(rows)
    write_csv(out / "samplers.csv", rows)
    write_csv(out / "samplers_summary.csv", summary)
    tables.write_predictions(out / "samplers_predictions.csv.gz", predictions)
    _figure(summary, out / "samplers.png", cfg)
    experiment.write_manifest(out, cfg, EXPERIMENT, run_.elapsed(), stages)
    for r in summary:
        print(f"{r['sampler']:9s} sigma={r['sigma']:g}  ESS/1e6 pres {r['ess_per_million']:7.2f}"
              f"  R-hat {r['rhat_logdensity']:.2f}  acc.rate {r['acceptance']:.3f}  "
              f"step {r['step_size']:.3g}  W* {r['acc_mean']:.3f}  BMA {r['acc_bma']:.3f}")
    return rows


def summarise(rows: list[dict]) -> list[dict]:
    """Mean over folds per (sampler, sigma)."""
    out = []
    for (sampler, sigma), g in tables.group_rows(rows, ("sampler", "sigma")).items():
        out.append({"sampler": sampler, "sigma": sigma, "folds": len(g),
                    "presentations": g[0]["presentations"],
                    "ess_per_million": float(np.mean(
                        [r["ess_per_million_presentations"] for r in g])),
                    **{k: float(np.mean([r[k] for r in g]))
                       for k in ("ess_logdensity", "rhat_logdensity", "acceptance",
                                 "step_size", "acc_mean", "acc_bma")},
                    "acc_bma_std": float(np.std([r["acc_bma"] for r in g])),
                    "wall_s": g[0]["wall_s"]})
    return out


def _figure(summary, path, cfg) -> None:
    from mhsnn.plots import plt, save

    sigmas = list(dict.fromkeys(r["sigma"] for r in summary))
    samplers = list(dict.fromkeys(r["sampler"] for r in summary))
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    width = 0.8 / len(sigmas)
    for i, sigma in enumerate(sigmas):
        rs = [next(r for r in summary if r["sampler"] == s and r["sigma"] == sigma)
              for s in samplers]
        xs = np.arange(len(samplers)) + (i - (len(sigmas) - 1) / 2) * width
        axes[0].bar(xs, [r["ess_per_million"] for r in rs], width, label=f"sigma = {sigma:g}")
        axes[1].bar(xs, [r["acc_bma"] for r in rs], width, yerr=[r["acc_bma_std"] for r in rs],
                    label=f"sigma = {sigma:g}")
    for ax, title in zip(axes, ("ESS of the log density per 1e6 chip presentations",
                                "BMA test accuracy")):
        ax.set_xticks(range(len(samplers)), samplers)
        ax.set_title(title)
    axes[1].set_ylim(0.5, 1.0)
    axes[0].legend()
    fig.suptitle(f"samplers at equal chip presentations ({cfg.preset} preset)")
    save(fig, path)


def main(argv=None) -> None:
    experiment.cli(run, __doc__, argv, DEFAULTS)


if __name__ == "__main__":
    main()
