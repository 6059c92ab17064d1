"""Your own chip on iris: a NumPy LIF chip the engine knows nothing about, trained by
adaptive random-walk MH through ``mhsnn.SNNClassifier``, then 5-fold cross-validated.

    python examples/iris_chip.py [PRESENTATIONS]    (default 3e6 chip sample presentations)
"""
import sys

import numpy as np
from sklearn.datasets import load_iris
from sklearn.model_selection import cross_val_score, train_test_split

import mhsnn


def my_chip(weights, spikes):  # [C, 56] layer after layer, [T, N, 4] -> counts [C, N, 3]
    ws = [weights[:, :32].reshape(-1, 4, 8), weights[:, 32:].reshape(-1, 8, 3)]
    v, counts = [0.0, 0.0], 0.0
    for s in spikes[:, None]:  # [1, N, 4]: broadcast over the C weight sets
        for i, w in enumerate(ws):  # LIF: leak 0.9, threshold 1, membrane saturates at 1.5
            v[i] = np.minimum(0.9 * v[i] + 0.1 * (s @ w), 1.5)
            s, v[i] = v[i] >= 1, np.where(v[i] >= 1, 0.0, np.maximum(v[i], 0.0))
        counts = counts + s
    return counts


if __name__ == "__main__":
    budget = float(sys.argv[1]) if len(sys.argv) > 1 else 3e6
    X, y = load_iris(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=0)
    clf = mhsnn.SNNClassifier(chip=my_chip, hidden=(8,), method="rw_adapt",
                              presentations=budget, random_state=0)
    print("test accuracy:", clf.fit(X_train, y_train).score(X_test, y_test))
    print("chip presentations:", clf.presentations_)
    print("5-fold accuracy:", cross_val_score(clf, X, y, cv=5).round(3))
