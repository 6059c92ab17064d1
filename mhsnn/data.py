"""Data: the data sets, leak-free splits and scaling, Poisson spike encoding.

Everything here runs on the host with NumPy/scikit-learn except the encoder, which is
a pure JAX function of a key.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from sklearn import datasets
from sklearn.model_selection import StratifiedKFold, StratifiedShuffleSplit

BUILTIN = {"breast_cancer": datasets.load_breast_cancer, "iris": datasets.load_iris,
           "wine": datasets.load_wine, "digits": datasets.load_digits}


class Dataset(NamedTuple):
    """Features ``X`` float32 [N, F] and class labels ``y`` int32 [N] in 0 .. K-1
    (breast cancer: F = 30, 0 = malignant, 1 = benign)."""

    X: np.ndarray
    y: np.ndarray


class Split(NamedTuple):
    """Row indices of one train/test split."""

    train: np.ndarray
    test: np.ndarray


def load(name: str = "breast_cancer") -> Dataset:
    """A data set shipped with scikit-learn (no network): one of ``BUILTIN``."""
    if name not in BUILTIN:
        raise ValueError(f"data.name={name!r}: expected one of {', '.join(BUILTIN)}")
    raw = BUILTIN[name]()
    return check_dataset(Dataset(X=raw.data.astype(np.float32), y=raw.target.astype(np.int32)))


def load_breast_cancer() -> Dataset:
    """The 569-sample Wisconsin diagnostic set as shipped with scikit-learn (no network)."""
    return load("breast_cancer")


def check_dataset(data: Dataset) -> Dataset:
    """Refuse data the network cannot take: wrong shape, non-finite features, bad labels."""
    X, y = np.asarray(data.X), np.asarray(data.y)
    if X.ndim != 2 or X.shape[1] < 1:
        raise ValueError(f"data.X: shape {X.shape}, expected [N, F] with F >= 1")
    if y.shape != (X.shape[0],):
        raise ValueError(f"data.y: shape {y.shape}, expected [{X.shape[0]}] to match data.X")
    if not np.all(np.isfinite(X)):
        raise ValueError(f"data.X: {int(np.sum(~np.isfinite(X)))} NaN or infinite values")
    if not np.all(y >= 0):
        raise ValueError("data.y: labels must be class indices 0 .. K-1")
    return Dataset(X=X.astype(np.float32), y=y.astype(np.int32))


def kfold_splits(y: np.ndarray, num_folds: int, seed: int) -> list[Split]:
    """Stratified k-fold: disjoint test folds that cover every row once, class ratios kept."""
    skf = StratifiedKFold(n_splits=num_folds, shuffle=True, random_state=seed)
    return [Split(tr, te) for tr, te in skf.split(np.zeros(len(y)), y)]


def subset_splits(y: np.ndarray, n_train: int, num_repeats: int, seed: int) -> list[Split]:
    """Stratified train subsets of size ``n_train``; each tests on all the remaining rows."""
    if not 2 <= n_train <= len(y) - 2:
        raise ValueError(f"n_train: {n_train} outside [2, {len(y) - 2}]")
    sss = StratifiedShuffleSplit(n_splits=num_repeats, train_size=n_train, random_state=seed)
    return [Split(tr, te) for tr, te in sss.split(np.zeros(len(y)), y)]


class MinMaxScaler(NamedTuple):
    """Per-feature min and range, fitted on training rows only."""

    lo: np.ndarray
    span: np.ndarray

    @classmethod
    def fit(cls, X_train: np.ndarray) -> MinMaxScaler:
        lo, hi = X_train.min(axis=0), X_train.max(axis=0)
        # A feature constant on the training rows carries no information: map it to 0.
        span = np.where(hi > lo, hi - lo, np.inf).astype(np.float32)
        return cls(lo=lo.astype(np.float32), span=span)

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Scale to [0, 1]; rows outside the training range (test rows) are clipped."""
        return np.clip((X - self.lo) / self.span, 0.0, 1.0).astype(np.float32)


def scale_split(data: Dataset, split: Split) -> tuple[np.ndarray, np.ndarray]:
    """Training and test features in [0, 1], with the scaler fitted on the training rows."""
    scaler = MinMaxScaler.fit(data.X[split.train])
    return scaler.transform(data.X[split.train]), scaler.transform(data.X[split.test])


def poisson_encode(key: jax.Array, X01: jax.Array, num_steps: int = 10) -> jax.Array:
    """Bernoulli-per-step spike trains, time-major: float32 [T, N, F] of 0/1 with P(1) = X01."""
    X01 = jnp.asarray(X01, jnp.float32)
    u = jax.random.uniform(key, (num_steps, *X01.shape), jnp.float32)
    return (u < X01).astype(jnp.float32)


def one_hot(y: np.ndarray, num_classes: int | None = None) -> np.ndarray:
    """Targets of the output rates: float32 [N, K] (K = ``num_classes``, else max(y) + 1)."""
    k = int(np.max(y)) + 1 if num_classes is None else num_classes
    return np.eye(k, dtype=np.float32)[y]
