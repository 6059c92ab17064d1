"""MH chain-steps per second: the engine's batched path against BlackJAX and a NumPy loop.

One chain-step = one MH proposal evaluated on the full training set at T = 10, sigma = 2:
by default the paper's 30 -> 3 -> 2 network on 455 breast-cancer rows; ``--network 30-16-2``
the same data through a wider network, ``--network 64-32-10`` scikit-learn's digits (an 80%
training split, 1,437 rows). Compile time is reported apart from run time; run time is the
median of three timed calls. ``fraction_of_peak`` is the dense multiply-add work of a
chain-step (2 T N sum(fan_in x fan_out) flops) per second over this machine's measured fp32
GEMM rate (a 2,048^2 matrix product through XLA), a practical peak.

    python -m experiments.benchmark                 # table, CSV and figure under results/benchmark/
    python -m experiments.benchmark --network 64-32-10 --chains 64 1024   # another network
    python -m experiments.benchmark --json --chains 64   # one JSON object (mh_chain_steps_per_s)
    python -m experiments.benchmark --grad --chains 8 64 # batched gradient per layout
    python -m experiments.benchmark --regimes       # the likelihood per regime, beside a plain
                                                    # vmap and a GEMM of the same shapes
    python -m experiments.benchmark --profile       # where a 64-32-10 call's time goes
    python -m experiments.benchmark --chain-blocks  # the reference layout's set blocks: its own
                                                    # budget against the fused layout's
    python -m experiments.benchmark --precision     # counts at the backend's default matmul
                                                    # precision and at full fp32, against the CPU
    python -m experiments.benchmark --unit-blocks   # a one-unit proposal (rw_unit): the cached
                                                    # first layer against a full forward

``--regimes`` times the likelihood alone (no proposal, no accept step) in each of
``REGIMES``: the engine's layout, a plain ``jax.vmap`` of the one-network reference forward
(``snn.run``) in the same run, and the dense products of the same shapes (the first layer
as one [T N, F] x [F, C H] product, each later layer as C per-set products), timed, as
this machine's ceiling for that work. Every row records the processor, its vector flags
and the jax/jaxlib versions.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import platform
import resource
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from mhsnn import bayes, chips, data, keys, posterior, snn
from mhsnn.io import write_csv
from mhsnn.mcmc.sample import Schedule

SIGMA, LIK_STD, PRIOR_STD, STEP = 2.0, 0.02, 5.0, 0.5


NETWORKS = {"30-3-2": "breast_cancer", "30-16-2": "breast_cancer", "30-32-2": "breast_cancer",
            "64-32-10": "digits", "64-128-10": "digits"}
ROOT = jax.random.key(0)


def _problem(network: str):
    """One 80/20 stratified split of the network's data set (455 / 1,437 training rows)."""
    ds = data.load(NETWORKS[network])
    split = data.kfold_splits(ds.y, 5, 0)[0]
    return posterior.make_problem(ds, [split], ROOT, name="benchmark")


def _settings(network: str) -> posterior.SNNSettings:
    return posterior.SNNSettings(sizes=tuple(int(w) for w in network.split("-")),
                                 layout=snn.default_layout())


def engine(problem, settings, chains: int, steps: int) -> dict:
    """The batched path: all chains' likelihoods as one computation per step."""
    chip = chips.Chip(sigma=jnp.full((1, chains), SIGMA))
    hyper = bayes.MHHyper(STEP, LIK_STD, PRIOR_STD, 0.0, STEP)
    schedule = Schedule.with_draws(steps, None, 10)
    state, advance = bayes.setup(keys.derive(ROOT, "method", "benchmark", "engine"), problem,
                                 chip, hyper, settings, schedule, steps)
    t0 = time.perf_counter()
    compiled = advance.lower(state).compile()
    compile_s = time.perf_counter() - t0
    run_s = _median_time(lambda: compiled(state))
    return {"method": "engine", "chains": chains, "steps": steps, "compile_s": compile_s,
            "run_s": run_s, "chain_steps_per_s": chains * steps / run_s}


def _median_time(call, repeats: int = 3) -> float:
    """Median wall time of ``repeats`` calls after one warm-up (this shared CPU is noisy)."""
    jax.block_until_ready(call())
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(call())
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def straightforward_logdensity(problem, sizes):
    """The density as a user writes it first: one weight vector, snn.forward, MSE, prior."""
    spikes, targets = problem.train_spikes[0], problem.train_targets[0]
    chip = chips.polynomial(SIGMA)

    def logdensity(theta):
        rates = snn.forward(snn.unflatten(theta, sizes), spikes, chip=chip)
        return (-jnp.mean((rates - targets) ** 2) / (2 * LIK_STD**2)
                - 0.5 * jnp.sum(theta**2) / PRIOR_STD**2)

    return logdensity


def blackjax_vmap(problem, settings, chains: int, steps: int) -> dict | None:
    """BlackJAX's additive-step random walk, vmapped over chains, in a jitted scan."""
    try:
        import blackjax
    except ImportError:
        return None
    logdensity = straightforward_logdensity(problem, settings.sizes)
    algo = blackjax.additive_step_random_walk(logdensity, blackjax.mcmc.random_walk.normal(STEP))
    dim = snn.num_weights(settings.sizes)
    init = jax.vmap(algo.init)(STEP * jax.random.normal(jax.random.key(2), (chains, dim)))

    @jax.jit
    def run(state, key):
        def body(state, k):
            keys = jax.random.split(k, chains)
            return jax.vmap(algo.step)(keys, state)[0], None

        return jax.lax.scan(body, state, jax.random.split(key, steps))[0]

    t0 = time.perf_counter()
    compiled = run.lower(init, jax.random.key(3)).compile()
    compile_s = time.perf_counter() - t0
    run_s = _median_time(lambda: compiled(init, jax.random.key(4)))
    return {"method": "blackjax_vmap", "chains": chains, "steps": steps, "compile_s": compile_s,
            "run_s": run_s, "chain_steps_per_s": chains * steps / run_s}


def numpy_loop(problem, steps: int) -> dict:
    """One chain, a Python loop over steps, the forward pass vectorised over samples in NumPy."""
    n = int(problem.train_mask[0].sum())
    spikes = np.asarray(problem.train_spikes[0][:, :n])
    targets = np.asarray(problem.train_targets[0][:n])

    def f(v):
        return v + SIGMA / 2 * v**2 + SIGMA / 6 * v**3

    a, th = snn.ALPHA, snn.THRESHOLD

    def logdensity(theta):
        w1, w2 = theta[:90].reshape(30, 3), theta[90:].reshape(3, 2)
        v1, v2, count = np.zeros((n, 3)), np.zeros((n, 2)), np.zeros((n, 2))
        for t in range(spikes.shape[0]):
            u = f(np.clip(a * v1 + (1 - a) * spikes[t] @ w1, -1e4, 1e4))
            s1 = u >= th
            v1 = np.where(s1 | (u < 0), 0.0, u)
            u = f(np.clip(a * v2 + (1 - a) * s1 @ w2, -1e4, 1e4))
            s2 = u >= th
            v2 = np.where(s2 | (u < 0), 0.0, u)
            count += s2
        mse = np.mean((count / spikes.shape[0] - targets) ** 2)
        return -mse / (2 * LIK_STD**2) - 0.5 * np.sum(theta**2) / PRIOR_STD**2

    rng = np.random.default_rng(0)
    theta = STEP * rng.standard_normal(96)
    current = logdensity(theta)
    t0 = time.perf_counter()
    for _ in range(steps):
        prop = theta + STEP * rng.standard_normal(96)
        lp = logdensity(prop)
        if np.log(rng.random()) < lp - current:
            theta, current = prop, lp
    run_s = time.perf_counter() - t0
    return {"method": "numpy_loop", "chains": 1, "steps": steps, "compile_s": 0.0,
            "run_s": run_s, "chain_steps_per_s": steps / run_s}


def forward_times(problem, settings, set_counts) -> list[dict]:
    """Wall time of one batched forward pass (training rows, sigma = 2), best of 5 repeats."""
    spikes = problem.train_spikes[0]
    rows = []
    for C in set_counts:
        dim = snn.num_weights(settings.sizes)
        params = snn.unflatten(jax.random.normal(jax.random.key(1), (C, dim)) * 2.0,
                               settings.sizes)
        run = jax.jit(lambda p: snn.forward_batched(p, spikes, chip=chips.polynomial(SIGMA)))
        jax.block_until_ready(run(params))
        best = float("inf")
        for _ in range(5):
            n = max(3, 200 // C)
            t0 = time.perf_counter()
            for _ in range(n):
                jax.block_until_ready(run(params))
            best = min(best, (time.perf_counter() - t0) / n)
        rows.append({"weight_sets": C, "forward_ms": best * 1e3})
    return rows


def grad_times(problem, settings, set_counts) -> list[dict]:
    """Wall time of the gradient of the summed squared error of C weight sets (the
    surrogate-gradient path), through each layout; median of three calls after a warm-up."""
    spikes, targets = problem.train_spikes[0], problem.train_targets[0]
    mask = problem.train_mask[0]
    rows = []
    for C, layout in itertools.product(set_counts, snn.LAYOUTS):
        dim = snn.num_weights(settings.sizes)
        theta = jax.random.normal(jax.random.key(1), (C, dim)) * 2.0
        chip = chips.Chip(sigma=jnp.full((C,), SIGMA))

        def loss(th, layout=layout, chip=chip):
            return jnp.sum(snn.sq_error_batched(snn.unflatten(th, settings.sizes), spikes,
                                                targets, mask, chip=chip, layout=layout))

        forward, grad = jax.jit(loss), jax.jit(jax.grad(loss))
        rows.append({"weight_sets": C, "layout": layout,
                     "forward_ms": _median_time(lambda f=forward, th=theta: f(th)) * 1e3,
                     "grad_ms": _median_time(lambda g=grad, th=theta: g(th)) * 1e3})
    return rows


def gemm_peak_flops() -> float:
    """This machine's sustained fp32 rate on one large matrix product through XLA."""
    a = jax.random.normal(jax.random.key(0), (2048, 2048), jnp.float32)
    mm = jax.jit(lambda x: x @ x)
    return 2 * 2048**3 / _median_time(lambda: mm(a), repeats=5)


def flops_per_chain_step(problem, sizes) -> float:
    """Dense multiply-add work of one chain-step: 2 T N sum(fan_in x fan_out)."""
    n = float(problem.train_mask[0].sum())
    return 2.0 * problem.num_steps * n * snn.num_weights(sizes)


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chains", type=int, nargs="*", default=[1, 16, 64, 256, 1024, 4096])
    ap.add_argument("--steps", type=int, default=200, help="steps per timed engine run")
    ap.add_argument("--peer-max-chains", type=int, default=256,
                    help="largest chain count for the slower BlackJAX peer")
    ap.add_argument("--json", action="store_true", help="print one JSON object for --chains N")
    ap.add_argument("--forward", action="store_true",
                    help="time one forward pass of the training rows for each --chains count")
    ap.add_argument("--grad", action="store_true",
                    help="time the batched loss and its gradient per layout for each --chains")
    ap.add_argument("--network", default="30-3-2", choices=sorted(NETWORKS),
                    help="layer sizes; 30-* run on breast cancer, 64-32-10 on digits")
    ap.add_argument("--regimes", action="store_true",
                    help="the likelihood alone in each regime, beside a plain vmap and the "
                         "same-shape products; writes regimes_<backend>.csv")
    ap.add_argument("--layouts", nargs="*", choices=snn.LAYOUTS,
                    help="with --regimes: the engine layouts to time (default: the backend's)")
    ap.add_argument("--out", type=Path, default=Path("results/benchmark"))
    ap.add_argument("--profile", action="store_true",
                    help="time the parts of one 64-32-10 call; writes profile_<backend>.csv")
    ap.add_argument("--precision", action="store_true",
                    help="count differences from the CPU at default and full fp32 precision; "
                         "writes precision_<backend>.csv")
    ap.add_argument("--unit-blocks", action="store_true",
                    help="a proposal that moves one hidden unit: the cached path against the "
                         "full engine and a plain vmap; writes unit_blocks_<backend>.csv")
    ap.add_argument("--chain-blocks", action="store_true",
                    help="the reference layout's set blocks, its budget against the fused "
                         "layout's; writes chain_blocks_<backend>.csv")
    args = ap.parse_args(argv)
    tables = {"regimes": lambda: regime_rows(args.layouts), "profile": profile_rows,
              "chain_blocks": chain_block_rows, "precision": precision_rows,
              "unit_blocks": unit_block_rows}
    for table, make in tables.items():
        if getattr(args, table):  # one CSV per mode: <table>_<backend>.csv
            args.out.mkdir(parents=True, exist_ok=True)
            write_csv(args.out / f"{table}_{jax.default_backend()}.csv", make())
            return
    problem, settings = _problem(args.network), _settings(args.network)
    device = str(jax.devices()[0])
    rows_n = int(problem.train_mask[0].sum())

    if args.forward:
        for r in forward_times(problem, settings, args.chains):
            print(f"forward pass, {rows_n} samples x {r['weight_sets']} weight sets: "
                  f"{r['forward_ms']:.3f} ms")
        return

    if args.grad:
        for r in grad_times(problem, settings, args.chains):
            print(f"{args.network} {r['weight_sets']:5d} sets  {r['layout']:9s}  forward "
                  f"{r['forward_ms']:8.2f} ms  gradient {r['grad_ms']:8.2f} ms", flush=True)
        return

    if args.json:
        chains = args.chains[-1]
        r = engine(problem, settings, chains, args.steps)
        print(json.dumps({"mh_chain_steps_per_s": r["chain_steps_per_s"], "chains": chains,
                          "network": args.network, "compile_s": r["compile_s"],
                          "device": device, "peak_rss_mib": _peak_rss_mib()}))
        return

    peak = gemm_peak_flops()
    work = flops_per_chain_step(problem, settings.sizes)
    rows = []
    for chains in args.chains:
        rows.append(engine(problem, settings, chains, args.steps))
        if chains <= args.peer_max_chains:
            peer = blackjax_vmap(problem, settings, chains, max(20, args.steps // 4))
            if peer is not None:
                rows.append(peer)
        print(rows[-1], file=sys.stderr, flush=True)
    if args.network == "30-3-2":
        rows.append(numpy_loop(problem, 200))
    for r in rows:
        r.update(network=args.network, train_rows=rows_n, device=device,
                 peak_rss_mib=_peak_rss_mib(), gemm_peak_gflops=peak / 1e9,
                 fraction_of_peak=r["chain_steps_per_s"] * work / peak)
        print(f"{r['method']:14s} chains={r['chains']:5d}  {r['chain_steps_per_s']:>14,.0f} "
              f"chain-steps/s  {100 * r['fraction_of_peak']:5.1f}% of peak  "
              f"compile {r['compile_s']:.2f}s")
    tag = jax.default_backend() + ("" if args.network == "30-3-2" else f"_{args.network}")
    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(args.out / f"benchmark_{tag}.csv", rows)
    _figure(rows, args.out / f"benchmark_{tag}.png", f"{args.network} on {device}")


REGIMES = (  # name, network, weight sets, rows (None: the whole training split)
    ("paper, full batch", "30-3-2", 64, None),
    ("30-32-2, full batch", "30-32-2", 64, None),
    ("64-32-10, full batch", "64-32-10", 64, None),
    ("64-128-10, full batch", "64-128-10", 64, None),
    ("64-32-10, mini-batch", "64-32-10", 256, 128),
    ("64-128-10, mini-batch", "64-128-10", 256, 128),
)


def machine() -> dict:
    """What the figures ran on: processor, its vector flags, the jax and jaxlib versions."""
    import jaxlib

    model, flags = platform.processor() or platform.machine(), ""
    try:
        info = Path("/proc/cpuinfo").read_text()
        model = next(line.split(":", 1)[1].strip() for line in info.splitlines()
                     if line.startswith("model name"))
        have = next(line.split(":", 1)[1].split() for line in info.splitlines()
                    if line.startswith("flags"))
        flags = " ".join(f for f in have if f.startswith(("avx", "amx", "fma")))
    except (OSError, StopIteration):
        pass
    return {"device": str(jax.devices()[0]), "cpu": model, "cpu_flags": flags,
            "jax": jax.__version__, "jaxlib": jaxlib.__version__}


def _regime_inputs(network: str, sets: int, rows: int | None):
    problem = _problem(network)
    n = int(problem.train_mask[0].sum()) if rows is None else rows
    spikes = problem.train_spikes[0][:, :n]
    targets, mask = problem.train_targets[0][:n], problem.train_mask[0][:n]
    sizes = _settings(network).sizes
    theta = 2.0 * jax.random.normal(jax.random.key(1), (sets, snn.num_weights(sizes)))
    return spikes, targets, mask, snn.unflatten(theta, sizes)


def plain_vmap_loss(params, spikes, targets, mask, chip):
    """The likelihood as a plain ``jax.vmap`` of the reference forward (``snn.run``)."""
    def one(p, ch):
        rates = snn.run(p, spikes, chip=ch) / spikes.shape[0]
        return jnp.sum(jnp.sum((rates - targets) ** 2, axis=-1) * mask)

    return jax.vmap(one)(params, chip)


def same_shape_products(params, spikes):
    """The dense products of one likelihood call: [T N, F] x [F, C H1], then per set
    [T N, H_i] x [H_i, H_i+1] (random binary inputs to each later layer)."""
    ws = snn.layers_of(params)
    T, N, F = spikes.shape
    C = ws[0].shape[0]
    x = spikes.reshape(T * N, F)
    later = [(jax.random.uniform(jax.random.key(i), (C, T * N, w.shape[1])) < 0.3)
             .astype(jnp.float32) for i, w in enumerate(ws[1:])]

    def products(ws, x, later):
        out = [jnp.sum(x @ jnp.transpose(ws[0], (1, 0, 2)).reshape(F, -1))]
        out += [jnp.sum(jnp.einsum("cnh,chk->cnk", s, w)) for s, w in zip(later, ws[1:])]
        return sum(out)

    return jax.jit(products), (ws, x, later)


def _best_times(calls: dict, rounds: int = 7) -> dict:
    """Fastest wall time of each call, taken in turns over ``rounds`` rounds after one warm-up
    each: this VM's neighbours slow whole seconds at a time, so a call timed in one run of
    repeats can meet a slow spell the others missed, and the fastest round is the cost."""
    for call in calls.values():
        jax.block_until_ready(call())
    times = {name: float("inf") for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            t0 = time.perf_counter()
            jax.block_until_ready(call())
            times[name] = min(times[name], time.perf_counter() - t0)
    return times


def regime_rows(layouts=None, regimes=REGIMES) -> list[dict]:
    """One row per regime and engine layout: ms per likelihood call of the engine, of the
    plain vmap and of the same-shape products, and presentations (rows x sets) per second.
    Within a regime every call is timed in turns (``_best_times``)."""
    info = machine()
    out = []
    for name, network, sets, rows in regimes:
        spikes, targets, mask, params = _regime_inputs(network, sets, rows)
        chip = chips.Chip(sigma=jnp.full((sets,), SIGMA))
        n = spikes.shape[1]
        vmap_fn = jax.jit(plain_vmap_loss)
        gemm_fn, gemm_args = same_shape_products(params, spikes)
        calls = {"vmap": lambda: vmap_fn(params, spikes, targets, mask, chip),
                 "gemm": lambda: gemm_fn(*gemm_args)}
        layouts_here = layouts or [snn.default_layout()]
        for layout in layouts_here:
            fn = jax.jit(functools.partial(snn.sq_error_batched, chip=chip, layout=layout))
            calls[layout] = functools.partial(fn, params, spikes, targets, mask)
        times = _best_times(calls)
        sizes = snn.sizes_of(params)
        for layout in layouts_here:
            engine_s, vmap_s, gemm_s = times[layout], times["vmap"], times["gemm"]
            runs = snn.resolved_layout(layout, sizes, chip, n)
            row = {"regime": name, "network": network, "sets": sets, "rows": n,
                   "layout": layout if runs == layout else f"{layout}->{runs}",
                   "engine_ms": 1e3 * engine_s, "vmap_ms": 1e3 * vmap_s,
                   "gemm_ms": 1e3 * gemm_s,
                   "engine_presentations_per_s": sets * n / engine_s,
                   "vmap_presentations_per_s": sets * n / vmap_s,
                   "gemm_presentations_per_s": sets * n / gemm_s,
                   "speedup_vs_vmap": vmap_s / engine_s,
                   "fraction_of_gemm": gemm_s / engine_s, **info}
            print(f"{name:24s} {row['layout']:18s} engine {row['engine_ms']:8.2f} ms  "
                  f"vmap {row['vmap_ms']:8.2f} ms  products {row['gemm_ms']:8.2f} ms  "
                  f"{row['speedup_vs_vmap']:5.2f}x vmap  {100 * row['fraction_of_gemm']:5.1f}% "
                  "of the products' rate", flush=True)
            out.append(row)
    return out


UNIT_REGIMES = tuple(r for r in REGIMES if r[3] is None and r[1] != "30-3-2")
"""The full-batch regimes whose first hidden layer is wide: a mini-batch changes the rows
every step, so there is no train to keep."""


def unit_block_rows(regimes=UNIT_REGIMES) -> list[dict]:
    """One row per regime: ms per likelihood call of a proposal that moves one unit of the
    first hidden layer (``rw_unit``'s), by the unit path (``snn.unit_counts`` on the
    trains of the current sets, then the loss), by the engine's full layout and by the
    plain vmap, timed in turns (``_best_times``); and how many counts of the unit path
    differ from the reference forward's."""
    info = machine()
    out = []
    for name, network, sets, _ in regimes:
        spikes, targets, mask, params = _regime_inputs(network, sets, None)
        chip = chips.Chip(sigma=jnp.full((sets,), SIGMA))
        cache = jax.jit(functools.partial(snn.unit_cache, chip=chip))(params, spikes)
        moved = dict(params, w1=params["w1"].at[:, :, 1].add(0.5))

        def unit_loss(params, cache):
            counts, _ = snn.unit_counts(params, cache, 1, spikes, chip=chip)
            rates = counts / spikes.shape[0]
            return jnp.sum(jnp.sum((rates - targets) ** 2, axis=-1) * mask, axis=-1), counts

        unit_fn, vmap_fn = jax.jit(unit_loss), jax.jit(plain_vmap_loss)
        engine_fn = jax.jit(functools.partial(snn.sq_error_batched, chip=chip,
                                              layout=snn.default_layout()))
        times = _best_times({
            "unit": lambda: unit_fn(moved, cache),
            "engine": lambda: engine_fn(moved, spikes, targets, mask),
            "vmap": lambda: vmap_fn(moved, spikes, targets, mask, chip)})
        reference = jax.jit(functools.partial(snn.run_batched, chip=chip))(moved, spikes)
        n = spikes.shape[1]
        row = {"regime": name, "network": network, "sets": sets, "rows": n,
               "unit_ms": 1e3 * times["unit"], "engine_ms": 1e3 * times["engine"],
               "vmap_ms": 1e3 * times["vmap"],
               "unit_presentations_per_s": sets * n / times["unit"],
               "speedup_vs_vmap": times["vmap"] / times["unit"],
               "speedup_vs_engine": times["engine"] / times["unit"],
               "counts_differing": int(jnp.sum(unit_fn(moved, cache)[1] != reference)),
               **info}
        print(f"{name:24s} unit {row['unit_ms']:8.2f} ms  engine {row['engine_ms']:8.2f} ms  "
              f"vmap {row['vmap_ms']:8.2f} ms  {row['speedup_vs_vmap']:5.2f}x vmap  "
              f"{row['counts_differing']} counts differ", flush=True)
        out.append(row)
    return out


def profile_rows(network: str = "64-32-10", sets: int = 64) -> list[dict]:
    """Where one likelihood call of the row-blocked layout spends its time: the call, then
    its parts timed alone on the same shapes (T steps x row blocks of ``snn.ROW_BLOCK``)."""
    spikes, targets, mask, params = _regime_inputs(network, sets, None)
    chip = chips.Chip(sigma=jnp.full((sets,), SIGMA))
    ws = snn.layers_of(params)
    T, N, F = spikes.shape
    H, O, nb = ws[0].shape[2], ws[-1].shape[2], snn.ROW_BLOCK
    blocks = -(-N // nb)
    x = jnp.pad(spikes, ((0, 0), (0, blocks * nb - N), (0, 0))).reshape(T * blocks, nb, F)
    w1 = jnp.transpose(ws[0], (1, 0, 2)).reshape(F, -1)
    s1 = (jax.random.uniform(jax.random.key(5), (T * blocks, nb, sets, H)) < 0.3).astype(
        jnp.float32)
    w2 = jnp.swapaxes(ws[1], 1, 2)

    def each(fn, xs):  # one result per block and step, reduced so nothing large is kept
        return jax.lax.scan(lambda acc, xi: (acc + jnp.sum(fn(xi)), None), 0.0, xs)[0]

    parts = {
        "the blocked layout's whole call": (jax.jit(functools.partial(
            snn.sq_error_batched, chip=chip, layout="blocked")), (params, spikes, targets, mask)),
        "first layer, one [T N, F] x [F, C H] product": (jax.jit(
            lambda x, w: jnp.sum(x.reshape(-1, F) @ w)), (x, w1)),
        "first layer, per block and step (in cache)": (jax.jit(
            lambda x, w: each(lambda xi: xi @ w, x)), (x, w1)),
        "first layer, per block and step, bf16 inputs": (jax.jit(
            lambda x, w: each(lambda xi: jnp.dot(xi, w, preferred_element_type=jnp.float32),
                              x)), (x.astype(jnp.bfloat16), w1.astype(jnp.bfloat16))),
        "second layer, per block and step (broadcast and sum)": (jax.jit(
            lambda s, w: each(lambda si: jnp.sum(si[:, :, None, :] * w[None], -1), s)), (s1, w2)),
        "second layer, per block and step (einsum)": (jax.jit(
            lambda s, w: each(lambda si: jnp.einsum("nch,ckh->nck", si, w), s)), (s1, w2)),
    }
    rows, info = [], machine()
    times = _best_times({part: functools.partial(fn, *args) for part, (fn, args) in parts.items()})
    for part, seconds in times.items():
        ms = 1e3 * seconds
        rows.append({"network": network, "sets": sets, "rows": N, "row_block": nb, "part": part,
                     "ms": ms, "output_classes": O, **info})
        print(f"{part:55s} {ms:8.2f} ms", flush=True)
    return rows


CHAIN_BLOCK_SHAPES = (("30-32-2", 64, None), ("30-16-2", 64, None), ("64-32-10", 64, None),
                      ("64-32-10", 256, 128), ("64-128-10", 256, 128))


def chain_block_rows(shapes=CHAIN_BLOCK_SHAPES) -> list[dict]:
    """The reference layout at the set blocks of its own budget (``snn.BLOCK_FLOATS``) and at
    those the fused layout's budget gives, timed in turns."""
    rows, info = [], machine()
    for network, sets, n_rows in shapes:
        spikes, targets, mask, params = _regime_inputs(network, sets, n_rows)
        chip = chips.Chip(sigma=jnp.full((sets,), SIGMA))
        T, N, _ = spikes.shape
        per_set = T * N * snn.sizes_of(params)[1]
        blocks = {budget: snn.chain_block_size(sets, per_set, budget)
                  for budget in ("fused", "reference")}
        calls = {budget: functools.partial(jax.jit(functools.partial(
            snn.sq_error_batched, chip=chip, layout="reference", chain_block=block)),
            params, spikes, targets, mask) for budget, block in blocks.items()}
        times = _best_times(calls)
        row = {"network": network, "sets": sets, "rows": N,
               "fused_budget_block": blocks["fused"], "own_budget_block": blocks["reference"],
               "fused_budget_ms": 1e3 * times["fused"], "own_budget_ms": 1e3 * times["reference"],
               "speedup": times["fused"] / times["reference"], **info}
        print(f"{network} {sets} sets {N} rows: blocks of {blocks['fused']} "
              f"{row['fused_budget_ms']:.1f} ms, of {blocks['reference']} "
              f"{row['own_budget_ms']:.1f} ms", flush=True)
        rows.append(row)
    return rows


def precision_rows(networks=("64-32-10", "30-3-2"), sets: int = 64) -> list[dict]:
    """Output counts of ``sets`` weight sets on all training rows, on the default device with
    the engine's products at full fp32 (``snn.EXACT``) and at the backend's default
    precision (TF32 on recent GPUs), each against the same counts on the CPU."""
    cpu, device, info = jax.devices("cpu")[0], jax.devices()[0], machine()
    rows = []
    for network in networks:
        spikes, _, _, params = _regime_inputs(network, sets, None)
        chip = chips.Chip(sigma=jnp.full((sets,), SIGMA))

        def counts(device, precision):
            exact, snn.EXACT = snn.EXACT, precision
            try:  # a fresh jit per precision: the constant is read while tracing
                args = jax.device_put((params, spikes, chip), device)
                return np.asarray(jax.jit(lambda p, s, c: snn.run_batched(p, s, chip=c))(*args))
            finally:
                snn.EXACT = exact

        on_cpu = counts(cpu, jax.lax.Precision.HIGHEST)
        row = {"network": network, "sets": sets, "counts": on_cpu.size,
               "default_precision_vs_cpu": int(
                   (counts(device, None) != on_cpu).sum()),
               "full_fp32_vs_cpu": int(
                   (counts(device, jax.lax.Precision.HIGHEST) != on_cpu).sum()),
               **info}
        print(f"{network}: {row['counts']} counts; on {row['device']} at the default precision "
              f"{row['default_precision_vs_cpu']} differ from the CPU's, at full fp32 "
              f"{row['full_fp32_vs_cpu']}", flush=True)
        rows.append(row)
    return rows


def _figure(rows, path, device) -> None:
    from mhsnn.plots import plt, save

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for method in dict.fromkeys(r["method"] for r in rows):
        rs = [r for r in rows if r["method"] == method]
        ax.plot([r["chains"] for r in rs], [r["chain_steps_per_s"] for r in rs], "o-",
                label=method)
    ax.set(xscale="log", yscale="log", xlabel="chains", ylabel="chain-steps / s",
           title=f"MH throughput, {device}")
    ax.legend()
    save(fig, path)


if __name__ == "__main__":
    main()
