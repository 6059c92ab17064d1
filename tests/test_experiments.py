import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from experiments import data_efficiency, sigma_sweep

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--set", "mh.num_steps=200", "--set", "mh.num_chains=2", "--set", "mh.chunk_size=50",
        "--set", "mh.num_draws=10", "--set", "folds=2", "--set", "sigmas=[0, 3]",
        "--set", "sg.epochs=2", "--set", "sg.seeds=1", "--set", "sg.epochs_per_chunk=1"]
METHODS = {"mh_mean", "mh_bma", "mh_vote", "sg_offline", "sg_in_loop", "sg_offline_literal",
           "ann_convert",
           "sg_in_loop_literal"}


def _rows(path):
    import gzip

    with (gzip.open(path, "rt") if str(path).endswith(".gz") else open(path)) as fh:
        return list(csv.DictReader(fh))


def _agrees_with_predictions(rows, preds, cell=("sigma",), tol=1e-5):
    """Every reported accuracy, NLL and Brier follows from the predictions file by sklearn
    (each member scored alone, then averaged, as the rows are)."""
    from sklearn.metrics import accuracy_score, brier_score_loss, log_loss

    for row in rows:
        keys = ("method", "fold", *cell)
        mine = [p for p in preds if all(p[k] == row[k] for k in keys)]
        assert mine, row
        scores = []
        for member in dict.fromkeys(p["member"] for p in mine):
            ps = [p for p in mine if p["member"] == member]
            y = np.array([int(p["label"]) for p in ps])
            probs = np.array([[float(p["p_0"]), float(p["p_1"])] for p in ps])
            scores.append((accuracy_score(y, probs.argmax(1)), log_loss(y, probs, labels=[0, 1]),
                           brier_score_loss(y, probs, labels=[0, 1])))
        for i, name in enumerate(("test_accuracy", "nll", "brier")):
            assert abs(np.mean([s[i] for s in scores]) - float(row[name])) < tol, (row, name)


def test_sigma_sweep_end_to_end(tmp_path):
    sigma_sweep.main([*TINY, "--set", "mh.arviz=true", "--out", str(tmp_path)])
    rows = _rows(tmp_path / "sigma_sweep.csv")
    assert {r["method"] for r in rows} == METHODS
    assert len(rows) == len(METHODS) * 2 * 2  # methods x sigmas x folds
    assert {"method", "sigma", "fold", "test_accuracy", "ece", "nll", "brier"} <= set(rows[0])
    for r in rows:  # right answers over the fold's test rows, mh_mean's averaged over 2 chains
        right = float(r["test_accuracy"]) * int(r["n_test"]) * (2 if r["method"] == "mh_mean"
                                                                 else 1)
        assert abs(right - round(right)) < 1e-3 and 0 <= right <= 2 * int(r["n_test"])
    diag = _rows(tmp_path / "mh_diagnostics.csv")
    assert len(diag) == 4 and {"rhat_logdensity", "ess_weights_min"} <= set(diag[0])
    # Chip presentations per cell, by hand: MH 2 chains x (200 steps + the start) x N rows;
    # SG in the loop 1 seed x 2 epochs x N; SG offline none.
    from mhsnn import data
    n = max(len(s.train) for s in data.kfold_splits(data.load().y, 2, 0))
    cost = {r["method"]: int(r["presentations"]) for r in rows}
    assert cost["mh_bma"] == cost["mh_mean"] == 2 * 201 * n
    assert cost["sg_in_loop"] == 2 * n and cost["sg_offline"] == 0
    manifest = json.loads((tmp_path / "sigma_sweep_manifest.json").read_text())
    assert manifest["config"]["mh"]["num_steps"] == 200 and "jax" in manifest["versions"]
    for png in ("accuracy_vs_sigma.png", "reliability.png"):
        assert (tmp_path / png).read_bytes()[:4] == b"\x89PNG"
    _agrees_with_predictions(rows, _rows(tmp_path / "sigma_sweep_predictions.csv"))
    import arviz as az  # one InferenceData file per fold and sigma, its lp R-hat as reported

    files = sorted((tmp_path / "arviz").glob("sigma_sweep__mh__fold*__sigma*.nc"))
    assert len(files) == 4
    data = az.from_netcdf(tmp_path / "arviz" / "sigma_sweep__mh__fold1__sigma3.nc")
    assert data.posterior["weights"].shape == (2, 10, 96) and data.attrs["sigma"] == 3.0
    reported = next(r for r in diag if r["fold"] == "1" and r["sigma"] == "3")
    assert abs(float(az.rhat(data.sample_stats, var_names=["lp"], method="split")["lp"])
               - float(reported["rhat_logdensity"])) < 1e-4


def test_data_efficiency_end_to_end(tmp_path):
    # any sampler of TRAINERS runs in a grid experiment by name, beside the paper's "mh", and
    # so do a driven method (mhsnn.methods) and an ES, one run per cell at MH's budget
    data_efficiency.main([*TINY, "--set", "n_train=[10, 30]",
                          "--set", "methods=['mh', 'sg_offline', 'rw_adapt', 'mezo', 'spsa']",
                          "--out", str(tmp_path)])
    rows = _rows(tmp_path / "data_efficiency.csv")
    # methods (mh, rw_adapt: W*, BMA, votes each; sg_offline; mezo; spsa) x n_train x
    # sigmas x folds
    assert len(rows) == 9 * 2 * 2 * 2
    assert {r["method"] for r in rows} >= {"rw_adapt_mean", "rw_adapt_bma", "rw_adapt_vote"}
    cost = {(r["method"], r["n_train"]): int(r["presentations"]) for r in rows}
    assert cost[("rw_adapt_bma", "30")] == cost[("mh_bma", "30")] == 2 * 201 * 30
    for n in (10, 30):  # MeZO's steps of 2 x n rows, within MH's budget of 2 x 201 x n
        spent = {int(r["presentations"]) for r in rows
                 if r["method"] == "mezo" and r["n_train"] == str(n)}
        assert spent == {2 * 201 * n}, spent
        # SPSA's generations of its 8 evaluations on every row, whole, within that budget
        spent = {int(r["presentations"]) for r in rows
                 if r["method"] == "spsa" and r["n_train"] == str(n)}
        assert len(spent) == 1 and 0 < min(spent) <= 2 * 201 * n
        assert min(spent) % (8 * n) == 0, spent
    assert {r["n_train"] for r in rows} == {"10", "30"}
    assert {int(r["n_test"]) for r in rows if r["n_train"] == "10"} == {559}
    assert (tmp_path / "accuracy_vs_ntrain.png").exists()
    _agrees_with_predictions(rows, _rows(tmp_path / "data_efficiency_predictions.csv.gz"),
                             ("sigma", "n_train"), tol=1e-3)  # p_k to 4 digits there


BAD = [
    (["--set", "mh.num_steps=-5"], "mh.num_steps"),
    (["--set", "snn.alpha=1.5"], "snn.alpha"),
    (["--set", "snn.alpha=0"], "snn.alpha"),
    (["--set", "sigmas=[0, -1]"], "sigmas"),
    (["--set", "sigmas=[0, nan]"], "sigmas"),
    (["--set", "folds=1"], "folds"),
    (["--set", "mh.step_size=0"], "mh.step_size"),
    (["--set", "mh.lik_std=inf"], "mh.lik_std"),
    (["--set", "bogus.key=1"], "bogus.key"),
    (["--set", "mh.bogus=1"], "mh.bogus"),
    (["--set", "noequals"], "noequals"),
    (["--set", "mh.num_chains=lots"], "mh.num_chains"),
    (["--preset", "huge"], "huge"),
    (["--set", "snn.layout=fastest"], "snn.layout"),
    (["--set", "snn.hidden=[0]"], "snn.hidden"),
    (["--set", "snn.hidden=[4000]"], "snn.hidden"),
    (["--set", "methods=['mh', 'bogus']"], "methods"),
    (["--set", "methods=['mh', 'demc']", "--set", "mh.num_chains=2"], "mh.num_chains"),
]


def test_a_grid_sampler_outside_the_grid_experiments_is_refused(tmp_path, capsys):
    from experiments import tempering

    with pytest.raises(SystemExit) as exc:
        tempering.main(["--set", "methods=['mh', 'rw_adapt']", "--out", str(tmp_path / "o")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'rw_adapt' runs in the grid experiments" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("args,name", BAD)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, args, name):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exc:
        sigma_sweep.main([*args, "--out", str(out)])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and name in err and "Traceback" not in err
    assert not out.exists()


KEYS = ["mh.num_steps", "mh.num_chains", "mh.step_size", "mh.lik_std", "snn.alpha",
        "snn.threshold", "snn.time_steps", "folds", "sg.epochs", "sg.learning_rate"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(KEYS), value=st.sampled_from(["-1", "0", "-0.5", "1e309", "-inf", "nan",
                                                         "[1]", "'x'", "true", "11"]))
def test_random_invalid_values_are_refused(tmp_path, capsys, key, value):
    from mhsnn import config

    try:
        config.build("quick", [f"{key}={value}"])
    except config.ConfigError:
        out = tmp_path / "h"
        with pytest.raises(SystemExit) as exc:
            sigma_sweep.main(["--set", f"{key}={value}", "--out", str(out)])
        assert exc.value.code == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and key in err
        assert not out.exists()
    else:  # "11" is the one value in the list valid for every key but folds (2..10)
        assert value == "11" and key != "folds"


def _cmd(out, *extra):
    return [sys.executable, "-m", "experiments.sigma_sweep", *TINY, "--set",
            "methods=['mh', 'sg_in_loop']", "--set",
            "mh.num_steps=400", "--out", str(out), *extra]


# The kill, resume and lock runs compile as real runs do: without conftest.py's lighter
# optimisation, whose rounding differs (docs/reliability.md), so identical bytes here mean
# identical bytes for a user's resumed run.
ENV = {**{k: v for k, v in os.environ.items() if k != "JAX_DISABLE_MOST_OPTIMIZATIONS"},
       "PYTHONUNBUFFERED": "1"}


def _run(out, *extra, wait_for=None):
    if wait_for is None:
        subprocess.run(_cmd(out, *extra), cwd=ROOT, env=ENV, check=True, capture_output=True)
        return
    proc = _start(out, *extra, wait_for=wait_for)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def _start(out, *extra, wait_for, stderr=subprocess.DEVNULL):
    """A run in the background, returned STOPPED (SIGSTOP) once ``wait_for`` (a checkpoint)
    exists: it holds its lock and cannot finish before the test signals it, however fast."""
    proc = subprocess.Popen(_cmd(out, *extra), cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL,
                            stderr=stderr)
    deadline = time.time() + 240
    while not wait_for.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGSTOP)
    assert wait_for.exists()
    return proc


def _quick(out, *extra):
    """A run expected to stop before any work: (exit code, stderr lines)."""
    res = subprocess.run(_cmd(out, *extra), cwd=ROOT, env=ENV, capture_output=True, text=True,
                         timeout=120, check=False)
    return res.returncode, res.stderr.strip().splitlines()


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("clean")
    _run(out)
    return {name: (out / name).read_bytes() for name in ("sigma_sweep.csv", "mh_diagnostics.csv")}


MH_STATE = ("checkpoints", "sigma_sweep__mh__state.npz")


def test_locked_folder_killed_run_refused_rerun_then_resume(tmp_path, clean_run):
    out = tmp_path / "killed"
    proc = _start(out, wait_for=out.joinpath(*MH_STATE))
    code, err = _quick(out)  # a second run on a folder in use
    assert code == 2 and len(err) == 1 and f"PID {proc.pid}" in err[0] and str(out) in err[0]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "sigma_sweep.csv").exists()
    saved = {p: p.read_bytes() for p in (out / "checkpoints").glob("*.npz")}
    code, err = _quick(out)  # forgot --resume: refused, nothing deleted
    assert code == 2 and len(err) == 1
    assert str(out) in err[0] and "--resume" in err[0] and "--fresh" in err[0]
    code, err = _quick(out, "--resume", "--set", "seed=7")  # another config's checkpoint
    assert code == 2 and len(err) == 1 and "different config" in err[0]
    assert saved == {p: p.read_bytes() for p in (out / "checkpoints").glob("*.npz")}
    _run(out, "--resume")  # the dead run's lock is gone at once
    for name, clean in clean_run.items():  # same seed, another process: the same bytes
        assert (out / name).read_bytes() == clean
    assert not (out / "checkpoints").exists()
    for f in out.iterdir():  # results are readable by the group, as the umask says
        assert f.stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_sigterm_checkpoints_exits_143_then_a_two_process_job_resumes_it(tmp_path, clean_run):
    """SIGTERM leaves a checkpoint and exits 143; jax.distributed on two CPU processes (one
    device each, gloo) resumes it with the chains split across the processes, and its CSVs
    equal the uninterrupted one-process run's, byte for byte."""
    out = tmp_path / "term"
    log = tmp_path / "stderr.txt"
    with open(log, "w") as fh:
        proc = _start(out, wait_for=out.joinpath(*MH_STATE), stderr=fh)
        proc.send_signal(signal.SIGTERM)
        proc.send_signal(signal.SIGCONT)
        assert proc.wait(timeout=120) == 143
    last = log.read_text().strip().splitlines()[-1]
    assert "SIGTERM" in last and "--resume" in last
    assert out.joinpath(*MH_STATE).exists() and not (out / "sigma_sweep.csv").exists()
    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in ENV.items()
           if not k.startswith(("JAX_COORDINATOR", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID"))}
    procs = [subprocess.Popen(_cmd(out, "--resume", "--distributed"), cwd=ROOT, env={
        **env, "JAX_PLATFORMS": "cpu", "JAX_COORDINATOR_ADDRESS": f"localhost:{port}",
        "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": str(i)}, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True) for i in range(2)]
    for p in procs:
        err = p.communicate(timeout=300)[1]
        assert p.returncode == 0, err[-2000:]
        assert "resumed from" in err
    manifest = json.loads((out / "sigma_sweep_manifest.json").read_text())
    assert manifest["num_processes"] == 2 and manifest["num_devices"] == 2
    for name, clean in clean_run.items():
        assert (out / name).read_bytes() == clean


def test_another_seed_gives_other_draws(tmp_path, clean_run):
    # (the same seed in another process gives the same bytes: the resume tests above)
    sigma_sweep.main([*TINY, "--set", "methods=['mh']", "--set", "mh.num_steps=400",
                      "--set", "seed=1", "--out", str(tmp_path)])
    mine = [r for r in _rows(tmp_path / "sigma_sweep.csv") if r["method"].startswith("mh")]
    clean = list(csv.DictReader(clean_run["sigma_sweep.csv"].decode().splitlines()))
    assert len(mine) == len([r for r in clean if r["method"].startswith("mh")])
    assert mine != [r for r in clean if r["method"].startswith("mh")]


def test_mhsnn_command_line(tmp_path, capsys):
    from mhsnn import cli

    with pytest.raises(SystemExit) as exc:
        cli.main(["bogus"])
    assert exc.value.code == 2 and "bogus" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        cli.main(["reproduce", "--set", "mh.num_chains=0", "--out", str(tmp_path / "o")])
    assert exc.value.code == 2 and "mh.num_chains" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    cli.main([])  # every experiment module is listed with one line, no docstring markup
    listing = capsys.readouterr().out
    for module in Path(ROOT, "experiments").glob("*.py"):
        if module.stem not in ("__init__", "methods", "outcomes", "runners", "tables"):
            assert module.stem.replace("_", "-") in listing
    assert "``" not in listing
    with pytest.raises(SystemExit) as exc:
        cli.main(["nonidealities", "--set", "folds=1", "--out", str(tmp_path / "n")])
    assert exc.value.code == 2 and "folds" in capsys.readouterr().err


def test_mhsnn_config_prints_every_key_as_toml_that_reads_back(capsys):
    import tomllib

    from mhsnn import cli, config

    cli.main(["config", "--preset", "paper", "--set", "snn.hidden=[16, 8]", "--set", "seed=3"])
    text = capsys.readouterr().out
    table = tomllib.loads(text)
    expected = config.to_dict(config.build("paper", ["snn.hidden=[16, 8]", "seed=3"]))
    flat = {k: tuple(v) if isinstance(v, list) else v for k, v in table.items()
            if not isinstance(v, dict)}
    assert flat == {k: v for k, v in expected.items() if not isinstance(v, dict)}
    for section, values in table.items():
        if isinstance(values, dict):
            assert {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()} \
                == expected[section]
    assert all("#" in line for line in text.splitlines() if " = " in line)
    # What it prints is a preset a run could start from: --set of every line gives it back.
    sets = [f"{s + '.' if s else ''}{line.split('  #')[0]}".replace(" = ", "=")
            for s, line in _sectioned(text)]
    assert config.to_dict(config.build("quick", sets)) == expected


def _sectioned(text):
    section = ""
    for line in text.splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif " = " in line:
            yield section, line


def test_unconfigured_distributed_stops_with_one_line(tmp_path):
    out = tmp_path / "distributed"  # (a process of its own: jax.distributed is process-wide)
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COORDINATOR")}
    res = subprocess.run([sys.executable, "-m", "experiments.sigma_sweep", "--distributed",
                          "--out", str(out)], cwd=ROOT, capture_output=True, text=True,
                         env={**env, "JAX_PLATFORMS": "cpu"}, timeout=120, check=False)
    assert res.returncode == 2
    assert len(res.stderr.strip().splitlines()) == 1 and "--distributed" in res.stderr
    assert not out.exists()


@pytest.mark.parametrize("sets, named", [
    (["data.path=MISSING.npz"], "MISSING.npz"),
    (["data.path=BAD.csv"], "BAD.csv"),
    (["data.name=mnist"], "data.name"),
    (["data.path=SMALL.npz"], "folds=5"),
    (["data.name=iris", "snn.hidden=[40000]"], "snn.hidden"),
])
def test_bad_data_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, sets, named):
    (tmp_path / "BAD.csv").write_text("a,label\n1,0\nx,1\n")
    np.savez(tmp_path / "SMALL.npz", X=np.ones((6, 2)), y=np.array([0, 1] * 3))
    args = [a.replace("=", f"={tmp_path}/", 1) if "data.path" in a else a for a in sets]
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exc:
        sigma_sweep.main([*(x for a in args for x in ("--set", a)), "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and len(err.splitlines()) == 1 and named in err
    assert not out.exists()


def test_n_train_beyond_the_data_exits_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        data_efficiency.main(["--set", "data.name=iris", "--set", "n_train=[149]",
                              "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and "n_train" in err and "[3, 147]" in err
    assert not (tmp_path / "o").exists()
