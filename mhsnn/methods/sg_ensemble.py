"""A deep ensemble (Lakshminarayanan et al. 2017) of SG-in-the-loop networks: J members,
each started from its own draw of SG's tuned initialisation and trained by Adam on the
surrogate gradient, the chip's output counts forward and the ideal model's derivative back
(straight-through at the output, as SG in the loop on a host chip). The baseline Bayesian
deep learning is judged against, at equal presentations.

A step is one Adam step of every member on one random batch of B = min(batch, n) rows,
the same rows for all members (one chip query of J weight sets); it costs J B
presentations. Members differ by their initialisation, the source of a deep ensemble's
diversity. The ensemble deploys its members.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from mhsnn import snn
from mhsnn.methods.base import Algorithm, Entry, Info, Target
from mhsnn.sgd import SGHyper, init_theta


class Hyper(NamedTuple):  # SG's tuned settings (the config's sg.*, results/tuning/sg_tuning.csv)
    learning_rate: float = 0.03  # Adam
    batch: int = 32  # rows per step, every member the same rows
    init_mean1: float = 0.3  # hidden layers' weights ~ N(init_mean1, init_std1^2)
    init_std1: float = 0.3
    init_mean2: float = 4.0  # output layer's weights ~ N(init_mean2, init_std2^2)
    init_std2: float = 2.0


class State(NamedTuple):
    theta: jax.Array  # [J, P]
    opt_state: Any  # Adam's, per member
    failed: jax.Array  # [J] a non-finite loss or gradient was met: the member stopped


def _sg(hyper: Hyper) -> SGHyper:
    return SGHyper(hyper.learning_rate, 1, hyper.batch, hyper.init_mean1, hyper.init_std1,
                   hyper.init_mean2, hyper.init_std2)


def draw_start(key: jax.Array, target: Target, hyper: Hyper) -> jax.Array:
    """Each member's own SG initialisation, [J, P]."""
    sizes = target.settings.sizes
    return jax.vmap(lambda k: init_theta(k, _sg(hyper), sizes))(
        jax.random.split(key, target.J))


def build(target: Target, hyper: Hyper) -> Algorithm:
    J, n, B = target.J, target.n, min(hyper.batch, target.n)
    settings, optimizer = target.settings, optax.adam(hyper.learning_rate)
    per_step = cost(J, n, hyper)

    def loss(theta, spikes, chip_rates, targets):  # one member's batch loss
        model = snn.forward(snn.unflatten(theta, settings.sizes), spikes,
                            alpha=settings.alpha, threshold=settings.threshold)
        rates = model + jax.lax.stop_gradient(chip_rates - model)  # chip forward
        return settings.lik.mean_loss(rates, targets, jnp.ones(targets.shape[0]))

    grads = jax.vmap(jax.value_and_grad(loss), in_axes=(0, None, 0, None))

    def init(key, theta0):
        return State(theta0, jax.vmap(optimizer.init)(theta0), jnp.zeros(J, bool))

    def step(key, state, clock):
        k_rows, k_chip = jax.random.split(key)
        rows = jax.random.choice(k_rows, n, (B,), replace=False)
        chip_rates = target.rates(state.theta, rows, k_chip)  # [J, B, O], one query
        values, g = grads(state.theta, target.spikes[:, rows], chip_rates,
                          target.targets[rows])
        updates, opt_state = jax.vmap(optimizer.update)(g, state.opt_state, state.theta)
        theta = optax.apply_updates(state.theta, updates)
        failed = state.failed | ~(jnp.isfinite(values) & jnp.all(jnp.isfinite(theta), -1))
        keep = lambda new, old: jnp.where(  # noqa: E731 - a failed member stops updating
            failed.reshape((J,) + (1,) * (new.ndim - 1)), old, new)
        return State(keep(theta, state.theta), jax.tree.map(keep, opt_state, state.opt_state),
                     failed), Info(jnp.asarray(per_step), jnp.zeros(J))

    return Algorithm(init, step, lambda state, steps: per_step, lambda state: state.theta,
                     max(1, int(target.budget // per_step)),
                     report=lambda state: {"failed_members": state.failed.sum()})


def cost(J: int, n: int, hyper: Hyper) -> int:
    return J * min(hyper.batch, n)


ENTRY = Entry("sg_ensemble", "ensemble", False, True,
              "deep ensemble: J SG-in-the-loop networks, each from its own SG initialisation",
              build, cost, deploys="ensemble", traces="nothing", hyper=Hyper,
              draw_start=draw_start)
