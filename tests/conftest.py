import os
import sys
from pathlib import Path

# The suite is compile-bound (small shapes, many programs): XLA's lighter optimisation
# compiles faster and changes no semantics. Set before JAX is imported; the experiment
# subprocesses the tests start inherit it, so their bytes still agree with in-process runs.
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")

import jax
import pytest

from mhsnn import data, posterior

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def two_fold_problem() -> posterior.Problem:
    """The first two of five stratified folds of the real data, spikes encoded with key 0."""
    ds = data.load_breast_cancer()
    return posterior.make_problem(ds, data.kfold_splits(ds.y, 5, 0)[:2], jax.random.key(0))
