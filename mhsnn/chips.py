"""What the forward pass runs on, and everything it does to the network: a chip is a pytree.

The paper's chip distorts the updated membrane potential before the threshold test with
f_sigma (docs/paper.md, 'The task'). Real analog chips have more non-idealities, each a field
here that is either ``None`` (absent: not even traced) or an array:

- device mismatch: per-neuron multipliers of the membrane time constant and of the threshold,
  drawn once per chip instance with a relative spread and frozen by a key (as Rockpool's
  mismatch generator does). With alpha = exp(-dt / tau), a time constant tau * m gives the
  decay alpha ** (1 / m), which stays in (0, 1) for any m > 0;
- weight quantisation to ``weight_levels`` magnitude steps per sign within +-``weight_max``
  (6-bit magnitude plus sign, as on BrainScaleS-2: 63 levels, 127 distinct values);
- membrane read noise: Gaussian, added to the potential at every time step, fresh at every
  query (the forward pass then needs a key);
- membrane saturation: the potential is compressed towards +-``v_max`` (v_max tanh(V / v_max)),
  so a neuron saturating below its threshold can never fire.

Constructors compose: ``noisy(0.05, mismatch(key, 0.2, polynomial(2.0)))``. Because the
parameters are arrays, a grid of chips of one kind (say, sigma in {0, 1, 2, 3}) is one
stacked array axis that ``vmap`` or broadcasting walks over: never a recompilation.
Scalar fields have shape [*grid]; per-neuron fields [*grid, n] with one value per neuron of
every layer, in layer order (the paper's 30 -> 3 -> 2 network: n = 5, 3 hidden then 2 output).

This module is the only place that knows the physics. ``snn`` asks it for a layer's fields
(``layer``), the stored weights (``quantize``), the membrane after an update (``potential``)
and the read noise of a step (``read_noise``); adding a non-ideality touches this file only.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

# |u| beyond this is clipped before the cubic so float32 never overflows to inf - inf = NaN.
# The clip is exact for the LIF semantics: for u >= U every f_sigma(u) >= u >= threshold
# (spike, reset) and for u <= -U every f_sigma(u) < 0 (reset, no spike), for any sigma >= 0.
MEMBRANE_CLIP = 1.0e4
NEURON_FIELDS = ("tau_scale", "threshold_scale")
PAPER_NETWORK = (30, 3, 2)  # layer sizes, inputs first: the default of ``mismatch``


class Chip(NamedTuple):
    """Non-idealities of a chip; ``None`` fields are absent. Leaves may carry grid axes."""

    sigma: jax.Array  # strength of f_sigma(V) = V + (sigma/2) V^2 + (sigma/6) V^3
    tau_scale: jax.Array | None = None  # [..., n] time constant multipliers: alpha_i = alpha**(1/m_i)
    threshold_scale: jax.Array | None = None  # [..., n] threshold_i = threshold * scale_i
    weight_levels: jax.Array | None = None  # [...] magnitude levels per sign (0: none)
    weight_max: jax.Array | None = None  # [...] weights clipped to +-weight_max
    noise_std: jax.Array | None = None  # [...] membrane read noise per step and query
    v_max: jax.Array | None = None  # [...] membrane saturation level
    weight_scale: jax.Array | None = None  # [...] the chip stores s x W (its weight unit)


def _f32(x) -> jax.Array:
    return jnp.asarray(x, jnp.float32)


def num_neurons(sizes: Sequence[int]) -> int:
    """Neurons of a network with layer sizes (inputs, hidden..., outputs): all but the inputs."""
    return int(sum(sizes[1:]))


def ideal() -> Chip:
    """The model the chip is meant to be: no distortion (sigma = 0)."""
    return Chip(sigma=_f32(0.0))


def polynomial(sigma: float | jax.Array, base: Chip | None = None) -> Chip:
    """The paper's hard non-linearity (docs/paper.md) f_sigma on the membrane potential."""
    return (ideal() if base is None else base)._replace(sigma=_f32(sigma))


def mismatch(key: jax.Array, spread: float, base: Chip | None = None, *,
             sizes: Sequence[int] = PAPER_NETWORK) -> Chip:
    """Per-neuron time-constant and threshold multipliers 1 + spread * N(0, 1), frozen by ``key``.

    One value per neuron of every layer of the network with layer ``sizes`` (inputs first).
    Both are floored at 0.05, so a large spread cannot give a negative time constant or a
    neuron that fires on nothing.
    """
    k_tau, k_threshold = jax.random.split(key)
    n = num_neurons(sizes)
    base = ideal() if base is None else base
    return base._replace(
        tau_scale=jnp.maximum(1.0 + spread * jax.random.normal(k_tau, (n,)), 0.05),
        threshold_scale=jnp.maximum(1.0 + spread * jax.random.normal(k_threshold, (n,)), 0.05))


def quantized(bits: int = 6, weight_max: float = 16.0, base: Chip | None = None) -> Chip:
    """Weights clipped to +-weight_max and rounded to ``2**bits - 1`` magnitude levels per
    sign (``bits`` of magnitude plus a sign bit: 2 * (2**bits - 1) + 1 distinct values)."""
    return (ideal() if base is None else base)._replace(
        weight_levels=_f32(2**bits - 1), weight_max=_f32(weight_max))


def noisy(noise_std: float, base: Chip | None = None) -> Chip:
    """Gaussian membrane read noise of this standard deviation, fresh at every query."""
    return (ideal() if base is None else base)._replace(noise_std=_f32(noise_std))


def saturating(v_max: float, base: Chip | None = None) -> Chip:
    """The membrane potential saturates softly at ``v_max``: V <- v_max tanh(V / v_max)."""
    return (ideal() if base is None else base)._replace(v_max=_f32(v_max))


def scaled(weight_scale: float, base: Chip | None = None) -> Chip:
    """The chip stores the engine's weights W as ``weight_scale`` x W, before quantising: a
    chip whose weight unit differs (``mhsnn.probe`` finds the factor)."""
    return (ideal() if base is None else base)._replace(weight_scale=_f32(weight_scale))


def stack(chips: Sequence[Chip]) -> Chip:
    """Stack chips (with the same fields present) along a new leading axis (a grid axis)."""
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *chips)


def broadcast(chip: Chip, shape: tuple[int, ...]) -> Chip:
    """Every field to the grid ``shape`` (per-neuron fields to [*shape, n])."""
    return Chip(**{name: None if leaf is None else jnp.broadcast_to(
        leaf, (*shape, leaf.shape[-1]) if name in NEURON_FIELDS else shape)
        for name, leaf in chip._asdict().items()})


def is_noisy(chip) -> bool:
    """Whether a forward pass on this chip needs a key."""
    return isinstance(chip, Chip) and chip.noise_std is not None


def check_network(chip: Chip, sizes: Sequence[int]) -> None:
    """Refuse a chip whose per-neuron fields were drawn for another network."""
    n = num_neurons(sizes)
    for name in NEURON_FIELDS:
        leaf = getattr(chip, name)
        if leaf is not None and leaf.shape[-1] != n:
            raise ValueError(f"chip.{name}: {leaf.shape[-1]} neurons, but the network "
                             f"{'-'.join(map(str, sizes))} has {n}; draw the mismatch with "
                             f"sizes={tuple(sizes)}")


# ---- what the network asks of the chip -------------------------------------------------

class LayerChip(NamedTuple):
    """A chip's fields for one layer, shaped to broadcast against that layer's state."""

    sigma: jax.Array
    alpha: jax.Array | float  # effective decay (mismatch included)
    threshold: jax.Array | float  # effective threshold (mismatch included)
    noise_std: jax.Array | None
    v_max: jax.Array | None


def layer(chip: Chip, sizes: Sequence[int], index: int, alpha: float, threshold: float,
          neuron_axis: int = -1, expand: Callable = lambda x: x) -> LayerChip:
    """The fields of ``chip`` for layer ``index`` (0: first hidden) of a network with ``sizes``.

    Per-neuron fields are sliced to the layer and their neuron axis moved to ``neuron_axis``;
    ``expand`` reshapes every field to broadcast against the layer's state.
    """
    lo = int(sum(sizes[1:index + 1]))
    hi = lo + sizes[index + 1]

    def neuron(field):
        return expand(jnp.moveaxis(field[..., lo:hi], -1, neuron_axis))

    def maybe(field):
        return None if field is None else expand(field)

    a = alpha if chip.tau_scale is None else alpha ** (1.0 / neuron(chip.tau_scale))
    t = threshold if chip.threshold_scale is None else threshold * neuron(chip.threshold_scale)
    return LayerChip(expand(chip.sigma), a, t, maybe(chip.noise_std), maybe(chip.v_max))


def membrane(chip: Chip | LayerChip, u: jax.Array) -> jax.Array:
    """The chip's potential f_sigma(u) for the ideal update u; sigma broadcasts against u."""
    u = jnp.clip(u, -MEMBRANE_CLIP, MEMBRANE_CLIP)
    s = chip.sigma
    return u + (s / 2) * u**2 + (s / 6) * u**3


def _potential(layer_chip: LayerChip, u: jax.Array, noise: jax.Array | None) -> jax.Array:
    v = membrane(layer_chip, u)
    if noise is not None:
        v = v + layer_chip.noise_std * noise
    if layer_chip.v_max is not None:
        v = layer_chip.v_max * jnp.tanh(v / layer_chip.v_max)
    return v


@jax.custom_jvp
def _potential_in_loop(layer_chip: LayerChip, u: jax.Array, noise: jax.Array | None):
    return _potential(layer_chip, u, noise)


@_potential_in_loop.defjvp
def _potential_in_loop_jvp(primals, tangents):
    # Value from the chip, derivative from the ideal model (f_0(u) = u): the chip's
    # non-linearity, noise and saturation never enter the gradient.
    layer_chip, u, noise = primals
    return _potential(layer_chip, u, noise), tangents[1]


def potential(layer_chip: LayerChip, u: jax.Array, noise: jax.Array | None = None,
              in_loop: bool = False) -> jax.Array:
    """What the membrane holds after the ideal update u: f_sigma, read noise, saturation.

    ``noise``: a standard normal draw of u's shape (``read_noise``) when the chip is noisy.
    ``in_loop``: the chip's value with the ideal model's derivative (chip-in-the-loop SG).
    """
    return (_potential_in_loop if in_loop else _potential)(layer_chip, u, noise)


def read_noise(key: jax.Array | None, step: int | jax.Array, layer_index: int,
               shape: tuple[int, ...]) -> jax.Array | None:
    """The standard normal read noise of one layer at one time step of a query (or None)."""
    if key is None:
        return None
    return jax.random.normal(jax.random.fold_in(jax.random.fold_in(key, step), layer_index), shape)


def _quantize(chip: Chip, w: jax.Array) -> jax.Array:
    if chip.weight_scale is not None:
        w = w * chip.weight_scale
    if chip.weight_levels is None:
        return w
    levels = jnp.maximum(chip.weight_levels, 1.0)
    step = chip.weight_max / levels
    return jnp.round(jnp.clip(w, -chip.weight_max, chip.weight_max) / step) * step


@jax.custom_jvp
def _quantize_in_loop(chip: Chip, w: jax.Array) -> jax.Array:
    return _quantize(chip, w)


@_quantize_in_loop.defjvp
def _quantize_in_loop_jvp(primals, tangents):
    chip, w = primals
    scale = 1.0 if chip.weight_scale is None else chip.weight_scale
    return _quantize(chip, w), tangents[1] * scale  # straight-through the rounding


def quantize(chip: Chip, w: jax.Array, in_loop: bool = False) -> jax.Array:
    """The weights as the chip stores them: scaled by ``weight_scale``, then quantised
    (unchanged when the chip does neither).

    ``weight_levels`` and ``weight_max`` broadcast against ``w`` (the caller shapes them);
    ``in_loop`` passes the gradient straight through, as the ideal model would.
    """
    return (_quantize_in_loop if in_loop else _quantize)(chip, w)


def quantize_sets(chip: Chip, weights: Sequence[jax.Array]) -> list[jax.Array]:
    """Every layer's weights [C, fan_in, fan_out] of C sets as stored by the chip's C cells."""
    per_set = chip._replace(**{
        name: None if getattr(chip, name) is None else getattr(chip, name)[:, None, None]
        for name in ("weight_levels", "weight_max", "weight_scale")})
    return [quantize(per_set, w) for w in weights]


# ---- a chip with no JAX model ----------------------------------------------------------

class ChipError(RuntimeError):
    """A chip fault that persisted after its retries: an exception, a timeout, an answer of
    the wrong shape or dtype, or counts that are NaN, infinite, negative or above T. The
    message is one line naming the chip, the query and the fault; ``__cause__`` is the
    chip's own exception, if it raised one. ``fixable_by_retry`` is False for a fault that
    no rerun can clear (a first query of the wrong size, a tensor that needs grad)."""

    fixable_by_retry = True


# The fault an ExternalChip raised last inside a ``pure_callback``: JAX wraps a callback's
# exception in its own runtime error, so the host code that ran the computation asks here
# for the original (``chip_fault``).
_PENDING: list[ChipError] = []

# Defaults for a real device: a dropped link or a brown-out usually clears within seconds,
# so three retries with 0.5 s, 1 s, 2 s of backoff; a query of thousands of weight sets on
# hardware can take tens of seconds, so a minute before a query counts as hung.
RETRIES = 3
TIMEOUT_S = 60.0
BACKOFF_S = 0.5


class _QuietChipFaults(logging.Filter):
    """JAX logs every failing callback with its traceback; a ChipError is reported once,
    in one line, by whoever ran the computation, so its log record is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], ChipError))


logging.getLogger("jax._src.callback").addFilter(_QuietChipFaults())


def chip_fault(err: BaseException) -> ChipError | None:
    """The ChipError behind ``err`` (itself, or the one a JAX runtime error from a callback
    quotes), or None."""
    if isinstance(err, ChipError):
        return err
    behind = [fault for fault in _PENDING if str(fault) in str(err)]
    if not behind:
        return None
    _PENDING.clear()
    return behind[-1]


@contextlib.contextmanager
def reporting_faults():
    """Inside, an error that a chip fault caused (JAX wraps a callback's exception) comes out
    as the ChipError itself."""
    try:
        yield
    except Exception as err:
        fault = chip_fault(err)
        if fault is None or fault is err:
            raise
        raise fault from fault.__cause__  # the chip's exception, not JAX's wrapper


def weight_layout(sizes: Sequence[int]) -> list[tuple[str, slice, tuple[int, int]]]:
    """Where each layer's matrix lies in a flat weight vector: ``(name, slice, (fan_in,
    fan_out))`` per layer, in order (``w1`` first). ``weights[..., s].reshape(fan_in,
    fan_out)`` is that layer's matrix, row-major: row i holds input i's weights."""
    out, at = [], 0
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        out.append((f"w{i + 1}", slice(at, at + a * b), (int(a), int(b))))
        at += a * b
    return out


def describe_layout(sizes: Sequence[int]) -> str:
    """The network and its weight layout in one line, for error messages."""
    layout = weight_layout(sizes)
    layers = ", ".join(f"{name} [{a}, {b}] = weights[:, {s.start}:{s.stop}]"
                       for name, s, (a, b) in layout)
    return f"network {'-'.join(map(str, sizes))}, P = {layout[-1][1].stop} weights: {layers}"


def _writable(x) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x if x.flags.writeable else x.copy()


class _Permanent(Exception):
    """A fault that retrying cannot fix (the answer is not a plain array)."""


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0]}" if text else type(err).__name__


@dataclass(eq=False)
class ExternalChip:
    """A black-box chip with no JAX model: any host callable, queried through
    ``jax.pure_callback`` (a NumPy simulator, or a driver for real hardware).

    ``fn(weights, spikes) -> counts``: weights float32 [C, P] with each layer's matrix
    [fan_in, fan_out] row-major, layer after layer (``snn.flatten``'s layout: for the paper
    network w1 [30, 3] then w2 [3, 2], P = 96), spikes float32 [T, N, F] of 0/1, counts
    [C, N, O] of output spikes. ``grid_shape`` is the (folds, chains) grid it serves.

    Every answer is checked. A query that raises, runs past ``timeout_s`` (None: no limit),
    returns another shape or a non-numeric dtype, or counts that are NaN, infinite,
    negative or above T is a fault: it is retried up to ``retries`` times, after
    ``backoff_s`` x 1, 2, 4, ... seconds, and never reaches the likelihood. A fault that
    persists raises ``ChipError`` (one line: the chip, the query, the fault); the run's
    driver stops cleanly at its last checkpoint. A hung call is abandoned in its
    (daemon) thread: Python cannot kill it, so a driver that hangs must be reset by the
    caller's own means before a resume.

    Until the chip has answered once, an exception other than an ``OSError`` (a link, a
    device, a timeout) and an answer of the wrong shape or dtype are not retried: on a
    first query they are a wrong size, layout or dtype, and retrying only delays the
    message, which then names the network and its weight layout (``sizes``, when the
    engine set it). A tensor that
    requires grad is refused at once, on any query. ``ChipError.__cause__`` is the chip's
    own exception, with its traceback.

    Counts: ``queries`` forward runs (one weight set on one batch of samples) and
    ``presentations`` sample presentations of the answers used, exactly; ``calls`` host
    calls; ``faults`` failed attempts and ``retries`` retries; ``chip_s`` seconds inside
    ``fn``.
    """

    fn: Callable[[np.ndarray, np.ndarray], np.ndarray]
    grid_shape: tuple[int, int]
    name: str | None = None
    retries: int = RETRIES
    timeout_s: float | None = TIMEOUT_S
    backoff_s: float = BACKOFF_S
    queries: int = 0
    presentations: int = 0
    calls: int = 0
    faults: int = 0
    retried: int = 0
    chip_s: float = 0.0
    sizes: tuple[int, ...] | None = None  # the network the engine runs on it (messages)

    def __post_init__(self):
        if self.retries < 0:
            raise ValueError(f"retries: {self.retries}, must be >= 0")
        if self.timeout_s is not None and not self.timeout_s > 0:
            raise ValueError(f"timeout_s: {self.timeout_s}, must be > 0 or None")
        if self.name is None:
            self.name = getattr(self.fn, "__name__", None) or type(self.fn).__name__

    def _once(self, weights: np.ndarray, spikes: np.ndarray):
        t0 = time.perf_counter()
        try:
            return self._run(weights, spikes)
        finally:
            self.chip_s += time.perf_counter() - t0

    def _run(self, weights: np.ndarray, spikes: np.ndarray):
        if self.timeout_s is None:
            return self.fn(weights, spikes)
        box: dict = {}

        def work():
            try:
                box["out"] = self.fn(weights, spikes)
            except BaseException as err:  # noqa: BLE001 - the chip's fault
                box["err"] = err

        thread = threading.Thread(target=work, daemon=True, name=f"chip-{self.name}")
        thread.start()
        thread.join(self.timeout_s)
        if thread.is_alive():
            raise TimeoutError(f"no answer within {self.timeout_s:g} s")
        if "err" in box:
            raise box["err"]
        return box["out"]

    @staticmethod
    def _problem(counts, expected: tuple[int, ...], T: int) -> tuple[str | None, bool]:
        """What is wrong with an answer (None: nothing), and whether it is structural (a
        shape or dtype: on a first query, a chip built for another network)."""
        if getattr(counts, "requires_grad", False):
            raise _Permanent("answered a tensor that requires grad; return counts.detach() "
                             "(or run the chip under torch.no_grad())")
        try:
            counts = np.asarray(counts)
        except (TypeError, RuntimeError) as err:  # a GPU tensor, say
            raise _Permanent(f"answered {type(counts).__name__}, which NumPy cannot read "
                             f"({_first_line(err)}); return a NumPy array or a CPU tensor") \
                from None
        if counts.dtype.kind not in "biuf":
            return f"counts of dtype {counts.dtype}, expected numbers", True
        if counts.shape != expected:
            return f"counts of shape {counts.shape}, expected {expected}", True
        bad = ~np.isfinite(counts)
        if bad.any():
            return (f"{int(bad.sum())} NaN/inf count(s) (weight set "
                    f"{int(np.argwhere(bad)[0][0])})"), False
        if (counts < 0).any() or (counts > T).any():
            low, high = float(counts.min()), float(counts.max())
            return f"counts outside [0, T={T}] (min {low:g}, max {high:g})", False
        return None, False

    def __call__(self, weights: np.ndarray, spikes: np.ndarray,
                 num_outputs: int = PAPER_NETWORK[-1], fold=None) -> np.ndarray:
        # writable arrays: a chip that wraps them in tensors (torch.from_numpy) would warn on
        # every call about JAX's read-only buffers (copied only when read-only)
        weights, spikes = _writable(weights), _writable(spikes)
        self.calls += 1
        expected = (weights.shape[0], spikes.shape[1], num_outputs)
        where = f"fold {int(fold)}, " if fold is not None else ""
        cause, tried = None, f"after {self.retries} retries"
        for attempt in range(self.retries + 1):
            try:
                counts = self._once(weights, spikes)
                problem, structural = self._problem(counts, expected, spikes.shape[0])
                cause = None
            except _Permanent as err:
                problem, cause, tried = str(err), None, "not retried"
                self.faults += 1
                break
            except Exception as err:  # noqa: BLE001 - any failure is a fault
                problem, cause = f"raised {_first_line(err)}", err
                structural = not isinstance(err, OSError)  # OSError: a link or a device
            if problem is None:
                self.queries += weights.shape[0]
                self.presentations += weights.shape[0] * spikes.shape[1]
                return np.asarray(counts, np.float32)
            self.faults += 1
            if self.queries == 0 and structural:
                tried = "not retried: the chip has not answered yet"
                break  # a size, layout or dtype, not a glitch
            if attempt < self.retries:
                self.retried += 1
                time.sleep(self.backoff_s * 2**attempt)
        layout = f"; the engine runs the {describe_layout(self.sizes)}" \
            if self.queries == 0 and self.sizes is not None else ""
        declared = getattr(self.fn, "sizes", None)
        if layout and declared is not None:
            layout += f"; the chip declares sizes {'-'.join(map(str, declared))}"
        fault = ChipError(
            f"chip {self.name!r}: query {self.calls} ({where}{weights.shape[0]} weight sets "
            f"x {spikes.shape[1]} samples): {problem} ({tried}){layout}")
        fault.__cause__ = cause  # the chip's own exception and traceback
        fault.fixable_by_retry = not tried.startswith("not retried")
        _PENDING[:] = [fault]  # a computation stops at its first fault: keep the latest
        raise fault

    def preflight(self, spikes: np.ndarray, num_outputs: int, num_weights: int) -> None:
        """One tiny counted query before training (one weight set of small random weights
        on the first two rows of ``spikes`` [T, N, F]): a chip of the wrong size, layout or
        dtype fails here in one line naming the network and its layout, before anything
        compiles or runs. Its presentations count in ``presentations``."""
        weights = np.random.default_rng(0).normal(0.0, 0.5, (1, num_weights))
        self(weights.astype(np.float32), np.asarray(spikes)[:, :2], num_outputs)

    def query(self, num_outputs: int) -> Callable[..., np.ndarray]:
        """The host function ``pure_callback`` calls for a network with ``num_outputs``;
        with ``active`` [C], only those weight sets are run (the rest count 0)."""
        def query(weights, spikes, fold=None, active=None):
            if active is None or np.all(active):
                return self(weights, spikes, num_outputs, fold)
            active = np.asarray(active, bool)
            out = np.zeros((weights.shape[0], spikes.shape[1], num_outputs), np.float32)
            if active.any():
                out[active] = self(np.asarray(weights)[active], spikes, num_outputs, fold)
            return out
        return query

    def fault_counts(self) -> dict[str, int]:
        """What the manifest and the estimator's diagnostics record of this chip."""
        return {"chip_calls": self.calls, "chip_faults": self.faults,
                "chip_retries": self.retried, "chip_queries": self.queries,
                "chip_presentations": self.presentations, "chip_s": round(self.chip_s, 3)}


def load(path: str, args: dict | None = None, sizes: Sequence[int] | None = None):
    """A user's chip from the command line's ``chip.path`` (docs/your-chip.md).

    ``path`` is ``module:name`` (imported with the working directory on the path) or
    ``file.py:name``. ``name`` is either the chip itself, a callable ``(weights, spikes) ->
    counts``, or a factory that returns one: a class, or a callable called with ``args``
    as keyword arguments, plus ``sizes=`` (the network's layer sizes) when it has that
    parameter. It is taken as the chip itself when ``args`` is empty and it has no
    ``sizes`` parameter but two positional ones. Anything wrong is a ValueError of one
    line."""
    where, _, name = path.rpartition(":")
    file = Path(where).resolve()
    if where.endswith(".py") and not file.is_file():
        raise ValueError(f"chip.path {path!r}: no file {file}")
    try:
        if where.endswith(".py"):
            spec = importlib.util.spec_from_file_location(file.stem, file)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        else:
            if "" not in sys.path and str(Path.cwd()) not in sys.path:
                sys.path.insert(0, str(Path.cwd()))
            module = importlib.import_module(where)
    except Exception as err:  # noqa: BLE001 - the user's module: any failure is theirs
        raise ValueError(f"chip.path {path!r}: cannot import {where!r} "
                         f"({_first_line(err)})") from err
    target = getattr(module, name, None)
    if target is None or not callable(target):
        raise ValueError(f"chip.path {path!r}: {where!r} has no callable {name!r}")
    args = dict(args or {})
    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):
        params = {}
    positional = [q for q in params.values() if q.kind in (q.POSITIONAL_ONLY,
                                                            q.POSITIONAL_OR_KEYWORD)]
    if not inspect.isclass(target) and not args and "sizes" not in params \
            and len(positional) >= 2:
        return target
    if "sizes" in params and sizes is not None:
        args.setdefault("sizes", tuple(int(n) for n in sizes))
    try:
        chip = target(**args)
    except Exception as err:  # noqa: BLE001
        raise ValueError(f"chip.path {path!r}: {name}(**{args}) raised "
                         f"{_first_line(err)}") from err
    if not callable(chip):
        raise ValueError(f"chip.path {path!r}: {name}(**{args}) returned "
                         f"{type(chip).__name__}, not a chip (weights, spikes) -> counts")
    return chip


def source(path: str, args: dict, chip, sizes: Sequence[int]) -> dict:
    """What a manifest records of a user's chip: its import path, arguments, the sizes it
    declares (None when it declares none) and the network the engine ran on it."""
    declared = getattr(chip, "sizes", None)
    return {"path": path, "args": dict(args), "network": [int(n) for n in sizes],
            "declared_sizes": None if declared is None else [int(n) for n in declared]}


def xylo(sizes: Sequence[int], **options):
    """SynSense Xylo Audio 2 running the feed-forward network ``sizes`` (F, H, O), on
    rockpool's bit-accurate XyloSim: a host callable for ``ExternalChip`` or the estimator
    (install ``mhsnn[xylo]``; ``mhsnn.xylo.XyloChip`` lists the options)."""
    from mhsnn.xylo import XyloChip

    return XyloChip(tuple(sizes), **options)


def grid_shape(chip: Chip | ExternalChip) -> tuple[int, ...]:
    """The (folds, chains) grid a chip serves."""
    return tuple(chip.grid_shape) if isinstance(chip, ExternalChip) else tuple(chip.sigma.shape)
