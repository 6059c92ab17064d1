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
"""

from __future__ import annotations

import argparse
import itertools
import json
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
    ap.add_argument("--out", type=Path, default=Path("results/benchmark"))
    args = ap.parse_args(argv)
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
