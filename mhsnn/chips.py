"""What the forward pass runs on: a chip is a pytree of arrays.

A chip distorts the updated membrane potential before the threshold test (PAPER.md,
'Network'). Because its parameters are arrays, a grid of chips (say, sigma in {0, 1, 2, 3})
is one stacked array axis that ``vmap`` or broadcasting walks over: never a recompilation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp

# |u| beyond this is clipped before the cubic so float32 never overflows to inf - inf = NaN.
# The clip is exact for the LIF semantics: for u >= U every f_sigma(u) >= u >= threshold
# (spike, reset) and for u <= -U every f_sigma(u) < 0 (reset, no spike), for any sigma >= 0.
MEMBRANE_CLIP = 1.0e4


class Chip(NamedTuple):
    """Parameters of the chip's membrane non-linearity; leaves may carry leading grid axes."""

    sigma: jax.Array  # strength of f_sigma(V) = V + (sigma/2) V^2 + (sigma/6) V^3


def ideal() -> Chip:
    """The model the chip is meant to be: no distortion (sigma = 0)."""
    return Chip(sigma=jnp.float32(0.0))


def polynomial(sigma: float | jax.Array) -> Chip:
    """PAPER.md's hard non-linearity f_sigma on the membrane potential."""
    return Chip(sigma=jnp.asarray(sigma, jnp.float32))


def stack(chips: Sequence[Chip]) -> Chip:
    """Stack chips along a new leading axis (a grid axis)."""
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *chips)


def membrane(chip: Chip, u: jax.Array) -> jax.Array:
    """The chip's potential f_sigma(u) for the ideal update u; sigma broadcasts against u."""
    u = jnp.clip(u, -MEMBRANE_CLIP, MEMBRANE_CLIP)
    s = chip.sigma
    return u + (s / 2) * u**2 + (s / 6) * u**3
