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
  model's (straight-through), for the same budget of presentations.

Xylo takes at most 16 inputs: data sets with more than 15 features keep the 15 with the
largest ANOVA F statistic on the fold's training rows (scikit-learn's ``SelectKBest``), the
16th channel being the bias; the vendor model gets the same 15 and its own bias registers.
Digits keeps classes 0-7: Xylo has 8 output neurons.

Writes xylo.csv (per data set, method and fold: accuracy, NLL, Brier, ECE, training
presentations, chip seconds per presentation, wall time) and xylo_summary.csv (means over
folds) to --out. Each fit is a checkpointed stage (``--resume``).

    python -m experiments.xylo [--budget B] [--data NAME ...] [--methods NAME ...] [--set KEY=VALUE] [--out DIR]
    python -m experiments.xylo --benchmark    # the chip's presentations per second

Keys: ``folds`` (default 3), ``seed``, ``mh.num_chains`` (default 8), ``snn.time_steps``,
the vendor's settings are fixed, untuned defaults (Adam lr 0.01, batches of 32, 200
epochs; in the loop, batches of 128).
"""

from __future__ import annotations

import argparse
import functools
import shutil
import sys
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
from sklearn.feature_selection import SelectKBest, f_classif

from experiments import tables
from mhsnn import data, experiment, keys, metrics, runs, xylo
from mhsnn.estimator import SNNClassifier
from mhsnn.io import write_csv

EXPERIMENT = "xylo"
DEFAULTS = ["folds=3", "mh.num_chains=8"]
HIDDEN = {"iris": 8, "wine": 8, "breast_cancer": 8, "digits": 16}
CHIP_METHODS = ("rw", "rw_adapt_full", "pt", "snes", "sep_cma_es", "spsa")
VENDOR = ("vendor", "vendor_sg_in_loop")
METHODS = CHIP_METHODS + VENDOR
MAX_FEATURES = xylo.MAX_INPUTS - 1  # one input is the bias channel
VENDOR_LR, VENDOR_BATCH, VENDOR_EPOCHS = 0.01, 32, 200
WORKERS = 2  # XyloSim processes per chip: this machine's two cores
IN_LOOP_BATCH = 128  # rows per chip query in the loop (each step re-quantises and queries)
TAU_MEM, TAU_SYN = 2.0**xylo.DASH_MEM, 2.0**xylo.DASH_SYN  # in dt: rockpool maps tau to dash
NUMBERS = ("test_accuracy", "ece", "nll", "brier", "presentations", "chip_s_per_presentation",
           "fit_s", "float_accuracy")
MEANS = ("test_accuracy", "nll", "brier", "ece", "presentations", "chip_s_per_presentation",
         "fit_s", "float_accuracy")


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


# ---- the vendor's workflow: rockpool's modules, mapper and quantiser ------------------------

def vendor_net(F: int, H: int, O: int, key: jax.Array):
    """rockpool's float model of Xylo's neurons: Linear -> LIF -> Linear -> LIF."""
    nn = xylo.rockpool_module("rockpool.nn.modules")
    Sequential = xylo.rockpool_module("rockpool.nn.combinators").Sequential
    k1, k2 = jax.random.split(key)

    def lif(n, **kw):
        return nn.LIFJax(n, tau_mem=np.full(n, TAU_MEM * 1e-3), tau_syn=np.full(n, TAU_SYN * 1e-3),
                         bias=np.zeros(n), threshold=np.ones(n), dt=1e-3, **kw)

    def linear(a, b, k, positive=False):  # rockpool's Kaiming-uniform bound, keyed by ours
        bound = np.sqrt(6.0 / a)
        w = jax.random.uniform(k, (a, b), minval=-bound, maxval=bound)
        return nn.LinearJax((a, b), has_bias=False,
                            weight=np.asarray(jnp.abs(w) if positive else w))

    # an output neuron spikes at most once a step on the chip: so does the model's
    # rockpool's LIF surrogate is zero below threshold - 0.5: an output silent at the start
    # never learns (with signed output weights, iris stayed at chance), so the output
    # weights start positive, as the engine's tuned SG initialisation does (sg.init_mean2)
    return Sequential(linear(F, H, k1), lif(H), linear(H, O, k2, positive=True),
                      lif(O, max_spikes_per_dt=1.0))


TRAINED = (("0_LinearJax", "weight"), ("1_LIFJax", "bias"), ("2_LinearJax", "weight"),
           ("3_LIFJax", "bias"))  # taus (the chip's dashes) and thresholds stay fixed


def _trainable(net) -> dict:
    p = net.parameters()
    return {m: {k: jnp.asarray(p[m][k])} for m, k in TRAINED}


def _rates(net, params, spikes_btf):
    out, _, _ = net.reset_state().set_attributes(params)(spikes_btf)
    return out.mean(1)  # [B, O] spikes per step


@functools.partial(jax.jit, static_argnums=(0, 1))
def _step(net, opt, params, opt_state, x, y_onehot, chip_rates):
    """One Adam step on the cross-entropy of softmax(output counts); with the chip's rates,
    straight-through (in the loop: the chip's values, the model's derivative)."""
    def loss(p):
        rates = _rates(net, p, x)
        if chip_rates is not None:
            rates = rates + jax.lax.stop_gradient(chip_rates - rates)
        return optax.softmax_cross_entropy(rates * x.shape[1], y_onehot).mean()
    value, grads = jax.value_and_grad(loss)(params)
    updates, opt_state = opt.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, value


def float_spec(params, net) -> dict:
    """rockpool's ``mapper`` of the model: its float specification for Xylo."""
    mapper = xylo.rockpool_module("rockpool.devices.xylo.syns61201.xylo_mapper").mapper
    graph = net.reset_state().set_attributes(params).as_graph()
    spec = mapper(graph, weight_dtype="float", threshold_dtype="float", dash_dtype="float")
    for key in ("mapped_graph", "dt"):
        spec.pop(key, None)
    return spec


def with_params(spec: dict, params) -> dict:
    """``spec`` with the trained arrays of ``params`` (what ``mapper`` puts there for this
    feed-forward network: the tests check it), without re-mapping the graph each step."""
    return {**spec, "weights_in": np.asarray(params["0_LinearJax"]["weight"]),
            "weights_out": np.asarray(params["2_LinearJax"]["weight"]),
            "bias": np.asarray(params["1_LIFJax"]["bias"]),
            "bias_out": np.asarray(params["3_LIFJax"]["bias"])}


def quantised(spec: dict) -> dict:
    """rockpool's ``global_quantize`` of a float specification, checked against the chip."""
    quantize = xylo.rockpool_module("rockpool.transform.quantize_methods").global_quantize
    return xylo.check_spec({**spec, **quantize(**spec)})


def vendor_fit(key, spikes, y, H, O, chip=None, budget=0.0, start=None):
    """Train the float model offline (``chip=None``) or in the loop for ``budget``
    presentations from ``start``; returns (params, net, presentations)."""
    T, N, F = spikes.shape
    key_init, key_batches = jax.random.split(key)
    net = vendor_net(F, H, O, key_init)
    params = _trainable(net) if start is None else start
    opt = optax.adam(VENDOR_LR)
    opt_state = opt.init(params)
    x = jnp.swapaxes(jnp.asarray(spikes), 0, 1)  # [N, T, F]: rockpool is batch-major
    y1 = jnp.asarray(data.one_hot(y, O))
    rng = np.random.default_rng(int(jax.random.randint(key_batches, (), 0, 2**31 - 1)))
    spec = float_spec(params, net) if chip is not None else None
    used, epoch = 0, 0
    while (epoch < VENDOR_EPOCHS) if chip is None else (used + N <= budget):
        batch = VENDOR_BATCH if chip is None else IN_LOOP_BATCH
        for idx in np.array_split(rng.permutation(N), max(1, N // batch)):
            chip_rates = None
            if chip is not None:
                t0 = time.perf_counter()
                counts = xylo.run_configs([quantised(with_params(spec, params))],
                                          np.asarray(spikes)[:, idx])[0]
                chip.seconds += time.perf_counter() - t0
                chip.presentations += len(idx)
                chip_rates = jnp.asarray(counts / T)
                used += len(idx)
            params, opt_state, _ = _step(net, opt, params, opt_state, x[idx], y1[idx],
                                         chip_rates)
        epoch += 1
    return params, net, used


# ---- one fit ---------------------------------------------------------------------------

def fit_one(cfg, name, method, fold, split, ds, budget, folder) -> dict:
    H, K = HIDDEN.get(name, 8), int(ds.y.max()) + 1
    X_train, X_test = select_features(ds.X[split.train], ds.y[split.train], ds.X[split.test])
    y_train, y_test = ds.y[split.train], ds.y[split.test]
    F = X_train.shape[1]
    t0 = time.perf_counter()
    float_accuracy = np.nan  # the vendor's float model, before quantisation
    if method in CHIP_METHODS:
        chip = xylo.XyloChip((F + 1, H, K), workers=WORKERS)
        clf = SNNClassifier(chip=chip, hidden=(H,), method=method, presentations=budget,
                            chains=cfg.mh.num_chains, time_steps=cfg.snn.time_steps,
                            bias_input=True, random_state=cfg.seed + fold,
                            likelihood="mse", weight_scale=1.0,  # as committed: xylo's unit
                            checkpoint_dir=folder, chip_retries=cfg.chip.retries,
                            chip_timeout_s=cfg.chip.timeout_s)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # R-hat warnings: the sampler's own business here
            clf.fit(X_train, y_train)
        presentations, seconds, shown = clf.presentations_, chip.seconds, chip.presentations
        probs = clf.predict_proba(X_test)
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
            "float_accuracy": float_accuracy}


def run(cfg, out, mode, budget: float, names: list[str], methods: list[str]) -> list[dict]:
    run_ = experiment.start(out, cfg, EXPERIMENT, mode)
    stages, rows = run_.stages, []
    for name in names:
        ds = load(name)
        splits = data.kfold_splits(ds.y, cfg.folds, cfg.seed)
        for method in methods:
            for f, split in enumerate(splits):
                folder = out / "checkpoints" / f"{EXPERIMENT}_{name}_{method}_fold{f}"

                def fit(name=name, method=method, f=f, split=split, folder=folder, ds=ds):
                    result = fit_one(cfg, name, method, f, split, ds, budget, folder)
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
                               "hidden": {n: HIDDEN[n] for n in names}})
    for r in summary:
        print(f"{r['data']:14s} {r['method']:18s} {r['test_accuracy_mean']:.3f} +- "
              f"{r['test_accuracy_std']:.3f}  NLL {r['nll_mean']:.3f}  ECE {r['ece_mean']:.3f}"
              f"  {r['presentations_mean']:,.0f} presentations")
    return rows


def benchmark(workers: int, sizes=(5, 8, 3), sets: int = 8, rows: int = 455, T: int = 10,
              repeats: int = 3) -> dict:
    """XyloSim's throughput through ``chips.xylo``: sample presentations per second of a
    query of ``sets`` random weight sets on ``rows`` Poisson rows (best of ``repeats``)."""
    rng = np.random.default_rng(0)
    chip = xylo.XyloChip(sizes, workers=workers)
    weights = rng.normal(0.0, 5.0, (sets, chip.num_params)).astype(np.float32)
    spikes = (rng.random((T, rows, sizes[0])) < 0.5).astype(np.float32)
    chip(weights, spikes)  # start the workers
    best = min(_timed(chip, weights, spikes) for _ in range(repeats))
    chip.close()
    return {"network": "-".join(map(str, sizes)), "workers": workers, "T": T,
            "presentations_per_s": sets * rows / best, "us_per_presentation": best / (sets * rows) * 1e6}


def _timed(chip, weights, spikes) -> float:
    t0 = time.perf_counter()
    chip(weights, spikes)
    return time.perf_counter() - t0


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("--benchmark", action="store_true",
                    help="only measure the chip's presentations per second (1 and 2 workers)")
    ap.add_argument("--budget", type=float, default=1e6)
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
        for workers in (1, 2):
            print(benchmark(workers))
        return
    experiment.cli(lambda cfg, out, mode: run(cfg, out, mode, known.budget, known.data,
                                              known.methods), __doc__, rest, DEFAULTS)


if __name__ == "__main__":
    main()
