"""Chains across all local devices: the chain axis of a run's state is sharded with
``jax.sharding``; every other leaf is replicated. Chains are independent, so a sharded run
gives the same numbers as a single-device run (random draws are partitionable)."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec


def chain_mesh() -> Mesh:
    """A one-axis mesh ("chains") over every local device."""
    return Mesh(np.array(jax.local_devices()), ("chains",))


def shard_chains(tree: Any, num_chains: int, axis: int = 1, mesh: Mesh | None = None) -> Any:
    """Place ``tree`` with axis ``axis`` (of size ``num_chains``) split across the devices.

    Leaves without that axis are replicated. With one device, or a chain count the device
    count does not divide, the tree is returned as it is.
    """
    mesh = chain_mesh() if mesh is None else mesh
    ndev = mesh.devices.size
    if ndev == 1 or num_chains % ndev:
        return tree
    spec = PartitionSpec(*([None] * axis), "chains")
    split, whole = NamedSharding(mesh, spec), NamedSharding(mesh, PartitionSpec())

    def place(x):
        if hasattr(x, "shape") and len(x.shape) > axis and x.shape[axis] == num_chains:
            return jax.device_put(x, split)
        return jax.device_put(x, whole)

    return jax.tree.map(place, tree)
