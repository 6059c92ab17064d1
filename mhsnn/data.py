"""Data: the data sets, leak-free splits and scaling, Poisson spike encoding.

Everything here runs on the host with NumPy/scikit-learn except the encoder, which is
a pure JAX function of a key.
"""

from __future__ import annotations

import csv
import difflib
import zipfile
from pathlib import Path
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
    (breast cancer: F = 30, 0 = malignant, 1 = benign). ``classes``: a user file's label
    values in sorted order (``y == k`` is ``classes[k]``); None for the built-in sets."""

    X: np.ndarray
    y: np.ndarray
    classes: tuple | None = None


class Split(NamedTuple):
    """Row indices of one train/test split."""

    train: np.ndarray
    test: np.ndarray


MAX_FEATURES = 10_000
LABEL_COLUMN = "label"  # the label column of a user's .csv file


def load(name_or_path: str | Path = "breast_cancer", label: str = LABEL_COLUMN) -> Dataset:
    """A data set: a scikit-learn one by name (``BUILTIN``, shipped with it: no network), or a
    user's file.

    - ``.npz`` with arrays ``X`` [N, F] (numbers) and ``y`` [N] (class labels);
    - ``.csv`` with a header row; the column named ``label`` (the argument) holds the class
      labels, every other column is a numeric feature.

    A file's labels may be any values, strings too: they are mapped to 0 .. K-1 in sorted
    order and kept in ``Dataset.classes``; K >= 2. Anything else is refused with a
    ``ValueError`` of one line naming the file and what is wrong (a non-numeric feature
    value: its line and column).
    """
    if isinstance(name_or_path, str) and name_or_path in BUILTIN:
        raw = BUILTIN[name_or_path]()
        return check_dataset(Dataset(X=raw.data.astype(np.float32),
                                     y=raw.target.astype(np.int32)))
    path = Path(name_or_path)
    if path.suffix not in (".npz", ".csv"):
        raise ValueError(f"data {str(name_or_path)!r}: not a built-in data set "
                         f"({', '.join(BUILTIN)}) nor a .npz or .csv file")
    if not path.is_file():
        raise ValueError(f"data file {path}: no such file")
    try:
        X, labels = _read_npz(path) if path.suffix == ".npz" else _read_csv(path, label)
        classes, y = _classes(labels)
        return check_dataset(Dataset(X, y, classes))
    except ValueError as err:
        raise ValueError(f"data file {path}: {err}") from None
    except (OSError, EOFError, zipfile.BadZipFile, UnicodeDecodeError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"data file {path}: cannot be read ({reason})") from None


def _numeric(values: np.ndarray, what: str) -> np.ndarray:
    if values.dtype == object or values.dtype.kind in "USV":
        try:
            return np.asarray(values, np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{what} holds non-numeric values") from None
    if values.dtype.kind not in "biuf":
        raise ValueError(f"{what} holds non-numeric values ({values.dtype})")
    return values.astype(np.float64)


def _classes(labels: np.ndarray) -> tuple[tuple, np.ndarray]:
    """Label values -> (the classes in sorted order, indices 0 .. K-1). Labels that all
    read as integers sort as numbers (2 before 10), others as strings."""
    labels = np.asarray(labels)
    if labels.dtype.kind in "OUS":
        text = np.char.strip(labels.astype(str))
        if len(text) and all(_is_int(v) for v in text):
            labels = np.array([int(float(v)) for v in text])
        else:
            labels = text
    elif labels.dtype.kind == "f":
        if not np.all(np.isfinite(labels)):
            raise ValueError("labels hold NaN or infinite values")
        if not np.all(labels == np.round(labels)):
            raise ValueError("labels are non-integer numbers; give class labels "
                             "(integers or strings)")
        labels = labels.astype(np.int64)
    classes, y = np.unique(labels, return_inverse=True)
    return tuple(c.item() for c in classes), y.astype(np.int64)


def _is_int(v: str) -> bool:
    return _is_float(v) and float(v) == round(float(v))


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        missing = [k for k in ("X", "y") if k not in z.files]
        if missing:
            raise ValueError(f"missing array(s) {', '.join(missing)} (has {', '.join(z.files)})")
        X, y = z["X"], z["y"]
    if X.ndim != 2:
        raise ValueError(f"X has shape {X.shape}, expected [N, F]")
    return _numeric(X, "X"), np.asarray(y)


def _read_csv(path: Path, label: str) -> tuple[np.ndarray, np.ndarray]:
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    rows = [r for r in rows if r]
    if len(rows) < 2:
        raise ValueError("needs a header row and at least one data row")
    header = [h.strip() for h in rows[0]]
    if label not in header:
        raise ValueError(f"no column named {label!r} in the header{_nearest(label, header)} "
                         f"(columns: {', '.join(header)}; set data.label)")
    for i, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise ValueError(f"line {i} has {len(row)} fields, the header {len(header)}")
    body = np.array(rows[1:], dtype=object)
    at = header.index(label)
    features = np.delete(body, at, axis=1)
    names = [h for i, h in enumerate(header) if i != at]
    missing = [(i, j) for i, row in enumerate(features) for j, v in enumerate(row)
               if v.strip().lower() in _MISSING]
    if missing:
        cols = sorted({j for _, j in missing})
        raise ValueError(f"{len(missing)} missing value(s) in column(s) "
                         f"{', '.join(repr(names[j]) for j in cols)} (first: line "
                         f"{missing[0][0] + 2}); drop or fill those rows first")
    try:
        X = np.array([[float(v) for v in row] for row in features])
    except ValueError:
        line, col = next((i, j) for i, row in enumerate(features) for j, v in enumerate(row)
                         if not _is_float(v))
        raise ValueError(f"line {line + 2}, column {names[col]!r}: non-numeric feature value "
                         f"{features[line, col].strip()!r}") from None
    empty = [str(v) for v in body[:, at] if str(v).strip().lower() in _MISSING]
    if empty:
        raise ValueError(f"{len(empty)} missing label(s) in column {label!r}; drop those rows")
    return X.reshape(len(rows) - 1, len(header) - 1), body[:, at].astype(str)


# What a CSV writer leaves for a missing value (pandas' to_csv writes "" for NaN).
_MISSING = ("", "nan", "na", "n/a", "null", "none", "?")


def _nearest(name: str, names: list[str]) -> str:
    """", did you mean 'X'?" for the closest column name (case-insensitive), or nothing."""
    close = difflib.get_close_matches(name.lower(), [n.lower() for n in names], n=1, cutoff=0.6)
    if not close:
        return ""
    return f"; did you mean {names[[n.lower() for n in names].index(close[0])]!r}?"


def feature_error(X, err: Exception) -> ValueError:
    """scikit-learn's error for features it cannot read, naming the column: its index and,
    for a DataFrame, its name (``SNNClassifier.fit`` and ``predict`` raise this)."""
    columns = list(getattr(X, "columns", []))
    values = np.asarray(X, dtype=object)
    if values.ndim != 2:
        return ValueError(str(err))

    def name(j):
        return f"column {j}" + (f" ({columns[j]!r})" if columns else "")

    for j in range(values.shape[1]):  # non-numeric first: float() of those would fail below
        bad = [v for v in values[:, j] if not _is_number(v)]
        if bad:
            return ValueError(f"X {name(j)}: non-numeric value {bad[0]!r} ({len(bad)} row(s)); "
                              "encode or drop that column")
    for j in range(values.shape[1]):
        nan = [i for i, v in enumerate(values[:, j]) if not np.isfinite(float(v))]
        if nan:
            return ValueError(f"X {name(j)}: {len(nan)} missing (NaN) or infinite value(s) "
                              f"(first at row {nan[0]}); drop or impute them first")
    return ValueError(str(err))


def _is_number(v) -> bool:
    try:
        float(v)
    except (TypeError, ValueError):
        return False
    return True


def _is_float(v: str) -> bool:
    try:
        float(v)
    except ValueError:
        return False
    return True


def load_breast_cancer() -> Dataset:
    """The 569-sample Wisconsin diagnostic set as shipped with scikit-learn (no network)."""
    return load("breast_cancer")


def check_dataset(data: Dataset) -> Dataset:
    """Refuse data the network cannot take: wrong shape, non-finite features, bad labels."""
    X, y = np.asarray(data.X), np.asarray(data.y)
    if X.ndim != 2 or X.shape[1] < 1 or X.shape[0] < 1:
        raise ValueError(f"data.X: shape {X.shape}, expected [N, F] with N, F >= 1")
    if X.shape[1] > MAX_FEATURES:
        raise ValueError(f"data.X: {X.shape[1]} features, at most {MAX_FEATURES:,} allowed")
    if y.shape != (X.shape[0],):
        raise ValueError(f"data.y: shape {y.shape}, expected [{X.shape[0]}] to match data.X")
    if not np.all(np.isfinite(X)):
        raise ValueError(f"data.X: {int(np.sum(~np.isfinite(X)))} NaN or infinite values")
    if y.dtype.kind not in "iu" or not np.all(y >= 0):
        raise ValueError("data.y: labels must be integer class indices 0 .. K-1")
    counts = np.bincount(y)
    if len(counts) < 2:
        raise ValueError("data.y: a single class; classification needs at least 2")
    if np.any(counts == 0):
        empty = [int(k) for k in np.flatnonzero(counts == 0)]
        raise ValueError(f"data.y: labels leave class(es) {empty} empty; use 0 .. K-1, "
                         "every class present")
    return Dataset(X=X.astype(np.float32), y=y.astype(np.int32), classes=data.classes)


def check_folds(y: np.ndarray, folds: int) -> None:
    """Stratified k-fold needs every class in every fold."""
    smallest = int(np.bincount(y).min())
    if smallest < folds:
        raise ValueError(f"folds={folds}: the smallest class has only {smallest} rows")


def n_train_range(y: np.ndarray) -> tuple[int, int]:
    """Training subset sizes a stratified split allows: every class on both sides."""
    k = len(np.bincount(y))
    return k, len(y) - k


def kfold_splits(y: np.ndarray, num_folds: int, seed: int) -> list[Split]:
    """Stratified k-fold: disjoint test folds that cover every row once, class ratios kept."""
    skf = StratifiedKFold(n_splits=num_folds, shuffle=True, random_state=seed)
    return [Split(tr, te) for tr, te in skf.split(np.zeros(len(y)), y)]


def subset_splits(y: np.ndarray, n_train: int, num_repeats: int, seed: int) -> list[Split]:
    """Stratified train subsets of size ``n_train``; each tests on all the remaining rows."""
    lo, hi = n_train_range(y)
    if not lo <= n_train <= hi:
        raise ValueError(f"n_train: {n_train} outside [{lo}, {hi}] for this data set")
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


def with_bias_input(spikes: jax.Array) -> jax.Array:
    """Spike trains [T, N, F] with an always-on channel appended, [T, N, F + 1]: its weights
    act as each first-layer neuron's bias (the engine's networks have no biases)."""
    return jnp.concatenate([spikes, jnp.ones(spikes.shape[:-1] + (1,), spikes.dtype)], -1)


def one_hot(y: np.ndarray, num_classes: int | None = None) -> np.ndarray:
    """Targets of the output rates: float32 [N, K] (K = ``num_classes``, else max(y) + 1)."""
    k = int(np.max(y)) + 1 if num_classes is None else num_classes
    return np.eye(k, dtype=np.float32)[y]
