"""Do weights trained in the loop on one chip survive its siblings? Chip-to-chip transfer.

A chip instance here is the polynomial non-linearity of strength sigma with per-neuron
time-constant and threshold mismatch of spread m (``chips.mismatch``): each instance has
its own mismatch key. For every cell (m in ``SPREADS``, sigma in the config's, default
0 and 3), 5 folds:

    mh          random-walk MH in the loop on ONE training instance: each chain's W*
                (mh_mean), the BMA over all chains' draws (mh_bma) and its vote fraction
                (mh_vote)
    mh_chips    the same sampler, but every likelihood query runs on a FRESH instance of
                the cell's mismatch distribution (pseudo-marginal over chips: the posterior
                p(W) E_chip[L(D | W, chip)] averages over chips); mh_chips_mean/_bma/_vote
    sg_offline  surrogate-gradient Adam on the ideal model (no chip)
    sg_in_loop  surrogate-gradient Adam, forward on the training instance

all deployed on the training instance and on ``NUM_SIBLINGS`` siblings (other mismatch
keys, same m and sigma). Reported per method, predictive, cell and chip: accuracy, NLL,
Brier and 15-bin ECE (``metrics.summary``, scikit-learn). Writes transfer.csv (one row per
method, cell, fold and chip: "train" or sibling 0..19), transfer_summary.csv (per method
and cell: the training chip's, the siblings' mean and the worst sibling's fold-mean
accuracy, NLL and ECE), transfer_predictions.csv.gz (the columns of the other predictions
files and ``chip``: every member's predictions on the training chip, and the pooled BMA and
vote predictions on every sibling; each chain's W* on 20 siblings would be 1.1M rows) and
transfer.png.

    python -m experiments.transfer [--preset quick|paper|gpu] [--set KEY=VALUE] [--out DIR] [--resume | --fresh]
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from experiments import methods, runners, tables
from mhsnn import chips, data, experiment, keys, metrics, posterior, sgd
from mhsnn.io import write_csv

EXPERIMENT = "transfer"
DEFAULTS = ["sigmas=[0, 3]", "methods=['mh', 'sg_offline', 'sg_in_loop']",
            "mh.num_draws=20"]
SPREADS = (0.1, 0.3)
NUM_SIBLINGS = 20
CHIPS = ("train", *range(NUM_SIBLINGS))


def run(cfg, out, mode) -> list[dict]:
    run_ = experiment.start(out, cfg, EXPERIMENT, mode)
    stages, ds, key = run_.stages, run_.dataset, run_.key
    splits = data.kfold_splits(ds.y, cfg.folds, cfg.seed)
    problem = posterior.make_problem(ds, splits, key, cfg.snn.time_steps, EXPERIMENT)
    settings = methods.settings_of(cfg, problem)
    sizes, F = settings.sizes, cfg.folds
    cells = [(m, float(s)) for m in SPREADS for s in cfg.sigmas]
    labels = [{"spread": m, "sigma": s} for m, s in cells]

    def instance(m, s, which):  # the key names the instance: "train" or a sibling's index
        return chips.mismatch(keys.derive(key, "chip", EXPERIMENT, f"{m:g}", f"{s:g}", which),
                              m, chips.polynomial(s), sizes=sizes)

    on_chip = {c: [instance(m, s, c) for m, s in cells] for c in CHIPS}
    k_eval = keys.derive(key, "evaluate", EXPERIMENT, "deploy")

    def deploy(theta, c):
        """theta [F, S, R, P] -> test probabilities [F, S, R, Nte, O] on chip ``c``."""
        R = theta.shape[2]
        chip = methods.grid_chip(F, on_chip[c], R)
        probs = sgd.deployed_probabilities(jnp.asarray(theta.reshape(F, -1, theta.shape[-1])),
                                           problem, chip, settings, k_eval)
        return np.asarray(probs).reshape(F, len(cells), R, *probs.shape[2:])

    trained = {}  # method -> (point weights [F, S, R, P], pooled draws [F, S, C*D, P] or None)
    C = cfg.mh.num_chains
    spreads = jnp.repeat(jnp.array([m for m, _ in cells], jnp.float32), C)
    sigmas = jnp.repeat(jnp.array([s for _, s in cells], jnp.float32), C)

    def resample(k):  # a fresh instance per chain and query: the cell's chip distribution
        ks = jax.random.split(k, F * len(cells) * C).reshape(F, -1)
        one = jax.vmap(lambda kk, m, s: chips.mismatch(kk, m, chips.polynomial(s), sizes=sizes))
        return jax.vmap(lambda kf: one(kf, spreads, sigmas))(ks)

    diag = []
    for name, resample_chip in (("mh", None), ("mh_chips", resample)):
        if "mh" not in cfg.methods:
            break
        outcome = runners.run_mh(stages, name, cfg, problem,
                                 keys.derive(key, "method", EXPERIMENT, name),
                                 keys.derive(key, "evaluate", EXPERIMENT, name),
                                 cells=on_chip["train"], labels=labels,
                                 resample_chip=resample_chip)
        draws = outcome.draws
        trained[name] = (outcome.mean, draws.reshape(F, len(cells), -1, draws.shape[-1]))
        diag += tables.mh_diagnostic_rows(outcome, labels, {"method": name})
    for name, in_loop, hyper in methods.sg_variants(cfg):
        outcome = runners.run_sg(stages, name, cfg, problem,
                                 keys.derive(key, "method", EXPERIMENT, name),
                                 keys.derive(key, "evaluate", EXPERIMENT, name), in_loop,
                                 hyper, on_chip["train"])
        trained[name] = (outcome.theta, None)

    rows, predictions = [], []
    for c in CHIPS:
        raw = {}
        for name, (point, draws) in trained.items():
            point_probs = deploy(point, c)
            raw[f"{name}_mean" if draws is not None else name] = point_probs
            if draws is not None:
                probs = deploy(draws, c)
                raw[f"{name}_bma"] = probs.mean(2, keepdims=True)
                raw[f"{name}_vote"] = np.asarray(metrics.votes(probs)).mean(2, keepdims=True)
        for method, probs in raw.items():
            pooled = method.endswith(("_bma", "_vote"))
            rows += tables.cell_rows(method, probs, problem, labels, pooled,
                                     {"chip": str(c)})
        kept = raw if c == "train" else {k: v for k, v in raw.items()
                                         if k.endswith(("_bma", "_vote"))}
        predictions += [{**r, "chip": str(c)} for r in tables.prediction_rows(
            kept, problem, labels, tables.probability_name(cfg))]
    summary = summarise(rows)
    write_csv(out / "transfer.csv", rows)
    write_csv(out / "transfer_summary.csv", summary)
    write_csv(out / "transfer_mh_diagnostics.csv", diag)
    tables.write_predictions(out / "transfer_predictions.csv.gz", predictions)
    _figure(summary, out / "transfer.png")
    experiment.write_manifest(out, cfg, EXPERIMENT, run_.elapsed(), stages,
                              {"siblings": NUM_SIBLINGS, "spreads": list(SPREADS)})
    for r in summary:
        print(f"{r['method']:16s} m={r['spread']:g} sigma={r['sigma']:g}  train "
              f"{r['train_accuracy']:.3f}  siblings {r['siblings_accuracy']:.3f} "
              f"(worst {r['worst_sibling_accuracy']:.3f})  NLL {r['train_nll']:.3f} -> "
              f"{r['siblings_nll']:.3f}")
    return rows


def summarise(rows: list[dict]) -> list[dict]:
    """Per (method, spread, sigma): fold means on the training chip, their mean over the
    siblings, and the worst sibling (lowest accuracy, highest NLL and ECE)."""
    out = []
    for (method, m, s), group in tables.group_rows(rows, ("method", "spread", "sigma")).items():
        per_chip = {c: [r for r in group if r["chip"] == str(c)] for c in CHIPS}
        fold_mean = {k: {c: float(np.mean([r[k] for r in rs])) for c, rs in per_chip.items()}
                     for k in ("test_accuracy", "nll", "brier", "ece")}
        row = {"method": method, "spread": m, "sigma": s}
        for k, short in (("test_accuracy", "accuracy"), ("nll", "nll"), ("brier", "brier"),
                         ("ece", "ece")):
            sib = [fold_mean[k][c] for c in CHIPS[1:]]
            row[f"train_{short}"] = fold_mean[k]["train"]
            row[f"siblings_{short}"] = float(np.mean(sib))
            row[f"worst_sibling_{short}"] = min(sib) if short == "accuracy" else max(sib)
        out.append(row)
    return out


def _figure(summary, path) -> None:
    from mhsnn.plots import plt, save

    cells = list(dict.fromkeys((r["spread"], r["sigma"]) for r in summary))
    fig, axes = plt.subplots(1, len(cells), figsize=(4.2 * len(cells), 4), sharey=True,
                             squeeze=False)
    for ax, (m, s) in zip(axes[0], cells):
        rs = [r for r in summary if (r["spread"], r["sigma"]) == (m, s)]
        x = np.arange(len(rs))
        ax.scatter(x, [r["train_accuracy"] for r in rs], marker="o", color="k",
                   label="training chip")
        ax.scatter(x, [r["siblings_accuracy"] for r in rs], marker="s", color="C0",
                   label=f"{NUM_SIBLINGS} siblings: mean")
        ax.scatter(x, [r["worst_sibling_accuracy"] for r in rs], marker="v", color="C3",
                   label="worst sibling")
        ax.set_xticks(x, [r["method"] for r in rs], rotation=70, fontsize=7)
        ax.set(title=f"mismatch {m:g}, sigma {s:g}", ylim=(0.3, 1.0))
    axes[0, 0].set_ylabel("test accuracy (mean over folds)")
    axes[0, -1].legend(fontsize=7)
    save(fig, path)


def main(argv=None) -> None:
    experiment.cli(run, __doc__, argv, DEFAULTS)


if __name__ == "__main__":
    main()
