import json
import os
import signal
import socket
import subprocess
import sys
import time
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


TINY = ["--set", "mh.num_steps=200", "--set", "mh.num_chains=2", "--set", "mh.chunk_size=50",
        "--set", "mh.num_draws=10", "--set", "folds=2", "--set", "sigmas=[0, 3]",
        "--set", "methods=['mh', 'sg_offline']", "--set", "sg.epochs=2", "--set", "sg.seeds=1",
        "--set", "sg.literal=false"]
ROOT = Path(__file__).resolve().parents[1]


def _sweep(out, *extra, env=None, wait_for=None):
    cmd = [sys.executable, "-m", "experiments.sigma_sweep", *TINY, "--out", str(out), *extra]
    env = {**os.environ, "JAX_PLATFORMS": "cpu", **(env or {})}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    if wait_for is None:
        return proc
    deadline = time.time() + 240
    while not wait_for.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return None


def test_two_process_job_resumes_a_killed_run_and_matches_one_process(tmp_path):
    """jax.distributed on two CPU processes (one device each, gloo): the chains are split
    across the processes, the job resumes a checkpoint a one-process run left when killed,
    and its CSVs equal an uninterrupted one-process run's, byte for byte."""
    clean, job = tmp_path / "clean", tmp_path / "job"
    reference = _sweep(clean)  # runs beside the run to be killed (two cores)
    _sweep(job, wait_for=job / "checkpoints" / "sigma_sweep__mh__state.npz")
    assert not (job / "sigma_sweep.csv").exists()
    err = reference.communicate(timeout=300)[1]  # (drains its stderr pipe)
    assert reference.returncode == 0, err[-2000:]
    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    procs = [_sweep(job, "--resume", "--distributed",
                    env={"JAX_COORDINATOR_ADDRESS": f"localhost:{port}",
                         "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": str(i)})
             for i in range(2)]
    for p in procs:
        err = p.communicate(timeout=300)[1]
        assert p.returncode == 0, err[-2000:]
        assert "resumed from" in err
    manifest = json.loads((job / "sigma_sweep_manifest.json").read_text())
    assert manifest["num_processes"] == 2 and manifest["num_devices"] == 2
    for name in ("sigma_sweep.csv", "mh_diagnostics.csv"):
        assert (clean / name).read_bytes() == (job / name).read_bytes()
