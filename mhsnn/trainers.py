"""The one registry of training methods, ``TRAINERS``, and ``fit``: one method on one chip.

Every method is model-free on the chip (it sees only the chip's output counts) except where
``Trainer.uses_model`` says the ideal model also serves: MALA and HMC propose along the
model's surrogate gradient and accept on the chip's values; SG offline trains on the model
alone; SG in the loop takes the chip's values with the model's derivative.

What one training costs in chip sample presentations (one weight set on one training row),
with n training rows, C chains, K temperatures and a population of m:

    rw, rw_adapt*, demc, mala, hmc   C n (steps + 1)       one proposal per chain and step
    pt                               C K n (steps + 1)     every replica, every step
    snes, open_es, cma_es, ...       m n generations       (spsa: m = 2 x pairs)
    snes_mb, spsa_mb                 m B generations       B = min(es.batch, n) rows a step
    sg_in_loop                       epochs ceil(n / b) b  every minibatch of b rows, padded
    sg_offline, ann_convert          0                     trained on the model
    eki, eks, smc, da, eki_pcn, ...  as they go, to the budget (mhsnn.methods, mhsnn.driver)

Each registry line carries its ``Family``: how its budget becomes steps, generations or
epochs, what they cost, and the function that fits it; ``fit`` asks the registry, never a
method's name. It runs the method through the one chunked, checkpointed driver
(``runs.run_stage``), and returns a ``Fitted``:
the weight sets to deploy, their point estimate, the draws of a sampler, the presentations
made and the diagnostics. The estimator (``mhsnn.SNNClassifier``) is its main caller.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mhsnn import bayes, chips, config, convert, driver, es, methods, posterior, runs, sgd, snn
from mhsnn import likelihood as lik
from mhsnn.config import Config
from mhsnn.mcmc import diagnostics, kernels
from mhsnn.mcmc.sample import Progress, Schedule, pt_report


DEFAULTS = Config()  # every method's hyper-parameters: the config's tuned defaults


def mh_hyper(cfg: Config = DEFAULTS) -> bayes.MHHyper:
    m = cfg.mh
    return bayes.MHHyper(m.step_size, m.lik_std, m.prior_std, m.init_mean, m.init_std)


def es_hyper(cfg: Config, strategy: str) -> es.ESHyper:
    """The config's es.* for one strategy (with ``es.tuned``, its tuned settings from
    ``es.TUNED`` replace them; sep-CMA-ES takes CMA-ES's, a mini-batched strategy its own or
    else its full-data version's); start and objective are MH's (mh.*)."""
    e, m = cfg.es, cfg.mh
    base = strategy.removesuffix("_mb")  # the mini-batched variants: es.batch rows a step
    hyper = es.ESHyper(base, e.population, e.spsa_c if base == "spsa" else e.std_init,
                       e.std_min, e.learning_rate, e.num_perturbations, m.init_mean,
                       m.init_std, m.lik_std, m.prior_std,
                       e.batch if strategy.endswith("_mb") else 0)
    tuned = es.TUNED.get(strategy, es.TUNED.get(base, es.TUNED.get(base.removeprefix("sep_"),
                                                                     {})))
    return hyper._replace(**tuned) if e.tuned else hyper


def ann_hyper(cfg: Config = DEFAULTS) -> convert.ANNHyper:
    """The config's ANN-to-SNN conversion settings (``ann.*``)."""
    a = cfg.ann
    return convert.ANNHyper(a.learning_rate, a.steps, a.percentile)


def sg_hyper(cfg: Config = DEFAULTS) -> sgd.SGHyper:
    """The config's tuned SG settings (``sg.*``)."""
    g = cfg.sg
    return sgd.SGHyper(g.learning_rate, g.epochs, g.batch_size, g.init_mean1, g.init_std1,
                       g.init_mean2, g.init_std2)


class Fitted(NamedTuple):
    """One method trained on one chip (host arrays)."""

    method: str
    weight_sets: np.ndarray  # [S, P] deployed: a sampler's kept draws, else one set
    point: np.ndarray  # [P] the point estimate: a sampler's posterior mean W*, else the weights
    draws: np.ndarray | None  # [chains, draws, P] a sampler's kept draws (None: optimiser)
    draws_logdensity: np.ndarray | None  # [chains, draws]
    presentations: int  # chip sample presentations of the training, exactly
    diagnostics: dict


class Call(NamedTuple):
    """One ``fit``'s arguments, as every family's fitting function takes them."""

    key: jax.Array
    problem: posterior.Problem
    grid: object  # the chip broadcast to (1, C), or the external chip
    settings: posterior.SNNSettings
    steps: int  # what ``Family.steps`` made of the budget
    C: int  # chains / members (1: one weight set)
    num_draws: int
    cfg: Config
    stages: runs.Stages | None
    progress: bool
    chunks: int
    start: jax.Array | None
    hyper: object  # a driven method's ``Hyper`` (None for the others)
    at_budgets: Sequence[float]
    on_budget: Callable[[int, np.ndarray], None] | None

    @property
    def chunk(self) -> int:
        return max(1, -(-self.steps // self.chunks))

    @property
    def n_train(self) -> int:
        return int(self.problem.train_mask.sum())


class Family(NamedTuple):
    """How a family of methods turns a budget into steps (generations, epochs), what
    ``steps`` of them cost in chip presentations, and how it is fitted: the registry's
    behaviour, so that ``fit`` never asks a method's name."""

    steps: Callable  # (trainer, presentations, chains, n_train, cfg, hyper) -> steps
    presentations: Callable  # (trainer, steps, chains, n_train, cfg) -> presentations
    fit: Callable  # (trainer, Call) -> Fitted, its diagnostics' first key "steps"
    marks: bool = False  # keeps the weights at budgets on the way (``fit(at_budgets=...)``)


def _too_small(trainer, presentations, chains, n_train, least) -> ValueError:
    return ValueError(f"presentations={presentations:g}: {trainer.name} with {chains} chains "
                      f"on {n_train} rows needs at least {least:,}")


# ---- the chain samplers: one proposal per chain (and replica) and step ----------------

def _sampler_cost(trainer: Trainer, chains: int, n_train: int, cfg: Config) -> int:
    return chains * (1 if trainer.replicas is None else trainer.replicas(cfg)) * n_train


def _sampler_steps(trainer, presentations, chains, n_train, cfg, hyper) -> int:
    per_step = _sampler_cost(trainer, chains, n_train, cfg)  # and once more: the start
    steps = int((presentations - per_step) // per_step)
    if steps < 2:
        raise _too_small(trainer, presentations, chains, n_train, 3 * per_step)
    return steps


def _sampler_presentations(trainer, steps, chains, n_train, cfg) -> int:
    return _sampler_cost(trainer, chains, n_train, cfg) * (steps + 1)


def _draws_for(steps: int, num_draws: int) -> Schedule:
    return Schedule.with_draws(steps, None, min(num_draws, steps - steps // 2))


def _fit_sampler(trainer: Trainer, c: Call) -> Fitted:
    method, C, steps = trainer.name, c.C, c.steps
    hyper = mh_hyper(c.cfg)
    schedule = _draws_for(steps, c.num_draws)
    replicas = 1 if trainer.replicas is None else trainer.replicas(c.cfg)
    state0, advance = bayes.setup(c.key, c.problem, c.grid, hyper, c.settings, schedule,
                                  c.chunk, observe=False, sampler=method, chains_per_cell=C,
                                  num_temperatures=replicas, start=c.start)
    reporter = Progress(method, schedule, C) if c.progress else None

    def finish(state):
        out = {"draws": np.asarray(state.draws)[0], "mean": np.asarray(state.mean)[0],
               "draws_logdensity": np.asarray(state.draws_logdensity)[0],
               "accepted": np.asarray(state.accepted)[0],
               "queries": np.asarray(state.queries)[0]}
        step = kernels.step_size_of(state.inner)
        if step is not None:
            out["step_size"] = np.asarray(step)[0]
        if trainer.replicas is not None:  # tempered: its swaps and ladder
            report = pt_report(state.inner, schedule, bayes.swap_pool((1, C), C))
            out["swap_acceptance"] = report["swap_acceptance"][0].mean(0)
            out["betas"] = np.asarray(state.inner.state.betas)[0].mean(0)
        return out

    out = runs.run_stage(c.stages, method, lambda: state0, advance,
                         lambda s: int(s.step) >= schedule.num_steps, finish, reporter)
    draws, lp = out["draws"], out["draws_logdensity"]
    kept = schedule.num_steps - schedule.burn_in
    diag = {"steps": steps, "chains": C, "draws_per_chain": int(draws.shape[1]),
            "acceptance_rate": float(np.mean(out["accepted"]) / kept),
            "rhat_logdensity": float(diagnostics.rhat(lp[..., None])[0]),
            "ess_logdensity": float(diagnostics.ess(lp[..., None])[0]),
            "rhat_weights_max": _worst(diagnostics.rhat(draws), np.max),
            "ess_weights_min": _worst(diagnostics.ess(draws), np.min)}
    if "step_size" in out:
        diag["step_size"] = float(np.mean(out["step_size"]))
    if "swap_acceptance" in out:
        diag["swap_acceptance"] = [float(x) for x in out["swap_acceptance"]]
        diag["betas"] = [float(x) for x in out["betas"]]
    # one query presents every training row
    return Fitted(method, draws.reshape(-1, draws.shape[-1]), out["mean"].mean(0), draws, lp,
                  int(np.sum(out["queries"], dtype=np.int64)) * c.n_train, diag)


def _worst(values: np.ndarray, pick) -> float:
    finite = values[np.isfinite(values)]
    return float(pick(finite)) if finite.size else float("nan")


# ---- the driven methods (mhsnn.methods): they run to the budget, counting as they go ---

def _driven_steps(trainer, presentations, chains, n_train, cfg, hyper) -> int:
    entry = trainer.driven
    least = entry.first_cost(chains, n_train) + 2 * entry.cost(
        chains, n_train, entry.hyper() if hyper is None else hyper)
    if presentations < least:
        raise ValueError(f"presentations={presentations:g}: {trainer.name} with {chains} "
                         f"members on {n_train} rows needs at least {least:,}")
    return int(presentations)  # its "steps" are the budget: it runs step by step to it


def _driven_presentations(trainer, steps, chains, n_train, cfg) -> int:
    return int(steps)  # steps here is the budget: a run stops at or below it


def _fit_driven(trainer: Trainer, c: Call) -> Fitted:
    entry, J, hyper, start = trainer.driven, c.C, c.hyper, c.start
    target = methods.make_target(c.problem, c.grid, c.settings, mh_hyper(c.cfg), c.steps, J,
                                 c.num_draws, entry.name)
    algorithm = entry.build(target, hyper)
    key_init, key_run = jax.random.split(c.key)
    if start is None and entry.draw_start is not None:  # the method's own start
        theta0 = entry.draw_start(key_init, target, hyper)
    else:
        theta0 = bayes.init_positions(key_init, mh_hyper(c.cfg), (1, J), target.P, start)[0]
    out = driver.run(entry.name, algorithm, key_run, target, theta0, key_init, c.stages,
                     c.progress, c.chunks, c.at_budgets)
    for used, positions in zip(out["marked_used"], out["marked"]):
        if c.on_budget is not None and used > 0:
            c.on_budget(int(used), positions)
    final = out["final"]
    ensemble = entry.deploys != "draws"  # its end positions: an ensemble's, or a point's
    diag = {"steps": c.steps, "members" if ensemble else "chains": J,
            "steps_run": int(out["steps"]), "exact": entry.exact}
    if float(out["moves"]) > 0:
        diag["acceptance_rate"] = float(out["accepted"]) / float(out["moves"])
    if "beta" in out:  # the tempered SMCs' last temperature (1: the posterior reached)
        diag["beta"] = float(out["beta"])
    if "log_evidence" in out:
        diag["log_evidence"] = float(out["log_evidence"])
    if ensemble or out["draws"].shape[0] == 0:  # an ensemble, or no snapshot yet
        draws = lp = None
        sets = final
    else:
        draws = np.swapaxes(out["draws"], 0, 1)  # [J, D, P]
        lp = np.swapaxes(out["draws_lp"], 0, 1)
        sets = draws.reshape(-1, draws.shape[-1])
        diag.update(draws_per_chain=int(draws.shape[1]), logdensity=entry.traces,
                    rhat_logdensity=float(diagnostics.rhat(lp[..., None])[0]),
                    ess_logdensity=float(diagnostics.ess(lp[..., None])[0]))
    if not ensemble and draws is None:
        draws, lp = final[:, None], np.zeros((J, 1), np.float32)  # the end point only
    return Fitted(entry.name, sets, sets.mean(0), draws, lp, int(out["used"]), diag)


# ---- evolution strategies and SPSA: a population of weight sets a generation ----------

def _es_cost(trainer: Trainer, n_train: int, cfg: Config) -> int:
    hyper = es_hyper(cfg, trainer.name)
    return es.population_size(hyper) * es.rows_per_generation(hyper, n_train)


def _es_steps(trainer, presentations, chains, n_train, cfg, hyper) -> int:
    per_step = _es_cost(trainer, n_train, cfg)
    steps = int(presentations // per_step)
    if steps < 1:
        raise _too_small(trainer, presentations, chains, n_train, per_step)
    return steps


def _es_presentations(trainer, steps, chains, n_train, cfg) -> int:
    return _es_cost(trainer, n_train, cfg) * steps


def _report(label: str, total: int, done: Callable[[object], int], enabled: bool):
    if not enabled:
        return None

    def report(state):
        print(f"[{label}] {done(state)}/{total}", file=sys.stderr, flush=True)
    return report


def _fit_optimiser(trainer: Trainer, c: Call) -> Fitted:
    method, cfg, chunk = trainer.name, c.cfg, c.chunk
    steps = max(chunk, c.steps // chunk * chunk)  # an ES chunk always runs whole
    hyper = es_hyper(cfg, method)
    dim = snn.num_weights(c.settings.sizes)
    state0, advance = es.grid_trainer(c.key, c.problem, c.grid, hyper, c.settings, chunk,
                                      c.start)
    reporter = _report(method, steps, lambda s: int(s.generation), c.progress)

    def finish(state):
        return {"mean": np.asarray(es.mean_of(state, hyper, dim))[0, 0],
                "best_fitness": np.asarray(state.best_fitness)[0, 0]}

    out = runs.run_stage(c.stages, method, lambda: state0, advance,
                         lambda s: int(s.generation) >= steps, finish, reporter)
    w = out["mean"]
    return Fitted(method, w[None], w, None, None,
                  _es_presentations(trainer, steps, c.C, c.n_train, cfg),
                  {"steps": steps, "population": es.population_size(hyper),
                   "best_objective": float(out["best_fitness"])})


# ---- the baselines: SG (offline, or with the chip in the loop) and the ANN conversion -

def _epoch_cost(n_train: int, cfg: Config) -> int:  # every minibatch of b rows, padded
    return math.ceil(n_train / cfg.sg.batch_size) * cfg.sg.batch_size


def _sg_steps(trainer, presentations, chains, n_train, cfg, hyper) -> int:
    return max(1, min(cfg.sg.epochs, int(presentations // _epoch_cost(n_train, cfg))))


def _sg_presentations(trainer, steps, chains, n_train, cfg) -> int:
    return steps * _epoch_cost(n_train, cfg)


def _fit_sg(in_loop: bool):
    def fit_sg(trainer: Trainer, c: Call) -> Fitted:
        method, epochs = trainer.name, c.steps
        hyper = sg_hyper(c.cfg)._replace(epochs=epochs)
        state0, advance = sgd.grid_trainer(c.key, c.problem, c.grid, hyper, in_loop,
                                           c.settings, min(c.chunk, epochs), c.start)
        reporter = _report(method, epochs, lambda s: int(s.epoch.min()), c.progress)

        def finish(state):
            return {"theta": np.asarray(state.theta)[0, 0],
                    "failed": np.asarray(state.failed)[0, 0],
                    "loss": np.asarray(state.last_loss)[0, 0]}

        out = runs.run_stage(c.stages, method, lambda: state0, advance,
                             lambda s: int(np.min(s.epoch)) >= epochs, finish, reporter)
        w = out["theta"]
        return Fitted(method, w[None], w, None, None,
                      trainer.family.presentations(trainer, epochs, c.C, c.n_train, c.cfg),
                      {"steps": epochs, "epochs": epochs, "failed": bool(out["failed"]),
                       "last_loss": float(out["loss"])})
    return fit_sg


def _fit_ann(trainer: Trainer, c: Call) -> Fitted:
    hyper = ann_hyper(c.cfg)
    problem, settings = c.problem, c.settings

    def train():
        return {"theta": np.asarray(convert.convert(
            c.key, problem.train_spikes[0], problem.train_targets[0], problem.train_mask[0],
            settings.sizes, hyper, settings.alpha, settings.threshold))}

    template = {"theta": np.zeros(snn.num_weights(settings.sizes), np.float32)}
    w = runs.run_once(c.stages, trainer.name, train, template)["theta"]
    return Fitted(trainer.name, w[None], w, None, None, 0,
                  {"steps": c.steps, "model_presentations": convert.model_presentations(
                      hyper, c.n_train), "percentile": hyper.percentile})


def _no_presentations(trainer, steps, chains, n_train, cfg) -> int:
    return 0  # trained on the ideal model alone


SAMPLER = Family(_sampler_steps, _sampler_presentations, _fit_sampler)
DRIVEN = Family(_driven_steps, _driven_presentations, _fit_driven, marks=True)
OPTIMISER = Family(_es_steps, _es_presentations, _fit_optimiser)
SG_IN_LOOP = Family(_sg_steps, _sg_presentations, _fit_sg(True))
SG_OFFLINE = Family(lambda trainer, presentations, chains, n_train, cfg, hyper: cfg.sg.epochs,
                    _no_presentations, _fit_sg(False))
ANN = Family(lambda trainer, presentations, chains, n_train, cfg, hyper: cfg.ann.steps,
             _no_presentations, _fit_ann)


class Trainer(NamedTuple):
    """A method of the registry: what it is, what it needs, and how it is fitted (its
    ``family``): ``fit`` asks the registry, never a method's name."""

    name: str
    kind: str  # "sampler" (a posterior), "optimiser" (one weight set) or "baseline"
    uses_model: bool  # the ideal model (its gradient) serves beside the chip
    about: str
    family: Family  # how a budget becomes steps, what they cost, how it is fitted
    starts: bool = True  # takes a start (``fit(start=...)``): all but what begins elsewhere
    exact: bool = False  # a sampler whose stationary law is the chip posterior
    driven: methods.Entry | None = None  # a driven method (``mhsnn.methods``): its entry
    replicas: Callable[[Config], int] | None = None  # tempered: replicas per chain
    min_chains: int = 1  # the fewest chains it runs with (a population of chains)


_SAMPLERS = {
    "rw": "random-walk MH with a fixed step c (the paper's Algorithm 1)",
    "rw_adapt": "random-walk MH, step adapted in burn-in toward 0.234 acceptance",
    "rw_adapt_diag": "random-walk MH with a diagonal proposal covariance learnt in burn-in",
    "rw_adapt_full": "random-walk MH with a full proposal covariance learnt in burn-in",
}
_GRADIENT = {"mala": "Langevin proposals from the model's gradient, accepted on the chip",
             "hmc": "Hamiltonian proposals from the model's gradient, accepted on the chip"}


def _driven(entry: methods.Entry) -> Trainer:
    return Trainer(entry.name, entry.kind, entry.uses_model, entry.about, DRIVEN, entry.starts,
                   entry.exact, entry)


TRAINERS: dict[str, Trainer] = {
    **{k: Trainer(k, "sampler", False, v, SAMPLER, exact=True) for k, v in _SAMPLERS.items()},
    "demc": Trainer("demc", "sampler", False,
                    "differential-evolution MCMC: the chains are the population", SAMPLER,
                    exact=True, min_chains=4),
    "pt": Trainer("pt", "sampler", False,
                  "non-reversible parallel tempering (K replicas per chain)", SAMPLER,
                  exact=True, replicas=lambda cfg: cfg.pt.num_temperatures),
    **{k: Trainer(k, "sampler", True, v, SAMPLER, exact=True) for k, v in _GRADIENT.items()},
    **{k: _driven(entry) for k, entry in methods.REGISTRY.items()},
    **{k: Trainer(k, "optimiser", False, v, OPTIMISER) for k, v in es.OPTIMISERS.items()},
    "sg_offline": Trainer("sg_offline", "baseline", True,
                          "surrogate-gradient Adam on the ideal model, deployed on the chip",
                          SG_OFFLINE),
    "sg_in_loop": Trainer("sg_in_loop", "baseline", True,
                          "surrogate-gradient Adam, chip values with the model's derivative",
                          SG_IN_LOOP),
    # the ANN conversion begins from its own start (a ReLU network trained, then converted)
    "ann_convert": Trainer("ann_convert", "baseline", True,
                           "a ReLU network trained offline, converted by data-based weight "
                           "normalisation (mhsnn.convert), deployed on the chip", ANN,
                           starts=False),
}


def check_method(method: str) -> Trainer:
    if method not in TRAINERS:
        raise ValueError(f"method {method!r}: expected one of {', '.join(TRAINERS)}")
    return TRAINERS[method]


def method_hyper(method: str, params: dict | None = None):
    """A driven method's ``Hyper``: its defaults with ``params`` (names of its fields) over
    them (``methods.hyper_of``), or a ValueError of one line naming what is wrong; None for
    the other methods, which take their settings from the config."""
    trainer = check_method(method)
    if trainer.driven is None:
        if params:
            raise ValueError(f"method_params: {method} takes its settings from the config "
                             "(its section of mhsnn.config.Config), not method_params")
        return None
    return methods.hyper_of(method, params)


def steps_for(method: str, presentations: float, chains: int, n_train: int,
              cfg: Config = DEFAULTS, hyper=None) -> int:
    """Steps (generations, epochs) a budget of ``presentations`` buys; a budget too small
    for the method is a ValueError of one line naming the least it needs (a driven
    method's with its settings ``hyper``, default its ``Hyper()``)."""
    trainer = check_method(method)
    return trainer.family.steps(trainer, presentations, chains, n_train, cfg, hyper)


def presentations_of(method: str, steps: int, chains: int, n_train: int,
                     cfg: Config = DEFAULTS) -> int:
    """Chip sample presentations ``steps`` steps of ``method`` cost (module docstring)."""
    trainer = check_method(method)
    return trainer.family.presentations(trainer, steps, chains, n_train, cfg)


def fit(method: str, key: jax.Array, problem: posterior.Problem, chip,
        settings: posterior.SNNSettings, *, presentations: float, chains: int = 8,
        num_draws: int = 25, cfg: Config = DEFAULTS, stages: runs.Stages | None = None,
        progress: bool = False, chunks: int = 20, start=None,
        method_params: dict | None = None, at_budgets: Sequence[float] = (),
        on_budget: Callable[[int, np.ndarray], None] | None = None) -> Fitted:
    """Train ``method`` on ``chip`` with the training rows of ``problem`` (one fold).

    ``chip``: a ``chips.Chip`` (any non-idealities; broadcast to the chains here) or a
    ``chips.ExternalChip``. ``presentations``: the budget in chip sample presentations
    (``steps_for``); ``chains``: a sampler's chains (optimisers and baselines run one);
    ``num_draws``: kept draws per chain (the BMA's weight sets). ``stages``: checkpoint
    every chunk there (a resumed ``fit`` continues from the last chunk); ``chunks``: about
    how many chunks (progress lines, checkpoints) the run is cut into.
    ``method_params``: a driven method's settings by name, over its ``Hyper`` defaults
    (``method_hyper``); the other methods take theirs from ``cfg``.

    ``at_budgets`` (the driven methods): ``on_budget(presentations, weight_sets [J, P])``
    is called after the run for each budget reached, with the positions of the last step
    within it (an anytime curve from one run).

    ``start`` [P]: every method begins from these weights (a deployed network) instead of
    its own random start: an optimiser's weights or search mean, a sampler's chains and an
    ensemble's members drawn around them (``snn.around``: a tenth of the method's own start
    spread). Methods with ``TRAINERS[m].starts`` false refuse one.
    """
    trainer = check_method(method)
    if start is not None:
        start = jnp.asarray(check_start(method, start, settings.sizes))
    if problem.train_spikes.shape[0] != 1:
        raise ValueError("fit: the problem must hold one fold")
    n_train = int(problem.train_mask.sum())
    C = chains if trainer.kind in ("sampler", "ensemble") else 1
    if C < trainer.min_chains:
        raise ValueError(f"chains={chains}: {method} needs at least {trainer.min_chains} "
                         "(its population)")
    hyper = method_hyper(method, method_params)  # a driven method's; else a refusal or None
    if len(at_budgets) and not trainer.family.marks:
        raise ValueError(f"at_budgets: {method} is not a driven method (mhsnn.methods)")
    steps = trainer.family.steps(trainer, presentations, C, n_train, cfg, hyper)
    grid = chip if isinstance(chip, chips.ExternalChip) else chips.broadcast(chip, (1, C))
    if isinstance(grid, chips.ExternalChip):
        grid.grid_shape = (1, C)
    out = trainer.family.fit(trainer, Call(key, problem, grid, settings, steps, C, num_draws,
                                           cfg, stages, progress, chunks, start, hyper,
                                           at_budgets, on_budget))
    return out._replace(diagnostics={"method": method, **out.diagnostics})


def check_start(method: str, start, sizes, what: str = "start") -> np.ndarray:
    """``start`` as float32 weights of the network ``sizes`` for ``method``, or a ValueError
    of one line (``what`` names the argument in it)."""
    if not check_method(method).starts:
        raise ValueError(f"{method} does not take a start (it begins from its own)")
    start, P = np.asarray(start, np.float32), snn.num_weights(sizes)
    if start.shape != (P,) or not np.all(np.isfinite(start)):
        raise ValueError(f"{what}: weights of shape {start.shape}, expected ({P},) finite "
                         f"values for the network {'-'.join(map(str, sizes))} "
                         "(mhsnn.weight_layout says which is which)")
    return start


def one_fold_problem(spikes: jax.Array, y: np.ndarray, num_classes: int) -> posterior.Problem:
    """A ``posterior.Problem`` of one fold holding only training rows (spikes [T, N, F],
    labels 0 .. K-1): the test fields are one empty placeholder row that nothing queries."""
    T, N, F = spikes.shape
    return posterior.Problem(
        train_spikes=jnp.asarray(spikes)[None],
        train_targets=jnp.asarray(np.eye(num_classes, dtype=np.float32)[y])[None],
        train_mask=jnp.ones((1, N), jnp.float32),
        test_spikes=jnp.zeros((1, T, 1, F), jnp.float32),
        test_labels=jnp.full((1, 1), posterior.PADDING_LABEL, jnp.int32),
        test_mask=jnp.zeros((1, 1), jnp.float32),
        test_index=jnp.full((1, 1), -1, jnp.int32))


def settings_for(sizes: tuple[int, ...], likelihood: str = "mse",
                 cfg: Config = DEFAULTS) -> posterior.SNNSettings:
    """The network settings of ``sizes`` with the config's neuron constants."""
    lik.of(likelihood)  # a one-line error for another name
    layout = snn.default_layout() if cfg.snn.layout == "auto" else cfg.snn.layout
    return posterior.SNNSettings(alpha=cfg.snn.alpha, threshold=cfg.snn.threshold,
                                 sizes=tuple(sizes), layout=layout, likelihood=likelihood,
                                 softmax_scale=cfg.softmax_scale)


__all__ = ["DEFAULTS", "TRAINERS", "Fitted", "Trainer", "check_method", "check_start", "config",
           "es_hyper", "fit", "method_hyper", "mh_hyper", "one_fold_problem", "presentations_of",
           "settings_for", "sg_hyper", "steps_for"]
