"""The stage runner's guards, on a toy stage (a counter): no JAX compile, so they are quick."""

import errno
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mhsnn import experiment, runs
from mhsnn import io as mio
from mhsnn.config import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def _stages(out, mode="new", config=None):
    return runs.Stages(out, config or {"steps": 5}, "toy", mode, "test")


def _count(stages, stop_after=None):
    """A stage counting to 5, one chunk per step; ``stop_after`` chunks then 'crash'."""
    calls = []

    def advance(state):
        calls.append(1)
        if stop_after is not None and len(calls) > stop_after:
            raise KeyboardInterrupt
        return {"n": state["n"] + 1, "trace": state["trace"] * 2.0}

    out = stages.run("count", lambda: {"n": np.zeros((), np.int32), "trace": np.ones(3)},
                     advance, lambda s: int(s["n"]) >= 5,
                     lambda s: {"n": np.asarray(s["n"]), "trace": s["trace"]})
    return out, len(calls)


def _crashed(out):
    stages = _stages(out)
    with pytest.raises(KeyboardInterrupt):
        _count(stages, stop_after=2)
    runs.unlock_folder(out)  # the process would have died
    return out / "checkpoints" / "toy__count__state.npz"


def test_resume_continues_and_complete_cleans_up(tmp_path):
    ckpt = _crashed(tmp_path)
    assert ckpt.exists()
    stages = _stages(tmp_path, "resume")
    out, calls = _count(stages)
    assert int(out["n"]) == 5 and calls == 3 and out["trace"][0] == 32.0
    stages.complete()
    assert not (tmp_path / "checkpoints").exists()
    _stages(tmp_path)  # a finished run leaves nothing that blocks the next


def test_complete_also_drops_a_write_that_a_killed_process_left_half_done(tmp_path):
    ckpt = _crashed(tmp_path)
    half = mio.atomic_path(ckpt.with_name("toy__count__next.npz"))
    half.__enter__().write_bytes(b"half")  # the process dies here: no __exit__, no cleanup
    other = tmp_path / "checkpoints" / "other__count__state.npz"  # another experiment's
    other.write_bytes(b"kept")
    stages = _stages(tmp_path, "resume")
    _count(stages)
    stages.complete()
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [other.name]


def test_rerun_without_resume_refuses_and_deletes_nothing(tmp_path):
    ckpt = _crashed(tmp_path)
    before = ckpt.read_bytes()
    with pytest.raises(ConfigError) as err:
        _stages(tmp_path)
    msg = str(err.value)
    assert str(tmp_path) in msg and "--resume" in msg and "--fresh" in msg and "\n" not in msg
    assert ckpt.read_bytes() == before
    _stages(tmp_path, "fresh")  # the only way they go
    assert not ckpt.exists()


@pytest.mark.parametrize("damage", ["truncated", "not_zip", "missing_array", "wrong_shape",
                                    "foreign_npz"])
def test_unreadable_checkpoint_is_named_and_kept(tmp_path, damage):
    ckpt = _crashed(tmp_path)
    raw = ckpt.read_bytes()
    if damage == "truncated":
        ckpt.write_bytes(raw[:200])
    elif damage == "not_zip":
        ckpt.write_text("hello")
    else:
        with np.load(ckpt) as z:
            arrays = {k: z[k] for k in z.files}
        if damage == "missing_array":
            del arrays["a1"]
        elif damage == "wrong_shape":
            arrays["a1"] = np.ones(4)
        else:
            del arrays["fingerprint"]
        with open(ckpt, "wb") as fh:
            np.savez(fh, **arrays)
    damaged = ckpt.read_bytes()
    with pytest.raises(ConfigError) as err:
        _count(_stages(tmp_path, "resume"))
    msg = str(err.value)
    assert str(ckpt) in msg and "\n" not in msg
    assert ckpt.read_bytes() == damaged  # nothing deleted or rewritten


def test_unreadable_stage_outcome_is_named(tmp_path):
    stages = _stages(tmp_path)
    _count(stages)
    runs.unlock_folder(tmp_path)
    outcome = tmp_path / "checkpoints" / "toy__count__outcome.npz"
    outcome.write_bytes(outcome.read_bytes()[:100])
    with pytest.raises(ConfigError, match="toy__count__outcome.npz"):
        _count(_stages(tmp_path, "resume"))
    assert outcome.exists()


def test_failed_write_names_the_path_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    stages = _stages(tmp_path)
    real_replace, calls = os.replace, []

    def full_disk(src, dst):
        calls.append(dst)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(mio.os, "replace", full_disk)
    with pytest.raises(mio.WriteError) as err:
        _count(stages)
    ckpt = tmp_path / "checkpoints" / "toy__count__state.npz"
    assert str(ckpt) in str(err.value) and "No space left" in str(err.value)
    with np.load(ckpt) as z:  # the second chunk's checkpoint, whole
        assert int(z["a0"]) == 2
    assert not list(ckpt.parent.glob(".*.tmp"))  # no temporary left behind


def test_main_guard_exit_codes(capsys):
    def fail(exc):
        def fn():
            raise exc
        return fn

    for exc, code in ((mio.WriteError(errno.ENOSPC, "cannot write /x/y.csv: No space left"), 1),
                      (ConfigError("bad"), 2), (runs.Terminated("[mh] stopped by SIGTERM"), 143)):
        with pytest.raises(SystemExit) as ex:
            experiment.main_guard(fail(exc))
        err = capsys.readouterr().err.strip()
        assert ex.value.code == code and len(err.splitlines()) == 1
    assert "--resume" in err


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_written_files_get_the_umask_permissions(tmp_path, umask):
    old = os.umask(umask)
    try:
        mio.atomic_write_text(tmp_path / "a.csv", "x\n")
        plain = tmp_path / "plain"
        plain.write_text("x")
    finally:
        os.umask(old)
    mode = (tmp_path / "a.csv").stat().st_mode & 0o777
    assert mode == 0o666 & ~umask == plain.stat().st_mode & 0o777


def test_a_locked_folder_is_refused_with_the_holder_pid(tmp_path):
    script = ("import sys, time; from pathlib import Path; from mhsnn import runs; "
              "runs.lock_folder(Path(sys.argv[1])); print('locked', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(ConfigError) as err:
            _stages(tmp_path)
        assert f"PID {holder.pid}" in str(err.value) and str(tmp_path) in str(err.value)
    finally:
        holder.kill()
        holder.wait()
    _stages(tmp_path)  # the OS released the dead holder's lock at once
