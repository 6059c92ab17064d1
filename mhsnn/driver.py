"""The one driver of the registry's driven methods (``mhsnn.methods``): any ``Algorithm``
run to a budget of chip presentations, with snapshots, progress and checkpoints.

Before each step it asks the method what the step can cost at most
(``Algorithm.next_cost``) and runs it only if that fits (a host chip must never be queried
past the budget); it counts the presentations each step reports (``Info.presentations``),
keeps a snapshot of the positions when the step says so (``Info.keep``) or, by default,
every ``thin`` steps over the second half of the steps the budget buys, and runs in
chunks through ``runs.run_stage`` (progress lines, checkpoints, resume, SIGTERM).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mhsnn import runs
from mhsnn.methods.base import Algorithm, Clock, Target, kept, thinning


class DriverState(NamedTuple):
    key: jax.Array
    inner: Any  # the method's state
    used: jax.Array  # chip presentations so far
    step: jax.Array  # steps run
    draws: jax.Array  # [D, J, P] ring of snapshots
    draws_lp: jax.Array  # [D, J]
    stored: jax.Array  # snapshots written
    accepted: jax.Array  # accepted moves (samplers), for the acceptance rate
    moves: jax.Array
    marked: jax.Array  # [K, J, P] the positions when the presentations were last <= mark k
    marked_used: jax.Array  # [K] the presentations then (0: no step yet)


def setup(algorithm: Algorithm, key: jax.Array, target: Target,
          marks: Sequence[float] = ()):
    """(initial state, jitted advance(state, steps), done(host state)) of ``algorithm``;
    ``marks``: budgets at which to keep the positions (the last step within each)."""
    D, J, P = target.draws, target.J, target.P
    total = target.budget
    half, thin = thinning(algorithm.steps, D)
    marks = jnp.asarray(np.floor(np.asarray(marks, np.float64)), jnp.int32).reshape(-1)
    K = marks.shape[0]
    state0 = DriverState(key, None, jnp.asarray(algorithm.first_cost, jnp.int32),
                         jnp.zeros((), jnp.int32), jnp.zeros((D, J, P), jnp.float32),
                         jnp.zeros((D, J), jnp.float32), jnp.zeros((), jnp.int32),
                         jnp.zeros((), jnp.float32), jnp.zeros((), jnp.float32),
                         jnp.zeros((K, J, P), jnp.float32), jnp.zeros(K, jnp.int32))

    def stepped(state: DriverState) -> DriverState:
        key, k = jax.random.split(state.key)
        inner, info = algorithm.step(k, state.inner, Clock(state.step, state.used))
        keep = kept(state.step, half, thin) if info.keep is None else info.keep
        slot = state.stored % D
        positions = algorithm.positions(inner)
        used = state.used + jnp.asarray(info.presentations).astype(jnp.int32)
        within = used <= marks  # [K]
        return DriverState(
            key, inner, used,
            state.step + 1, jnp.where(keep, state.draws.at[slot].set(positions), state.draws),
            jnp.where(keep, state.draws_lp.at[slot].set(info.logdensity), state.draws_lp),
            state.stored + keep.astype(jnp.int32), state.accepted + info.accepted,
            state.moves + info.moves,
            jnp.where(within[:, None, None], positions, state.marked),
            jnp.where(within, used, state.marked_used))

    def one(state: DriverState, _):
        # a step past the budget must not run at all: a host chip would be queried
        ok = state.used + algorithm.next_cost(state.inner, state.step) <= total
        return jax.lax.cond(ok, stepped, lambda s: s, state), None

    def advance(state, steps):
        return jax.lax.scan(one, state, None, length=steps)[0]

    def done(host) -> bool:
        return int(host.used) + int(algorithm.next_cost(host.inner, int(host.step))) > total

    return state0, jax.jit(advance, static_argnums=1), done


def run(name: str, algorithm: Algorithm, key: jax.Array, target: Target, theta0: jax.Array,
        init_key: jax.Array, stages: runs.Stages | None, progress: bool,
        chunks: int, marks: Sequence[float] = ()) -> dict:
    """Run ``algorithm`` from ``theta0`` [J, P] (methods tempered from their prior ignore
    it) to its budget; host arrays: the kept snapshots (``draws`` [D', J, P],
    ``draws_lp``), ``used``, ``steps``, ``accepted``, ``moves``, the ``final`` positions,
    the positions at each of ``marks`` (``marked`` [K, J, P], ``marked_used`` [K]) and the
    method's own report."""
    state0, advance, done = setup(algorithm, key, target, marks)
    chunk = max(1, -(-algorithm.steps // chunks))

    def report(host):
        print(f"[{name}] {int(host.used):,}/{int(target.budget):,} presentations",
              file=sys.stderr, flush=True)

    def finish(host):
        stored = min(int(host.stored), host.draws.shape[0])
        return {"draws": np.asarray(host.draws)[:stored],
                "draws_lp": np.asarray(host.draws_lp)[:stored], "used": np.asarray(host.used),
                "steps": np.asarray(host.step), "accepted": np.asarray(host.accepted),
                "moves": np.asarray(host.moves),
                "final": np.asarray(algorithm.positions(host.inner)),
                "marked": np.asarray(host.marked), "marked_used": np.asarray(host.marked_used),
                **{k: np.asarray(v) for k, v in algorithm.report(host.inner).items()}}

    def start():
        return state0._replace(inner=algorithm.init(init_key, theta0))

    return runs.run_stage(stages, name, start, lambda s: advance(s, chunk), done, finish,
                          report if progress else None)
