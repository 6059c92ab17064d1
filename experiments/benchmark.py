"""MH chain-steps per second: the engine's batched path against BlackJAX and a NumPy loop.

One chain-step = one MH proposal evaluated on the full training set (455 samples x T = 10
through 30 -> 3 -> 2, sigma = 2). Compile time is reported apart from run time; run time is
the median of three timed calls.

    python -m experiments.benchmark                 # table, CSV and figure under results/benchmark/
    python -m experiments.benchmark --json --chains 64   # one JSON object (mh_chain_steps_per_s)
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from mhsnn import bayes, chips, data, posterior, snn
from mhsnn.io import write_csv
from mhsnn.mcmc.sample import Schedule

SIGMA, LIK_STD, PRIOR_STD, STEP = 2.0, 0.02, 5.0, 0.5


def _problem():
    ds = data.load_breast_cancer()
    split = data.kfold_splits(ds.y, 5, 0)[0]
    split = data.Split(split.train[:455], split.test)
    return posterior.make_problem(ds, [split], jax.random.key(0))


def engine(problem, chains: int, steps: int) -> dict:
    """The batched path: all chains' likelihoods as one computation per step."""
    chip = chips.Chip(sigma=jnp.full((1, chains), SIGMA))
    hyper = bayes.MHHyper(STEP, LIK_STD, PRIOR_STD, 0.0, STEP)
    schedule = Schedule.with_draws(steps, None, 10)
    state, advance = bayes.setup(jax.random.key(1), problem, chip, hyper,
                                 posterior.SNNSettings(), schedule, steps)
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


def straightforward_logdensity(problem):
    """The density as a user writes it first: one weight vector, snn.forward, MSE, prior."""
    spikes, targets = problem.train_spikes[0], problem.train_targets[0]
    chip = chips.polynomial(SIGMA)

    def logdensity(theta):
        rates = snn.forward(snn.unflatten(theta), spikes, chip=chip)
        return (-jnp.mean((rates - targets) ** 2) / (2 * LIK_STD**2)
                - 0.5 * jnp.sum(theta**2) / PRIOR_STD**2)

    return logdensity


def blackjax_vmap(problem, chains: int, steps: int) -> dict | None:
    """BlackJAX's additive-step random walk, vmapped over chains, in a jitted scan."""
    try:
        import blackjax
    except ImportError:
        return None
    logdensity = straightforward_logdensity(problem)
    algo = blackjax.additive_step_random_walk(logdensity, blackjax.mcmc.random_walk.normal(STEP))
    init = jax.vmap(algo.init)(STEP * jax.random.normal(jax.random.key(2), (chains, 96)))

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

    def logdensity(theta):
        w1, w2 = theta[:90].reshape(30, 3), theta[90:].reshape(3, 2)
        v1, v2, count = np.zeros((n, 3)), np.zeros((n, 2)), np.zeros((n, 2))
        for t in range(spikes.shape[0]):
            u = f(np.clip(0.9 * v1 + 0.1 * spikes[t] @ w1, -1e4, 1e4))
            s1 = u >= 1.0
            v1 = np.where(s1 | (u < 0), 0.0, u)
            u = f(np.clip(0.9 * v2 + 0.1 * s1 @ w2, -1e4, 1e4))
            s2 = u >= 1.0
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


def forward_times(problem, set_counts) -> list[dict]:
    """Wall time of one batched forward pass (455 samples, sigma = 2), best of 5 repeats."""
    spikes = problem.train_spikes[0][:, :455]
    rows = []
    for C in set_counts:
        params = snn.unflatten(jax.random.normal(jax.random.key(1), (C, 96)) * 2.0)
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
                    help="time one forward pass of 455 samples for each --chains count")
    ap.add_argument("--out", type=Path, default=Path("results/benchmark"))
    args = ap.parse_args(argv)
    problem = _problem()
    device = str(jax.devices()[0])

    if args.forward:
        for r in forward_times(problem, args.chains):
            print(f"forward pass, 455 samples x {r['weight_sets']} weight sets: "
                  f"{r['forward_ms']:.3f} ms")
        return

    if args.json:
        chains = args.chains[-1]
        r = engine(problem, chains, args.steps)
        print(json.dumps({"mh_chain_steps_per_s": r["chain_steps_per_s"], "chains": chains,
                          "compile_s": r["compile_s"], "device": device,
                          "peak_rss_mib": _peak_rss_mib()}))
        return

    rows = []
    for chains in args.chains:
        rows.append(engine(problem, chains, args.steps))
        if chains <= args.peer_max_chains:
            peer = blackjax_vmap(problem, chains, max(20, args.steps // 4))
            if peer is not None:
                rows.append(peer)
        print(rows[-1], file=sys.stderr, flush=True)
    rows.append(numpy_loop(problem, 200))
    for r in rows:
        r["device"] = device
        r["peak_rss_mib"] = _peak_rss_mib()
        print(f"{r['method']:14s} chains={r['chains']:5d}  {r['chain_steps_per_s']:>14,.0f} "
              f"chain-steps/s  compile {r['compile_s']:.2f}s")
    tag = jax.default_backend()
    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(args.out / f"benchmark_{tag}.csv", rows)
    _figure(rows, args.out / f"benchmark_{tag}.png", device)


def _figure(rows, path, device) -> None:
    from mhsnn.plots import _save, plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for method in dict.fromkeys(r["method"] for r in rows):
        rs = [r for r in rows if r["method"] == method]
        ax.plot([r["chains"] for r in rs], [r["chain_steps_per_s"] for r in rs], "o-",
                label=method)
    ax.set(xscale="log", yscale="log", xlabel="chains", ylabel="chain-steps / s",
           title=f"MH throughput on {device}")
    ax.legend()
    _save(fig, path)


if __name__ == "__main__":
    main()
