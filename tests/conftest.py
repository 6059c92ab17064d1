import os
import sys
import tempfile
from pathlib import Path

# The suite is compile-bound (small shapes, many programs): XLA's lighter optimisation
# compiles faster and changes no semantics. Set before JAX is imported; the experiment
# subprocesses the tests start inherit it, so their bytes still agree with in-process runs.
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")
# One persistent compilation cache for the session, fresh each run: the experiment
# subprocesses (kill, lock, resume tests) compile the programs the suite already compiled.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", tempfile.mkdtemp(prefix="mhsnn-jax-cache-"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")

import jax
import pytest

from mhsnn import data, posterior

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def two_fold_problem() -> posterior.Problem:
    """The first two of five stratified folds of the real data, spikes encoded with key 0."""
    ds = data.load_breast_cancer()
    return posterior.make_problem(ds, data.kfold_splits(ds.y, 5, 0)[:2], jax.random.key(0))
