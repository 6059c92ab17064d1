"""A user's chip: checked by one query before training, its faults kept whole (cause,
counts across a resume), and run from the command line with a user's CSV."""

import json
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import user_chips
from sklearn.datasets import load_iris

import mhsnn
from experiments import external_chip
from mhsnn import chips, snn

HERE = Path(__file__).parent
TINY = ["--set", "folds=2", "--set", "mh.num_chains=2", "--set", "mh.num_steps=30",
        "--set", "mh.chunk_size=10", "--set", "mh.num_draws=2", "--set", "snn.hidden=[3]",
        "--set", "chip.backoff_s=0", "--set", "chip.retries=1"]


def test_weight_layout_gives_each_layers_slice_and_shape():
    layout = mhsnn.weight_layout((7, 8, 3))
    assert layout == [("w1", slice(0, 56), (7, 8)), ("w2", slice(56, 80), (8, 3))]
    theta = np.arange(80, dtype=np.float32)
    params = snn.unflatten(theta, (7, 8, 3))  # the engine's own reading of the vector
    for name, where, shape in layout:
        np.testing.assert_array_equal(params[name], theta[where].reshape(shape))


def test_a_wrong_size_chip_fails_at_once_naming_the_network_and_layout():
    X, y = load_iris(return_X_y=True)
    X7 = np.hstack([X, X[:, :3]])  # 7 features for a chip built for 4
    clf = mhsnn.SNNClassifier(chip=user_chips.for_four_inputs, hidden=(8,),
                              presentations=1e4, chip_retries=3, chip_timeout_s=None)
    t0 = time.perf_counter()
    with pytest.raises(chips.ChipError) as err:
        clf.fit(X7, y)
    assert time.perf_counter() - t0 < 1.0
    message = str(err.value)
    assert "\n" not in message and "not retried" in message
    assert "network 7-8-3, P = 80 weights: w1 [7, 8] = weights[:, 0:56], " \
           "w2 [8, 3] = weights[:, 56:80]" in message
    assert "raised AssertionError: ((1, 80), (10, 2, 7))" in message
    cause = err.value.__cause__  # the chip's own exception, traceback and all
    assert isinstance(cause, AssertionError) and cause.__traceback__ is not None


def test_a_chip_that_declares_its_time_steps_refuses_others_before_any_query():
    X, y = load_iris(return_X_y=True)
    calls = []

    def chip(weights, spikes):
        calls.append(spikes.shape)
        return np.zeros((weights.shape[0], spikes.shape[1], 3), np.float32)

    chip.time_steps = 20
    with pytest.raises(ValueError, match=r"chip runs 20 time steps \(its time_steps\); "
                                         r"time_steps=10 presents 10"):
        mhsnn.SNNClassifier(chip=chip, hidden=(2,), presentations=1e4).fit(X, y)
    assert calls == []


def test_tensor_answers_are_read_and_a_tensor_that_needs_grad_is_refused_at_once():
    X, y = load_iris(return_X_y=True)
    X, y = X[::3], y[::3]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the chip writes into its inputs: no read-only warning
        clf = mhsnn.SNNClassifier(chip=user_chips.TensorChip((4, 3, 3)), method="spsa",
                                  presentations=3e3, random_state=0).fit(X, y)
    assert clf.diagnostics_["chip_faults"] == 0
    grad = user_chips.TensorChip((4, 3, 3), requires_grad=True)
    with pytest.raises(chips.ChipError, match=r"requires grad; return counts.detach\(\).*"
                                              r"\(not retried\)"):
        mhsnn.SNNClassifier(chip=grad, method="spsa", presentations=3e3).fit(X, y)
    assert grad.calls == 1


def test_faults_add_up_across_a_resume_and_no_lock_file_is_left(tmp_path):
    X, y = load_iris(return_X_y=True)
    X, y = X[::3], y[::3]
    kill = tmp_path / "kill"
    kill.touch()
    chip = user_chips.TensorChip((4, 3, 3), kill_file=str(kill))
    params = dict(chip=chip, method="rw", presentations=2e4, chains=2, num_draws=2,
                  random_state=0, chip_retries=2, checkpoint_dir=tmp_path / "ck")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(chips.ChipError, match="link down"):
            mhsnn.SNNClassifier(**params).fit(X, y)
        kill.unlink()  # the link is repaired
        clf = mhsnn.SNNClassifier(**params).fit(X, y)
    d = clf.diagnostics_
    assert (d["chip_faults"], d["chip_retries"]) == (3, 2)  # the first fit's, kept
    assert d["chip_s"] > 0 and d["host_s"] > 0
    assert list((tmp_path / "ck").iterdir()) == []  # no lock, seed or count file left


def _csv(path: Path, missing: bool) -> Path:
    X, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    lines = ["sepal_l,sepal_w,petal_l,petal_w,species"]
    for i, (row, label) in enumerate(zip(X, names, strict=True)):
        cells = [f"{v:g}" for v in row]
        if missing and i in (3, 77):
            cells[2] = ""
        lines.append(",".join([*cells, label]))
    path.write_text("\n".join(lines) + "\n")
    return path


def _cli(out, *sets, check=True):
    return subprocess.run([sys.executable, "-m", "experiments.external_chip", *TINY,
                           "--set", f"chip.path={HERE / 'user_chips.py'}:TensorChip",
                           *sets, "--out", str(out)],
                          capture_output=True, text=True, check=False)


def test_cli_runs_a_users_chip_on_a_users_csv(tmp_path, capsys):
    data = ["--set", "data.label=species"]
    with pytest.raises(SystemExit) as stop:  # in-process: the data is refused before any JAX
        external_chip.main([*TINY, "--set", "chip.path=user_chips:TensorChip", "--set",
                            f"data.path={_csv(tmp_path / 'bad.csv', True)}", *data,
                            "--out", str(tmp_path / "bad")])
    assert stop.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: data file " + str(tmp_path / "bad.csv") + ": 2 missing value(s) in column(s) "
        "'petal_l' (first: line 5); drop or fill those rows first"]
    assert not (tmp_path / "bad").exists()  # nothing written
    ok = _cli(tmp_path / "ok", "--set", f"data.path={_csv(tmp_path / 'ok.csv', False)}", *data)
    assert ok.returncode == 0, ok.stderr
    manifest = json.loads((tmp_path / "ok" / "external_chip_manifest.json").read_text())
    assert manifest["chip"] == {"path": f"{HERE / 'user_chips.py'}:TensorChip", "args": {},
                                "network": [4, 3, 3], "declared_sizes": [4, 3, 3]}
    assert manifest["train_chip_presentations"] == 2 + manifest["train_presentations"]


def test_a_users_chip_killed_mid_run_resumes_to_the_clean_runs_bytes(tmp_path):
    kill = tmp_path / "kill"
    sets = [*TINY, "--set", "chip.path=user_chips:TensorChip",
            "--set", f"chip.args={{kill_file = {json.dumps(str(kill))}}}"]
    external_chip.main([*sets, "--out", str(tmp_path / "clean")])
    kill.touch()
    with pytest.raises(SystemExit) as stop:
        external_chip.main([*sets, "--out", str(tmp_path / "killed")])
    assert stop.value.code == 3
    kill.unlink()
    external_chip.main([*sets, "--out", str(tmp_path / "killed"), "--resume"])
    for name in ("external_chip.csv",):
        assert (tmp_path / "killed" / name).read_bytes() == \
            (tmp_path / "clean" / name).read_bytes()
    assert not (tmp_path / "killed" / ".mhsnn.lock").exists()


def test_cli_refuses_a_chip_of_the_wrong_size_with_exit_2_and_logs_its_traceback(tmp_path,
                                                                                capsys):
    with pytest.raises(SystemExit) as stop:
        external_chip.main([*TINY, "--set", "chip.path=user_chips:for_four_inputs",
                            "--out", str(tmp_path)])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "network 30-3-2, P = 96 weights" in err[0]
    log = (tmp_path / "chip_fault.log").read_text()
    assert "Traceback" in log and "in for_four_inputs" in log


def test_the_examples_cli_chip_runs_in_chip_methods(tmp_path):
    from experiments import chip_methods

    chip_methods.main(["--set", f"chip.path={HERE.parent / 'examples' / 'cli_chip.py'}:LeakyChip",
                       "--set", "chip.args={leak = 0.8}", "--set", "folds=2",
                       "--set", "snn.hidden=[4]", "--methods", "spsa", "--budget", "2e3",
                       "--out", str(tmp_path)])
    rows = (tmp_path / "chip_methods.csv").read_text().splitlines()
    assert len(rows) == 3  # header, two folds
    manifest = json.loads((tmp_path / "chip_methods_manifest.json").read_text())
    assert manifest["chip"]["args"] == {"leak": 0.8}
    assert manifest["chip"]["declared_sizes"] == [4, 4, 3]
