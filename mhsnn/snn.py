"""The 30 -> 3 -> 2 LIF network of PAPER.md as one ``lax.scan`` over time (time-major).

Per layer and time step (PAPER.md, 'Network'; the chip distorts the updated potential
before the threshold test):

    u  = alpha * V + (1 - alpha) * I        ideal leaky integration
    V~ = f_chip(u)                          the chip's membrane non-linearity
    S  = 1 if V~ >= threshold else 0        spike
    V  = 0 if V~ >= threshold or V~ < 0 else V~

The hidden layer's input current at step k is ``spikes[k] @ w1``; the output layer's is
the hidden spikes of the same step times ``w2``. No biases. The output is each output
neuron's spike rate over the T steps (count / T).

Class decision: ``argmax`` of the rates with ties going to the lower class index, so a
silent network ([0, 0]) predicts class 0 (malignant), as PAPER.md observed.

The spike function is a Heaviside step forward; only when a gradient is taken does its
derivative become the Gaussian surrogate (1/sqrt(2 pi)) exp(-2 (V~ - threshold)^2).
The reset is detached from the gradient (the where() masks it), as is usual for BPTT
with surrogate gradients.
"""

from __future__ import annotations

import math
import os
from typing import NamedTuple

import jax
import jax.numpy as jnp

from mhsnn import chips
from mhsnn.chips import Chip

Params = dict[str, jax.Array]  # {"w1": [..., 30, 3], "w2": [..., 3, 2]}

NUM_INPUTS, NUM_HIDDEN, NUM_OUTPUTS = 30, 3, 2
NUM_WEIGHTS = NUM_INPUTS * NUM_HIDDEN + NUM_HIDDEN * NUM_OUTPUTS  # 96


def surrogate(x: jax.Array) -> jax.Array:
    """Gaussian surrogate derivative of the spike function at x = V~ - threshold."""
    return jnp.exp(-2.0 * x**2) / math.sqrt(2.0 * math.pi)


@jax.custom_jvp
def spike(x: jax.Array) -> jax.Array:
    """Heaviside step: 1.0 where x >= 0 (V~ at or above threshold)."""
    return (x >= 0).astype(x.dtype)


@spike.defjvp
def _spike_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    return spike(x), surrogate(x) * dx


class LayerChip(NamedTuple):
    """A chip's fields for one layer, shaped to broadcast against that layer's state."""

    sigma: jax.Array
    alpha: jax.Array | float  # effective decay (mismatch included)
    threshold: jax.Array | float  # effective threshold (mismatch included)
    noise_std: jax.Array | None
    v_max: jax.Array | None


def _potential(layer: LayerChip, u: jax.Array, noise: jax.Array | None) -> jax.Array:
    """What the chip's membrane holds after the update u: f_sigma, read noise, saturation."""
    v = chips.membrane(layer, u)
    if noise is not None:
        v = v + layer.noise_std * noise
    if layer.v_max is not None:
        v = layer.v_max * jnp.tanh(v / layer.v_max)
    return v


@jax.custom_jvp
def _potential_in_loop(layer: LayerChip, u: jax.Array, noise: jax.Array | None) -> jax.Array:
    return _potential(layer, u, noise)


@_potential_in_loop.defjvp
def _potential_in_loop_jvp(primals, tangents):
    # Value from the chip, derivative from the ideal model (f_0(u) = u): the chip's
    # non-linearity, noise and saturation never enter the gradient.
    layer, u, noise = primals
    return _potential(layer, u, noise), tangents[1]


@jax.custom_jvp
def _quantize_in_loop(chip: Chip, w: jax.Array) -> jax.Array:
    return chips.quantize(chip, w)


@_quantize_in_loop.defjvp
def _quantize_in_loop_jvp(primals, tangents):
    chip, w = primals
    return chips.quantize(chip, w), tangents[1]  # straight-through, as the ideal model


def layer_chip(chip: Chip, layer: int, alpha: float, threshold: float,
               neuron_axis: int = -1, expand=lambda x: x) -> LayerChip:
    """The fields of ``chip`` for ``layer`` (0 hidden, 1 output).

    Per-neuron fields are sliced to the layer and their neuron axis moved to ``neuron_axis``;
    ``expand`` reshapes every field to broadcast against the layer's state.
    """
    lo, hi = (0, NUM_HIDDEN) if layer == 0 else (NUM_HIDDEN, NUM_HIDDEN + NUM_OUTPUTS)

    def neuron(field):
        return expand(jnp.moveaxis(field[..., lo:hi], -1, neuron_axis))

    def maybe(field):
        return None if field is None else expand(field)

    a = alpha if chip.tau_scale is None else alpha ** (1.0 / neuron(chip.tau_scale))
    t = threshold if chip.threshold_scale is None else threshold * neuron(chip.threshold_scale)
    return LayerChip(expand(chip.sigma), a, t, maybe(chip.noise_std), maybe(chip.v_max))


def lif_step(v, current, *, chip: LayerChip, in_loop: bool = False, noise=None):
    """One LIF update of a layer; returns (new potential, spikes).

    ``chip`` (see ``layer_chip``) broadcasts against ``v``; ``noise`` is a standard normal
    draw of ``v``'s shape when the chip has read noise.
    """
    u = chip.alpha * v + (1.0 - chip.alpha) * current
    v_chip = _potential_in_loop(chip, u, noise) if in_loop else _potential(chip, u, noise)
    s = spike(v_chip - chip.threshold)
    keep = (v_chip >= 0) & (v_chip < chip.threshold)
    return jnp.where(keep, v_chip, 0.0), s


def _noise(key, t, layer, shape):
    return None if key is None else jax.random.normal(
        jax.random.fold_in(jax.random.fold_in(key, t), layer), shape)


def _scan(cur1_fn, second_layer, xs, state_shapes, layers, key, in_loop, unroll=1):
    """Scan over time; ``cur1_fn(x)`` gives the hidden layer's input currents at one step."""
    v1 = jnp.zeros(state_shapes[0], jnp.float32)
    v2 = jnp.zeros(state_shapes[1], jnp.float32)

    def body(carry, x):
        v1, v2, count = carry
        t, s_in = x
        v1, s1 = lif_step(v1, cur1_fn(s_in), chip=layers[0], in_loop=in_loop,
                          noise=_noise(key, t, 0, v1.shape))
        v2, s2 = lif_step(v2, second_layer(s1), chip=layers[1], in_loop=in_loop,
                          noise=_noise(key, t, 1, v2.shape))
        return (v1, v2, count + s2), None

    (_, _, count), _ = jax.lax.scan(body, (v1, v2, jnp.zeros_like(v2)),
                                    (jnp.arange(xs.shape[0]), xs), unroll=unroll)
    return count


def _check_key(chip: Chip, key) -> None:
    if chips.is_noisy(chip) and key is None:
        raise ValueError("key: this chip has membrane read noise; pass a key for the query")


def run(params: Params, spikes: jax.Array, *, chip: Chip | None = None, alpha: float = 0.9,
        threshold: float = 1.0, in_loop: bool = False, key: jax.Array | None = None) -> jax.Array:
    """Output spike counts [N, 2] of one weight set on spikes [T, N, 30].

    ``in_loop=True`` gives chip values with the ideal model's derivative (chip-in-the-loop).
    ``key`` draws the read noise of a noisy chip (fresh per query: pass a new key each time).
    """
    chip = chips.ideal() if chip is None else chip
    _check_key(chip, key)
    quant = _quantize_in_loop if in_loop else chips.quantize
    w1, w2 = quant(chip, params["w1"]), quant(chip, params["w2"])
    layers = [layer_chip(chip, i, alpha, threshold) for i in (0, 1)]
    N = spikes.shape[1]
    return _scan(lambda s_in: s_in @ w1, lambda s1: s1 @ w2, spikes,
                 ((N, NUM_HIDDEN), (N, NUM_OUTPUTS)), layers, key if chips.is_noisy(chip)
                 else None, in_loop)


def forward(params: Params, spikes: jax.Array, *, chip: Chip | None = None, alpha: float = 0.9,
            threshold: float = 1.0, in_loop: bool = False,
            key: jax.Array | None = None) -> jax.Array:
    """Output spike rates [N, 2] (counts / T) of one weight set."""
    counts = run(params, spikes, chip=chip, alpha=alpha, threshold=threshold, in_loop=in_loop,
                 key=key)
    return counts / spikes.shape[0]


def chain_block_size(num_sets: int) -> int:
    """Weight sets per block on this backend: the CPU runs blocks of <= 256 one after another
    so each block's [neuron, block, N] state stays in cache (measured: 50k vs 20k chain-steps/s
    at 1,024 chains); an accelerator takes all sets at once."""
    if jax.default_backend() != "cpu" or num_sets <= 256:
        return num_sets
    for block in range(256, 63, -1):
        if num_sets % block == 0:
            return block
    return num_sets


def run_batched(params: Params, spikes: jax.Array, *, chip: Chip | None = None,
                alpha: float = 0.9, threshold: float = 1.0, chain_block: int | None = None,
                key: jax.Array | None = None) -> jax.Array:
    """Output spike counts [C, N, 2] of C weight sets (w1 [C, 30, 3], w2 [C, 3, 2]) at once.

    Layout chosen by measurement (experiments/benchmark.py): the state is [neuron, C, N]
    with the samples innermost, and each time step's first-layer currents for every weight
    set are one matrix product [3*C, 30] x [30, N] inside the scan, so the step's working
    set stays in cache (hoisting one [T*N, 30] x [30, 3*C] product out of the scan was 2-3x
    slower on the CPU). Chip leaves may be shared or carry one value per weight set
    ([C], per-neuron [C, 5]), so a grid of chips rides the same axis. ``chain_block``
    (default: ``chain_block_size``) splits the sets into blocks run in sequence; results
    are identical either way.
    """
    chip = chips.broadcast(chips.ideal() if chip is None else chip, (params["w1"].shape[0],))
    _check_key(chip, key)
    key = key if chips.is_noisy(chip) else None
    C = params["w1"].shape[0]
    block = chain_block_size(C) if chain_block is None else chain_block
    if block >= C or C % block:
        return _run_sets(params, spikes, chip, alpha, threshold, key)
    blocks = jax.tree.map(lambda x: x.reshape(C // block, block, *x.shape[1:]), (params, chip))
    keys = None if key is None else jax.random.split(key, C // block)
    counts = jax.lax.map(lambda b: _run_sets(b[0][0], spikes, b[0][1], alpha, threshold, b[1]),
                         (blocks, keys))
    return counts.reshape(C, *counts.shape[2:])


def _run_sets(params: Params, spikes: jax.Array, chip: Chip, alpha: float, threshold: float,
              key: jax.Array | None):
    C = params["w1"].shape[0]
    _, N, F = spikes.shape
    w1, w2 = _quantize_sets(chip, params)
    w1_rows = jnp.transpose(w1, (2, 0, 1)).reshape(NUM_HIDDEN * C, F)  # row h*C + c
    w2_cols = jnp.transpose(w2, (1, 2, 0))[..., None]  # [3, 2, C, 1]
    # Fields [C] -> [1, C, 1]; per-neuron [C, 5] -> [neurons, C, 1] (state is [neuron, C, N]).
    layers = [layer_chip(chip, i, alpha, threshold, neuron_axis=0,
                         expand=lambda x: x[..., None] if x.ndim == 2 else x[None, :, None])
              for i in (0, 1)]

    def second_layer(s1):
        return jnp.stack([sum(s1[h] * w2_cols[h, k] for h in range(NUM_HIDDEN))
                          for k in range(NUM_OUTPUTS)])

    shapes = ((NUM_HIDDEN, C, N), (NUM_OUTPUTS, C, N))
    if batched_layout() == "hoisted":
        # One product for all time steps, then a fully unrolled scan that XLA can fuse into
        # one elementwise pass over the currents (for accelerators: memory-bound otherwise).
        cur = jnp.einsum("tnf,kf->tkn", spikes, w1_rows).reshape(-1, NUM_HIDDEN, C, N)
        count = _scan(lambda c: c, second_layer, cur, shapes, layers, key, False, unroll=True)
    else:
        count = _scan(lambda s_in: (w1_rows @ s_in.T).reshape(NUM_HIDDEN, C, N), second_layer,
                      spikes, shapes, layers, key, False)
    return jnp.transpose(count, (1, 2, 0))


LAYOUTS = ("fused", "step", "hoisted")


def batched_layout() -> str:
    """How the batched paths lay the work out; ``MHSNN_LAYOUT`` overrides the backend default.

    - "fused" (CPU default): the likelihood path (``sq_error_batched``) computes one
      first-layer product for all time steps, then a single elementwise pass over
      per-neuron [N, C] arrays that runs all T steps in registers and ends in the
      per-sample squared error, reduced over samples by a matrix-vector product. The
      counts path (``run_batched``) uses "step" under it.
    - "step": a first-layer product per time step inside a ``lax.scan`` with state
      [neuron, C, N].
    - "hoisted" (accelerator default): one product for all steps, then an unrolled scan over
      stacked [neuron, C, N] state that XLA fuses into one pass.

    Measured with experiments/benchmark.py: on the 2-core CPU "fused" gives about 2-3x the
    chain-steps/s of "step" at 64 chains; on an H100 "hoisted" gave 9.8M against 5.2M for
    "step" at 16,384 chains ("fused" has not been measured on a GPU yet).
    """
    layout = os.environ.get("MHSNN_LAYOUT") or ("fused" if jax.default_backend() == "cpu"
                                                else "hoisted")
    if layout not in LAYOUTS:
        raise ValueError(f"MHSNN_LAYOUT={layout!r}: expected one of {', '.join(LAYOUTS)}")
    return layout


def sq_error_batched(params: Params, spikes: jax.Array, targets: jax.Array, mask: jax.Array,
                     *, chip: Chip | None = None, alpha: float = 0.9, threshold: float = 1.0,
                     chain_block: int | None = None, key: jax.Array | None = None) -> jax.Array:
    """Summed squared error [C] of C weight sets' output rates against ``targets`` [N, 2]:
    sum_n mask[n] * sum_k (counts[c, n, k] / T - targets[n, k])^2.

    The MH likelihood's hot path. Counts are identical to ``run_batched``'s; only the order
    of the final sum over samples can differ (a matrix-vector product on the "fused"
    layout).
    """
    if batched_layout() != "fused":
        rates = run_batched(params, spikes, chip=chip, alpha=alpha, threshold=threshold,
                            chain_block=chain_block, key=key) / spikes.shape[0]
        return jnp.sum(jnp.sum((rates - targets) ** 2, axis=-1) * mask, axis=-1)
    C = params["w1"].shape[0]
    chip = chips.broadcast(chips.ideal() if chip is None else chip, (C,))
    _check_key(chip, key)
    key = key if chips.is_noisy(chip) else None
    block = fused_block_size(C) if chain_block is None else chain_block

    def one_block(inputs):
        block_params, block_chip, block_key = inputs
        return _fused_sq_error(block_params, spikes, targets, mask, block_chip, alpha,
                               threshold, block_key)

    keys = None if key is None else jax.random.split(key, max(C // block, 1))
    if block >= C or C % block:
        return one_block((params, chip, None if keys is None else keys[0]))
    return _in_blocks(one_block, (params, chip, keys), C // block)


def fused_block_size(num_sets: int) -> int:
    """Weight sets per block of the "fused" layout: blocks of <= 128 keep a block's
    first-layer currents [T, N, 3, block] in cache (measured on the 2-core CPU: 93k
    chain-steps/s in blocks of 64 at 1,024 sets, against 33k in one block)."""
    if num_sets <= 128:
        return num_sets
    for block in range(128, 31, -1):
        if num_sets % block == 0:
            return block
    return num_sets


def _in_blocks(fn, inputs, num_blocks: int):
    """``fn`` on each of ``num_blocks`` leading-axis blocks of ``inputs``, one after another.

    A block's inputs reach ``fn`` through the loop carry (the next block's are sliced while
    this one runs): sliced inside the loop body, XLA would fuse the slicing into the
    elementwise pass and recompute it for every element (measured 4x slower).
    """
    blocks = jax.tree.map(lambda x: x.reshape(num_blocks, -1, *x.shape[1:]), inputs)
    first = jax.tree.map(lambda x: x[0], blocks)
    following = jax.tree.map(lambda x: jnp.concatenate([x[1:], x[:1]]), blocks)  # last unused
    _, out = jax.lax.scan(lambda current, upcoming: (upcoming, fn(current)), first, following)
    return out.reshape(-1, *out.shape[2:])


def _fused_sq_error(params, spikes, targets, mask, chip, alpha, threshold, key):
    C = params["w1"].shape[0]
    T, N, F = spikes.shape
    w1, w2 = _quantize_sets(chip, params)
    w1_cols = jnp.transpose(w1, (1, 2, 0)).reshape(F, NUM_HIDDEN * C)  # column h*C + c
    cur = (spikes.reshape(T * N, F) @ w1_cols).reshape(T, N, NUM_HIDDEN, C)
    # Per-set fields [C] -> [1, C]; per-neuron [C, n] -> [n, 1, C], picked per neuron below.
    layers = [layer_chip(chip, i, alpha, threshold, neuron_axis=0,
                         expand=lambda x: x[:, None] if x.ndim == 2 else x[None])
              for i in (0, 1)]
    hidden = [_neuron_chip(layers[0], h) for h in range(NUM_HIDDEN)]
    output = [_neuron_chip(layers[1], k) for k in range(NUM_OUTPUTS)]
    zeros = jnp.zeros((N, C), jnp.float32)
    v1, v2, count = [zeros] * NUM_HIDDEN, [zeros] * NUM_OUTPUTS, [zeros] * NUM_OUTPUTS
    for t in range(T):  # unrolled: XLA fuses all steps into one pass over [N, C]
        noise1 = _noise(key, t, 0, (NUM_HIDDEN, N, C))
        noise2 = _noise(key, t, 1, (NUM_OUTPUTS, N, C))
        s1 = []
        for h in range(NUM_HIDDEN):
            v1[h], s = lif_step(v1[h], cur[t, :, h], chip=hidden[h],
                                noise=None if noise1 is None else noise1[h])
            s1.append(s)
        for k in range(NUM_OUTPUTS):
            current = sum(s1[h] * w2[:, h, k] for h in range(NUM_HIDDEN))
            v2[k], s = lif_step(v2[k], current, chip=output[k],
                                noise=None if noise2 is None else noise2[k])
            count[k] = count[k] + s
    # One output per element: a second output (or a transpose) would make XLA duplicate
    # the whole pass per output element.
    err = sum((count[k] / T - targets[:, k, None]) ** 2 for k in range(NUM_OUTPUTS))
    return mask @ err


def _neuron_chip(layer: LayerChip, j: int) -> LayerChip:
    def pick(x):
        return x[j] if getattr(x, "ndim", 0) == 3 else x

    return layer._replace(alpha=pick(layer.alpha), threshold=pick(layer.threshold))


def _quantize_sets(chip: Chip, params: Params) -> tuple[jax.Array, jax.Array]:
    """Both layers' weights [C, ...] as the chip stores them (per-set quantisation fields)."""
    per_set = chip._replace(weight_levels=None if chip.weight_levels is None
                            else chip.weight_levels[:, None, None],
                            weight_max=None if chip.weight_max is None
                            else chip.weight_max[:, None, None])
    return chips.quantize(per_set, params["w1"]), chips.quantize(per_set, params["w2"])


def forward_batched(params: Params, spikes: jax.Array, *, chip: Chip | None = None,
                    alpha: float = 0.9, threshold: float = 1.0,
                    key: jax.Array | None = None) -> jax.Array:
    """Output spike rates [C, N, 2] of C weight sets."""
    counts = run_batched(params, spikes, chip=chip, alpha=alpha, threshold=threshold, key=key)
    return counts / spikes.shape[0]


def predict(rates: jax.Array) -> jax.Array:
    """Class decision: argmax of the rates, ties (a silent network too) to class 0."""
    return jnp.argmax(rates, axis=-1).astype(jnp.int32)


def unflatten(theta: jax.Array) -> Params:
    """Flat weight vectors [..., 96] -> {"w1": [..., 30, 3], "w2": [..., 3, 2]}."""
    lead = theta.shape[:-1]
    n1 = NUM_INPUTS * NUM_HIDDEN
    return {"w1": theta[..., :n1].reshape(*lead, NUM_INPUTS, NUM_HIDDEN),
            "w2": theta[..., n1:].reshape(*lead, NUM_HIDDEN, NUM_OUTPUTS)}


def flatten(params: Params) -> jax.Array:
    """{"w1": [..., 30, 3], "w2": [..., 3, 2]} -> flat weight vectors [..., 96]."""
    lead = params["w1"].shape[:-2]
    return jnp.concatenate([params["w1"].reshape(*lead, -1), params["w2"].reshape(*lead, -1)],
                           axis=-1)
