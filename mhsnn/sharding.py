"""Chains across devices, on one host or many.

The chain axis of a run's state is sharded with ``jax.sharding`` over every device of the
job (with ``jax.distributed``, the devices of all processes); every other leaf is
replicated. Chains are independent, so a sharded run gives the same numbers as a
single-device run (random draws are partitionable).

Multi-host runs follow JAX's multi-controller model: every process runs the same program
on the same config, ``jax.distributed`` connects them, the compiled chunk runs SPMD over
the global mesh, and between chunks the state is gathered to every host (``to_host``) so
that process 0 alone writes checkpoints and results (``is_writer``).
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec


def initialize_distributed() -> None:
    """Join a multi-process job with ``jax.distributed.initialize``; call before any JAX work.

    On Slurm, Open MPI or TPU pods the arguments are detected; elsewhere set
    ``JAX_COORDINATOR_ADDRESS`` (host:port of process 0), ``JAX_NUM_PROCESSES`` and
    ``JAX_PROCESS_ID``. CPU processes exchange data through gloo (GPUs through NCCL).
    """
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    num = os.environ.get("JAX_NUM_PROCESSES")
    pid = os.environ.get("JAX_PROCESS_ID")
    jax.distributed.initialize(num_processes=None if num is None else int(num),
                               process_id=None if pid is None else int(pid))


def is_writer() -> bool:
    """Whether this process writes files: the only process, or process 0 of a job."""
    return jax.process_index() == 0


def chain_mesh() -> Mesh:
    """A one-axis mesh ("chains") over every device of the job."""
    return Mesh(np.array(jax.devices()), ("chains",))


def is_key(x) -> bool:
    """Whether ``x`` is an array of typed PRNG keys."""
    return isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _place(x, sharding: NamedSharding):
    """A host value, the same on every process, as a global array with ``sharding``."""
    if is_key(x):
        return jax.random.wrap_key_data(_place(jax.random.key_data(x), sharding),
                                        impl=jax.random.key_impl(x))
    if isinstance(x, jax.Array) and x.is_fully_addressable and jax.process_count() == 1:
        return jax.device_put(x, sharding)
    host = np.asarray(x)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def shard_chains(tree: Any, num_chains: int, axis: int = 1, mesh: Mesh | None = None) -> Any:
    """Place ``tree`` with axis ``axis`` (of size ``num_chains``) split across the devices.

    Leaves without that axis are replicated. With one device, or a chain count the device
    count does not divide, the tree is returned as it is (on one process; a multi-process
    job needs the chains to divide evenly and refuses otherwise).
    """
    mesh = chain_mesh() if mesh is None else mesh
    ndev = mesh.devices.size
    if ndev == 1:
        return tree
    if num_chains % ndev:
        if jax.process_count() > 1:
            raise ValueError(f"the {num_chains} chains per fold must split evenly over the "
                             f"{ndev} devices of this multi-process job")
        return tree
    spec = PartitionSpec(*([None] * axis), "chains")
    split, whole = NamedSharding(mesh, spec), NamedSharding(mesh, PartitionSpec())

    def place(x):
        if hasattr(x, "shape") and len(x.shape) > axis and x.shape[axis] == num_chains:
            return _place(x, split)
        return _place(x, whole)

    return jax.tree.map(place, tree)


def to_host(tree: Any) -> Any:
    """Every leaf as a host value on every process (NumPy; keys stay key arrays).

    Arrays that span other processes' devices are all-gathered first.
    """
    def gather(x):
        if is_key(x):
            return jax.random.wrap_key_data(gather(jax.random.key_data(x)),
                                            impl=jax.random.key_impl(x))
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            return np.asarray(multihost_utils.process_allgather(x, tiled=True))
        return np.asarray(x)

    return jax.tree.map(gather, tree)


def like(tree: Any, template: Any) -> Any:
    """``tree``'s host values placed with the shardings of ``template``'s leaves."""
    def place(x, t):
        if isinstance(t, jax.Array) and isinstance(t.sharding, NamedSharding):
            return _place(x, t.sharding)
        return x

    return jax.tree.map(place, tree, template)
