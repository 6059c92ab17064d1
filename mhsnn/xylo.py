"""SynSense Xylo Audio 2 (SYNS61201) as a chip: rockpool's bit-accurate ``XyloSim``.

``chips.xylo(sizes)`` returns a ``XyloChip``: a host callable ``(weights f32[C, P],
spikes f32[T, N, F]) -> counts [C, N, O]`` that every trainer queries through
``chips.ExternalChip`` (so its faults are retried and reported like any chip's). For each
weight vector it builds ``XyloSim.from_specification(**chip.xylo_config(theta))`` and
presents every sample from a reset chip state (``reset_state`` then ``evolve`` over the T
steps), counting the output neurons' spikes. Anyone can rebuild the chip of one weight
vector with rockpool alone from ``xylo_config``.

The network is feed-forward, input -> hidden -> output: the engine's (F, H, O) weights
[F, H] then [H, O] (``snn.flatten``'s layout) become Xylo's ``weights_in`` [F, H, 1] and
``weights_out`` [H, O]; no recurrent weights. Xylo's limits (rockpool's mapper: 16 input
channels, 1,000 hidden neurons, 8 output neurons) are refused in one line.

Weights (docs/xylo.md): int8 = clip(round(scale x theta), -128, 127), scale 10 per unit of
the engine's weight. The engine's ideal neuron adds (1 - alpha) w = 0.1 w per input spike
against a threshold of 1; Xylo's adds about w (the synaptic current's total charge)
against its threshold, so scale 10 with threshold 100 keeps one engine unit worth the same
share of a threshold, and the engine's priors, initialisations and step sizes keep their
meaning. The int8 range then spans |theta| <= 12.7 (the MH prior's std is 5). Rounding is
to the nearest step: a sampler walks the real line and the chip sees the nearest lattice
point, so MH is exact for the prior times the chip's (piecewise-constant) likelihood.

Leaks: dash_mem 3 (membrane keeps 1 - 2^-3 = 0.875 per step, the nearest bit shift to the
engine's alpha = 0.9) and dash_syn 1 (the shortest synaptic memory Xylo has: the current
halves each step; dash 0 would zero it, so no input would ever reach the membrane).
rockpool's LIF modules map to the same dashes from tau_mem = 8 dt and tau_syn = 2 dt.

Biases: the engine's networks have none. A chip's hidden-neuron biases become weights from
an always-on input channel (``SNNClassifier(bias_input=True)``, ``data.with_bias_input``),
so they are trained like any weight by every method, and the model the gradient methods use
sees the same channel; it takes one of the 16 inputs. Xylo's own ``bias`` registers stay 0.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import importlib.machinery
import importlib.util
import multiprocessing
import os
import sys
import time
import warnings
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mhsnn import data

MAX_INPUTS, MAX_HIDDEN, MAX_OUTPUTS = 16, 1000, 8  # rockpool's Xylo Audio 2 mapper
INT8 = (-128, 127)
INT16_MAX = 2**15 - 1  # thresholds are 16-bit on the chip
DASH_RANGE = (1, 15)  # 4-bit bit shifts; 0 zeroes the state every step
WEIGHT_SCALE = 10.0
THRESHOLD = 100
DASH_MEM, DASH_SYN = 3, 1
INSTALL = "pip install 'mhsnn[xylo]' (rockpool and xylosim)"

# rockpool's device packages import every device family in their __init__, and two of them
# import the hardware driver samna (not installable here). XyloSim itself needs only
# xylosim. Without samna these parent packages are registered as plain packages (what
# Python does for a namespace package): rockpool's own modules load from its own files,
# unchanged, and nothing is faked.
_PARENTS = ("rockpool.devices", "rockpool.devices.xylo", "rockpool.devices.xylo.syns61201",
            "rockpool.devices.xylo.syns61300")


def rockpool_module(name: str):
    """Import ``name`` from rockpool, skipping device-package ``__init__``s that need samna."""
    try:
        import rockpool
        import xylosim  # noqa: F401 - XyloSim's C++ core
    except ImportError as err:
        raise ImportError(f"the Xylo chip needs rockpool and xylosim ({err}): {INSTALL}") \
            from None
    if importlib.util.find_spec("samna") is None:
        root = os.path.dirname(rockpool.__file__)
        for pkg in _PARENTS:
            if pkg not in sys.modules:
                module = importlib.util.module_from_spec(
                    importlib.machinery.ModuleSpec(pkg, None, is_package=True))
                module.__path__ = [os.path.join(root, *pkg.split(".")[1:])]
                sys.modules[pkg] = module
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rockpool announces its missing torch back-end
        return importlib.import_module(name)


def xylo_sim():
    """rockpool's ``XyloSim`` class (Xylo Audio 2)."""
    return rockpool_module("rockpool.devices.xylo.syns61201.xylo_sim").XyloSim


def check_sizes(sizes: Sequence[int]) -> tuple[int, int, int]:
    """(F, H, O) if the network fits Xylo, else a one-line ``ValueError`` naming the limit."""
    sizes = tuple(int(s) for s in sizes)
    if len(sizes) != 3:
        raise ValueError(f"Xylo runs input -> hidden -> output: sizes (F, H, O), got "
                         f"{'-'.join(map(str, sizes))}")
    F, H, O = sizes
    for what, n, limit in (("input channels", F, MAX_INPUTS), ("hidden neurons", H, MAX_HIDDEN),
                           ("output neurons", O, MAX_OUTPUTS)):
        if not 1 <= n <= limit:
            raise ValueError(f"Xylo has at most {limit} {what}; the network "
                             f"{'-'.join(map(str, sizes))} needs {n}")
    return sizes


def check_spec(spec: dict) -> dict:
    """A ``from_specification`` dict whose weights fit int8, thresholds [0, 2^15) and
    biases int16, or a one-line ``ValueError`` naming the limit (the vendor path's check
    before the chip; rockpool's ``global_quantize`` scales ``bias_out`` with the hidden
    layer's factor, so an output bias may leave int8)."""
    check_sizes((np.shape(spec["weights_in"])[0], np.shape(spec["weights_in"])[1],
                 np.shape(spec["weights_out"])[1]))
    for key in ("weights_in", "weights_rec", "weights_out"):
        if key in spec and spec[key] is not None:
            w = np.asarray(spec[key])
            if w.size and (w.min() < INT8[0] or w.max() > INT8[1]):
                raise ValueError(f"{key}: values in [{w.min()}, {w.max()}], beyond int8 "
                                 f"[{INT8[0]}, {INT8[1]}]")
    for key in ("threshold", "threshold_out"):
        t = np.asarray(spec[key])
        if t.min() < 0 or t.max() > INT16_MAX:
            raise ValueError(f"{key}: values in [{t.min()}, {t.max()}], beyond [0, {INT16_MAX}]")
    for key in ("bias", "bias_out"):  # 16-bit, the membrane's width
        b = np.asarray(spec.get(key, 0))
        if b.size and (b.min() < -INT16_MAX - 1 or b.max() > INT16_MAX):
            raise ValueError(f"{key}: values in [{b.min()}, {b.max()}], beyond int16")
    return spec


def to_int8(theta: np.ndarray, scale: float = WEIGHT_SCALE, clip: bool = True) -> np.ndarray:
    """int8 weights round(scale x theta) (nearest, ties to even), clipped to [-128, 127]
    (``clip=False``: the first weight beyond is refused, one line)."""
    w = np.rint(np.asarray(theta, np.float64) * scale)
    if not clip and w.size and (w.min() < INT8[0] or w.max() > INT8[1]):
        i = int(np.flatnonzero((w.ravel() < INT8[0]) | (w.ravel() > INT8[1]))[0])
        raise ValueError(f"weight {i} ({float(np.ravel(theta)[i]):g}) maps to {int(w.flat[i])}"
                         f", beyond int8 [{INT8[0]}, {INT8[1]}] at scale {scale:g}")
    return np.clip(w, *INT8).astype(np.int8)


# the fewest presentations (sets x rows) worth a block of their own (15-16-8, two workers:
# 1 set x 128 rows ran 1.5x faster cut in two; 1 x 32 cut in two ran slower)
MIN_BLOCK = 64


def share(sets: int, rows: int, workers: int) -> list[tuple[slice, slice]]:
    """A query of ``sets`` weight sets on ``rows`` samples cut into at most ``workers``
    (sets, rows) blocks of near-equal size: by weight sets first, and by rows when there are
    fewer sets than workers and at least ``MIN_BLOCK`` presentations a block (a point
    estimate's one set on a full batch still keeps every worker busy).
    Every sample is presented from a reset state, so the cut never changes a count."""
    blocks = max(1, min(workers, sets * rows // MIN_BLOCK))
    by_sets = min(blocks, sets)
    by_rows = max(1, blocks // by_sets)
    cut = lambda n, k: [slice(int(a[0]), int(a[-1]) + 1)
                        for a in np.array_split(np.arange(n), k)]
    return [(c, n) for c in cut(sets, by_sets) for n in cut(rows, by_rows)]


def run_configs(configs: list[dict], spikes: np.ndarray) -> np.ndarray:
    """Output spike counts [C, N, O] of XyloSim for each config, each sample from reset."""
    XyloSim = xylo_sim()
    N = spikes.shape[1]
    rows = [np.ascontiguousarray(spikes[:, n, :]).astype(int) for n in range(N)]
    out = None
    for c, config in enumerate(configs):
        module = XyloSim.from_specification(**config)
        for n, row in enumerate(rows):
            module.reset_state()
            spikes_out, _, _ = module.evolve(row)
            if out is None:
                out = np.zeros((len(configs), N, spikes_out.shape[1]), np.float32)
            out[c, n] = spikes_out.sum(0)
    return out


def _serve(conn) -> None:
    """A worker's loop: (configs, spikes) in, counts (or the fault, in one line) out."""
    while (job := conn.recv()) is not None:
        try:
            conn.send(run_configs(*job))
        except Exception as err:  # noqa: BLE001 - reported to the caller, who raises it
            conn.send(RuntimeError(f"XyloSim worker: {type(err).__name__}: {err}"))


class _Workers:
    """Processes that run XyloSim beside this one, each behind its own pipe. A job is
    written to its pipe by the calling thread, so a worker starts at once, while this
    process runs its own share. (A ``ProcessPoolExecutor`` hands jobs over on a helper
    thread, which waits for the GIL while this process runs XyloSim: measured, the two
    shares of a query then ran one after the other.) Spawned, so that they never inherit
    JAX's threads."""

    def __init__(self, n: int):
        context = multiprocessing.get_context("spawn")
        self.pipes, self.processes = [], []
        for _ in range(n):
            here, there = context.Pipe()
            process = context.Process(target=_serve, args=(there,), daemon=True,
                                      name="xylo-worker")
            process.start()
            there.close()
            self.pipes.append(here)
            self.processes.append(process)

    def send(self, i: int, job) -> None:
        self.pipes[i].send(job)

    def receive(self, i: int) -> np.ndarray:
        out = self.pipes[i].recv()
        if isinstance(out, BaseException):
            raise out
        return out

    def close(self) -> None:
        for pipe, process in zip(self.pipes, self.processes, strict=True):
            try:
                pipe.send(None)
            except OSError:
                pass  # already gone
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
            pipe.close()
        self.pipes, self.processes = [], []


@dataclass
class XyloChip:
    """A feed-forward (F, H, O) network on XyloSim; see the module docstring.

    Args:
      sizes: (F, H, O): input channels (with a bias channel, if any), hidden, outputs.
      weight_scale: int8 steps per unit of the engine's weight.
      threshold: firing threshold (int16) of the hidden neurons.
      threshold_out: firing threshold of the output neurons.
      dash_mem: bit-shift leak (1..15) of every neuron's membrane.
      dash_syn: bit-shift leak (1..15) of every neuron's synaptic current.
      clip: clip weights beyond int8 (False: refuse them, one line).
      workers: processes sharing each query, this one included (XyloSim runs on the CPU;
        1: this process alone): by weight sets, and by rows when a query has fewer sets.
      base: a deployed network's ``from_specification`` dict (``vendor_init``): its
        thresholds, dashes, biases and weight shifts replace the five settings above and
        only the weights are the engine's (None: the chip's own settings).
    """

    sizes: tuple[int, int, int]
    weight_scale: float = WEIGHT_SCALE
    threshold: int = THRESHOLD
    threshold_out: int = THRESHOLD
    dash_mem: int = DASH_MEM
    dash_syn: int = DASH_SYN
    clip: bool = True
    workers: int = 1
    name: str = "xylo"
    seconds: float = 0.0  # wall time in XyloSim (all calls), for its cost per presentation
    presentations: int = 0  # sample presentations it ran (weight sets x samples)
    base: dict | None = field(default=None, repr=False, compare=False)
    _pool: _Workers | None = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        xylo_sim()  # the extra is installed, or one line saying how
        self.sizes = check_sizes(self.sizes)
        if not (np.isfinite(self.weight_scale) and self.weight_scale > 0):
            raise ValueError(f"weight_scale {self.weight_scale}: must be > 0")
        for key in ("threshold", "threshold_out"):
            if not 1 <= int(getattr(self, key)) <= INT16_MAX:
                raise ValueError(f"{key} {getattr(self, key)}: Xylo thresholds are in "
                                 f"[1, {INT16_MAX}]")
        for key in ("dash_mem", "dash_syn"):
            if not DASH_RANGE[0] <= int(getattr(self, key)) <= DASH_RANGE[1]:
                raise ValueError(f"{key} {getattr(self, key)}: Xylo dashes are in "
                                 f"[{DASH_RANGE[0]}, {DASH_RANGE[1]}] (0 zeroes the state)")
        if int(self.workers) < 1:
            raise ValueError(f"workers {self.workers}: must be >= 1")

    @property
    def num_params(self) -> int:
        F, H, O = self.sizes
        return F * H + H * O

    def xylo_config(self, theta) -> dict:
        """The exact keyword arguments of ``XyloSim.from_specification`` for weights theta."""
        theta = np.asarray(theta, np.float32).ravel()
        if theta.size != self.num_params:
            raise ValueError(f"weights: {theta.size} values, the network "
                             f"{'-'.join(map(str, self.sizes))} has {self.num_params}")
        F, H, O = self.sizes
        w = to_int8(theta, self.weight_scale, self.clip)
        if self.base is not None:  # a deployed network's neurons, the engine's weights
            return {**self.base, "weights_in": w[:F * H].reshape(F, H, 1),
                    "weights_out": w[F * H:].reshape(H, O)}
        ints = lambda n, v: np.full(n, int(v), np.int64)
        return {"weights_in": w[:F * H].reshape(F, H, 1), "weights_out": w[F * H:].reshape(H, O),
                "dash_mem": ints(H, self.dash_mem), "dash_syn": ints(H, self.dash_syn),
                "dash_syn_2": ints(H, self.dash_syn), "dash_mem_out": ints(O, self.dash_mem),
                "dash_syn_out": ints(O, self.dash_syn), "threshold": ints(H, self.threshold),
                "threshold_out": ints(O, self.threshold_out), "bias": ints(H, 0),
                "bias_out": ints(O, 0)}

    @property
    def weight_step(self) -> float:
        """The weight lattice's spacing in the unit the chip receives: one int8 step."""
        return 1.0 / float(self.weight_scale)

    def vendor_init(self, spikes, labels, seed: int = 0) -> tuple[XyloChip, np.ndarray]:
        """SynSense's own workflow on these rows (``deploy``, below: rockpool's float
        model trained offline, mapped, quantised): (this chip configured with the deployed
        network's neurons, the weights [P] that give its int8 weights back exactly). What
        ``SNNClassifier(init="vendor")`` starts from; it costs the chip no presentations."""
        spec = deploy(jax.random.key(seed), spikes, labels, self.sizes)
        base = {k: np.asarray(v) for k, v in spec.items()
                if v is not None and k not in ("weights_in", "weights_out")}
        chip = dataclasses.replace(self, base=base, seconds=0.0, presentations=0, _pool=None)
        return chip, engine_weights(spec, self.weight_scale)

    def __call__(self, weights, spikes) -> np.ndarray:
        weights, spikes = np.asarray(weights, np.float32), np.asarray(spikes, np.float32)
        if weights.ndim != 2 or spikes.ndim != 3 or spikes.shape[-1] != self.sizes[0]:
            raise ValueError(f"expected weights [C, {self.num_params}] and spikes "
                             f"[T, N, {self.sizes[0]}], got {weights.shape} and {spikes.shape}")
        t0 = time.perf_counter()
        counts = self._run([self.xylo_config(theta) for theta in weights], spikes)
        self.seconds += time.perf_counter() - t0
        self.presentations += weights.shape[0] * spikes.shape[1]
        return counts

    def _run(self, configs: list[dict], spikes: np.ndarray) -> np.ndarray:
        jobs = share(len(configs), spikes.shape[1], int(self.workers))
        if len(jobs) == 1:
            return run_configs(configs, spikes)
        if self._pool is None:
            self._pool = _Workers(int(self.workers) - 1)
            weakref.finalize(self, self._pool.close)
        try:
            for i, (c, n) in enumerate(jobs[1:]):  # written to the pipes before ...
                self._pool.send(i, (configs[c], spikes[:, n]))
            c, n = jobs[0]
            out = np.zeros((len(configs), spikes.shape[1], self.sizes[-1]), np.float32)
            out[c, n] = run_configs(configs[c], spikes[:, n])  # ... this process's share
            for i, (c, n) in enumerate(jobs[1:]):
                out[c, n] = self._pool.receive(i)
        except BaseException:
            self.close()  # a worker may be dead or mid-answer: the next query starts afresh
            raise
        return out

    def close(self) -> None:
        """Stop the worker processes (they also stop at exit)."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def __getstate__(self):
        return {**self.__dict__, "_pool": None}


# ---- SynSense's own workflow: rockpool's float model, mapper and quantiser ----------
# What a Xylo user deploys today, and what ``SNNClassifier(init="vendor")`` starts from on a
# Xylo chip (``XyloChip.vendor_init``): a float model of Xylo's neurons in rockpool's modules
# (``LinearJax``/``LIFJax``; tau_mem = 8 dt and tau_syn = 2 dt, the chip's dashes 3 and 1;
# trained biases; thresholds fixed at 1) is trained by surrogate-gradient BPTT (optax Adam,
# the cross-entropy of the softmax of output counts) on the training rows, mapped with
# rockpool's Xylo ``mapper`` and quantised with its ``global_quantize`` (one int8 scale for
# the whole network, thresholds and biases scaled with it). Training it costs the chip no
# presentations: only the float model sees the rows. ``vendor_fit(chip=...)`` fine-tunes it
# with the chip in the loop instead (the chip's counts forward, the model's derivative back).
#
# The settings are rockpool's usual, untuned defaults (Adam lr 0.01, batches of 32, 200
# epochs; in the loop, batches of 128).

VENDOR_LR, VENDOR_BATCH, VENDOR_EPOCHS = 0.01, 32, 200
IN_LOOP_BATCH = 128  # rows per chip query in the loop (each step re-quantises and queries)
TAU_MEM, TAU_SYN = 2.0**DASH_MEM, 2.0**DASH_SYN  # in dt: rockpool maps tau to dash


def vendor_net(F: int, H: int, O: int, key: jax.Array):
    """rockpool's float model of Xylo's neurons: Linear -> LIF -> Linear -> LIF."""
    nn = rockpool_module("rockpool.nn.modules")
    Sequential = rockpool_module("rockpool.nn.combinators").Sequential
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
    mapper = rockpool_module("rockpool.devices.xylo.syns61201.xylo_mapper").mapper
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
    quantize = rockpool_module("rockpool.transform.quantize_methods").global_quantize
    return check_spec({**spec, **quantize(**spec)})


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
                counts = run_configs([quantised(with_params(spec, params))],
                                          np.asarray(spikes)[:, idx])[0]
                chip.seconds += time.perf_counter() - t0
                chip.presentations += len(idx)
                chip_rates = jnp.asarray(counts / T)
                used += len(idx)
            params, opt_state, _ = _step(net, opt, params, opt_state, x[idx], y1[idx],
                                         chip_rates)
        epoch += 1
    return params, net, used


def deploy(key: jax.Array, spikes, labels, sizes) -> dict:
    """The vendor's deployed network for ``sizes`` (F, H, O): the float model trained
    offline on ``spikes`` [T, N, F] and ``labels`` [N] (0 .. O-1), mapped and quantised;
    a ``from_specification`` dict, checked against the chip."""
    F, H, O = sizes
    params, net, _ = vendor_fit(key, spikes, np.asarray(labels), H, O)
    return quantised(float_spec(params, net))


def engine_weights(spec: dict, weight_scale: float) -> np.ndarray:
    """The engine's weight vector [F H + H O] (``snn.flatten``'s layout, in engine units of
    ``weight_scale`` int8 steps) whose rounding gives ``spec``'s int8 weights back exactly."""
    w_in = np.asarray(spec["weights_in"], np.float64)
    w_in = w_in[..., 0] if w_in.ndim == 3 else w_in  # [F, H, 1]: one synapse per neuron
    w_out = np.asarray(spec["weights_out"], np.float64)
    return (np.concatenate([w_in.ravel(), w_out.ravel()]) / weight_scale).astype(np.float32)
