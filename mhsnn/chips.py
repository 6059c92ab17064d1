"""What the forward pass runs on: a chip is a pytree of arrays.

The paper's chip distorts the updated membrane potential before the threshold test with
f_sigma (PAPER.md, 'Network'). Real analog chips have more non-idealities, each a field
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
Scalar fields have shape [*grid]; per-neuron fields [*grid, 5] (3 hidden, then 2 output).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

# |u| beyond this is clipped before the cubic so float32 never overflows to inf - inf = NaN.
# The clip is exact for the LIF semantics: for u >= U every f_sigma(u) >= u >= threshold
# (spike, reset) and for u <= -U every f_sigma(u) < 0 (reset, no spike), for any sigma >= 0.
MEMBRANE_CLIP = 1.0e4
NUM_NEURONS = 5  # 3 hidden + 2 output
NEURON_FIELDS = ("tau_scale", "threshold_scale")


class Chip(NamedTuple):
    """Non-idealities of a chip; ``None`` fields are absent. Leaves may carry grid axes."""

    sigma: jax.Array  # strength of f_sigma(V) = V + (sigma/2) V^2 + (sigma/6) V^3
    tau_scale: jax.Array | None = None  # [..., 5] time constant multipliers: alpha_i = alpha**(1/m_i)
    threshold_scale: jax.Array | None = None  # [..., 5] threshold_i = threshold * scale_i
    weight_levels: jax.Array | None = None  # [...] magnitude levels per sign (0: none)
    weight_max: jax.Array | None = None  # [...] weights clipped to +-weight_max
    noise_std: jax.Array | None = None  # [...] membrane read noise per step and query
    v_max: jax.Array | None = None  # [...] membrane saturation level


def _f32(x) -> jax.Array:
    return jnp.asarray(x, jnp.float32)


def ideal() -> Chip:
    """The model the chip is meant to be: no distortion (sigma = 0)."""
    return Chip(sigma=_f32(0.0))


def polynomial(sigma: float | jax.Array, base: Chip | None = None) -> Chip:
    """PAPER.md's hard non-linearity f_sigma on the membrane potential."""
    return (ideal() if base is None else base)._replace(sigma=_f32(sigma))


def mismatch(key: jax.Array, spread: float, base: Chip | None = None) -> Chip:
    """Per-neuron time-constant and threshold multipliers 1 + spread * N(0, 1), frozen by ``key``.

    Both are floored at 0.05, so a large spread cannot give a negative time constant or a
    neuron that fires on nothing.
    """
    k_tau, k_threshold = jax.random.split(key)
    base = ideal() if base is None else base
    return base._replace(
        tau_scale=jnp.maximum(1.0 + spread * jax.random.normal(k_tau, (NUM_NEURONS,)), 0.05),
        threshold_scale=jnp.maximum(1.0 + spread * jax.random.normal(k_threshold, (NUM_NEURONS,)),
                                    0.05))


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


def stack(chips: Sequence[Chip]) -> Chip:
    """Stack chips (with the same fields present) along a new leading axis (a grid axis)."""
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *chips)


def broadcast(chip: Chip, shape: tuple[int, ...]) -> Chip:
    """Every field to the grid ``shape`` (per-neuron fields to [*shape, 5])."""
    return Chip(**{name: None if leaf is None else jnp.broadcast_to(
        leaf, (*shape, NUM_NEURONS) if name in NEURON_FIELDS else shape)
        for name, leaf in chip._asdict().items()})


def is_noisy(chip) -> bool:
    """Whether a forward pass on this chip needs a key."""
    return isinstance(chip, Chip) and chip.noise_std is not None


def membrane(chip: Chip, u: jax.Array) -> jax.Array:
    """The chip's potential f_sigma(u) for the ideal update u; sigma broadcasts against u."""
    u = jnp.clip(u, -MEMBRANE_CLIP, MEMBRANE_CLIP)
    s = chip.sigma
    return u + (s / 2) * u**2 + (s / 6) * u**3


def quantize(chip: Chip, w: jax.Array) -> jax.Array:
    """The weights as the chip stores them (unchanged when the chip does not quantise).

    ``weight_levels`` and ``weight_max`` broadcast against ``w`` (the caller shapes them).
    """
    if chip.weight_levels is None:
        return w
    levels = jnp.maximum(chip.weight_levels, 1.0)
    step = chip.weight_max / levels
    return jnp.round(jnp.clip(w, -chip.weight_max, chip.weight_max) / step) * step


@dataclass(eq=False)
class ExternalChip:
    """A black-box chip with no JAX model: any host callable, queried through
    ``jax.pure_callback`` (a NumPy simulator, or a driver for real hardware).

    ``fn(weights, spikes) -> counts``: weights float32 [C, 96] (w1 row-major, then w2),
    spikes float32 [T, N, 30] of 0/1, counts [C, N, 2] of output spikes. ``grid_shape`` is
    the (folds, chains) grid it serves. ``queries`` counts forward runs (one weight set on
    one batch of samples) and ``presentations`` sample presentations, exactly.
    """

    fn: Callable[[np.ndarray, np.ndarray], np.ndarray]
    grid_shape: tuple[int, int]
    queries: int = 0
    presentations: int = 0

    def __call__(self, weights: np.ndarray, spikes: np.ndarray) -> np.ndarray:
        weights, spikes = np.asarray(weights, np.float32), np.asarray(spikes, np.float32)
        counts = np.asarray(self.fn(weights, spikes), np.float32)
        expected = (weights.shape[0], spikes.shape[1], 2)
        if counts.shape != expected:
            raise ValueError(f"external chip returned counts of shape {counts.shape}, "
                             f"expected {expected}")
        self.queries += weights.shape[0]
        self.presentations += weights.shape[0] * spikes.shape[1]
        return counts


def grid_shape(chip: Chip | ExternalChip) -> tuple[int, ...]:
    """The (folds, chains) grid a chip serves."""
    return tuple(chip.grid_shape) if isinstance(chip, ExternalChip) else tuple(chip.sigma.shape)
