"""What the experiment modules share: the command line, methods, rows.

A run's stages are checkpointed by ``mhsnn.runs.Stages``: ``--resume`` skips finished stages
and continues an unfinished one from its last chunk, ending with the same bytes as an
uninterrupted run; ``--fresh`` discards another run's checkpoints first.

Exit codes: 0 done; 2 bad input (config, data, checkpoint) or a folder in use, with one line
and nothing written; 1 a failed write (disk full, permissions), one line naming the path, the
previous checkpoint intact; 143 stopped by SIGTERM after checkpointing.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mhsnn import bayes, chips, config, data, keys, metrics, posterior, runs, sgd, sharding, snn
from mhsnn.config import Config, ConfigError
from mhsnn.io import write_json
from mhsnn.mcmc import diagnostics, pt
from mhsnn.mcmc.sample import Progress, Schedule, pt_report
from mhsnn.runs import Stages

CODE_VERSION = "2"  # bump when a change makes old checkpoints meaningless (2: the key tree)


def parse_args(argv, description: str,
               defaults: list[str] = ()) -> tuple[Config, Path, str]:
    """Parse the shared options; a bad value exits with code 2 and one line, nothing written.

    ``defaults`` are ``KEY=VALUE`` settings of this experiment, applied before the user's
    ``--set`` (which override them). Returns (config, output folder, mode): mode is "new",
    "resume" or "fresh" (``runs.MODES``)."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--preset", default="quick", help="quick (default) or paper")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config field, e.g. mh.num_steps=2000 (repeatable)")
    ap.add_argument("--out", type=Path, default=None, help="output folder (results/<preset>/)")
    how = ap.add_mutually_exclusive_group()
    how.add_argument("--resume", action="store_true",
                     help="continue the unfinished checkpoints of this experiment in --out")
    how.add_argument("--fresh", action="store_true",
                     help="discard this experiment's unfinished checkpoints in --out first")
    ap.add_argument("--distributed", action="store_true",
                    help="join a multi-process job with jax.distributed (see README)")
    args = ap.parse_args(argv)
    try:
        cfg = config.build(args.preset, [*defaults, *args.sets])
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    out = args.out if args.out is not None else Path("results") / cfg.preset
    try:
        if args.distributed:  # before anything touches a JAX backend
            sharding.initialize_distributed()
    except (ValueError, RuntimeError) as err:
        print(f"error: --distributed: {str(err).strip().splitlines()[0]} (outside Slurm, Open "
              "MPI or TPU, set JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID)",
              file=sys.stderr)
        raise SystemExit(2) from None
    return cfg, out, "resume" if args.resume else "fresh" if args.fresh else "new"


class Run(NamedTuple):
    """What every experiment starts from: its stages, the data set, the root key."""

    stages: Stages
    dataset: data.Dataset
    key: jax.Array
    t0: float

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0


def load_data(cfg: Config, folds: int | None = None, n_train: bool = False) -> data.Dataset:
    """The config's data set, checked against the network, the folds (``folds``, default
    ``cfg.folds``) and, with ``n_train``, the training sizes, before any write; anything
    wrong is a ConfigError of one line."""
    try:
        dataset = data.load(cfg.data.path or cfg.data.name)
        data.check_folds(dataset.y, cfg.folds if folds is None else folds)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    lo, hi = data.n_train_range(dataset.y)
    for n in cfg.n_train if n_train else ():
        if not lo <= n <= hi:
            raise ConfigError(f"n_train={list(cfg.n_train)}: values must be in [{lo}, {hi}] "
                              "for this data set (every class on both sides of the split)")
    config.network(cfg, dataset.X.shape[1], int(dataset.y.max()) + 1)
    return dataset


def start(out: Path, cfg: Config, experiment: str, mode: bool | str, folds: int | None = None,
          n_train: bool = False) -> Run:
    """Load the data, check it (see ``load_data``), create the output folder and the stage
    book-keeping."""
    t0 = time.perf_counter()
    dataset = load_data(cfg, folds, n_train)
    stages = Stages(out, config.to_dict(cfg), experiment, mode, CODE_VERSION)
    return Run(stages, dataset, jax.random.key(cfg.seed), t0)


def settings_of(cfg: Config, problem: posterior.Problem) -> posterior.SNNSettings:
    """The network of the config on this problem's data, its layout resolved on the host."""
    layout = snn.default_layout() if cfg.snn.layout == "auto" else cfg.snn.layout
    return posterior.SNNSettings(
        alpha=cfg.snn.alpha, threshold=cfg.snn.threshold, layout=layout,
        sizes=config.network(cfg, problem.num_features, problem.num_classes))


def grid_chip(num_folds: int, cells, per_cell: int) -> chips.Chip:
    """Chip leaves [F, S * per_cell, ...]: the s-th cell's chip for the s-th block of chains
    (or seeds). ``cells`` is a list of chips with the same fields, or of sigma values."""
    cells = [c if isinstance(c, chips.Chip) else chips.polynomial(c) for c in cells]
    stacked = chips.stack(cells)
    return jax.tree.map(lambda leaf: jnp.broadcast_to(
        jnp.repeat(leaf, per_cell, axis=0), (num_folds, leaf.shape[0] * per_cell, *leaf.shape[1:])),
        stacked)


def run_mh(stages: Stages, stage: str, cfg: Config, problem: posterior.Problem,
           key: jax.Array, eval_key: jax.Array, tempered: bool = False,
           cells=None, sampler: str = "rw", labels=None) -> dict[str, np.ndarray]:
    """MH (or PT) on folds x cells x chains: per-chain W* and BMA test probabilities, draws.

    ``key`` drives the run, ``eval_key`` the evaluation queries (the tree's "method" and
    "evaluate" keys); ``cells``: the chips of the grid (default: ``cfg.sigmas``);
    ``sampler``: the kernel when not tempered (``bayes.SAMPLERS``; "rw" is Algorithm 1).
    With ``mh.arviz`` the draws of every (fold, cell) also go to ``out/arviz/`` as ArviZ
    InferenceData (``labels``, default ``cfg.sigmas``, name the cells there)."""
    m = cfg.mh
    cells = cfg.sigmas if cells is None else cells
    F, S, C = problem.train_spikes.shape[0], len(cells), m.num_chains
    chip = grid_chip(F, cells, C)
    hyper = bayes.MHHyper(m.step_size, m.lik_std, m.prior_std, m.init_mean, m.init_std)
    burn_in = config.burn_in_steps(m)
    schedule = Schedule.with_draws(m.num_steps, burn_in, m.num_draws)
    chunk = min(m.chunk_size, m.num_steps)
    settings = settings_of(cfg, problem)
    K = cfg.pt.num_temperatures
    if tempered:
        state0, advance, pool = bayes.setup_pt(key, problem, chip, hyper, settings, schedule,
                                               chunk, K, C)
    else:
        state0, advance = bayes.setup(key, problem, chip, hyper, settings, schedule, chunk,
                                      sampler=sampler, chains_per_cell=C)
    shape = (F, S, C)

    def finish(state):
        out = bayes.evaluate(state, problem, chip, settings, schedule, eval_key)
        result = {"mean_probs": out.mean_probs.reshape(*shape, *out.mean_probs.shape[2:]),
                  "bma_probs": out.bma_probs.reshape(*shape, *out.bma_probs.shape[2:]),
                  "vote_probs": out.vote_probs.reshape(*shape, *out.vote_probs.shape[2:]),
                  "acceptance": out.acceptance_rate.reshape(shape),
                  "draws": out.draws.reshape(*shape, *out.draws.shape[2:]),
                  "draws_logdensity": np.asarray(state.draws_logdensity).reshape(
                      *shape, schedule.num_draws)}
        if hasattr(state.inner, "log_step_size"):  # the step the kept draws used
            result["step_size"] = np.exp(np.asarray(state.inner.log_step_size)).reshape(shape)
        if tempered:
            report = pt_report(state.inner, schedule, pool)
            result.update(betas=np.asarray(state.inner.betas).reshape(*shape, K),
                          swap_acceptance=report["swap_acceptance"].reshape(*shape, K - 1),
                          round_trips_per_1000=report["round_trips_per_1000"].reshape(shape),
                          log_evidence=pt.log_evidence(state.inner).reshape(shape))
        return result

    chains = F * S * C * (K if tempered else 1)
    try:  # the chain axis across all devices of the job
        state0 = sharding.shard_chains(state0, S * C)
    except ValueError as err:
        raise ConfigError(f"mh.num_chains={C}: {err}") from None
    outcome = stages.run(stage, lambda: state0, advance,
                         lambda s: int(s.step) >= schedule.num_steps, finish,
                         Progress(stage, schedule, chains))
    if m.arviz and sharding.is_writer():
        write_inference_data(stages, stage, outcome, _labels(cfg.sigmas if labels is None
                                                             else labels), settings)
    return outcome


def write_inference_data(stages: Stages, stage: str, outcome: dict, labels: list[dict],
                         settings: posterior.SNNSettings) -> None:
    """One ArviZ NetCDF file per (fold, cell) of an MCMC stage under ``out/arviz/``."""
    from mhsnn.mcmc import inference_data

    for s, label in enumerate(labels):
        for f in range(outcome["draws"].shape[0]):
            attrs = {"experiment": stages.experiment, "stage": stage, "fold": f, **label,
                     "network": "-".join(map(str, settings.sizes))}
            if "betas" in outcome:
                attrs.update(betas=outcome["betas"][f, s].mean(0),
                             swap_acceptance=outcome["swap_acceptance"][f, s].mean(0))
            cell = "_".join(f"{k}{v:g}" if isinstance(v, float) else f"{k}{v}"
                            for k, v in label.items())
            inference_data.write(
                stages.out / "arviz" / f"{stages.experiment}__{stage}__fold{f}__{cell}.nc",
                outcome["draws"][f, s], outcome["draws_logdensity"][f, s],
                outcome["acceptance"][f, s], attrs)



def sg_variants(cfg: Config) -> list[tuple[str, bool, sgd.SGHyper]]:
    """(method name, in_loop, hyper) for each SG run the config asks for."""
    g = cfg.sg
    tuned = sgd.SGHyper(g.learning_rate, g.epochs, g.batch_size, g.init_mean1, g.init_std1,
                        g.init_mean2, g.init_std2)
    out = []
    for mode in ("offline", "in_loop"):
        if f"sg_{mode}" not in cfg.methods:
            continue
        out.append((f"sg_{mode}", mode == "in_loop", tuned))
        if g.literal:
            out.append((f"sg_{mode}_literal", mode == "in_loop",
                        tuned._replace(**sgd.PAPER_LITERAL)))
    return out


def run_sg(stages: Stages, stage: str, cfg: Config, problem: posterior.Problem, key: jax.Array,
           eval_key: jax.Array, in_loop: bool, hyper: sgd.SGHyper,
           cells=None) -> dict[str, np.ndarray]:
    """SG cells trained (offline: once per fold and seed, on the ideal model) and tested on
    each cell's chip with ``eval_key``'s queries."""
    cells = cfg.sigmas if cells is None else cells
    F, S, R = problem.train_spikes.shape[0], len(cells), cfg.sg.seeds
    settings = settings_of(cfg, problem)
    train_chip = grid_chip(F, cells if in_loop else [0.0], R)
    state0, run_chunk = sgd.grid_trainer(key, problem, train_chip, hyper, in_loop, settings,
                                         cfg.sg.epochs_per_chunk)

    def finish(state):
        theta = state.theta if in_loop else jnp.tile(state.theta, (1, S, 1))
        test_chip = grid_chip(F, cells, R)
        probs = np.asarray(sgd.deployed_probabilities(theta, problem, test_chip, settings,
                                                      eval_key))
        failed = np.asarray(state.failed)
        failed = failed if in_loop else np.tile(failed, (1, S))
        return {"probs": probs.reshape(F, S, R, *probs.shape[2:]),
                "failed": failed.reshape(F, S, R)}

    t0 = time.perf_counter()

    def progress(state):
        ep = int(state.epoch.min())
        print(f"[{stage}] epoch {ep}/{hyper.epochs}  {time.perf_counter() - t0:.0f}s",
              file=sys.stderr, flush=True)

    return stages.run(stage, lambda: state0, run_chunk,
                      lambda s: int(s.epoch.min()) >= hyper.epochs, finish, progress)


def cell_rows(method: str, probs: np.ndarray, problem: posterior.Problem, labels,
              pooled: bool, extra: dict | None = None) -> list[dict]:
    """Rows per (cell, fold). probs [F, S, R, Nte, O]: R chains or seeds; ``labels`` name the
    S cells (dicts of columns, or sigma values).

    pooled: the R predictives are averaged first (BMA over chains); otherwise each of the R
    is scored alone and the metrics are averaged (the expected result of one run).
    """
    rows = []
    for s, label in enumerate(_labels(labels)):
        for f in range(probs.shape[0]):
            mask = np.asarray(problem.test_mask[f]).astype(bool)
            labels = np.asarray(problem.test_labels[f])[mask]
            if pooled:
                scores = metrics.summary(probs[f, s].mean(0)[mask], labels)
            else:
                each = [metrics.summary(p[mask], labels) for p in probs[f, s]]
                scores = {k: float(np.mean([e[k] for e in each])) for k in each[0]}
            row = {"method": method, **label, "fold": f, **(extra or {}), **scores,
                   "n_test": int(mask.sum())}
            rows.append(row)
    return rows


def _labels(labels) -> list[dict]:
    return [lab if isinstance(lab, dict) else {"sigma": float(lab)} for lab in labels]


def logdensity_diagnostics(logdensity: np.ndarray) -> dict[str, float]:
    """R-hat and ESS of one cell's log density draws [chains, draws]: the
    permutation-invariant summary of an SNN posterior run."""
    lds = logdensity[..., None]
    return {"rhat_logdensity": float(diagnostics.rhat(lds)[0]),
            "ess_logdensity": float(diagnostics.ess(lds)[0])}


def chain_cells(outcome: dict, problem: posterior.Problem,
                sigmas) -> list[tuple[int, int, dict]]:
    """Per (cell s, fold f) of an MCMC outcome: (s, f, {sigma, fold, rhat_logdensity,
    ess_logdensity, acc_mean (each chain's W* alone, averaged), acc_bma (all chains'
    draws pooled)})."""
    out = []
    for s, sigma in enumerate(sigmas):
        for f in range(problem.train_spikes.shape[0]):
            mask = np.asarray(problem.test_mask[f]).astype(bool)
            labels = np.asarray(problem.test_labels[f])[mask]
            out.append((s, f, {
                "sigma": float(sigma), "fold": f,
                **logdensity_diagnostics(outcome["draws_logdensity"][f, s]),
                "acc_mean": float(np.mean([metrics.accuracy(p[mask], labels)
                                           for p in outcome["mean_probs"][f, s]])),
                "acc_bma": metrics.accuracy(outcome["bma_probs"][f, s].mean(0)[mask], labels)}))
    return out


def mh_diagnostic_rows(outcome: dict, labels, extra: dict | None = None) -> list[dict]:
    """Acceptance, R-hat and ESS per (cell, fold) from the kept draws."""
    rows = []
    draws, lds = outcome["draws"], outcome["draws_logdensity"]
    for s, label in enumerate(_labels(labels)):
        for f in range(draws.shape[0]):
            r_w = diagnostics.rhat(draws[f, s])
            e_w = diagnostics.ess(draws[f, s])
            rows.append({**label, "fold": f, **(extra or {}),
                         "acceptance": float(outcome["acceptance"][f, s].mean()),
                         **logdensity_diagnostics(lds[f, s]),
                         "rhat_weights_median": float(np.median(r_w)),
                         "rhat_weights_max": float(np.max(r_w)),
                         "ess_weights_median": float(np.median(e_w)),
                         "ess_weights_min": float(np.min(e_w)),
                         "chains": draws.shape[2], "draws_per_chain": draws.shape[3]})
            if "swap_acceptance" in outcome:
                swap = outcome["swap_acceptance"][f, s].mean(0)
                rows[-1].update(
                    barrier=float((1 - swap).sum()),
                    swap_acceptance=" ".join(f"{a:.3f}" for a in swap),
                    betas=" ".join(f"{b:.4f}" for b in outcome["betas"][f, s].mean(0)),
                    round_trips_per_1000=float(outcome["round_trips_per_1000"][f, s].mean()),
                    recommended_temperatures=int(np.ceil(2 * (1 - swap).sum())) + 1)
                if "log_evidence" in outcome:  # stepping stone: mean and SE over chains
                    z = outcome["log_evidence"][f, s]
                    rows[-1].update(log_evidence=float(z.mean()),
                                    log_evidence_se=float(z.std(ddof=1) / np.sqrt(len(z)))
                                    if len(z) > 1 else float("nan"))
    return rows


def method_rows(stages: Stages, cfg: Config, problem, root: jax.Array, name: str,
                stage_prefix: str = "", extra: dict | None = None, cells=None,
                labels=None) -> tuple[list[dict], list[dict], dict]:
    """All methods of the config on one problem: (result rows, diagnostic rows, raw probs).

    Each method's keys are ``keys.derive(root, "method" | "evaluate", name, method)``;
    ``cells`` (chips) and ``labels`` (their row columns) default to ``cfg.sigmas``."""
    cells = cfg.sigmas if cells is None else cells
    labels = cfg.sigmas if labels is None else labels
    rows, diag, raw = [], [], {}
    n_train = int(np.asarray(problem.train_mask).sum(-1).max())

    def cost(method: str) -> dict:  # chip sample presentations one cell's training took
        return {**(extra or {}), "presentations": training_presentations(method, cfg, n_train)}

    for method in ("mh", "pt"):
        if method not in cfg.methods:
            continue
        out = run_mh(stages, f"{stage_prefix}{method}", cfg, problem,
                     keys.derive(root, "method", name, method),
                     keys.derive(root, "evaluate", name, method), method == "pt", cells,
                     labels=labels)
        rows += cell_rows(f"{method}_mean", out["mean_probs"], problem, labels, False,
                          cost(method))
        rows += cell_rows(f"{method}_bma", out["bma_probs"], problem, labels, True, cost(method))
        rows += cell_rows(f"{method}_vote", out["vote_probs"], problem, labels, True,
                          cost(method))
        diag += mh_diagnostic_rows(out, labels, {"method": method, **(extra or {})})
        raw[f"{method}_mean"], raw[f"{method}_bma"] = out["mean_probs"], out["bma_probs"]
        raw[f"{method}_vote"] = out["vote_probs"]
    for method, in_loop, hyper in sg_variants(cfg):
        out = run_sg(stages, f"{stage_prefix}{method}", cfg, problem,
                     keys.derive(root, "method", name, method),
                     keys.derive(root, "evaluate", name, method), in_loop, hyper, cells)
        new = cell_rows(method, out["probs"], problem, labels, False, cost(method))
        for r, (s, f) in zip(new, [(s, f) for s in range(len(cells))
                                   for f in range(out["failed"].shape[0])]):
            r["failed_cells"] = int(out["failed"][f, s].sum())
        rows += new
        raw[method] = out["probs"]
    return rows, diag, raw


def training_presentations(method: str, cfg: Config, n_train: int) -> int:
    """Chip sample presentations (one weight set on one sample) one cell's training costs.

    mh: chains x (steps + 1) x N (the start, then one proposal per step on every training
    row); pt: the same times K replicas (``cfg.mh.num_steps`` is PT's own step count);
    sg_offline: 0 (trained on the model; deploying it is an evaluation); sg_in_loop:
    seeds x epochs x N (every row once per epoch, forward on the chip). Test-set evaluation
    is not counted.
    """
    m = cfg.mh
    base = method.removesuffix("_literal")
    counts = {"mh": m.num_chains * (m.num_steps + 1) * n_train,
              "pt": m.num_chains * cfg.pt.num_temperatures * (m.num_steps + 1) * n_train,
              "sg_offline": 0, "sg_in_loop": cfg.sg.seeds * cfg.sg.epochs * n_train}
    return counts[base]


def manifest(cfg: Config, experiment: str, wall: float, stages: Stages | None,
             extra: dict | None = None) -> dict:
    """Config, seed, versions, commit, device, wall and per-stage times."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                check=False, cwd=Path(__file__).parent).stdout.strip()
    except OSError:
        commit = ""
    versions = {}
    for pkg in ("jax", "jaxlib", "optax", "numpyro", "scikit-learn", "numpy", "matplotlib"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    return {"experiment": experiment, "config": config.to_dict(cfg), "seed": cfg.seed,
            "versions": versions, "python": platform.python_version(), "git_commit": commit,
            "device": str(jax.devices()[0]), "platform": jax.default_backend(),
            "num_devices": jax.device_count(), "num_processes": jax.process_count(),
            "wall_s": round(wall, 2),
            "stage_wall_s (compile included)": {
                k: round(v, 2) for k, v in (stages.timings if stages else {}).items()},
            **(extra or {})}


def write_manifest(out: Path, cfg: Config, experiment: str, wall: float, stages: Stages | None,
                   extra: dict | None = None) -> None:
    """The run's last write; it completes the run (its checkpoints go, ``--out`` is freed)."""
    write_json(out / f"{experiment}_manifest.json",
               manifest(cfg, experiment, wall, stages, extra))
    if stages is not None:
        stages.complete()


def group_rows(rows: list[dict], keys: tuple[str, ...]) -> dict[tuple, list[dict]]:
    """Rows grouped by their values of ``keys``, groups in order of first appearance."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r)
    return groups


def summarise(rows: list[dict], keys: tuple[str, ...]) -> list[dict]:
    """Mean and std of test accuracy over folds per (method, *keys)."""
    out = []
    for g, group in group_rows(rows, ("method", *keys)).items():
        v = [r["test_accuracy"] for r in group]
        out.append({"method": g[0], **dict(zip(keys, g[1:])), "mean": float(np.mean(v)),
                    "std": float(np.std(v)), "folds": len(v)})
    return out


def pooled_predictions(raw: dict[str, np.ndarray], problem, sigma_index: int):
    """Per method: all test predictions at one sigma over folds (and chains/seeds), + labels.

    BMA and vote predictions are pooled over chains first; the others count each chain/seed
    alone.
    """
    out = {}
    for method, probs in raw.items():
        ps, ls = [], []
        for f in range(probs.shape[0]):
            mask = np.asarray(problem.test_mask[f]).astype(bool)
            labels = np.asarray(problem.test_labels[f])[mask]
            cell = probs[f, sigma_index][:, mask]  # [R, n, O]
            if method.endswith(("_bma", "_vote")):
                cell = cell.mean(0, keepdims=True)
            ps.append(cell.reshape(-1, cell.shape[-1]))
            ls.append(np.tile(labels, cell.shape[0]))
        out[method] = (np.concatenate(ps), np.concatenate(ls))
    return out


def prediction_rows(raw: dict[str, np.ndarray], problem: posterior.Problem, labels
                    ) -> list[dict]:
    """Every test prediction: method, predictive, cell columns, fold, member (chain or seed;
    "pooled" for the BMA and vote fraction over all chains), sample (the row in the data
    set), label, p_0 ... p_{K-1}; from these every reported metric can be recomputed."""
    rows = []
    test_index, test_labels = np.asarray(problem.test_index), np.asarray(problem.test_labels)
    for method, probs in raw.items():
        pooled = method.endswith(("_bma", "_vote"))
        predictive = "votes" if method.endswith("_vote") else "counts"
        for s, label in enumerate(_labels(labels)):
            for f in range(probs.shape[0]):
                mask = np.asarray(problem.test_mask[f]).astype(bool)
                members = ([("pooled", probs[f, s].mean(0))] if pooled
                           else list(enumerate(probs[f, s])))
                for member, p in members:
                    for i in np.flatnonzero(mask):
                        rows.append({"method": method, "predictive": predictive, **label,
                                     "fold": f, "member": member,
                                     "sample": int(test_index[f, i]),
                                     "label": int(test_labels[f, i]),
                                     **{f"p_{k}": float(v) for k, v in enumerate(p[i])}})
    return rows


def cli(run: Callable, doc: str, argv=None, defaults: list[str] = ()) -> None:
    """An experiment's ``main``: parse the shared options, then ``run(cfg, out, mode)``."""
    cfg, out, mode = parse_args(argv, doc.splitlines()[0], defaults)
    main_guard(lambda: run(cfg, out, mode))


def main_guard(fn: Callable[[], None]) -> None:
    """Run an experiment, turning the ways it can stop into one line and an exit code (see the
    module docstring)."""
    try:
        fn()
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(runs.EXIT_BAD_INPUT) from None
    except runs.Terminated as err:
        print(f"{err}; rerun the same command with --resume to continue", file=sys.stderr)
        raise SystemExit(runs.EXIT_TERMINATED) from None
    except OSError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(runs.EXIT_WRITE_FAILED) from None


def print_table(summary: list[dict], keys: tuple[str, ...]) -> None:
    for r in summary:
        where = " ".join(f"{k}={r[k]:g}" for k in keys)
        print(f"{r['method']:22s} {where:22s} {r['mean']:.3f} +- {r['std']:.3f}")
