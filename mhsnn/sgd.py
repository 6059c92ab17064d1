"""Surrogate-gradient baseline: optax Adam through the same ``snn`` scan.

Two modes (docs/paper.md, 'The methods'):
  offline  forward and gradient through the ideal model (sigma = 0); the trained weights
           are then deployed on the chip and tested there.
  in_loop  every forward pass runs on the chip; the gradient flows through the ideal model
           (values from the chip, derivative from the model, as hxtorch on BrainScaleS-2).

Every cell (fold x sigma x seed) trains at once under ``vmap``; epochs and minibatches are
``lax.scan``s and the shuffles are drawn from keys, so nothing recompiles per fold or sigma.
A cell whose loss or gradient turns non-finite stops updating and is flagged ``failed``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from mhsnn import chips, posterior, runs, snn
from mhsnn.chips import Chip


class SGHyper(NamedTuple):
    """Optimiser and initialisation: every hidden layer's weights ~ N(init_mean1, init_std1^2),
    the output layer's ~ N(init_mean2, init_std2^2)."""

    learning_rate: float = 1e-3
    epochs: int = 100
    batch_size: int = 32
    init_mean1: float = 0.0
    init_std1: float = 0.1
    init_mean2: float = 0.0
    init_std2: float = 0.1


# The paper's settings taken literally (Adam at 1e-3, small zero-mean weights): the
# "*_literal" baseline rows; they leave the network silent (docs/paper.md).
PAPER_LITERAL = {"learning_rate": 1e-3, "init_mean1": 0.0, "init_std1": 0.1, "init_mean2": 0.0,
                 "init_std2": 0.1}


class TrainState(NamedTuple):
    theta: jax.Array  # [P]
    opt_state: optax.OptState
    key: jax.Array
    epoch: jax.Array
    failed: jax.Array  # bool: a non-finite loss or gradient was met; updates stopped
    last_loss: jax.Array  # mean training loss of the last epoch


def init_theta(key: jax.Array, hyper: SGHyper,
               sizes: tuple[int, ...] = snn.PAPER_NETWORK,
               start: jax.Array | None = None) -> jax.Array:
    """Initial weights [P]; layer i draws from ``split(key, L)[i]``; around ``start`` [P]
    (``snn.around``, each layer's own spread) when one is given."""
    L = len(sizes) - 1
    params, spreads = {}, {}
    for i, k in enumerate(jax.random.split(key, L)):
        mean, std = ((hyper.init_mean2, hyper.init_std2) if i == L - 1
                     else (hyper.init_mean1, hyper.init_std1))
        noise = jax.random.normal(k, (sizes[i], sizes[i + 1]))
        params[f"w{i + 1}"] = mean + std * noise
        spreads[f"w{i + 1}"] = std * noise
    if start is not None:
        return snn.around(start, 1.0, snn.flatten(spreads))
    return snn.flatten(params)


def batch_loss(theta, spikes, targets, mask, chip: Chip, in_loop: bool,
               settings: posterior.SNNSettings, key: jax.Array | None = None) -> jax.Array:
    """The mean loss of ``settings.lik`` over the real rows of a minibatch, the same
    likelihood as MH's: the MSE of the output rates to one-hot (mean over rows, classes), or
    the cross-entropy of softmax(s rates) (mean over rows).

    ``key`` draws a noisy chip's read noise for this query."""
    if isinstance(chip, chips.ExternalChip):
        rates = _external_in_loop(theta, spikes, chip, settings)
    else:
        rates = snn.forward(snn.unflatten(theta, settings.sizes), spikes, chip=chip,
                            alpha=settings.alpha, threshold=settings.threshold,
                            in_loop=in_loop, key=key if chips.is_noisy(chip) else None)
    return settings.lik.mean_loss(rates, targets, mask)


def _external_in_loop(theta, spikes, chip: chips.ExternalChip,
                      settings: posterior.SNNSettings) -> jax.Array:
    """Output rates [N, O] from an ``ExternalChip`` with the ideal model's derivative: the
    chip has no JAX model, so the chip's value replaces the model's at the output (a
    straight-through estimate), where a JAX chip replaces it in every layer."""
    model = snn.forward(snn.unflatten(theta, settings.sizes), spikes, alpha=settings.alpha,
                        threshold=settings.threshold)
    counts = posterior.counts_on(jax.lax.stop_gradient(theta)[None, None],
                                 jax.lax.stop_gradient(spikes)[None], chip, settings)[0, 0]
    return model + jax.lax.stop_gradient(counts / spikes.shape[0] - model)


def make_trainer(hyper: SGHyper, in_loop: bool, settings: posterior.SNNSettings,
                 epochs_per_chunk: int, start: jax.Array | None = None
                 ) -> tuple[Callable, Callable]:
    """(init, advance) for one cell; vmap both over cells.

    init(key) -> TrainState; advance(state, spikes [T, N, F], targets [N, O],
    mask [N], chip) -> TrainState after ``epochs_per_chunk`` more epochs (no-ops past the end).
    """
    optimizer = optax.adam(hyper.learning_rate)

    def init(key):
        k_init, k_run = jax.random.split(key)
        theta = init_theta(k_init, hyper, settings.sizes, start)
        return TrainState(theta, optimizer.init(theta), k_run, jnp.zeros((), jnp.int32),
                          jnp.zeros((), bool), jnp.zeros(()))

    def epoch(state: TrainState, spikes, targets, mask, chip) -> TrainState:
        n = mask.shape[0]
        num_batches = -(-n // hyper.batch_size)
        key, k_perm = jax.random.split(state.key)
        order = jax.random.permutation(k_perm, n)
        order = jnp.concatenate([order, jnp.zeros(num_batches * hyper.batch_size - n, order.dtype)])
        valid = jnp.arange(num_batches * hyper.batch_size) < n
        order = order.reshape(num_batches, hyper.batch_size)
        valid = valid.reshape(num_batches, hyper.batch_size)
        grad_fn = jax.value_and_grad(batch_loss)

        def minibatch(carry, batch):
            theta, opt_state, failed = carry
            idx, ok, b = batch
            loss, grad = grad_fn(theta, spikes[:, idx], targets[idx], mask[idx] * ok, chip,
                                 in_loop, settings, jax.random.fold_in(k_perm, b))
            updates, new_opt = optimizer.update(grad, opt_state, theta)
            new_theta = optax.apply_updates(theta, updates)
            failed = failed | ~(jnp.isfinite(loss) & jnp.all(jnp.isfinite(grad))
                                & jnp.all(jnp.isfinite(new_theta)))
            theta = jnp.where(failed, theta, new_theta)
            opt_state = jax.tree.map(lambda new, old: jnp.where(failed, old, new), new_opt,
                                     opt_state)
            return (theta, opt_state, failed), loss

        (theta, opt_state, failed), losses = jax.lax.scan(
            minibatch, (state.theta, state.opt_state, state.failed),
            (order, valid, jnp.arange(num_batches)))
        return TrainState(theta, opt_state, key, state.epoch + 1, failed, jnp.mean(losses))

    def advance(state, spikes, targets, mask, chip):
        def body(state, _):
            state = jax.lax.cond(state.epoch < hyper.epochs,
                                 lambda s: epoch(s, spikes, targets, mask, chip), lambda s: s,
                                 state)
            return state, None

        return jax.lax.scan(body, state, None, length=epochs_per_chunk)[0]

    return init, advance


def grid_trainer(key: jax.Array, problem: posterior.Problem, chip: Chip, hyper: SGHyper,
                 in_loop: bool, settings: posterior.SNNSettings,
                 epochs_per_chunk: int = 10, start: jax.Array | None = None
                 ) -> tuple[TrainState, Callable]:
    """(initial state, jitted advance) training every cell of the grid at once.

    Chip leaves [F, M] give M cells per fold (sigma x seed). Offline mode trains on the
    ideal model whatever the chip; ``advance`` runs ``epochs_per_chunk`` more epochs.
    ``start`` [P]: every cell starts around these weights (``init_theta``).
    """
    posterior.check_network(problem, settings)
    init, advance = make_trainer(hyper, in_loop, settings, epochs_per_chunk, start)
    F, M = chips.grid_shape(chip)
    keys = jax.random.split(key, F * M).reshape(F, M)
    state = jax.jit(jax.vmap(jax.vmap(init)))(keys)
    train_chip = chip if in_loop else chips.broadcast(chips.ideal(), (F, M))
    if isinstance(train_chip, chips.ExternalChip):  # a host object, not an array: closed over
        advance = functools.partial(_advance_on, advance, train_chip)
        chip_axis = None
    else:
        chip_axis = 0
    step = jax.jit(jax.vmap(jax.vmap(advance, in_axes=(0, None, None, None, chip_axis)),
                            in_axes=(0, 0, 0, 0, chip_axis)))

    def advance_grid(state: TrainState) -> TrainState:
        return step(state, problem.train_spikes, problem.train_targets, problem.train_mask,
                    None if chip_axis is None else train_chip)

    return state, advance_grid


def _advance_on(advance, chip, state, spikes, targets, mask, _):
    return advance(state, spikes, targets, mask, chip)


def train_grid(key: jax.Array, problem: posterior.Problem, chip: Chip, hyper: SGHyper,
               in_loop: bool, settings: posterior.SNNSettings, epochs_per_chunk: int = 10,
               on_chunk: Callable[[TrainState], None] | None = None) -> TrainState:
    """Train every cell of the grid to the end (see ``grid_trainer``) through the one chunk
    driver (``runs.run_stage``, in memory); ``on_chunk`` sees the (host) state after each
    chunk. Returns the final state on the host."""
    state, advance = grid_trainer(key, problem, chip, hyper, in_loop, settings, epochs_per_chunk)
    return runs.run_stage(None, "sg", lambda: state, advance,
                          lambda s: int(s.epoch.min()) >= hyper.epochs, lambda s: s, on_chunk)


def deployed_probabilities(theta: jax.Array, problem: posterior.Problem, chip,
                           settings: posterior.SNNSettings, key: jax.Array) -> jax.Array:
    """Test probabilities [F, M, Nte, O] of trained weights [F, M, P] deployed on the chip;
    ``key`` (the tree's "evaluate" key) draws a noisy chip's read noise. Compiled once per
    shape: problem, chip and key are traced, so calls in a loop reuse the compilation."""
    return _test_probabilities(theta, problem, chip, settings, key)


_test_probabilities = jax.jit(posterior.test_probabilities, static_argnums=(3,))

