"""Model-free training on SynSense Xylo's bit-accurate simulator, beside the vendor's workflow.

Per data set (iris, wine, breast cancer, digits 0-7) and stratified fold, on the chip
``chips.xylo`` (rockpool's XyloSim; docs/xylo.md has the int8 mapping and the leaks):

- the engine's methods through ``SNNClassifier`` (every one model-free on the chip):
  ``rw``, ``rw_adapt_full``, ``pt``, ``snes``, ``sep_cma_es``, ``spsa``, each with one budget
  of chip sample presentations (``--budget``) and an always-on bias channel;
- ``vendor``: rockpool's own workflow. A float model of Xylo's neurons in rockpool's modules
  (``LinearJax``/``LIFJax``, tau_mem = 8 dt and tau_syn = 2 dt, the chip's dashes; trained
  biases) is trained by surrogate-gradient BPTT (optax Adam) on the training rows, mapped
  with rockpool's Xylo ``mapper``, quantised with its ``global_quantize`` and run on XyloSim.
  It costs the chip no training presentations;
- ``vendor_sg_in_loop``: that model fine-tuned with the chip in the loop: the forward
  values are XyloSim's counts of the current quantised network, the derivative the float
  model's (straight-through), for the same budget of presentations;
- ``eki``, and ``eki_from_vendor``/``rw_adapt_full_from_vendor``: deploy, then repair.
  ``SNNClassifier(init="vendor")``: the vendor's network as deployed (its thresholds and
  bias registers on the chip, its int8 weights the start), then the method on the chip for
  the budget, with the estimator's defaults; ``init_accuracy`` is that start's.

With ``--defaults`` the engine's methods from scratch take the estimator's defaults (the
probe's unit, no bias channel); without it, Xylo's own unit and a bias channel, the
settings the committed results/quick/xylo.csv ran with.

Xylo takes at most 16 inputs: data sets with more than 15 features keep the 15 with the
largest ANOVA F statistic on the fold's training rows (scikit-learn's ``SelectKBest``), the
16th channel being the bias; the vendor model gets the same 15 and its own bias registers.
Digits keeps classes 0-7: Xylo has 8 output neurons.

Writes xylo.csv (per data set, method and fold: accuracy, NLL, Brier, ECE, training
presentations, chip seconds per presentation, wall time) and xylo_summary.csv (means over
folds) to --out. Each fit is a checkpointed stage (``--resume``).

    python -m experiments.xylo [--budget B] [--data NAME ...] [--methods NAME ...] [--defaults] [--set KEY=VALUE] [--out DIR]
    python -m experiments.xylo --benchmark    # the chip's presentations per second, 1 and 2
                                              # workers, per query shape

Keys: ``folds`` (default 3), ``seed``, ``mh.num_chains`` (default 8), ``snn.time_steps``,
the vendor's settings are fixed, untuned defaults (``mhsnn.xylo``'s vendor section: Adam lr 0.01,
batches of 32, 200 epochs; in the loop, batches of 128).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.feature_selection import SelectKBest, f_classif

from experiments import benchmark as benchmark_
from experiments import tables
from mhsnn import data, experiment, keys, metrics, runs, xylo
from mhsnn.xylo import _rates, float_spec, quantised, vendor_fit
from mhsnn.estimator import SNNClassifier
from mhsnn.io import write_csv

EXPERIMENT = "xylo"
DEFAULTS = ["folds=3", "mh.num_chains=8"]
HIDDEN = {"iris": 8, "wine": 8, "breast_cancer": 8, "digits": 16}
CHIP_METHODS = ("rw", "rw_adapt_full", "pt", "snes", "sep_cma_es", "spsa", "eki")
VENDOR = ("vendor", "vendor_sg_in_loop")
# deploy, then repair on the chip: the vendor's network, then the engine's method from it
FROM_VENDOR = tuple(f"{m}_from_vendor" for m in ("eki", "rw_adapt_full"))
METHODS = CHIP_METHODS + VENDOR + FROM_VENDOR
MAX_FEATURES = xylo.MAX_INPUTS - 1  # one input is the bias channel
WORKERS = 2  # XyloSim processes per chip: this machine's two cores
NUMBERS = ("test_accuracy", "ece", "nll", "brier", "presentations", "chip_s_per_presentation",
           "fit_s", "float_accuracy", "init_accuracy")
MEANS = ("test_accuracy", "nll", "brier", "ece", "presentations", "chip_s_per_presentation",
         "fit_s", "float_accuracy", "init_accuracy")


def load(name: str) -> data.Dataset:
    """The data set, with classes beyond Xylo's 8 output neurons dropped (digits: 0-7)."""
    ds = data.load(name)
    keep = ds.y < xylo.MAX_OUTPUTS
    return data.Dataset(ds.X[keep], ds.y[keep], ds.classes)


def select_features(X_train, y_train, X_test):
    """At most 15 features: the largest ANOVA F on the training rows (constant ones last)."""
    if X_train.shape[1] <= MAX_FEATURES:
        return X_train, X_test
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant pixels: F undefined, never selected
        pick = SelectKBest(f_classif, k=MAX_FEATURES).fit(X_train, y_train)
    return pick.transform(X_train), pick.transform(X_test)


# ---- one fit ---------------------------------------------------------------------------

def fit_one(cfg, name, method, fold, split, ds, budget, folder, defaults=False) -> dict:
    H, K = HIDDEN.get(name, 8), int(ds.y.max()) + 1
    X_train, X_test = select_features(ds.X[split.train], ds.y[split.train], ds.X[split.test])
    y_train, y_test = ds.y[split.train], ds.y[split.test]
    F = X_train.shape[1]
    t0 = time.perf_counter()
    float_accuracy = init_accuracy = np.nan  # the vendor's float model; the repair's start
    if method in CHIP_METHODS or method in FROM_VENDOR:
        repair = method in FROM_VENDOR
        # from scratch as committed (xylo's own unit, a bias channel) or, with --defaults,
        # with the estimator's defaults; from the vendor's network always with them: its
        # thresholds are not the chip's own, so the probe learns the unit, and its bias
        # registers take the bias channel's place
        settings = {} if repair or defaults else dict(bias_input=True, weight_scale=1.0,
                                                      predictive="bma")  # and the count share
        if repair:
            settings["init"] = "vendor"
        chip = xylo.XyloChip((F + ("bias_input" in settings), H, K), workers=WORKERS)
        clf = SNNClassifier(chip=chip, hidden=(H,), method=method.removesuffix("_from_vendor"),
                            presentations=budget, chains=cfg.mh.num_chains,
                            time_steps=cfg.snn.time_steps, random_state=cfg.seed + fold,
                            likelihood="mse", checkpoint_dir=folder,
                            chip_retries=cfg.chip.retries, chip_timeout_s=cfg.chip.timeout_s,
                            **settings)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # R-hat warnings: the sampler's own business here
            clf.fit(X_train, y_train)
        probs = clf.predict_proba(X_test)
        if repair:  # the vendor's network as deployed in this fit, on the same test rows
            chip = clf.deployed_chip_
            start = chip(clf.init_point_[None], np.asarray(clf._spikes(X_test)))[0]
            init_accuracy = metrics.summary(np.asarray(metrics.probabilities(
                jnp.asarray(start))), y_test)["test_accuracy"]
        presentations, seconds, shown = clf.presentations_, chip.seconds, chip.presentations
        chip.close()
    else:
        scaler = data.MinMaxScaler.fit(X_train)
        root, T = jax.random.key(cfg.seed), cfg.snn.time_steps
        train = data.poisson_encode(keys.derive(root, "encode", EXPERIMENT, name, fold, "train"),
                                    scaler.transform(X_train), T)
        test = data.poisson_encode(keys.derive(root, "encode", EXPERIMENT, name, fold, "test"),
                                   scaler.transform(X_test), T)
        method_key = keys.derive(root, "method", EXPERIMENT, name, fold, "vendor")
        params, net, _ = vendor_fit(method_key, train, y_train, H, K)
        chip = xylo.XyloChip((F, H, K))  # only its counters: the vendor's spec is its own
        presentations = 0
        if method == "vendor_sg_in_loop":
            params, net, presentations = vendor_fit(keys.derive(root, "method", EXPERIMENT, name,
                                                                fold, method), train,
                                                    y_train, H, K, chip=chip, budget=budget,
                                                    start=params)
        spec = quantised(float_spec(params, net))
        float_rates = _rates(net, params, jnp.swapaxes(test, 0, 1))
        float_accuracy = float(np.mean(np.argmax(np.asarray(float_rates), -1) == y_test))
        t_test = time.perf_counter()
        counts = xylo.run_configs([spec], np.asarray(test))[0]
        seconds, shown = chip.seconds + time.perf_counter() - t_test, \
            chip.presentations + test.shape[1]
        probs = np.asarray(metrics.probabilities(jnp.asarray(counts)))
    wall = time.perf_counter() - t0
    return {**metrics.summary(probs, y_test), "presentations": presentations,
            "chip_s_per_presentation": seconds / max(shown, 1), "fit_s": round(wall, 2),
            "float_accuracy": float_accuracy, "init_accuracy": init_accuracy}


def run(cfg, out, mode, budget: float, names: list[str], methods: list[str],
        defaults: bool = False) -> list[dict]:
    run_ = experiment.start(out, cfg, EXPERIMENT, mode)
    stages, rows = run_.stages, []
    for name in names:
        ds = load(name)
        splits = data.kfold_splits(ds.y, cfg.folds, cfg.seed)
        for method in methods:
            for f, split in enumerate(splits):
                folder = out / "checkpoints" / f"{EXPERIMENT}_{name}_{method}_fold{f}"

                def fit(name=name, method=method, f=f, split=split, folder=folder, ds=ds):
                    result = fit_one(cfg, name, method, f, split, ds, budget, folder, defaults)
                    shutil.rmtree(folder, ignore_errors=True)
                    return {k: np.float64(result[k]) for k in NUMBERS}

                result = runs.run_once(stages, f"{name}_{method}_fold{f}", fit,
                                       {k: np.float64(0) for k in NUMBERS})
                row = {"data": name, "method": method, "fold": f}
                for k in NUMBERS:
                    row[k] = int(result[k]) if k == "presentations" else float(result[k])
                rows.append(row)
                print(f"[{EXPERIMENT}] {name} {method} fold {f}: accuracy "
                      f"{row['test_accuracy']:.3f} ({row['presentations']:,} presentations, "
                      f"{row['fit_s']:.1f} s)", file=sys.stderr, flush=True)
    summary = [{"data": d, "method": m, "folds": len(group),
                **{f"{k}_mean": float(np.mean([r[k] for r in group])) for k in MEANS},
                "test_accuracy_std": float(np.std([r["test_accuracy"] for r in group]))}
               for (d, m), group in tables.group_rows(rows, ("data", "method")).items()]
    write_csv(out / "xylo.csv", rows)
    write_csv(out / "xylo_summary.csv", summary)
    experiment.write_manifest(out, cfg, EXPERIMENT, run_.elapsed(), run_.stages,
                              {"budget": budget, "data": names, "methods": methods,
                               "settings": "defaults" if defaults else "committed",
                               "hidden": {n: HIDDEN[n] for n in names}})
    for r in summary:
        print(f"{r['data']:14s} {r['method']:18s} {r['test_accuracy_mean']:.3f} +- "
              f"{r['test_accuracy_std']:.3f}  NLL {r['nll_mean']:.3f}  ECE {r['ece_mean']:.3f}"
              f"  {r['presentations_mean']:,.0f} presentations")
    return rows


# The queries the methods make on a 15-16-8 network (weight sets x rows): SG in the loop's
# batch of 32, a point estimate's and the probe's full batch, EKI's 8 members on 128 rows,
# the chains on a full batch and a wide ensemble's mini-batch.
QUERIES = ((1, 32), (1, 128), (1, 1000), (2, 128), (8, 128), (8, 1000), (64, 128))
BENCHMARK_CSV = Path("results/benchmark/xylo_workers_cpu.csv")


def benchmark(sizes=(15, 16, 8), T: int = 10, repeats: int = 9,
              queries=QUERIES) -> list[dict]:
    """XyloSim's throughput through ``chips.xylo`` with 1 and 2 workers: sample presentations
    per second of each query shape (median of ``repeats``), random weights (std 2, about
    20 int8 steps) on Poisson rows of rate 0.3."""
    rng = np.random.default_rng(0)
    rows = []
    chips_ = {w: xylo.XyloChip(tuple(sizes), workers=w) for w in (1, 2)}
    weights = rng.normal(0.0, 2.0, (max(c for c, _ in queries), chips_[1].num_params))
    spikes = (rng.random((T, max(n for _, n in queries), sizes[0])) < 0.3).astype(np.float32)
    for chip in chips_.values():
        chip(weights[:8].astype(np.float32), spikes[:, :256])  # start the workers
    for sets, n in queries:
        w, s = weights[:sets].astype(np.float32), spikes[:, :n]
        seconds = {k: float(np.median([_timed(chip, w, s) for _ in range(repeats)]))
                   for k, chip in chips_.items()}
        rows.append({"network": "-".join(map(str, sizes)), "sets": sets, "rows": n, "T": T,
                     "presentations_per_s_1_worker": sets * n / seconds[1],
                     "presentations_per_s_2_workers": sets * n / seconds[2],
                     "speedup": seconds[1] / seconds[2], "cores": os.cpu_count(),
                     **benchmark_.machine()})
        print(f"{sets:3d} sets x {n:5d} rows: {rows[-1]['presentations_per_s_1_worker']:8,.0f}"
              f" /s with 1 worker, {rows[-1]['presentations_per_s_2_workers']:8,.0f} /s with "
              f"2 ({rows[-1]['speedup']:.2f}x)")
    for chip in chips_.values():
        chip.close()
    return rows


OVERLAP_CSV = Path("results/benchmark/xylo_busy_cpu.csv")


def busy(methods=("eki", "sg_in_loop", "rw_adapt"), budget: float = 2e5,
         workers: int = 2) -> list[dict]:
    """How much of a fit's wall time the chip is busy: ``SNNClassifier`` on XyloSim
    (digits 0-7, 15 features, 15-16-8, the estimator's defaults) for ``budget``
    presentations, its wall time (compilation included) against the seconds spent inside
    the chip's calls. The rest is the engine's: compiling, proposing, accepting."""
    ds = load("digits")
    split = data.kfold_splits(ds.y, 5, 0)[0]
    X, _ = select_features(ds.X[split.train], ds.y[split.train], ds.X[split.test])
    rows = []
    for method in methods:
        chip = xylo.XyloChip((X.shape[1], HIDDEN["digits"], 8), workers=workers)
        clf = SNNClassifier(chip=chip, hidden=(HIDDEN["digits"],), method=method,
                            presentations=budget, random_state=0)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf.fit(X, ds.y[split.train])
        wall = time.perf_counter() - t0
        chip.close()
        rows.append({"method": method, "workers": workers, "presentations": chip.presentations,
                     "fit_s": wall, "chip_s": chip.seconds, "chip_busy": chip.seconds / wall,
                     "presentations_per_s": chip.presentations / wall, "cores": os.cpu_count(),
                     **benchmark_.machine()})
        print(f"{method:12s} {wall:6.1f} s, chip busy {chip.seconds / wall:.0%}, "
              f"{chip.presentations / wall:,.0f} presentations/s")
    return rows


def _timed(chip, weights, spikes) -> float:
    t0 = time.perf_counter()
    chip(weights, spikes)
    return time.perf_counter() - t0


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("--benchmark", action="store_true",
                    help="only measure the chip's presentations per second per query shape, "
                         f"with 1 and 2 workers (writes {BENCHMARK_CSV})")
    ap.add_argument("--budget", type=float, default=1e6)
    ap.add_argument("--defaults", action="store_true",
                    help="the engine's methods from scratch with the estimator's defaults "
                         "(else xylo's own unit and a bias channel, as committed)")
    ap.add_argument("--data", nargs="+", default=list(HIDDEN))
    ap.add_argument("--methods", nargs="+", default=list(METHODS))
    known, rest = ap.parse_known_args(argv)
    experiment.refuse_unknown("--data", known.data, HIDDEN)
    experiment.refuse_unknown("--methods", known.methods, METHODS)
    if not known.budget > 0:
        print(f"error: --budget {known.budget}: must be > 0", file=sys.stderr)
        raise SystemExit(2)
    try:
        xylo.xylo_sim()
    except ImportError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    if known.benchmark:
        if rest:
            print(f"error: --benchmark takes no other options (got {' '.join(rest)})",
                  file=sys.stderr)
            raise SystemExit(2)
        write_csv(BENCHMARK_CSV, benchmark())
        write_csv(OVERLAP_CSV, busy())
        print(f"wrote {BENCHMARK_CSV} and {OVERLAP_CSV}")
        return
    experiment.cli(lambda cfg, out, mode: run(cfg, out, mode, known.budget, known.data,
                                              known.methods, known.defaults), __doc__, rest,
                 DEFAULTS)


if __name__ == "__main__":
    main()
