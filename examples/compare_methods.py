"""Which method for my chip? Every model-free trainer of ``mhsnn.TRAINERS`` on one chip
(the paper's polynomial non-linearity, sigma = 2) at the same budget of chip sample
presentations, 3-fold cross-validated on wine inside a scikit-learn Pipeline.

    python examples/compare_methods.py [PRESENTATIONS] [METHOD ...]
"""
import sys
import warnings

from sklearn.datasets import load_wine
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import QuantileTransformer

import mhsnn

if __name__ == "__main__":
    budget = float(sys.argv[1]) if len(sys.argv) > 1 else 2e6
    methods = sys.argv[2:] or [m for m, t in mhsnn.TRAINERS.items() if not t.uses_model]
    X, y = load_wine(return_X_y=True)
    for method in methods:
        clf = make_pipeline(QuantileTransformer(n_quantiles=50), mhsnn.SNNClassifier(
            chip=mhsnn.chips.polynomial(2.0), hidden=(8,), method=method,
            presentations=budget, chains=8, random_state=0))
        with warnings.catch_warnings():  # short runs: the R-hat warning is expected
            warnings.simplefilter("ignore")
            scores = cross_val_score(clf, X, y, cv=3)
        print(f"{method:14s} accuracy {scores.mean():.3f} +- {scores.std():.3f}")
