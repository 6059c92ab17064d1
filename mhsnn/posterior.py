"""The SNN weight posterior of docs/paper.md on a grid of cells, as one batched computation.

Layout: a ``Problem`` stacks the data of F folds (padded to a common size with masks);
positions are [F, M, P] (P weights of the network in ``SNNSettings.sizes``) where
M = (cells per fold) x (chains per cell), and the chip's leaves are [F, M], so every chain
of every fold and sigma advances in one call.

    log L(D | W) = -MSE(rates on the chip, one-hot) / (2 v^2)
    log P(W)     = -|W|^2 / (2 p^2)

MSE is the mean over training samples and output neurons (PyTorch's MSELoss default).
Constants are dropped: MH needs only differences. The likelihood is evaluated on the chip:
MH uses its outputs, never its model.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mhsnn import chips, data, keys, likelihood, snn
from mhsnn.chips import Chip
from mhsnn.metrics import votes

PADDING_LABEL = -1


class Problem(NamedTuple):
    """Spike-encoded train and test sets of F folds, padded to common sizes."""

    train_spikes: jax.Array  # [F, T, Ntr, features]
    train_targets: jax.Array  # [F, Ntr, classes] one-hot
    train_mask: jax.Array  # [F, Ntr] 1 for real rows, 0 for padding
    test_spikes: jax.Array  # [F, T, Nte, 30]
    test_labels: jax.Array  # [F, Nte] (PADDING_LABEL on padding rows: every metric refuses it)
    test_mask: jax.Array  # [F, Nte]
    test_index: jax.Array  # [F, Nte] row of each test sample in the data set (-1: padding)

    @property
    def num_steps(self) -> int:
        return self.train_spikes.shape[1]

    @property
    def num_features(self) -> int:
        return self.train_spikes.shape[-1]

    @property
    def num_classes(self) -> int:
        return self.train_targets.shape[-1]


def _pad(rows: np.ndarray, size: int, fill=0) -> np.ndarray:
    return np.concatenate([rows, np.full((size - len(rows), *rows.shape[1:]), fill, rows.dtype)])


def make_problem(dataset: data.Dataset, splits: list[data.Split], root: jax.Array,
                 num_steps: int = 10, name: keys.Component = "problem") -> Problem:
    """Scale each split on its training rows, encode once per fold (fixed spike trains, so
    the likelihood is a deterministic function of the weights), pad and stack.

    Fold i's spike trains come from ``keys.derive(root, "encode", name, i, "train"/"test")``.
    Targets are one-hot over every class of the whole data set, so all folds agree."""
    n_train = max(len(s.train) for s in splits)
    n_test = max(len(s.test) for s in splits)
    num_classes = int(dataset.y.max()) + 1
    parts = []
    for i, split in enumerate(splits):
        X_train, X_test = data.scale_split(dataset, split)
        k_train = keys.derive(root, "encode", name, i, "train")
        k_test = keys.derive(root, "encode", name, i, "test")
        parts.append((
            np.pad(np.asarray(data.poisson_encode(k_train, X_train, num_steps)),
                   ((0, 0), (0, n_train - len(split.train)), (0, 0))),
            _pad(data.one_hot(dataset.y[split.train], num_classes), n_train),
            _pad(np.ones(len(split.train), np.float32), n_train),
            np.pad(np.asarray(data.poisson_encode(k_test, X_test, num_steps)),
                   ((0, 0), (0, n_test - len(split.test)), (0, 0))),
            _pad(dataset.y[split.test], n_test, PADDING_LABEL),
            _pad(np.ones(len(split.test), np.float32), n_test),
            np.concatenate([split.test, np.full(n_test - len(split.test), -1)]).astype(np.int32),
        ))
    return Problem(*(jnp.asarray(np.stack(field)) for field in zip(*parts)))


class SNNSettings(NamedTuple):
    """The network every chain runs: its layer sizes, neuron constants, and the likelihood's
    layout (``snn.LAYOUTS``; resolve ``snn.default_layout()`` on the host, as the
    experiments do). All static: they decide the compiled shapes."""

    alpha: float = snn.ALPHA
    threshold: float = snn.THRESHOLD
    sizes: tuple[int, ...] = snn.PAPER_NETWORK  # (features, hidden..., classes)
    layout: str = "fused"
    # The likelihood the rates enter, by name (static: it decides the compiled loss): "mse",
    # the paper's Gaussian on the rates, or "categorical", softmax(softmax_scale x rates).
    # ``lik`` is its object (``mhsnn.likelihood``), which everything else asks.
    likelihood: str = "mse"
    softmax_scale: float = 10.0
    count_range: float = 1.0  # the share of T the chip's outputs reach (estimator's probe)

    @property
    def lik(self) -> likelihood.Likelihood:
        """The likelihood object ``likelihood`` names (``mhsnn.likelihood.of``)."""
        return likelihood.of(self.likelihood, self.softmax_scale, self.count_range)


def check_network(problem: Problem, settings: SNNSettings) -> None:
    """Refuse a network whose input or output width does not fit the data."""
    sizes = settings.sizes
    if sizes[0] != problem.num_features or sizes[-1] != problem.num_classes:
        raise ValueError(f"network {'-'.join(map(str, sizes))}: the data have "
                         f"{problem.num_features} features and {problem.num_classes} classes")


def counts_on(theta: jax.Array, spikes: jax.Array, chip: Chip | chips.ExternalChip,
              settings: SNNSettings, key: jax.Array | None = None,
              active: jax.Array | None = None) -> jax.Array:
    """Output spike counts [F, M, N, O] of positions [F, M, P] on per-fold spikes.

    A noisy chip draws fresh read noise from ``key``; an ``ExternalChip`` is queried on the
    host through ``jax.pure_callback`` (one call per fold, all M weight sets at once).
    ``active`` [F, M]: an ``ExternalChip`` runs only those weight sets (the others' counts
    are 0 and cost nothing); a JAX chip computes every set regardless.
    """
    if isinstance(chip, chips.ExternalChip):
        M = theta.shape[1]

        O = settings.sizes[-1]
        mask = jnp.ones(theta.shape[:2], bool) if active is None else active

        def query(theta_f, spikes_f, fold, mask_f):
            shape = jax.ShapeDtypeStruct((M, spikes_f.shape[1], O), jnp.float32)
            return jax.pure_callback(chip.query(O), shape, theta_f, spikes_f, fold, mask_f,
                                     vmap_method="sequential")

        return jax.vmap(query)(theta, spikes, jnp.arange(theta.shape[0]), mask)
    keys = jax.random.split(key, theta.shape[0]) if chips.is_noisy(chip) else None

    def per_fold(theta_f, spikes_f, chip_f, key_f):
        return snn.counts_batched(snn.unflatten(theta_f, settings.sizes), spikes_f,
                                  chip=chip_f, alpha=settings.alpha,
                                  threshold=settings.threshold, key=key_f,
                                  layout=settings.layout)

    return _per_fold(per_fold, settings, chip, spikes.shape[2])(theta, spikes, chip, keys)


def _per_fold(fn, settings: SNNSettings, chip, num_rows: int):
    """``fn`` over the leading fold axis: ``vmap``, but a loop (``lax.map``) for the row-blocked
    layout, whose first-layer products batched over folds run 2x slower (measured)."""
    if snn.resolved_layout(settings.layout, settings.sizes, chip, num_rows) != "blocked":
        return jax.vmap(fn)
    return lambda *args: jax.lax.map(lambda a: fn(*a), args)


def mse(theta: jax.Array, problem: Problem, chip, settings: SNNSettings,
        key: jax.Array | None = None) -> jax.Array:
    """Training MSE [F, M] between output rates on the chip and one-hot labels."""
    total = summed_loss(theta, problem, chip, settings, key, ("mse", 1.0))
    return total / (problem.num_classes * jnp.sum(problem.train_mask, axis=-1, keepdims=True))


def summed_loss(theta: jax.Array, problem: Problem, chip, settings: SNNSettings,
                key: jax.Array | None, loss: tuple[str, float]) -> jax.Array:
    """Per-sample ``snn.sample_loss`` of the rates on the chip, summed over the real
    training rows, [F, M]."""
    mask = problem.train_mask
    if isinstance(chip, chips.ExternalChip):
        counts = counts_on(theta, problem.train_spikes, chip, settings, key)
        per_sample = _row_losses(counts, problem.train_targets, problem.num_steps, loss)
        return jnp.sum(per_sample * mask[:, None], axis=-1)
    else:
        keys = jax.random.split(key, theta.shape[0]) if chips.is_noisy(chip) else None

        def per_fold(theta_f, spikes_f, targets_f, mask_f, chip_f, key_f):
            return snn.sq_error_batched(snn.unflatten(theta_f, settings.sizes), spikes_f,
                                        targets_f, mask_f, chip=chip_f, alpha=settings.alpha,
                                        threshold=settings.threshold, layout=settings.layout,
                                        key=key_f, loss=loss[0], scale=loss[1])

        return _per_fold(per_fold, settings, chip, mask.shape[-1])(
            theta, problem.train_spikes, problem.train_targets, mask, chip, keys)


def row_log_likelihoods(counts: jax.Array, targets: jax.Array, num_steps: int,
                        num_rows, lik_std, settings: SNNSettings) -> jax.Array:
    """Each training row's term of ``log_likelihood`` [F, M, N] (they sum to it), from its
    output counts [F, M, N, O] and one-hot targets [F, N, O]; ``num_rows`` the real rows
    of the whole training set (the MSE's mean runs over them)."""
    lik = settings.lik
    per_sample = _row_losses(counts, targets, num_steps, lik.loss)
    return lik.row_terms(per_sample, num_rows, counts.shape[-1], lik_std)


def _row_losses(counts: jax.Array, targets: jax.Array, num_steps: int,
                loss: tuple[str, float]) -> jax.Array:
    """``snn.sample_loss`` of each row's rates, [F, M, N], from counts [F, M, N, O] and
    one-hot targets [F, N, O]."""
    rates = counts / num_steps
    O = rates.shape[-1]
    return snn.sample_loss([rates[..., k] for k in range(O)],
                           [targets[:, None, :, k] for k in range(O)], *loss)


def log_likelihood(theta, problem, chip, lik_std, settings: SNNSettings,
                   key: jax.Array | None = None) -> jax.Array:
    """[F, M]: the log likelihood ``settings.lik`` gives the rates on the chip: -MSE / (2 v^2)
    (the paper's, "mse"), or the categorical sum_n log softmax(s rates_n)_{y_n}
    ("categorical"; ``lik_std`` unused)."""
    lik = settings.lik
    total = summed_loss(theta, problem, chip, settings, key, lik.loss)
    rows = jnp.sum(problem.train_mask, axis=-1, keepdims=True)
    return lik.log_likelihood(total, rows, problem.num_classes, lik_std)


def batch_log_likelihood(theta, batch: Problem, rows: jax.Array, chip, lik_std,
                         settings: SNNSettings, key: jax.Array | None = None) -> jax.Array:
    """An unbiased estimate [F, M] of ``log_likelihood`` on every training row from a batch
    of them drawn uniformly without replacement (``rows`` [F]: each fold's real rows). The
    MSE likelihood averages over rows, so the batch's is already unbiased; the categorical
    one sums, so it is scaled by rows / batch size."""
    lik = log_likelihood(theta, batch, chip, lik_std, settings, key)
    factor = settings.lik.batch_factor(rows, jnp.sum(batch.train_mask, axis=-1))
    return lik * jnp.asarray(factor)[..., None]


def predictive(counts: jax.Array, settings: SNNSettings, num_steps: int) -> jax.Array:
    """Class probabilities [..., O] of one weight set from its output counts: the smoothed
    count share (``metrics.probabilities``) under the MSE likelihood, the likelihood's own
    softmax(s counts / T) under the categorical one."""
    return settings.lik.predictive(counts, num_steps)


def log_prior(theta: jax.Array, prior_std) -> jax.Array:
    """Gaussian N(0, p^2 I) up to a constant, [...]."""
    return -0.5 * jnp.sum(theta**2, axis=-1) / prior_std**2


def test_probabilities(theta, problem, chip, settings: SNNSettings,
                       key: jax.Array | None = None) -> jax.Array:
    """Predictive class probabilities [F, M, Nte, O] on the test set (see metrics)."""
    return predictive(counts_on(theta, problem.test_spikes, chip, settings, key), settings,
                      problem.num_steps)


def test_predictive(theta, problem, chip, settings: SNNSettings,
                    key: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    """(class probabilities, one-hot decisions) [F, M, Nte, O] of one test query: summed
    over posterior draws they give the BMA and the vote fraction."""
    counts = counts_on(theta, problem.test_spikes, chip, settings, key)
    return predictive(counts, settings, problem.num_steps), votes(counts)
