"""Does model-free training survive bigger networks and other data? MH, PT and SG by network.

Every network below is trained by MH (W* and BMA), PT (``pt.num_temperatures`` replicas at
``mh.num_steps / K`` steps each: the same replica chain-steps as MH), SG offline and SG in
the loop, 5 folds, at each sigma of the config (default 0 and 3):

    breast_cancer  30-3-2 (the paper's), 30-8-2, 30-16-2, 30-32-2, 30-16-8-2
    digits         64-32-10   (the quick preset trims its MH/PT steps to ``DIGITS_STEPS``)
    wine           13-8-3
    iris           4-8-3

and, on the widest one-hidden-layer breast-cancer network, ``snn.time_steps`` in
``TIME_STEPS`` beside the config's (MH and SG only, at the config's largest sigma only: do
longer spike trains lift the cap? These runs cost T / 10 times as much per step).

MH and PT use the paper network's c, v and p on every network (not re-tuned per size).
Writes scaling.csv (per fold), scaling_summary.csv (per network, method and sigma: test
accuracy mean and std, MH/PT acceptance, R-hat and ESS of the log density, stage wall time,
chip sample presentations for training), scaling_mh_diagnostics.csv,
scaling_predictions.csv.gz (every test prediction, with the data set and network columns;
see tables.prediction_rows) and scaling.png.

    python -m experiments.scaling [--preset quick|paper|gpu] [--set KEY=VALUE] [--out DIR] [--resume | --fresh]
"""

from __future__ import annotations

import dataclasses

import numpy as np

from experiments import methods, runners, tables
from mhsnn import config, data, experiment, posterior, snn
from mhsnn.io import write_csv

EXPERIMENT = "scaling"
DEFAULTS = ["sigmas=[0, 3]", "methods=['mh', 'pt', 'sg_offline', 'sg_in_loop']",
            "mh.num_steps=4000", "mh.num_draws=20"]
NETWORKS = {"breast_cancer": [(3,), (8,), (16,), (32,), (16, 8)], "digits": [(32,)],
            "wine": [(8,)], "iris": [(8,)]}
TIME_STEPS = (25, 50)  # extra spike-train lengths on breast_cancer 30-32-2 (no PT: time)
DIGITS_STEPS = 1000  # quick preset: digits' 1,437 rows x 64-32-10 cost ~1k chain-steps/s here


def networks(cfg):
    """(data set, config for one network) in the order of ``NETWORKS``, then the
    ``TIME_STEPS`` variants of the widest breast-cancer network."""
    for name, widths in NETWORKS.items():
        for hidden in widths:
            mh = cfg.mh
            if name == "digits" and cfg.preset == "quick":
                mh = dataclasses.replace(mh, num_steps=min(mh.num_steps, DIGITS_STEPS))
            yield name, dataclasses.replace(
                cfg, mh=mh, data=dataclasses.replace(cfg.data, name=name, path=""),
                snn=dataclasses.replace(cfg.snn, hidden=hidden))
    widest = max((w for w in NETWORKS["breast_cancer"] if len(w) == 1), key=lambda w: w[0])
    for T in TIME_STEPS:
        if T != cfg.snn.time_steps:
            yield "breast_cancer", dataclasses.replace(
                cfg, methods=tuple(m for m in cfg.methods if m != "pt"),
                sigmas=(max(cfg.sigmas),),
                data=dataclasses.replace(cfg.data, name="breast_cancer", path=""),
                snn=dataclasses.replace(cfg.snn, hidden=widest, time_steps=T))


def run(cfg, out, mode) -> list[dict]:
    for name in NETWORKS:  # every data set must take the folds before anything is written
        experiment.load_data(dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, name=name)))
    run_ = experiment.start(out, cfg, EXPERIMENT, mode, grid=True)
    stages, key = run_.stages, run_.key
    problems, rows, diag, predictions = {}, [], [], []
    for name, net_cfg in networks(cfg):
        T = net_cfg.snn.time_steps
        if (name, T) not in problems:  # the config's T keeps its problem name (and keys)
            ds = data.load(name)
            splits = data.kfold_splits(ds.y, cfg.folds, cfg.seed)
            problems[name, T] = posterior.make_problem(
                ds, splits, key, T, f"{EXPERIMENT}/{name}" + (
                    "" if T == cfg.snn.time_steps else f"/T{T}"))
        problem = problems[name, T]
        sizes = config.network(net_cfg, problem.num_features, problem.num_classes)
        label = "-".join(map(str, sizes)) + ("" if T == cfg.snn.time_steps else f"_T{T}")
        extra = {"dataset": name, "network": label, "weights": snn.num_weights(sizes),
                 "time_steps": T}
        n_train = int(np.asarray(problem.train_mask).sum(-1).max())
        K = net_cfg.pt.num_temperatures
        pt_cfg = dataclasses.replace(net_cfg, methods=("pt",), mh=dataclasses.replace(
            net_cfg.mh, num_steps=max(net_cfg.mh.num_steps // K, 2)))
        other = dataclasses.replace(net_cfg,
                                    methods=tuple(m for m in net_cfg.methods if m != "pt"))
        for run_cfg in ([other] if other.methods else []) + (
                [pt_cfg] if "pt" in net_cfg.methods else []):
            r, d, raw = runners.method_rows(stages, run_cfg, problem, key,
                                           f"{EXPERIMENT}/{label}", f"{label}_", extra)
            for row in r:
                method = row["method"].rsplit("_", 1)[0] if row["method"].endswith(
                    ("_mean", "_bma", "_vote")) else row["method"]
                row["presentations"] = methods.training_presentations(method, run_cfg, n_train)
                row["wall_s"] = stages.timings.get(f"{label}_{method}", float("nan"))
            rows += r
            diag += d
            predictions += tables.prediction_rows(
                raw, problem, run_cfg.sigmas, tables.probability_name(run_cfg),
                {"dataset": name, "network": label})
    summary = summarise(rows, diag)
    write_csv(out / "scaling.csv", rows)
    write_csv(out / "scaling_summary.csv", summary)
    write_csv(out / "scaling_mh_diagnostics.csv", diag)
    tables.write_predictions(out / "scaling_predictions.csv.gz", predictions)
    _figure(summary, out / "scaling.png", cfg)
    experiment.write_manifest(out, cfg, EXPERIMENT, run_.elapsed(), stages)
    for r in summary:
        print(f"{r['network']:10s} {r['method']:11s} sigma={r['sigma']:g}  {r['mean']:.3f} "
              f"+- {r['std']:.3f}  acc.rate {r.get('acceptance', float('nan')):.3f}  "
              f"R-hat {r.get('rhat_logdensity', float('nan')):.2f}")
    return rows


def summarise(rows: list[dict], diag: list[dict]) -> list[dict]:
    """Per (network, method, sigma): accuracy over folds, and the MH/PT diagnostics."""
    out = []
    for (network, method, sigma), group in tables.group_rows(rows, ("network", "method", "sigma")).items():
        acc = [r["test_accuracy"] for r in group]
        row = {"dataset": group[0]["dataset"], "network": network,
               "weights": group[0]["weights"], "time_steps": group[0]["time_steps"],
               "method": method, "sigma": sigma,
               "mean": float(np.mean(acc)), "std": float(np.std(acc)), "folds": len(acc),
               "wall_s": group[0]["wall_s"], "presentations": group[0]["presentations"]}
        sampler = method.rsplit("_", 1)[0] if method.endswith(("_mean", "_bma", "_vote")) \
            else method
        d = [x for x in diag if x["network"] == network and x["method"] == sampler
             and x["sigma"] == sigma]
        if d:
            row.update({k: float(np.mean([x[k] for x in d]))
                        for k in ("acceptance", "rhat_logdensity", "ess_logdensity")})
        out.append(row)
    return out


def _figure(summary, path, cfg) -> None:
    from mhsnn.plots import STYLE, plt, save

    sigmas = sorted({r["sigma"] for r in summary})
    fig, axes = plt.subplots(1, len(sigmas), figsize=(5.5 * len(sigmas), 4), sharey=True,
                             squeeze=False)
    for ax, sigma in zip(axes[0], sigmas):
        for method in dict.fromkeys(r["method"] for r in summary):
            rs = sorted((r for r in summary if r["method"] == method and r["sigma"] == sigma),
                        key=lambda r: r["weights"])
            color, marker, ls = STYLE.get(method, ("k", "x", "-"))
            bc = [r for r in rs if r["dataset"] == "breast_cancer"
                  and r["time_steps"] == cfg.snn.time_steps]
            ax.errorbar([r["weights"] for r in bc], [r["mean"] for r in bc],
                        [r["std"] for r in bc], color=color, marker=marker, ls=ls, capsize=2,
                        label=method)
            others = [r for r in rs if r["dataset"] != "breast_cancer"]
            ax.scatter([r["weights"] for r in others], [r["mean"] for r in others],
                       color=color, marker=marker, facecolors="none")
            longer = [r for r in rs if r["time_steps"] != cfg.snn.time_steps]
            ax.scatter([r["weights"] * 1.15 for r in longer], [r["mean"] for r in longer],
                       color=color, marker="^", s=14)
        for r in {r["network"]: r for r in summary if r["sigma"] == sigma
                  and r["time_steps"] == cfg.snn.time_steps}.values():
            ax.annotate(f"{r['dataset'].split('_')[0]} {r['network']}", (r["weights"], 0.02),
                        rotation=90, fontsize=6, ha="center", va="bottom", color="grey")
        ax.set(xscale="log", xlabel="weights", title=f"sigma = {sigma:g}", ylim=(0.0, 1.0))
        ax.axhline(0.95, color="grey", lw=0.8, ls=":")
    axes[0, 0].set_ylabel(f"test accuracy ({cfg.folds} folds)")
    axes[0, -1].legend(fontsize=7)
    fig.suptitle(f"accuracy against network size ({cfg.preset} preset; filled: breast cancer, "
                 "open: digits, wine, iris; triangles: 30-32-2 at T = "
                 f"{', '.join(map(str, TIME_STEPS))})")
    save(fig, path)


def main(argv=None) -> None:
    experiment.cli(run, __doc__, argv, DEFAULTS)


if __name__ == "__main__":
    main()
