"""MH against surrogate-gradient backprop on chips with realistic non-idealities.

For each non-ideality (one chip instance, a few strengths; the paper's f_sigma is not
added, so each effect is seen alone), 5-fold cross-validation as in the sigma sweep:
MH's W* and BMA against SG offline (trained on the ideal model, deployed on the chip) and
SG in the loop (forward on the chip, gradient through the ideal model).

    mismatch      per-neuron decay and threshold spread (relative std), one frozen instance
    quantisation  weight bits of magnitude (+ sign) within +-16
    noise         membrane read noise std per step, fresh at every query (MH is then
                  pseudo-marginal: see mhsnn.mcmc.mh.kernel)
    saturation    soft saturation level v_max of the membrane (V <- v_max tanh(V / v_max))

Writes nonidealities.csv, nonidealities_summary.csv, nonidealities_mh_diagnostics.csv,
nonidealities_predictions.csv.gz (every test prediction, see tables.prediction_rows) and
nonidealities.png to --out.

    python -m experiments.nonidealities [--preset quick|paper|gpu] [--set KEY=VALUE] [--out DIR] [--resume | --fresh]
"""

from __future__ import annotations

import jax

from experiments import methods, runners, tables
from mhsnn import chips, data, experiment, keys, posterior
from mhsnn.io import write_csv

EXPERIMENT = "nonidealities"
DEFAULTS = ["mh.num_steps=10000", "methods=['mh', 'sg_offline', 'sg_in_loop', 'ann_convert']"]


def kinds(key: jax.Array, sizes) -> dict[str, list[tuple[float, chips.Chip]]]:
    """(strength, chip) per non-ideality; one mismatch instance, scaled by its spread."""
    return {
        "mismatch": [(s, chips.mismatch(key, s, sizes=sizes)) for s in (0.0, 0.1, 0.2, 0.3)],
        "quantisation": [(b, chips.quantized(bits=b, weight_max=16.0)) for b in (6, 4, 3, 2)],
        "noise": [(s, chips.noisy(s)) for s in (0.0, 0.05, 0.1, 0.2)],
        "saturation": [(v, chips.saturating(v)) for v in (4.0, 2.0, 1.5, 1.2)],
    }


def run(cfg, out, mode) -> list[dict]:
    run_ = experiment.start(out, cfg, EXPERIMENT, mode, grid=True)
    stages, ds, key = run_.stages, run_.dataset, run_.key
    splits = data.kfold_splits(ds.y, cfg.folds, cfg.seed)
    problem = posterior.make_problem(ds, splits, key, cfg.snn.time_steps, EXPERIMENT)
    sizes = methods.settings_of(cfg, problem).sizes
    rows, diag, predictions = [], [], []
    for kind, cells in kinds(keys.derive(key, "chip", "mismatch", 0), sizes).items():
        labels = [{"nonideality": kind, "strength": float(s)} for s, _ in cells]
        r, d, raw = runners.method_rows(stages, cfg, problem, key, f"{EXPERIMENT}/{kind}",
                                       f"{kind}_", cells=[c for _, c in cells], labels=labels)
        rows += r
        diag += d
        predictions += tables.prediction_rows(raw, problem, labels, tables.probability_name(cfg))
    summary = tables.summarise(rows, ("nonideality", "strength"))
    write_csv(out / "nonidealities.csv", rows)
    write_csv(out / "nonidealities_summary.csv", summary)
    write_csv(out / "nonidealities_mh_diagnostics.csv", diag)
    tables.write_predictions(out / "nonidealities_predictions.csv.gz", predictions)
    _figure(summary, out / "nonidealities.png")
    experiment.write_manifest(out, cfg, EXPERIMENT, run_.elapsed(), stages)
    for r in summary:
        print(f"{r['method']:12s} {r['nonideality']:13s} {r['strength']:5g}  "
              f"{r['mean']:.3f} +- {r['std']:.3f}")
    return rows


def _figure(summary, path) -> None:
    from mhsnn.plots import STYLE, plt, save

    names = list(dict.fromkeys(r["nonideality"] for r in summary))
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.5), sharey=True)
    for ax, name in zip(axes, names):
        for method in dict.fromkeys(r["method"] for r in summary):
            rs = [r for r in summary if r["method"] == method and r["nonideality"] == name]
            color, marker, ls = STYLE.get(method, ("k", "x", "-"))
            ax.errorbar(range(len(rs)), [r["mean"] for r in rs], [r["std"] for r in rs],
                        color=color, marker=marker, ls=ls, label=method, capsize=2)
            ax.set_xticks(range(len(rs)), [f"{r['strength']:g}" for r in rs])
        ax.set(title=name, xlabel="strength", ylim=(0.3, 1))
    axes[0].set_ylabel("test accuracy")
    axes[-1].legend(fontsize=7)
    save(fig, path)


def main(argv=None) -> None:
    experiment.cli(run, __doc__, argv, DEFAULTS)


if __name__ == "__main__":
    main()
