import os
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import jax, jax.numpy as jnp, numpy as np
from mhsnn import bayes, chips, data, posterior
from mhsnn.mcmc.sample import Schedule, run_chunks
from mhsnn.sharding import shard_chains
assert jax.device_count() == 4, jax.devices()
ds = data.load_breast_cancer()
problem = posterior.make_problem(ds, data.kfold_splits(ds.y, 5, 0)[:2], jax.random.key(0))
chip = chips.Chip(sigma=jnp.tile(jnp.repeat(jnp.array([0.0, 3.0]), 4), (2, 1)))
hyper = bayes.MHHyper(0.5, 0.02, 5.0, 0.0, 0.5)
schedule = Schedule.with_draws(60, None, 5)
out = []
for sharded in (False, True):
    state, advance = bayes.setup(jax.random.key(1), problem, chip, hyper,
                                 posterior.SNNSettings(), schedule, 20)
    if sharded:
        state = shard_chains(state, 8)
        assert len(state.inner.position.sharding.device_set) == 4
    state = run_chunks(state, advance, schedule, 20)
    out.append(np.asarray(state.draws))
    out.append(np.asarray(state.observed))
np.testing.assert_array_equal(out[0], out[2])
np.testing.assert_array_equal(out[1], out[3])
print("identical")
"""


def test_sharded_run_equals_single_device():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
           "JAX_PLATFORMS": "cpu"}
    res = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True,
                         check=False,
                         cwd=Path(__file__).resolve().parents[1], timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "identical" in res.stdout


# The two-process (jax.distributed) resume of a checkpointed run is tested in
# tests/test_experiments.py, beside the other interrupted-run tests it shares a clean run with.
