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


@jax.custom_jvp
def _membrane_in_loop(chip: Chip, u: jax.Array) -> jax.Array:
    return chips.membrane(chip, u)


@_membrane_in_loop.defjvp
def _membrane_in_loop_jvp(primals, tangents):
    # Value from the chip, derivative from the ideal model (f_0(u) = u): the chip's
    # non-linearity never enters the gradient.
    chip, u = primals
    _, du = tangents
    return chips.membrane(chip, u), du


def lif_step(v, current, *, chip: Chip, alpha: float, threshold: float, in_loop: bool = False):
    """One LIF update; returns (new potential, spikes). ``chip`` broadcasts against ``v``."""
    u = alpha * v + (1.0 - alpha) * current
    v_chip = _membrane_in_loop(chip, u) if in_loop else chips.membrane(chip, u)
    s = spike(v_chip - threshold)
    keep = (v_chip >= 0) & (v_chip < threshold)
    return jnp.where(keep, v_chip, 0.0), s


def _scan(cur1, second_layer, *, chip, alpha, threshold, in_loop):
    """Scan over time given the hidden layer's input currents cur1 [T, ..., 3]."""
    step = {"chip": chip, "alpha": alpha, "threshold": threshold, "in_loop": in_loop}
    v1 = jnp.zeros(cur1.shape[1:], cur1.dtype)
    v2 = jnp.zeros((*cur1.shape[1:-1], NUM_OUTPUTS), cur1.dtype)

    def body(carry, c1):
        v1, v2, count = carry
        v1, s1 = lif_step(v1, c1, **step)
        v2, s2 = lif_step(v2, second_layer(s1), **step)
        return (v1, v2, count + s2), None

    (_, _, count), _ = jax.lax.scan(body, (v1, v2, jnp.zeros_like(v2)), cur1)
    return count


def run(params: Params, spikes: jax.Array, *, chip: Chip | None = None, alpha: float = 0.9,
        threshold: float = 1.0, in_loop: bool = False) -> jax.Array:
    """Output spike counts [N, 2] of one weight set on spikes [T, N, 30].

    ``in_loop=True`` gives chip values with the ideal model's derivative (chip-in-the-loop).
    """
    chip = chips.ideal() if chip is None else chip
    cur1 = spikes @ params["w1"]  # [T, N, 3]
    return _scan(cur1, lambda s1: s1 @ params["w2"], chip=chip, alpha=alpha,
                 threshold=threshold, in_loop=in_loop)


def forward(params: Params, spikes: jax.Array, *, chip: Chip | None = None, alpha: float = 0.9,
            threshold: float = 1.0, in_loop: bool = False) -> jax.Array:
    """Output spike rates [N, 2] (counts / T) of one weight set."""
    counts = run(params, spikes, chip=chip, alpha=alpha, threshold=threshold, in_loop=in_loop)
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
                alpha: float = 0.9, threshold: float = 1.0,
                chain_block: int | None = None) -> jax.Array:
    """Output spike counts [C, N, 2] of C weight sets (w1 [C, 30, 3], w2 [C, 3, 2]) at once.

    Layout chosen by measurement (experiments/benchmark.py): the state is [neuron, C, N]
    with the samples innermost, and each time step's first-layer currents for every weight
    set are one matrix product [3*C, 30] x [30, N] inside the scan, so the step's working
    set stays in cache (hoisting one [T*N, 30] x [30, 3*C] product out of the scan was 2-3x
    slower on the CPU). Chip leaves may be scalars or carry one value per weight set ([C]),
    so a grid of chips rides the same axis. ``chain_block`` (default: ``chain_block_size``)
    splits the sets into blocks run in sequence; results are identical either way.
    """
    chip = chips.ideal() if chip is None else chip
    C = params["w1"].shape[0]
    block = chain_block_size(C) if chain_block is None else chain_block
    if block >= C or C % block:
        return _run_sets(params, spikes, chip, alpha, threshold)
    per_set = jax.tree.map(lambda leaf: jnp.broadcast_to(leaf, (C,)), chip)
    blocks = jax.tree.map(lambda x: x.reshape(C // block, block, *x.shape[1:]),
                          (params, per_set))
    counts = jax.lax.map(lambda pc: _run_sets(pc[0], spikes, pc[1], alpha, threshold), blocks)
    return counts.reshape(C, *counts.shape[2:])


def _run_sets(params: Params, spikes: jax.Array, chip: Chip, alpha: float, threshold: float):
    w1, w2 = params["w1"], params["w2"]
    C = w1.shape[0]
    _, N, F = spikes.shape
    w1_rows = jnp.transpose(w1, (2, 0, 1)).reshape(NUM_HIDDEN * C, F)  # row h*C + c
    w2_cols = jnp.transpose(w2, (1, 2, 0))[..., None]  # [3, 2, C, 1]
    per_set = jax.tree.map(lambda leaf: jnp.reshape(leaf, (*jnp.shape(leaf), 1)), chip)
    step = {"chip": per_set, "alpha": alpha, "threshold": threshold}

    def body(carry, s_in):
        v1, v2, count = carry
        v1, s1 = lif_step(v1, (w1_rows @ s_in.T).reshape(NUM_HIDDEN, C, N), **step)
        cur2 = jnp.stack([sum(s1[h] * w2_cols[h, k] for h in range(NUM_HIDDEN))
                          for k in range(NUM_OUTPUTS)])
        v2, s2 = lif_step(v2, cur2, **step)
        return (v1, v2, count + s2), None

    v1 = jnp.zeros((NUM_HIDDEN, C, N), spikes.dtype)
    v2 = jnp.zeros((NUM_OUTPUTS, C, N), spikes.dtype)
    (_, _, count), _ = jax.lax.scan(body, (v1, v2, v2), spikes)
    return jnp.transpose(count, (1, 2, 0))


def forward_batched(params: Params, spikes: jax.Array, *, chip: Chip | None = None,
                    alpha: float = 0.9, threshold: float = 1.0) -> jax.Array:
    """Output spike rates [C, N, 2] of C weight sets."""
    counts = run_batched(params, spikes, chip=chip, alpha=alpha, threshold=threshold)
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
