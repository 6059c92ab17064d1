"""``SNNClassifier``: one trainer of ``mhsnn.TRAINERS`` on one chip, as a scikit-learn
classifier.

    clf = SNNClassifier(chip=my_chip, hidden=(8,), method="rw_adapt").fit(X, y)
    clf.score(X_test, y_test)

It scales features to [0, 1] on the training rows (``data.MinMaxScaler``), encodes them as
Poisson spike trains (``data.poisson_encode``), trains the network (features, *hidden,
classes) with ``trainers.fit`` and predicts on the same chip. A test row's spike train is
keyed by the row's own bytes, so its prediction depends only on that row and the fitted
state, never on the other rows of the call or their order.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import numbers
import sys
import time
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from mhsnn import chips, config, data, keys, metrics, posterior, probe, runs, snn, trainers
from mhsnn.config import ConfigError
from mhsnn.metrics import votes

PREDICTIVES = ("bma", "vote", "point", "calibrated")
CALIBRATION_SHARE = 0.02  # of presentations, kept out of training for "calibrated"'s factor
CALIBRATION_ROWS = 64  # the fewest rows it is learnt on (fewer sets, where the share is small)
RHAT_WARN = 1.1  # above this the chains have not mixed (as NumPyro's summary flags it)
_SEED_FILE = "estimator_seed"
_PROBE_FILE = "estimator_probe.json"  # an unfinished fit's probe: a resume keeps its scale
_CHIP_FILE = "estimator_chip.json"  # an unfinished fit's chip counts, summed over attempts
CODE_VERSION = "estimator-3"


class SNNClassifier(ClassifierMixin, BaseEstimator):
    """A spiking network trained on a chip by any method of ``mhsnn.TRAINERS``.

    Args:
      chip: None (the ideal chip), a ``mhsnn.chips`` chip (``chips.polynomial(3.0)``,
        mismatch, noise, ...), a ``chips.ExternalChip``, or any callable
        ``(weights f32[C, P], spikes f32[T, N, F]) -> counts [C, N, O]`` (weights layer
        after layer, each [fan_in, fan_out] row-major), which is queried as an
        ``ExternalChip`` with ``chip_retries`` and ``chip_timeout_s``.
      hidden: hidden layer widths; the network is (features, *hidden, classes).
      method: a name in ``mhsnn.TRAINERS``; the default, "eki" (mini-batched ensemble
        Kalman inversion, deployed as its ensemble), is within noise of the best mean
        accuracy relative to logistic regression across the any-chip panel, and the best
        that needs no optional dependency (docs/experiments/any-chip.md).
      method_params: the method's settings by name over its defaults, for the methods
        of ``mhsnn.methods`` (``trainers.method_hyper``: e.g. ``{"batch": 64}`` for
        "eki"); the others take theirs from the config.
      presentations: the training budget in chip sample presentations (one weight set on
        one training row); see ``mhsnn.trainers`` for what a step of each method costs.
      chains: a sampler's chains (optimisers and SG train one weight set).
      time_steps: T, the length of the spike trains.
      likelihood: "mse" (the paper's) or "categorical" (softmax of the rates).
      predictive: "calibrated" (the default): softmax(beta x the deployed sets' mean
        rates), beta learnt at the end of ``fit`` on a keyed random subset of the training
        rows. 2% of ``presentations`` is kept out of training for it: every set on 2% / S
        rows, or, where that is under 64 rows, a subset of the sets on 64 rows; counted in
        ``presentations_`` (``diagnostics_["calibration_presentations"]``,
        ``["calibration_factor"]``). "bma": the mean over the kept draws of each one's
        count share, (c + 1/2) / (sum c + K/2); "vote": the share of draws voting for each
        class; "point": the posterior mean W*, or an optimiser's weights (for an optimiser
        "bma", "vote" and "point" use its one weight set). Measured on digits 64-32-10
        (docs/experiments/predictives.md): the calibrated NLL and ECE are far below the
        count share's, which is under-confident by construction, at the same accuracy.
      test_repeats: k fresh Poisson draws of each row presented at prediction, their
        output counts averaged (``predict_counts`` returns the mean): k times the chip's
        presentations per prediction, and for the calibrated predictive's factor (learnt
        on the same k-draw means, within the same 2%).
      random_state: seed of every key (spike encoding, initialisation, proposals).
      checkpoint_dir: checkpoint every chunk there; ``fit`` again with the same folder and
        arguments continues from the last chunk (after a ``ChipError``, say).
      chip_retries: an external chip's retries of a faulty query (``ExternalChip``).
      chip_timeout_s: seconds before an external chip's query counts as hung (None: never).
      progress: print progress lines to stderr.
      num_draws: kept draws per chain (a sampler's BMA uses chains x num_draws weight sets).
      bias_input: append an always-on input channel (``data.with_bias_input``): its
        weights are the first layer's biases, trained like any weight. The network is then
        (features + 1, *hidden, classes); the Xylo chip (``chips.xylo``) wants it.
      weight_scale: the chip runs ``weight_scale`` x the engine's weights, so every
        method's start, prior, proposal and perturbation sizes are in that unit. "auto"
        (the default) measures it first (``mhsnn.probe``: the smallest scale at which most
        random weight sets make the outputs spike), at a counted cost of at most 2% of
        ``presentations``, charged to the budget; chosen over 1 on the any-chip panel's
        inner validation rows (docs/experiments/any-chip.md). A number fixes it (1: the
        engine's unit, a tenth of the threshold per input spike on the ideal chip).
        Methods that train the ideal model (``TRAINERS[m].uses_model``) keep the engine's
        unit under "auto": their model fixes it.
      count_range: the share of ``time_steps`` the chip's output counts can reach; the
        likelihood stretches the rates by its inverse (the MSE's target 1 becomes that
        share of T; the categorical softmax's scale grows by it). "auto" (the default)
        takes the highest count the weight-scale probe saw, which then also presents its
        weights at 10 and 100 times the scale it chose (within the same 2% of
        ``presentations``); without a probe (a fixed ``weight_scale``, a method that
        trains the ideal model) "auto" is 1, the paper's assumption that every output can
        fire at every step. Chosen over 1 on the any-chip panel's inner validation rows
        (docs/experiments/any-chip.md).
      init: where training starts (``trainers.fit(start=...)``): None (each method's own
        random start); a weight vector [P] as the chip receives it (a deployed network:
        divided by ``weight_scale_`` into the engine's unit); a fitted ``SNNClassifier``
        of the same network (its ``chip_point_``; its ``presentations_`` count toward
        this fit's); or the name of an offline method of ``TRAINERS`` that trains the
        ideal model only ("sg_offline", "ann_convert": no chip presentations), whose
        weights start training in the engine's unit; or "vendor": the chip's own vendor
        workflow (a chip that has one offers ``vendor_init(spikes, labels, seed) ->
        (chip, weights)``: ``chips.xylo`` trains rockpool's float model offline, maps and
        quantises it), whose deployed network (its neurons' thresholds and biases as the
        vendor set them, ``deployed_chip_``) then trains and predicts. Every method starts
        from it: an optimiser's weights or search mean, chains and ensemble members drawn
        around it.

    Fitted: ``classes_``, ``n_features_in_``, ``presentations_`` (training only, exactly
    what the chip ran for it; a host chip's first, checking query of one weight set on two
    rows is ``diagnostics_["check_presentations"]``; ``init``'s are in it and in
    ``diagnostics_["init_presentations"]``), ``posterior_`` (ArviZ InferenceData for
    samplers, None otherwise; ``lp`` where the method's trace is the log posterior, else
    ``trace``, named in its attrs), ``diagnostics_`` (R-hat, ESS, acceptance; chip faults and
    retries), ``weight_sets_``, ``point_`` (the engine's unit), ``chip_point_`` (``point_``
    as the chip receives it: times ``weight_scale_``), ``init_point_`` (where training
    started, as the chip receives it; None without ``init``), ``deployed_chip_`` (with
    ``init="vendor"``: the chip as the vendor's workflow configured it).
    """

    def __init__(self, chip: object = None, hidden: tuple[int, ...] = (3,), method: str = "eki",
                 presentations: float = 1e7, chains: int = 8, time_steps: int = 10,
                 likelihood: str = "mse", predictive: str = "calibrated",
                 random_state: int | None = None, checkpoint_dir: str | Path | None = None,
                 chip_retries: int = chips.RETRIES,
                 chip_timeout_s: float | None = chips.TIMEOUT_S, progress: bool = False,
                 num_draws: int = 25, bias_input: bool = False,
                 weight_scale: float | str = "auto", init: object = None,
                 count_range: float | str = "auto", method_params: dict | None = None,
                 test_repeats: int = 1):
        self.chip = chip
        self.hidden = hidden
        self.method = method
        self.presentations = presentations
        self.chains = chains
        self.time_steps = time_steps
        self.likelihood = likelihood
        self.predictive = predictive
        self.random_state = random_state
        self.checkpoint_dir = checkpoint_dir
        self.chip_retries = chip_retries
        self.chip_timeout_s = chip_timeout_s
        self.progress = progress
        self.num_draws = num_draws
        self.bias_input = bias_input
        self.weight_scale = weight_scale
        self.init = init
        self.count_range = count_range
        self.method_params = method_params
        self.test_repeats = test_repeats

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.poor_score = True  # a small budget need not reach 0.83
        tags.non_deterministic = self.chip is not None and not isinstance(self.chip,
                                                                          chips.Chip)
        return tags

    # ---- fit ---------------------------------------------------------------------------

    def _check_params(self, num_features: int, num_classes: int) -> tuple[int, ...]:
        trainers.check_method(self.method)
        if self.method_params is not None and not isinstance(self.method_params, dict):
            raise ValueError(f"method_params={self.method_params!r}: expected a dict of "
                             "settings by name, or None")
        trainers.method_hyper(self.method, self.method_params)
        if self.predictive not in PREDICTIVES:
            raise ValueError(f"predictive {self.predictive!r}: expected one of "
                             f"{', '.join(PREDICTIVES)}")
        for name, low in (("chains", 1), ("time_steps", 1), ("num_draws", 1),
                          ("chip_retries", 0), ("test_repeats", 1)):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) \
                    or value < low:
                raise ValueError(f"{name}={value!r}: expected an integer >= {low}")
        if not (isinstance(self.presentations, numbers.Real) and math.isfinite(
                self.presentations) and self.presentations > 0):
            raise ValueError(f"presentations={self.presentations!r}: expected a number > 0")
        if not (self.weight_scale == "auto" or isinstance(self.weight_scale, numbers.Real)
                and not isinstance(self.weight_scale, bool)
                and math.isfinite(self.weight_scale) and self.weight_scale > 0):
            raise ValueError(f"weight_scale={self.weight_scale!r}: expected a number > 0 or "
                             "'auto'")
        if not (self.count_range == "auto" or isinstance(self.count_range, numbers.Real)
                and not isinstance(self.count_range, bool) and 0 < self.count_range <= 1):
            raise ValueError(f"count_range={self.count_range!r}: expected a share of "
                             "time_steps in (0, 1] or 'auto'")
        if self.chip_timeout_s is not None and not self.chip_timeout_s > 0:
            raise ValueError(f"chip_timeout_s={self.chip_timeout_s!r}: expected > 0 or None")
        hidden = tuple(int(h) for h in np.atleast_1d(np.asarray(self.hidden, int))) \
            if self.hidden is not None and len(np.atleast_1d(self.hidden)) else ()
        if any(h < 1 for h in hidden):
            raise ValueError(f"hidden={self.hidden!r}: widths must be >= 1")
        sizes = (num_features + int(bool(self.bias_input)), *hidden, num_classes)
        total = snn.num_weights(sizes)
        if total > config.MAX_WEIGHTS:
            raise ValueError(f"hidden={self.hidden!r}: the network {'-'.join(map(str, sizes))} "
                             f"has {total:,} weights, more than {config.MAX_WEIGHTS:,}")
        return sizes

    def _chip(self, sizes, chip=None):
        """The chip for training or prediction: a JAX chip as given, a host callable as a
        fresh ``ExternalChip`` (training and prediction counted apart); ``chip``: another
        than ``self.chip`` (the deployed one, ``init="vendor"``)."""
        chip = self.chip if chip is None else chip
        if chip is None:
            return chips.ideal()
        if isinstance(chip, chips.Chip):
            chips.check_network(chip, sizes)
            return chip
        fn, name = (chip.fn, chip.name) if isinstance(chip, chips.ExternalChip) \
            else (chip, getattr(chip, "name", None))
        if not callable(fn):
            raise TypeError(f"chip={chip!r}: expected None, a mhsnn chip or a callable "
                             "(weights [C, P], spikes [T, N, F]) -> counts [C, N, O]")
        runs_sizes = getattr(fn, "sizes", None)  # a chip built for one network (chips.xylo)
        if runs_sizes is not None and tuple(runs_sizes) != tuple(sizes):
            raise ValueError(f"chip runs the network {'-'.join(map(str, runs_sizes))}; the data "
                             f"and hidden={self.hidden!r} give {'-'.join(map(str, sizes))}"
                             + (" (with bias_input's channel)" if self.bias_input else ""))
        runs_steps = getattr(fn, "time_steps", None)  # a chip built for T steps
        if runs_steps is not None and int(runs_steps) != int(self.time_steps):
            raise ValueError(f"chip runs {int(runs_steps)} time steps (its time_steps); "
                             f"time_steps={self.time_steps!r} presents {self.time_steps}")
        return chips.ExternalChip(fn, (1, 1), name=name, retries=self.chip_retries,
                                  timeout_s=self.chip_timeout_s, sizes=tuple(sizes))

    def fit(self, X, y):
        """Train on rows ``X`` [N, F] with labels ``y`` [N] (any labels, strings too)."""
        X, y = _validated(self, X, y)
        check_classification_targets(y)
        self.classes_, y_index = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"y: got {len(self.classes_)} class; needs at least 2 classes")
        sizes = self._check_params(X.shape[1], len(self.classes_))
        self.scaler_ = data.MinMaxScaler.fit(X)
        X01 = self.scaler_.transform(X)
        folder = Path(self.checkpoint_dir) if self.checkpoint_dir is not None else None
        self.seed_ = self._seed(folder)
        root = jax.random.key(self.seed_)
        spikes = self._with_bias(data.poisson_encode(keys.derive(root, "encode", "fit"), X01,
                                                     self.time_steps))
        problem = trainers.one_fold_problem(spikes, y_index.astype(np.int32),
                                            len(self.classes_))
        self.settings_ = trainers.settings_for(sizes, self.likelihood)
        chip = self._chip(sizes)
        external = isinstance(chip, chips.ExternalChip)
        t0 = time.perf_counter()
        if external:  # a chip of the wrong size or layout fails here, in one line
            chip.preflight(np.asarray(spikes), sizes[-1], snn.num_weights(sizes))
        checked = chip.presentations if external else 0
        chip, start, init_cost, found = self._units_and_start(chip, spikes, y_index, sizes,
                                                               problem, folder, root)
        probed = found.get("probe_presentations", 0)
        stages = self._stages(folder, X, y_index) if folder is not None else None
        try:
            with chips.reporting_faults():
                fitted = trainers.fit(
                    self.method, keys.derive(root, "method", "fit", self.method), problem,
                    chip, self.settings_,
                    presentations=float(self.presentations) - probed - self._reserve(),
                    chains=int(self.chains), num_draws=int(self.num_draws), stages=stages,
                    progress=bool(self.progress), start=start,
                    method_params=self.method_params)
            if stages is not None:
                stages.complete()  # drops the checkpoints and the lock file
                (folder / _SEED_FILE).unlink(missing_ok=True)
                (folder / _PROBE_FILE).unlink(missing_ok=True)
        except ConfigError as err:  # a checkpoint of another fit, or a folder in use
            raise ValueError(f"checkpoint_dir: {err}") from None
        finally:
            if stages is not None:
                runs.unlock_folder(folder)
            record = _chip_record(folder, chip.fault_counts() if external else None,
                                  time.perf_counter() - t0)
        self.weight_sets_, self.point_ = fitted.weight_sets, fitted.point
        self.chip_point_ = self.point_ * np.float32(self.weight_scale_)
        self.presentations_ = int(fitted.presentations) + probed + init_cost
        self.diagnostics_ = {**fitted.diagnostics, **record, **found,
                             "weight_scale": self.weight_scale_,
                             "count_range": self.count_range_}
        step = getattr(getattr(chip, "fn", chip), "weight_step", None)
        if step is not None:  # the chip's lattice, in steps per engine unit
            self.diagnostics_["lattice_steps_per_unit"] = float(self.weight_scale_) / float(step)
        if self.init is not None:
            self.diagnostics_["init_presentations"] = init_cost
        if external:  # the first query's check, apart from the training budget
            self.diagnostics_["check_presentations"] = checked
        if folder is not None:
            (folder / _CHIP_FILE).unlink(missing_ok=True)
        self.posterior_ = None if fitted.draws is None else _inference_data(
            fitted.draws, fitted.draws_logdensity, self.method, sizes,
            fitted.diagnostics.get("logdensity", "log posterior"))
        if self.predictive == "calibrated":  # on the training chip: its counts include it
            before = chip.fault_counts() if external else None
            self._calibrate(X, y_index, root, self._reserve(), chip)
            if external:
                for k, v in chip.fault_counts().items():
                    self.diagnostics_[k] += v - before[k]
        rhat = _posterior_rhat(self.diagnostics_)
        if rhat > RHAT_WARN:
            warnings.warn(f"{self.method}: the chains have not mixed (log-density R-hat "
                          f"{rhat:.2f} > {RHAT_WARN}); the posterior summaries are unreliable "
                          "(more presentations or chains help)", ConvergenceWarning,
                          stacklevel=2)
        return self

    def _count_range(self, found: dict) -> float:
        """``count_range``: a given share, or under "auto" the highest output count the
        probe saw (it presents its weights at 10 and 100 times the chosen scale for this),
        at least one count; 1 where no probe ran (a fixed ``weight_scale``, or a method
        that trains the ideal model)."""
        if self.count_range != "auto":
            return float(self.count_range)
        if "probe_max_count" not in found:
            return 1.0
        return float(np.clip(found["probe_max_count"], 1.0 / self.time_steps, 1.0))

    def _probe(self, chip, spikes, sizes, folder: Path | None, root) -> dict:
        """``weight_scale="auto"``: the probe's figures (``Probe.summary``), its scale kept
        in ``checkpoint_dir`` until the fit completes so that a resumed fit keeps it; {}
        when the scale is given, or the method trains the ideal model."""
        if self.weight_scale != "auto" or trainers.TRAINERS[self.method].uses_model:
            return {}
        path = None if folder is None else folder / _PROBE_FILE
        if path is not None and path.exists():
            return json.loads(path.read_text())
        T, N = spikes.shape[0], spikes.shape[1]
        # 2% of the budget for a search of up to nine scales (a chip 1e4 times off), and the
        # two above it that find the count range under count_range="auto": up to 32 weight
        # sets on up to 64 rows each, at least 4 sets
        reach = self.count_range == "auto"
        per_scale = 0.02 * float(self.presentations) / (9 + reach * len(probe.REACH))
        rows = int(min(64, N, max(1, per_scale // 4)))
        sets = int(np.clip(per_scale // rows, 4, 32))
        some = np.asarray(spikes[:, :rows])
        if isinstance(chip, chips.ExternalChip):
            def counts(W):
                return chip(W, some, sizes[-1])
        else:
            key = keys.derive(root, "method", "fit", "probe") if chips.is_noisy(chip) else None
            grid = chips.broadcast(chip, (1, sets))

            def counts(W):
                return _counts(jnp.asarray(W)[None], jnp.asarray(some)[None], grid,
                               self.settings_, key)[0]
        found = probe.probe(counts, snn.num_weights(sizes), N, T, seed=self.seed_,
                            sets=sets, rows=rows, reach=reach)
        if not found.awake:
            warnings.warn(f"weight_scale='auto': the chip's outputs stayed silent for most "
                          f"random weight sets at every scale up to {probe.HIGHEST:g}; "
                          "training starts from a silent network", stacklevel=3)
        summary = found.summary()
        if path is not None and folder.exists():
            path.write_text(json.dumps(summary))
        return summary

    def _units_and_start(self, chip, spikes, labels, sizes, problem, folder, root):
        """Before training: the deployed chip (``init="vendor"``), the start, and the
        chip's units (the probe: ``weight_scale_``, ``count_range_``); returns (the chip at
        its scale, the start in engine units or None, the start's presentations, the
        probe's figures)."""
        self.__dict__.pop("deployed_chip_", None)  # an earlier fit's
        if isinstance(self.init, str) and self.init == "vendor":  # as the vendor deploys it
            self.deployed_chip_, weights = self._vendor(spikes, labels, root)
            chip = self._chip(sizes, self.deployed_chip_)
            init_weights, init_cost, chip_unit = trainers.check_start(
                self.method, weights, sizes, "init"), 0, True
        else:
            init_weights, init_cost, chip_unit = self._init_weights(sizes, problem, root)
        found = self._probe(chip, spikes, sizes, folder, root)
        self.weight_scale_ = found.get("weight_scale", float(self.weight_scale)
                                       if self.weight_scale != "auto" else 1.0)
        self.count_range_ = self._count_range(found)
        self.settings_ = self.settings_._replace(count_range=self.count_range_)
        start = None if init_weights is None else jnp.asarray(
            init_weights / np.float32(self.weight_scale_ if chip_unit else 1.0))
        self.init_point_ = None if start is None else np.asarray(start) * np.float32(
            self.weight_scale_)
        return _at_scale(chip, self.weight_scale_), start, init_cost, found

    def _vendor(self, spikes, labels, root):
        """init="vendor": the chip's own workflow on the training rows (``vendor_init``):
        (the deployed chip, its weights in the chip's unit); the chip's presentations are
        none (the vendor trains its own model offline)."""
        fn = self.chip.fn if isinstance(self.chip, chips.ExternalChip) else self.chip
        if not callable(getattr(fn, "vendor_init", None)):
            name = "ideal" if fn is None else getattr(fn, "__name__", type(fn).__name__)
            raise ValueError(f"init='vendor': the chip {name!r} has no vendor workflow (a chip "
                             "offers one as vendor_init(spikes, labels, seed) -> (chip, "
                             "weights); chips.xylo does)")
        seed = jax.random.randint(keys.derive(root, "method", "fit", "vendor"), (), 0, 2**31 - 1)
        return fn.vendor_init(np.asarray(spikes), np.asarray(labels), int(seed))

    def _init_weights(self, sizes, problem, root) -> tuple[np.ndarray | None, int, bool]:
        """``init``'s weights, what producing them cost the chip, and whether they are in the
        chip's unit (else the engine's); checked before any chip work."""
        init = self.init
        if init is None:
            return None, 0, False
        if isinstance(init, str):
            offline = [m for m, t in trainers.TRAINERS.items()
                       if t.kind == "baseline" and trainers.presentations_of(m, 1, 1, 1) == 0]
            if init not in offline:
                raise ValueError(f"init={init!r}: expected a weight vector, a fitted "
                                 f"SNNClassifier, 'vendor' or one of {', '.join(offline)}")
            fitted = trainers.fit(init, keys.derive(root, "method", "fit", init), problem,
                                  chips.ideal(), self.settings_, presentations=1.0)
            return trainers.check_start(self.method, fitted.point, sizes, "init"), 0, False
        if isinstance(init, SNNClassifier):
            if not hasattr(init, "chip_point_"):
                raise ValueError("init: an SNNClassifier that is not fitted (a clone is not; "
                                 "pass init=fitted.chip_point_ to keep its weights)")
            if tuple(init.settings_.sizes) != tuple(sizes):
                raise ValueError(f"init: a network {'-'.join(map(str, init.settings_.sizes))}"
                                 f", this one is {'-'.join(map(str, sizes))}")
            weights, cost = init.chip_point_, int(init.presentations_)
        else:
            weights, cost = init, 0
        try:
            weights = np.asarray(weights, np.float32)
        except (TypeError, ValueError):
            raise ValueError(f"init={init!r}: expected None, a weight vector, a fitted "
                             "SNNClassifier or an offline method's name") from None
        return trainers.check_start(self.method, weights, sizes, "init"), cost, True

    def _seed(self, folder: Path | None) -> int:
        if self.random_state is not None or folder is None:
            return int(check_random_state(self.random_state).randint(2**31 - 1))
        path = folder / _SEED_FILE  # an unfinished fit's own seed, so a resume continues it
        if path.exists():
            return int(path.read_text())
        seed = int(check_random_state(None).randint(2**31 - 1))
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{seed}\n")
        return seed

    def _stages(self, folder: Path, X, y_index) -> runs.Stages:
        params = {k: v for k, v in self.get_params().items()
                  if k not in ("chip", "checkpoint_dir", "progress", "init")}
        params["init"] = _identity(self.init)
        params.update(seed=self.seed_, chip=repr(type(self.chip)),
                      data=hashlib.sha256(X.tobytes() + y_index.tobytes()).hexdigest())
        return runs.Stages(folder, params, "estimator", "resume", CODE_VERSION)

    # ---- predict -----------------------------------------------------------------------

    def _spikes(self, X, repeat: int = 0) -> jax.Array:
        """Spike trains [T, N, F] of test rows, each keyed by the row's own bytes (and the
        repeat: ``test_repeats`` presents fresh draws of the same rows)."""
        X01 = self.scaler_.transform(np.asarray(X, np.float32))
        return self._with_bias(_encode_rows(self._row_keys(X01, "encode", repeat),
                                            jnp.asarray(X01), self.time_steps))

    def _with_bias(self, spikes: jax.Array) -> jax.Array:
        return data.with_bias_input(spikes) if self.bias_input else spikes

    def _row_keys(self, X01: np.ndarray, purpose: str, repeat: int = 0) -> jax.Array:
        """One key per row, from the row's bytes: the same row always gets the same key
        (per repeat; the first repeat's are the keys a single presentation uses)."""
        path = ("repeat", int(repeat)) if repeat else ()
        base = keys.derive(jax.random.key(self.seed_), purpose, "predict", *path)
        digests = np.array([int.from_bytes(hashlib.blake2b(row.tobytes(), digest_size=4)
                                           .digest(), "little") for row in X01], np.uint32)
        return _fold_rows(base, jnp.asarray(digests))

    def _reserve(self) -> int:
        """Presentations kept out of training for ``predictive="calibrated"``'s factor."""
        if self.predictive != "calibrated":
            return 0
        return max(1, int(CALIBRATION_SHARE * float(self.presentations)))

    def _calibrate(self, X, y_index, root, reserve: int, chip) -> None:
        """``predictive="calibrated"``: the factor beta of softmax(beta x the deployed sets'
        mean rates) with the least NLL (``metrics.fit_factor``) on a keyed random subset of
        the training rows, presented to the chip within ``reserve`` presentations and
        counted (``presentations_``): every set on ``reserve / S`` rows, or, where that is
        under 64 rows, a keyed subset of the sets on 64 rows."""
        sets = self._weight_sets()
        S, repeats = len(sets), int(self.test_repeats)
        reserve = max(1, reserve // repeats)  # (set, row) pairs, each presented repeats times
        rows = int(min(len(X), max(reserve // S, min(CALIBRATION_ROWS, reserve))))
        used = int(min(S, max(1, reserve // rows)))
        pick = np.sort(np.asarray(jax.random.permutation(
            keys.derive(root, "evaluate", "calibrate"), len(X)))[:rows])
        which = np.sort(np.asarray(jax.random.permutation(
            keys.derive(root, "evaluate", "calibrate", "sets"), S))[:used])
        counts = np.asarray(self._counts_of(X[pick], sets[which], chip),
                            np.float64)  # [used, rows, K]
        self.calibration_ = metrics.fit_factor(counts.mean(0) / self.time_steps,
                                               y_index[pick])
        self.presentations_ += used * rows * repeats
        self.diagnostics_.update(calibration_factor=self.calibration_,
                                 calibration_presentations=used * rows * repeats,
                                 calibration_sets=used, calibration_rows=rows)

    def _weight_sets(self) -> np.ndarray:
        return self.point_[None] if self.predictive == "point" else self.weight_sets_

    def predict_counts(self, X) -> np.ndarray:
        """Output spike counts [S, N, K] on the chip of the S weight sets ``predictive``
        deploys (a sampler's kept draws, an ensemble's members, or the one point), from which
        every predictive is formed: a user's own (a vote, a temperature) starts here."""
        check_is_fitted(self, "weight_sets_")
        X = _validated(self, X)
        return np.asarray(self._counts_of(X))

    def _counts_of(self, X, weight_sets=None, chip=None) -> jax.Array:
        """Counts [S, N, O] of the deployed sets (or ``weight_sets``) on rows ``X``, on a
        fresh chip (or ``chip``, the one the fit trained on, scaled)."""
        if chip is None:
            chip = _at_scale(self._chip(self.settings_.sizes,
                                        getattr(self, "deployed_chip_", None)),
                             getattr(self, "weight_scale_", 1.0))
        W = jnp.asarray(self._weight_sets() if weight_sets is None else weight_sets)[None]
        if isinstance(chip, chips.Chip):
            chip = chips.broadcast(chip, (1, W.shape[1]))
        def counts(repeat: int) -> jax.Array:  # [S, N, O] of one draw of the rows
            spikes = self._spikes(X, repeat)
            if isinstance(chip, chips.ExternalChip):
                return posterior.counts_on(W, spikes[None], chip, self.settings_)[0]
            if chips.is_noisy(chip):  # read noise keyed per row too
                noise_keys = self._row_keys(self.scaler_.transform(X), "evaluate", repeat)
                return _noisy_counts(W, spikes, chip, self.settings_, noise_keys)
            return _counts(W, spikes[None], chip, self.settings_)[0]

        repeats = int(self.test_repeats)  # fresh draws of the rows, their counts averaged
        return sum((counts(r) for r in range(1, repeats)), counts(0)) / repeats

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities [N, K] on the chip (rows sum to 1), by ``predictive``."""
        check_is_fitted(self, "weight_sets_")
        counts = self._counts_of(_validated(self, X))
        if self.predictive == "vote":
            probs = votes(counts).mean(0)
        elif self.predictive == "calibrated":
            if not hasattr(self, "calibration_"):
                raise ValueError("predictive='calibrated' was set after fit: its factor is "
                                 "learnt while fitting; fit again")
            probs = metrics.scaled(np.asarray(counts, np.float64).mean(0) / self.time_steps,
                                   self.calibration_)
        else:
            probs = posterior.predictive(counts, self.settings_, self.time_steps).mean(0)
        probs = np.asarray(probs, np.float64)
        return probs / probs.sum(-1, keepdims=True)

    def predict(self, X) -> np.ndarray:
        """The most probable class of each row (``classes_``' labels)."""
        probs = self.predict_proba(X)
        return self.classes_[np.argmax(probs, axis=-1)]

    def summary(self, stream=None) -> None:
        """Print the convergence diagnostics (R-hat and ESS of the log density and the
        weights, acceptance), warning when the chains have not mixed."""
        check_is_fitted(self, "weight_sets_")
        stream = sys.stdout if stream is None else stream
        d = self.diagnostics_
        print(f"{self.method}: {self.presentations_:,} chip presentations", file=stream)
        for key in ("chains", "draws_per_chain", "acceptance_rate", "step_size", "logdensity",
                    "rhat_logdensity", "ess_logdensity", "rhat_weights_max", "ess_weights_min",
                    "population", "best_objective", "epochs", "last_loss", "chip_faults",
                    "chip_retries", "chip_s", "host_s", "weight_scale", "probe_presentations",
                    "probe_active", "probe_count_level", "probe_max_count", "count_range"):
            if key in d:
                value = d[key]
                print(f"  {key:18s} {value:.4g}" if isinstance(value, float)
                      else f"  {key:18s} {value}", file=stream)
        rhat = _posterior_rhat(d)
        if rhat > RHAT_WARN:
            print(f"WARNING: the chains have not mixed (log-density R-hat {rhat:.2f} > "
                  f"{RHAT_WARN})", file=stream)


def _identity(init) -> str | None:
    """What a checkpoint remembers of ``init``: a name, or a digest of the weights."""
    if init is None or isinstance(init, str):
        return init
    weights = getattr(init, "chip_point_", init)
    try:
        return hashlib.sha256(np.asarray(weights, np.float32).tobytes()).hexdigest()
    except (TypeError, ValueError):
        return repr(type(init))


def _at_scale(chip, scale: float):
    """``chip`` running ``scale`` x the engine's weights (``weight_scale``): a JAX chip's
    ``weight_scale`` field (times any it had), a host chip's function wrapped in place, so
    that its counters carry on."""
    if scale == 1.0:
        return chip
    if isinstance(chip, chips.Chip):
        return chips.scaled(scale * (1.0 if chip.weight_scale is None else chip.weight_scale),
                            chip)
    chip.fn = _Scaled(chip.fn, scale)
    return chip


class _Scaled:
    """A host chip given ``scale`` x the engine's weights (``weight_scale``)."""

    def __init__(self, fn, scale: float):
        self.fn, self.scale = fn, np.float32(scale)
        self.sizes = getattr(fn, "sizes", None)
        self.weight_step = getattr(fn, "weight_step", None)
        self.__name__ = getattr(fn, "__name__", type(fn).__name__)

    def __call__(self, weights, spikes):
        return self.fn(weights * self.scale, spikes)


def _posterior_rhat(diagnostics: dict) -> float:
    """The log-density R-hat when the trace is the log posterior (a method's diagnostics
    name another trace, a log prior or a mini-batch estimate, in ``logdensity``): NaN
    otherwise, so no "not mixed" warning fires on a trace that is not the target's."""
    if diagnostics.get("logdensity", "log posterior") != "log posterior":
        return float("nan")
    return diagnostics.get("rhat_logdensity", float("nan"))


def _chip_record(folder: Path | None, counts: dict | None, wall: float) -> dict:
    """This fit's chip counts and seconds, plus those of its earlier, interrupted attempts
    with the same ``checkpoint_dir`` (kept there until the fit completes): ``chip_s`` is
    time inside the chip, ``host_s`` the rest of the fit's wall time (compile, sampling,
    bookkeeping)."""
    record = dict(counts or {})
    record["host_s"] = round(wall - record.get("chip_s", 0.0), 3)
    if folder is None:
        return record
    path = folder / _CHIP_FILE
    if path.exists():
        earlier = json.loads(path.read_text())
        record = {k: round(v + earlier.get(k, 0), 3) if isinstance(v, float)
                  else v + earlier.get(k, 0) for k, v in record.items()}
    if folder.exists():
        path.write_text(json.dumps(record))
    return record


def _validated(est, X, *y):
    """scikit-learn's input validation (of ``X`` to predict, or ``X, y`` to fit), its errors
    on unreadable features naming the column (``data.feature_error``)."""
    try:
        if not y:
            return validate_data(est, X, dtype=np.float32, reset=False)
        return validate_data(est, X, y[0], dtype=np.float32)
    except ValueError as err:
        if not any(word in str(err) for word in ("could not convert", "NaN", "infinity")):
            raise
        raise data.feature_error(X, err) from None


# Compiled once per shape and reused by every fitted estimator (closures would recompile).
_counts = jax.jit(posterior.counts_on, static_argnums=(3,))


@functools.partial(jax.jit, static_argnums=(2,))
def _encode_rows(row_keys: jax.Array, X01: jax.Array, num_steps: int) -> jax.Array:
    encode = jax.vmap(lambda k, x: data.poisson_encode(k, x, num_steps))
    return jnp.swapaxes(encode(row_keys, X01), 0, 1)  # [T, N, F]


@jax.jit
def _fold_rows(base: jax.Array, digests: jax.Array) -> jax.Array:
    return jax.vmap(lambda h: jax.random.fold_in(base, h))(digests)


@functools.partial(jax.jit, static_argnums=(3,))
def _noisy_counts(W, spikes, chip, settings, noise_keys) -> jax.Array:
    def one_row(row, key):  # [T, F] -> [S, O]
        return posterior.counts_on(W, row[None, :, None], chip, settings, key)[0, :, 0]
    return jax.vmap(one_row, in_axes=(1, 0), out_axes=1)(spikes, noise_keys)


def _inference_data(draws: np.ndarray, logdensity: np.ndarray, method: str, sizes,
                    trace: str = "log posterior"):
    """ArviZ InferenceData of the draws; ``lp`` only where the trace is the log posterior
    (another trace, a log prior or a batch estimate, is kept as ``trace`` and named)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # ArviZ announces its 1.0 refactor
        import arviz as az

    stats = {"lp": logdensity} if trace == "log posterior" else {"trace": logdensity}
    return az.from_dict(posterior={"weights": draws}, sample_stats=stats,
                        dims={"weights": ["weight"]},
                        coords={"weight": np.arange(draws.shape[-1])},
                        attrs={"method": method, "network": "-".join(map(str, sizes)),
                               "trace": trace})
