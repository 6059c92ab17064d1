"""Every knob of an experiment: frozen dataclasses, TOML presets, ``--set`` overrides, validation.

Keys are public (``mh.num_steps``, ``sg.epochs``, ``sigmas``, ``folds``, ``seed``,
``snn.alpha`` ...). ``validate`` checks every field before any work starts and raises
``ConfigError`` with one line naming the field, the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import inspect
import itertools
import json
import math
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from typing import Any

from mhsnn import likelihood, snn
from mhsnn.errors import ConfigError  # noqa: F401 - re-exported: config.ConfigError

PRESETS = ("quick", "paper", "gpu")
# The default methods; a *_literal one is its SG mode with the paper's settings taken
# literally (lr 1e-3, N(0, 0.1^2) init), and runs only when named.
METHODS = ("mh", "sg_offline", "sg_in_loop", "sg_offline_literal", "sg_in_loop_literal",
           "ann_convert")
ALL_METHODS = (*METHODS, "pt")


def grid_samplers() -> tuple[str, ...]:
    """The samplers of ``mhsnn.TRAINERS`` that the grid experiments (sigma_sweep,
    data_efficiency, nonidealities, scaling) also run by name beside "mh" (the paper's
    random walk, TRAINERS' "rw") and "pt": ``bayes.SAMPLERS`` but "pt"."""
    from mhsnn import bayes  # here, not at the top: bayes imports this module's users

    return tuple(s for s in bayes.SAMPLERS if s != "pt")


def grid_per_cell() -> tuple[str, ...]:
    """The methods of ``mhsnn.TRAINERS`` that the grid experiments also run by name, one
    ``trainers.fit`` per fold and cell at MH's budget (``experiments.runners.run_per_cell``):
    the driven methods (``mhsnn.methods``) and the evolution strategies and SPSA."""
    from mhsnn import es, methods  # here, not at the top: as grid_samplers

    return (*methods.REGISTRY, *es.OPTIMISERS)


LAYOUTS = ("auto", "fused", "hoisted", "reference", "blocked")  # "auto": the backend's (snn.default_layout)
MAX_WEIGHTS = 100_000
BURN_IN_HALF = -1  # mh.burn_in's "the first half" (see burn_in_steps)
DATASETS = ("breast_cancer", "iris", "wine", "digits")  # mhsnn.data.BUILTIN


@dataclass(frozen=True)
class SNNConfig:
    alpha: float = snn.ALPHA  # membrane decay
    threshold: float = snn.THRESHOLD  # firing threshold mu
    time_steps: int = 10  # T: length of the Poisson spike trains
    hidden: tuple[int, ...] = (3,)  # hidden layer widths; [] is a single layer
    layout: str = "auto"  # the likelihood kernel (snn.LAYOUTS); auto: fused on CPU, else hoisted


@dataclass(frozen=True)
class DataConfig:
    name: str = "breast_cancer"  # a scikit-learn set: breast_cancer, iris, wine, digits
    path: str = ""  # a .npz (X, y) or .csv file; overrides name when set
    label: str = "label"  # the label column of a .csv file (labels: any values, strings too)


@dataclass(frozen=True)
class MHConfig:
    num_chains: int = 16  # per (fold, sigma) cell
    num_steps: int = 50_000  # MH steps per chain, burn-in included
    burn_in: int = BURN_IN_HALF  # -1: the first half, as in the paper
    step_size: float = 0.5  # c: proposal standard deviation (results/tuning/mh_tuning.csv)
    lik_std: float = 0.02  # v: log L = -MSE / (2 v^2)
    prior_std: float = 5.0  # p: Gaussian prior N(0, p^2 I) on every weight
    init_mean: float = 0.0  # chains start from N(init_mean, init_std^2 I)
    init_std: float = 0.5  # = c, as Algorithm 1 starts
    num_draws: int = 100  # thinned draws kept per chain for diagnostics and the BMA
    chunk_size: int = 1000  # steps per jitted call (progress and checkpoint interval)
    arviz: bool = False  # also write the draws as ArviZ InferenceData under out/arviz/


@dataclass(frozen=True)
class PTConfig:
    num_temperatures: int = 4  # K replicas per chain; steps, chains, c, v, p come from mh.*


@dataclass(frozen=True)
class SGConfig:
    seeds: int = 1  # initialisations per (fold, sigma) cell
    epochs: int = 100  # passes over the training rows
    batch_size: int = 32  # rows per Adam step
    learning_rate: float = 0.03  # Adam (tuned; the paper's 1e-3 runs as *_literal)
    init_mean1: float = 0.3  # tuned init ("positive_mid", results/tuning/sg_tuning.csv)
    init_std1: float = 0.3  # hidden layers' weights ~ N(init_mean1, init_std1^2)
    init_mean2: float = 4.0  # (see init_std2)
    init_std2: float = 2.0  # output layer's weights ~ N(init_mean2, init_std2^2)
    epochs_per_chunk: int = 10  # epochs per jitted call (progress and checkpoint interval)


@dataclass(frozen=True)
class ESConfig:
    population: int = 64  # members per generation of every evolution strategy
    std_init: float = 1.0  # initial search std (a smaller one never leaves the silent network)
    std_min: float = 0.01  # std floor of CMA-ES / sep-CMA-ES (evosax's 0 collapses to NaN)
    learning_rate: float = 0.05  # Adam step of OpenAI-ES and SPSA
    spsa_c: float = 0.5  # SPSA's perturbation size c
    num_perturbations: int = 4  # SPSA's antithetic pairs per step
    tuned: bool = True  # query_budget: each strategy's tuned settings (mhsnn.es.TUNED) over these
    batch: int = 128  # rows per step of the mini-batched trainers (snes_mb, spsa_mb)


@dataclass(frozen=True)
class ANNConfig:
    learning_rate: float = 0.01  # ann_convert: Adam on the ReLU network, full batch
    steps: int = 1000  # Adam steps
    percentile: float = 99.9  # data-based normalisation's activation percentile (mhsnn.convert)


@dataclass(frozen=True)
class ChipConfig:
    path: str = ""  # a user's chip, module:callable or file.py:callable (docs/your-chip.md)
    args: dict = field(default_factory=dict)  # keyword arguments of chip.path's callable, e.g. {bits = 4}
    retries: int = 3  # an external chip's faulty query is retried this often, then the run stops
    timeout_s: float = 60.0  # a query running longer is a fault (a hung link or device)
    backoff_s: float = 0.5  # wait before retry k: backoff_s x 2^k seconds


@dataclass(frozen=True)
class Config:
    preset: str = "quick"  # the preset these values start from (quick, paper, gpu)
    seed: int = 0  # root of every random key (mhsnn.keys)
    folds: int = 5  # cross-validation folds (data efficiency: random subsets)
    sigmas: tuple[float, ...] = (0.0, 1.0, 2.0, 3.0)  # chip non-linearity strengths
    n_train: tuple[int, ...] = (10, 20, 40, 80, 160, 455)  # data-efficiency sizes N_t
    methods: tuple[str, ...] = METHODS  # mh, pt, sg_*; grid experiments: + samplers, eki, snes...
    likelihood: str = "mse"  # of MH, PT and SG: mse (the paper's) or categorical (softmax)
    method_params: dict = field(default_factory=dict)  # driven methods' settings: {eki = {batch = 64}}
    softmax_scale: float = 10.0  # categorical: p(y | x, W) = softmax(scale x output rates)
    data: DataConfig = field(default_factory=DataConfig)
    snn: SNNConfig = field(default_factory=SNNConfig)
    mh: MHConfig = field(default_factory=MHConfig)
    pt: PTConfig = field(default_factory=PTConfig)
    sg: SGConfig = field(default_factory=SGConfig)
    es: ESConfig = field(default_factory=ESConfig)
    chip: ChipConfig = field(default_factory=ChipConfig)
    ann: ANNConfig = field(default_factory=ANNConfig)


def burn_in_steps(mh: MHConfig) -> int | None:
    """mh.burn_in as the samplers take it: None (the first half) for BURN_IN_HALF."""
    return None if mh.burn_in == BURN_IN_HALF else mh.burn_in


def to_dict(cfg: Config) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def _comments(cls: type) -> dict[str, str]:
    """Each field's trailing ``# comment`` in this module's source: the one place a key is
    documented."""
    lines, _ = inspect.getsourcelines(cls)
    out = {}
    for line in lines:
        m = re.match(r"\s+(\w+): .*?#\s*(.*)$", line)
        if m:
            out[m.group(1)] = m.group(2).strip()
    return out


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    return repr(value)


def _method_settings() -> list[str]:
    """Comment lines: every driven method's settings with their defaults, from its
    ``Hyper`` (what ``method_params`` may set)."""
    from mhsnn import methods  # here, not at the top: as grid_samplers

    rows = ["# method_params may set, per driven method (defaults; mhsnn/methods/NAME.py):"]
    for name, entry in methods.REGISTRY.items():
        settings = ", ".join(f"{k}={_toml_value(v)}" for k, v in entry.hyper()._asdict().items())
        rows.append(f"#   {name}: {settings}")
    return rows


def to_toml(cfg: Config) -> str:
    """The whole resolved configuration as TOML, every key with its value and a comment;
    ``load_preset`` / ``--set`` read it back."""
    def block(obj, comments):
        rows = []
        for f in fields(obj):
            if f.default_factory is not dataclasses.MISSING and f.name in _sections():
                continue
            note = comments.get(f.name, "")
            rows.append(f"{f.name} = {_toml_value(getattr(obj, f.name))}"
                        + (f"  # {note}" if note else ""))
        return rows

    lines = block(cfg, _comments(Config)) + _method_settings()
    for name in _sections():
        section = getattr(cfg, name)
        lines += ["", f"[{name}]", *block(section, _comments(type(section)))]
    return "\n".join(lines) + "\n"


def _sections() -> dict[str, type]:
    return {f.name: f.default_factory for f in fields(Config)
            if dataclasses.is_dataclass(f.default_factory)}


def _coerce(key: str, value: Any, default: Any) -> Any:
    """Check the TOML value's type against the field's default and convert lists to tuples."""
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, str):
        ok = isinstance(value, str)
    elif isinstance(default, dict):
        ok = isinstance(value, dict)
    elif isinstance(default, tuple):
        kind = type(default[0]) if default else str
        ok = isinstance(value, list) and all(not isinstance(v, bool) for v in value) and (
            kind is not int or all(isinstance(v, int) for v in value))
        if ok:
            try:
                return tuple(kind(v) for v in value)
            except (TypeError, ValueError):
                ok = False
        if not ok:
            raise ConfigError(f"{key}={value!r}: expected a list of {kind.__name__}")
    else:
        ok = False
    if not ok:
        raise ConfigError(f"{key}={value!r}: expected {type(default).__name__}")
    return value


def apply(cfg: Config, updates: dict[str, Any]) -> Config:
    """Apply dotted-key updates; unknown keys are errors."""
    sections = _sections()
    top: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {name: {} for name in sections}
    for key, value in updates.items():
        head, _, tail = key.partition(".")
        if head in sections and tail:
            sub = getattr(cfg, head)
            names = {f.name for f in fields(sub)}
            if tail not in names:
                raise ConfigError(f"{key}: unknown key (known in {head}: {', '.join(sorted(names))})")
            nested[head][tail] = _coerce(key, value, getattr(sub, tail))
        elif not tail and head in {f.name for f in fields(Config)} and head not in sections:
            top[key] = _coerce(key, value, getattr(cfg, key))
        else:
            known = sorted({f.name for f in fields(Config)} - set(sections))
            raise ConfigError(f"{key}: unknown key (known: {', '.join(known)}, "
                              f"{', '.join(s + '.*' for s in sections)})")
    for head, vals in nested.items():
        if vals:
            top[head] = replace(getattr(cfg, head), **vals)
    return replace(cfg, **top)


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in table.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def load_preset(name: str) -> Config:
    """The defaults overridden by ``mhsnn/presets/<name>.toml``."""
    if name not in PRESETS:
        raise ConfigError(f"preset={name!r}: unknown preset (choose from {', '.join(PRESETS)})")
    text = resources.files("mhsnn").joinpath(f"presets/{name}.toml").read_text()
    return apply(Config(preset=name), _flatten(tomllib.loads(text)))


def parse_set(item: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with VALUE in TOML syntax (``2000``, ``[0, 3]``, ``0.9``); anything else
    that TOML cannot read and that does not open a list, table or quoted string is taken as
    a plain string (a word, a file path)."""
    key, sep, raw = item.partition("=")
    key, raw = key.strip(), raw.strip()
    if not sep or not key or not raw:
        raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. mh.num_steps=2000")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        if raw[0] in "[{\"'":
            raise ConfigError(f"--set {item!r}: cannot read value {raw!r}") from None
        value = raw
    return key, value


def build(preset: str, sets: list[str]) -> Config:
    """Preset, then each ``--set``, then validation."""
    cfg = load_preset(preset)
    cfg = apply(cfg, dict(parse_set(s) for s in sets))
    validate(cfg)
    return cfg


def _check(ok: bool, key: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"{key}={value!r}: must be {allowed}")


def _finite_positive(key: str, value: float) -> None:
    _check(math.isfinite(value) and value > 0, key, value, "> 0 and finite")


def network(cfg: Config, num_features: int, num_classes: int) -> tuple[int, ...]:
    """Layer sizes (features, *snn.hidden, classes); refuses more than MAX_WEIGHTS weights."""
    sizes = (num_features, *cfg.snn.hidden, num_classes)
    total = sum(a * b for a, b in itertools.pairwise(sizes))
    _check(total <= MAX_WEIGHTS, "snn.hidden", list(cfg.snn.hidden),
           f"a network of at most {MAX_WEIGHTS:,} weights ({'-'.join(map(str, sizes))} has "
           f"{total:,})")
    return sizes


def _check_method_params(table: dict) -> None:
    """``method_params``: each driven method's settings, checked against its ``Hyper``
    (``mhsnn.methods.hyper_of``, the check the estimator's ``method_params`` passes)."""
    from mhsnn import methods  # here, not at the top: as grid_samplers

    for name, params in table.items():
        if not isinstance(params, dict):
            raise ConfigError(f"method_params.{name}={params!r}: expected a table of its "
                              "settings, e.g. method_params={eki = {batch = 64}}")
        try:
            methods.hyper_of(name, params)
        except ValueError as err:
            raise ConfigError(str(err)) from None


def validate(cfg: Config) -> Config:
    """Range-check every field; raise ConfigError on the first bad one."""
    _check(cfg.preset in PRESETS, "preset", cfg.preset, f"one of {', '.join(PRESETS)}")
    _check(0 <= cfg.seed < 2**31, "seed", cfg.seed, "in [0, 2^31)")
    _check(2 <= cfg.folds <= 10, "folds", cfg.folds, "in [2, 10]")
    _check(len(cfg.sigmas) >= 1, "sigmas", list(cfg.sigmas), "a non-empty list")
    for s in cfg.sigmas:
        _check(math.isfinite(s) and s >= 0, "sigmas", list(cfg.sigmas), "finite values >= 0")
    _check(len(cfg.n_train) >= 1, "n_train", list(cfg.n_train), "a non-empty list")
    for n in cfg.n_train:  # the upper bound comes from the data set (data.n_train_range)
        _check(n >= 2, "n_train", list(cfg.n_train), "values >= 2")
    _check(bool(cfg.data.path) or cfg.data.name in DATASETS, "data.name", cfg.data.name,
           f"one of {', '.join(DATASETS)} (or set data.path to a .npz or .csv file)")
    _check(cfg.likelihood in likelihood.NAMES, "likelihood", cfg.likelihood,
           " or ".join(likelihood.NAMES))
    _finite_positive("softmax_scale", cfg.softmax_scale)
    allowed = (*ALL_METHODS, *grid_samplers(), *grid_per_cell())
    _check_method_params(cfg.method_params)
    _check(len(cfg.methods) >= 1 and all(m in allowed for m in cfg.methods), "methods",
           list(cfg.methods), f"a non-empty list drawn from {', '.join(allowed)}")
    _check("demc" not in cfg.methods or cfg.mh.num_chains >= 4, "mh.num_chains",
           cfg.mh.num_chains, ">= 4 with demc in methods (a cell's chains are its population)")
    _check(1 <= cfg.pt.num_temperatures <= 64, "pt.num_temperatures", cfg.pt.num_temperatures,
           "in [1, 64]")
    s = cfg.snn
    _check(0 < s.alpha < 1, "snn.alpha", s.alpha, "in (0, 1)")
    _finite_positive("snn.threshold", s.threshold)
    _check(1 <= s.time_steps <= 1000, "snn.time_steps", s.time_steps, "in [1, 1000]")
    _check(len(s.hidden) <= 16 and all(1 <= h <= MAX_WEIGHTS for h in s.hidden), "snn.hidden",
           list(s.hidden), "a list of at most 16 widths, each >= 1")
    _check(s.layout in LAYOUTS, "snn.layout", s.layout, f"one of {', '.join(LAYOUTS)}")
    m = cfg.mh
    _check(m.num_chains >= 1, "mh.num_chains", m.num_chains, ">= 1")
    _check(m.num_steps >= 2, "mh.num_steps", m.num_steps, ">= 2")
    _check(m.burn_in == BURN_IN_HALF or 0 <= m.burn_in < m.num_steps, "mh.burn_in", m.burn_in,
           f"-1 (half) or in [0, mh.num_steps={m.num_steps})")
    for name in ("step_size", "lik_std", "prior_std", "init_std"):
        _finite_positive(f"mh.{name}", getattr(m, name))
    _check(math.isfinite(m.init_mean), "mh.init_mean", m.init_mean, "finite")
    _check(m.num_draws >= 1, "mh.num_draws", m.num_draws, ">= 1")
    _check(m.chunk_size >= 1, "mh.chunk_size", m.chunk_size, ">= 1")
    e = cfg.es
    _check(e.population >= 4 and e.population % 2 == 0, "es.population", e.population,
           "an even number >= 4")
    _check(e.num_perturbations >= 1, "es.num_perturbations", e.num_perturbations, ">= 1")
    _check(e.batch >= 1, "es.batch", e.batch, ">= 1")
    for name in ("std_init", "std_min", "learning_rate", "spsa_c"):
        _finite_positive(f"es.{name}", getattr(e, name))
    a = cfg.ann
    _finite_positive("ann.learning_rate", a.learning_rate)
    _check(a.steps >= 1, "ann.steps", a.steps, ">= 1")
    _check(0 < a.percentile <= 100, "ann.percentile", a.percentile, "in (0, 100]")
    c = cfg.chip
    _check(not c.path or c.path.count(":") >= 1 and all(c.path.rpartition(":")[::2]),
           "chip.path", c.path, "module:callable or file.py:callable")
    _check(c.path or not c.args, "chip.args", c.args, "empty unless chip.path is set")
    _check(0 <= c.retries <= 100, "chip.retries", c.retries, "in [0, 100]")
    _finite_positive("chip.timeout_s", c.timeout_s)
    _check(math.isfinite(c.backoff_s) and c.backoff_s >= 0, "chip.backoff_s", c.backoff_s,
           "finite and >= 0")
    g = cfg.sg
    _check(g.seeds >= 1, "sg.seeds", g.seeds, ">= 1")
    _check(g.epochs >= 1, "sg.epochs", g.epochs, ">= 1")
    _check(g.batch_size >= 1, "sg.batch_size", g.batch_size, ">= 1")
    _check(g.epochs_per_chunk >= 1, "sg.epochs_per_chunk", g.epochs_per_chunk, ">= 1")
    _finite_positive("sg.learning_rate", g.learning_rate)
    for name in ("init_std1", "init_std2"):
        _finite_positive(f"sg.{name}", getattr(g, name))
    for name in ("init_mean1", "init_mean2"):
        _check(math.isfinite(getattr(g, name)), f"sg.{name}", getattr(g, name), "finite")
    return cfg
