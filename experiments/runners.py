"""The checkpointed runners: MH / PT and SG on a folds x cells grid, and all the config's
methods on one problem as result rows."""

from __future__ import annotations

import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from experiments.methods import grid_chip, settings_of, sg_variants, training_presentations
from experiments.outcomes import Deployed, MCMCOutcome, Tempering
from experiments.tables import cell_rows, labels_of, mcmc_raw, mh_diagnostic_rows
from mhsnn import bayes, config, convert, keys, posterior, sgd, sharding, snn, trainers
from mhsnn.config import Config, ConfigError
from mhsnn.mcmc import kernels, pt
from mhsnn.mcmc.sample import Progress, Schedule, pt_report
from mhsnn.runs import Stages, run_once


def run_mh(stages: Stages, stage: str, cfg: Config, problem: posterior.Problem,
           key: jax.Array, eval_key: jax.Array, tempered: bool = False,
           cells=None, sampler: str = "rw", labels=None,
           resample_chip=None) -> MCMCOutcome:
    """MH (or PT) on folds x cells x chains: per-chain W* and BMA test probabilities, draws.

    ``key`` drives the run, ``eval_key`` the evaluation queries (the tree's "method" and
    "evaluate" keys); ``cells``: the chips of the grid (default: ``cfg.sigmas``);
    ``sampler``: the kernel when not tempered (``bayes.SAMPLERS``; "rw" is Algorithm 1).
    With ``mh.arviz`` the draws of every (fold, cell) also go to ``out/arviz/`` as ArviZ
    InferenceData (``labels``, default ``cfg.sigmas``, name the cells there).
    ``resample_chip``: see ``bayes.setup`` (pseudo-marginal over a chip distribution)."""
    m = cfg.mh
    cells = cfg.sigmas if cells is None else cells
    F, S, C = problem.train_spikes.shape[0], len(cells), m.num_chains
    chip = grid_chip(F, cells, C)
    hyper = trainers.mh_hyper(cfg)
    burn_in = config.burn_in_steps(m)
    schedule = Schedule.with_draws(m.num_steps, burn_in, m.num_draws)
    chunk = min(m.chunk_size, m.num_steps)
    settings = settings_of(cfg, problem)
    K = cfg.pt.num_temperatures
    state0, advance = bayes.setup(key, problem, chip, hyper, settings, schedule, chunk,
                                  sampler="pt" if tempered else sampler, chains_per_cell=C,
                                  resample_chip=resample_chip, num_temperatures=K)
    shape = (F, S, C)

    def finish(state):
        out = bayes.evaluate(state, problem, chip, settings, schedule, eval_key)
        step = kernels.step_size_of(state.inner)  # the step the kept draws used
        tempering = None
        if tempered:
            report = pt_report(state.inner, schedule, bayes.swap_pool((F, S * C), C))
            tempering = Tempering(
                betas=np.asarray(state.inner.state.betas).reshape(*shape, K),
                swap_acceptance=report["swap_acceptance"].reshape(*shape, K - 1),
                round_trips_per_1000=report["round_trips_per_1000"].reshape(shape),
                log_evidence=pt.log_evidence(state.inner.tally).reshape(shape))
        return MCMCOutcome(
            wstar_probs=out.wstar_probs.reshape(*shape, *out.wstar_probs.shape[2:]),
            bma_probs=out.bma_probs.reshape(*shape, *out.bma_probs.shape[2:]),
            vote_probs=out.vote_probs.reshape(*shape, *out.vote_probs.shape[2:]),
            acceptance=out.acceptance_rate.reshape(shape),
            mean=np.asarray(state.mean).reshape(*shape, -1),
            draws=out.draws.reshape(*shape, *out.draws.shape[2:]),
            draws_logdensity=np.asarray(state.draws_logdensity).reshape(
                *shape, schedule.num_draws),
            step_size=None if step is None else np.asarray(step).reshape(shape),
            tempering=tempering).arrays()

    chains = F * S * C * (K if tempered else 1)
    try:  # the chain axis across all devices of the job
        state0 = sharding.shard_chains(state0, S * C)
    except ValueError as err:
        raise ConfigError(f"mh.num_chains={C}: {err}") from None
    outcome = MCMCOutcome.from_arrays(stages.run(
        stage, lambda: state0, advance, lambda s: int(s.step) >= schedule.num_steps, finish,
        Progress(stage, schedule, chains)))
    if m.arviz and sharding.is_writer():
        write_inference_data(stages, stage, outcome, labels_of(cfg.sigmas if labels is None
                                                             else labels), settings)
    return outcome


def write_inference_data(stages: Stages, stage: str, outcome: MCMCOutcome, labels: list[dict],
                         settings: posterior.SNNSettings) -> None:
    """One ArviZ NetCDF file per (fold, cell) of an MCMC stage under ``out/arviz/``."""
    from mhsnn.mcmc import inference_data

    for s, label in enumerate(labels):
        for f in range(outcome.draws.shape[0]):
            attrs = {"experiment": stages.experiment, "stage": stage, "fold": f, **label,
                     "network": "-".join(map(str, settings.sizes))}
            if outcome.tempering is not None:
                attrs.update(betas=outcome.tempering.betas[f, s].mean(0),
                             swap_acceptance=outcome.tempering.swap_acceptance[f, s].mean(0))
            cell = "_".join(f"{k}{v:g}" if isinstance(v, float) else f"{k}{v}"
                            for k, v in label.items())
            inference_data.write(
                stages.out / "arviz" / f"{stages.experiment}__{stage}__fold{f}__{cell}.nc",
                outcome.draws[f, s], outcome.draws_logdensity[f, s],
                outcome.acceptance[f, s], attrs)


def run_sg(stages: Stages, stage: str, cfg: Config, problem: posterior.Problem, key: jax.Array,
           eval_key: jax.Array, in_loop: bool, hyper: sgd.SGHyper,
           cells=None) -> Deployed:
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
                "failed": failed.reshape(F, S, R),
                "theta": np.asarray(theta).reshape(F, S, R, -1)}

    t0 = time.perf_counter()

    def progress(state):
        ep = int(state.epoch.min())
        print(f"[{stage}] epoch {ep}/{hyper.epochs}  {time.perf_counter() - t0:.0f}s",
              file=sys.stderr, flush=True)

    return Deployed.from_arrays(stages.run(stage, lambda: state0, run_chunk,
                                           lambda s: int(s.epoch.min()) >= hyper.epochs,
                                           finish, progress))


def run_ann(stages: Stages, stage: str, cfg: Config, problem: posterior.Problem,
            key: jax.Array, eval_key: jax.Array, cells=None) -> Deployed:
    """ANN-to-SNN conversion (``mhsnn.convert``) once per fold on the ideal model, deployed
    on each cell's chip with ``eval_key``'s queries."""
    cells = cfg.sigmas if cells is None else cells
    F, S = problem.train_spikes.shape[0], len(cells)
    settings = settings_of(cfg, problem)
    hyper = trainers.ann_hyper(cfg)

    fit = jax.vmap(lambda k, s, t, m: convert.convert(
        k, s, t, m, settings.sizes, hyper, settings.alpha, settings.threshold))

    def train():
        return {"theta": np.asarray(fit(jax.random.split(key, F), problem.train_spikes,
                                        problem.train_targets, problem.train_mask))}

    template = {"theta": np.zeros((F, snn.num_weights(settings.sizes)), np.float32)}
    theta = run_once(stages, stage, train, template)["theta"]
    theta = jnp.repeat(jnp.asarray(theta)[:, None], S, axis=1)  # [F, S, P]
    probs = np.asarray(sgd.deployed_probabilities(theta, problem, grid_chip(F, cells, 1),
                                                  settings, eval_key))
    return Deployed(probs.reshape(F, S, 1, *probs.shape[2:]),
                    np.asarray(theta).reshape(F, S, 1, -1), None)


def fit_cells(method: str, key: jax.Array, problem: posterior.Problem, cells,
              settings: posterior.SNNSettings, cfg: Config, presentations: float,
              chains: int = 8, starts=None, at_budgets=()) -> dict:
    """A method of ``mhsnn.TRAINERS`` trained once per (fold, cell) of the grid, on
    the fold's training rows (``trainers.fit``; the cell's key ``fold_in(key, f S + s)``,
    ``starts`` [F, S, P] its start): {(f, s): (Fitted, {presentations: weight sets} at
    ``at_budgets``, a driven method's)}. ``cells``: chips, or sigma values of
    ``chips.polynomial``."""
    from mhsnn import chips

    S = len(cells)
    out = {}
    for f in range(problem.train_spikes.shape[0]):
        rows = np.asarray(problem.train_mask[f]) > 0
        labels = np.asarray(problem.train_targets[f])[rows].argmax(-1)
        fold = trainers.one_fold_problem(np.asarray(problem.train_spikes[f])[:, rows],
                                         labels, problem.num_classes)
        for s, cell in enumerate(cells):
            points: dict[int, np.ndarray] = {}
            chip = cell if isinstance(cell, chips.Chip) else chips.polynomial(cell)
            fitted = trainers.fit(method, jax.random.fold_in(key, f * S + s), fold, chip,
                                  settings, presentations=presentations, chains=chains,
                                  cfg=cfg, start=None if starts is None else starts[f, s],
                                  method_params=cfg.method_params.get(method),
                                  at_budgets=at_budgets, on_budget=lambda u, w, p=points:
                                  p.update({u: w}))
            out[f, s] = fitted, points
            print(f"[{method}] fold {f} cell {s}: {fitted.presentations:,} presentations",
                  file=sys.stderr, flush=True)
    return out


def sg_starts(key: jax.Array, F: int, S: int, sizes, cfg: Config) -> jax.Array:
    """A start per (fold, cell), [F, S, P], drawn as SG's initial weights (``sg.init_*``:
    an active network) from ``fold_in(key, 1)``: where the query-budget experiment starts
    the ES, SPSA and the driven methods, and ``run_per_cell`` every method that takes a
    start."""
    hyper = trainers.sg_hyper(cfg)
    P = snn.num_weights(sizes)
    return jax.vmap(lambda k: sgd.init_theta(k, hyper, sizes))(
        jax.random.split(jax.random.fold_in(key, 1), F * S)).reshape(F, S, P)


def run_per_cell(stages: Stages, stage: str, cfg: Config, problem: posterior.Problem,
               key: jax.Array, eval_key: jax.Array, method: str,
               cells=None) -> tuple[Deployed, np.ndarray]:
    """A method of ``config.grid_per_cell()`` (a driven method, an ES, SPSA) on every
    (fold, cell) at MH's budget (``mh.num_steps`` steps of ``mh.num_chains`` chains), with
    ``mh.num_chains`` members or chains where it has them, started where SG starts
    (``sg_starts``; MH's zero-mean start is a silent network, on which every perturbation
    scores the same) when it takes a start: each cell's weight sets' test
    probabilities, averaged (its BMA; one set for an optimiser), [F, S, 1, Nte, O],
    ``theta`` its point; and the presentations each cell's run made [F, S] (one
    checkpointed stage)."""
    cells = cfg.sigmas if cells is None else cells
    F, S = problem.train_spikes.shape[0], len(cells)
    settings = settings_of(cfg, problem)
    n_train = int(np.asarray(problem.train_mask).sum(-1).max())
    budget = training_presentations("mh", cfg, n_train)
    Nte, O = problem.test_spikes.shape[2], problem.num_classes
    starts = None
    if trainers.TRAINERS[method].starts:  # where SG starts: MH's zero-mean start is silent
        starts = sg_starts(key, F, S, settings.sizes, cfg)

    template = {"probs": np.zeros((F, S, 1, Nte, O), np.float32),
                "theta": np.zeros((F, S, 1, snn.num_weights(settings.sizes)), np.float32),
                "used": np.zeros((F, S), np.int64)}

    def compute():
        out = {k: v.copy() for k, v in template.items()}
        probs, theta, used = out["probs"], out["theta"], out["used"]
        for (f, s), (fitted, _) in fit_cells(method, key, problem, cells, settings, cfg,
                                              budget, cfg.mh.num_chains, starts).items():
            W = jnp.asarray(fitted.weight_sets)[None]  # [1, R, P]
            one = jax.tree.map(lambda x: x[f:f + 1], problem)
            p = sgd.deployed_probabilities(W, one, grid_chip(1, [cells[s]], W.shape[1]),
                                           settings, jax.random.fold_in(eval_key, f * S + s))
            probs[f, s, 0] = np.asarray(p)[0].mean(0)
            theta[f, s, 0], used[f, s] = fitted.point, fitted.presentations
        return out

    out = run_once(stages, stage, compute, template)
    return Deployed(out["probs"], out["theta"], None), out["used"]


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

    samplers = [m for m in ("mh", "pt") if m in cfg.methods] + [
        m for m in cfg.methods if m in config.grid_samplers()]  # any TRAINERS sampler
    for method in samplers:
        out = run_mh(stages, f"{stage_prefix}{method}", cfg, problem,
                     keys.derive(root, "method", name, method),
                     keys.derive(root, "evaluate", name, method), method == "pt", cells,
                     sampler="rw" if method in ("mh", "pt") else method, labels=labels)
        for kind, probs in mcmc_raw(out, method).items():  # W* per chain; BMA, votes pooled
            rows += cell_rows(kind, probs, problem, labels, not kind.endswith("_mean"),
                              cost(method))
            raw[kind] = probs
        diag += mh_diagnostic_rows(out, labels, {"method": method, **(extra or {})})
    for method, in_loop, hyper in sg_variants(cfg):
        out = run_sg(stages, f"{stage_prefix}{method}", cfg, problem,
                     keys.derive(root, "method", name, method),
                     keys.derive(root, "evaluate", name, method), in_loop, hyper, cells)
        new = cell_rows(method, out.probs, problem, labels, False, cost(method))
        for r, (s, f) in zip(new, [(s, f) for s in range(len(cells))
                                   for f in range(out.failed.shape[0])]):
            r["failed_cells"] = int(out.failed[f, s].sum())
        rows += new
        raw[method] = out.probs
    for method in (m for m in cfg.methods if m in config.grid_per_cell()):
        out, used = run_per_cell(stages, f"{stage_prefix}{method}", cfg, problem,
                                 keys.derive(root, "method", name, method),
                                 keys.derive(root, "evaluate", name, method), method, cells)
        new = cell_rows(method, out.probs, problem, labels, False, extra)
        for r, (s, f) in zip(new, [(s, f) for s in range(len(cells))
                                   for f in range(used.shape[0])]):
            r["presentations"] = int(used[f, s])  # what the cell's run made
        rows += new
        raw[method] = out.probs
    if "ann_convert" in cfg.methods:
        out = run_ann(stages, f"{stage_prefix}ann_convert", cfg, problem,
                      keys.derive(root, "method", name, "ann_convert"),
                      keys.derive(root, "evaluate", name, "ann_convert"), cells)
        rows += cell_rows("ann_convert", out.probs, problem, labels, False,
                          cost("ann_convert"))
        raw["ann_convert"] = out.probs
    return rows, diag, raw

