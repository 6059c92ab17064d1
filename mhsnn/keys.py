"""Every random key of a run, derived from the root key by one function with named purposes.

With JAX's partitionable Threefry, ``split(k)[i] == fold_in(k, i)``: a key handed to one
consumer that splits it can equal a key another consumer got by ``fold_in``, and the two
draws are then the same numbers. So every key a run uses comes from ``derive(root, *path)``,
whose path starts with a purpose from ``PURPOSES`` and whose components are tagged by kind
(names and integers never fold in the same value), with tags far from the small integers
consumers split into. The tree of an experiment:

    root = jax.random.key(seed)
    derive(root, "encode", problem, fold, "train" | "test")  Poisson spike trains of a fold
    derive(root, "method", problem, name)                    a trainer's run (init, proposals)
    derive(root, "evaluate", problem, name)                  test queries of a noisy chip
    derive(root, "chip", kind, index)                        chip instances (mismatch draws)

``problem`` names the data problem (``"sweep"``, ``"n_train", 40`` ...); a consumer may split
its own key freely, since no other purpose lives below it.
"""

from __future__ import annotations

import zlib

import jax

PURPOSES = ("encode", "method", "evaluate", "chip")
_NAME_TAG, _INT_TAG = 0x6D68_7301, 0x6D68_7302  # far from the indices consumers split into

Component = str | int


def _fold(key: jax.Array, part: Component) -> jax.Array:
    if isinstance(part, bool) or not isinstance(part, (str, int)):
        raise TypeError(f"key path component {part!r}: expected a name or an integer")
    if isinstance(part, str):
        return jax.random.fold_in(jax.random.fold_in(key, _NAME_TAG),
                                  zlib.crc32(part.encode()))
    if not 0 <= part < 2**32:
        raise ValueError(f"key path component {part}: integers must be in [0, 2^32)")
    return jax.random.fold_in(jax.random.fold_in(key, _INT_TAG), part)


def derive(root: jax.Array, purpose: str, *path: Component) -> jax.Array:
    """The key of ``purpose`` at ``path`` below ``root`` (see the module docstring)."""
    if purpose not in PURPOSES:
        raise ValueError(f"key purpose {purpose!r}: expected one of {', '.join(PURPOSES)}")
    key = _fold(root, purpose)
    for part in path:
        key = _fold(key, part)
    return key
