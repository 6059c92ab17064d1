import sys
from pathlib import Path

import jax
import pytest

from mhsnn import data, posterior

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def two_fold_problem() -> posterior.Problem:
    """The first two of five stratified folds of the real data, spikes encoded with key 0."""
    ds = data.load_breast_cancer()
    return posterior.make_problem(ds, data.kfold_splits(ds.y, 5, 0)[:2], jax.random.key(0))
