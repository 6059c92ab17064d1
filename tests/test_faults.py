"""Chip faults: every answer checked, faults retried, a persisting fault stops the run
cleanly (exit 3, one line) and ``--resume`` ends with the clean run's bytes."""

import time

import numpy as np
import pytest

from experiments import external_chip
from experiments.external_chip import NumpyChip
from mhsnn import chips

SETS = ["--set", "folds=2", "--set", "mh.num_chains=4", "--set", "mh.num_steps=40",
        "--set", "mh.chunk_size=10", "--set", "mh.num_draws=5", "--set", "chip.backoff_s=0"]
OUTPUTS = ("external_chip.csv",)
MAKE_CHIP = external_chip.make_chip  # the clean chip, before any test swaps it


class FlakyChip:
    """A NumpyChip whose link fails: every ``every``-th call, plus a seeded random share of
    calls, raises, returns NaN, the wrong shape or negative counts instead of answering.
    ``dead_from``: from this call on every call raises (until ``repair``)."""

    def __init__(self, chip, every=7, share=0.05, dead_from=None, seed=1):
        self.chip, self.every, self.share, self.dead_from = chip, every, share, dead_from
        self.rng, self.calls, self.failed = np.random.default_rng(seed), 0, 0

    def repair(self):
        self.dead_from = None

    def __call__(self, weights, spikes):
        self.calls += 1
        if self.dead_from is not None and self.calls >= self.dead_from:
            raise ConnectionError("link down")
        counts = self.chip(weights, spikes)
        if self.calls % self.every == 0 or self.rng.random() < self.share:
            self.failed += 1
            kind = self.failed % 4
            if kind == 0:
                raise ConnectionResetError("dropped link")
            if kind == 1:
                return np.full_like(counts, np.nan)
            if kind == 2:
                return counts[:, :-1]
            return -counts - 1
        return counts


def _run(tmp_path, name, make, argv=()):
    out = tmp_path / name
    original = external_chip.make_chip
    external_chip.make_chip = make
    try:
        external_chip.main([*SETS, "--out", str(out), *argv])
    finally:
        external_chip.make_chip = original
    return out


def _bytes(out):
    return {name: (out / name).read_bytes() for name in OUTPUTS}


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory):
    return _bytes(_run(tmp_path_factory.mktemp("clean"), "out", MAKE_CHIP))


def test_a_flaky_chip_gives_the_clean_chips_results_byte_for_byte(tmp_path, clean_run, capsys):
    flaky = []

    def make(cfg, sizes):
        flaky.append(FlakyChip(MAKE_CHIP(cfg, sizes)))
        return flaky[0]

    out = _run(tmp_path, "flaky", make)
    assert _bytes(out) == clean_run
    assert flaky[0].failed > 5  # the faults really happened
    import json
    manifest = json.loads((out / "external_chip_manifest.json").read_text())
    recorded = manifest["train_chip_faults"] + manifest["eval_chip_faults"]
    assert recorded == flaky[0].failed  # every fault counted, none hidden
    assert manifest["train_chip_retries"] + manifest["eval_chip_retries"] == recorded


def test_a_dead_chip_stops_with_exit_3_and_resume_ends_like_the_clean_run(tmp_path, clean_run,
                                                                         capsys):
    dead = []

    def make(cfg, sizes):
        if not dead:
            dead.append(FlakyChip(MAKE_CHIP(cfg, sizes), every=10**9, share=0,
                                  dead_from=25))
        return dead[0]

    with pytest.raises(SystemExit) as stop:
        _run(tmp_path, "dead", make)
    assert stop.value.code == 3
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error")]
    assert len(err) == 1
    assert "raised ConnectionError: link down" in err[0]
    assert "chip 'FlakyChip': query 23 (fold 0, 4 weight sets x 455 samples)" in err[0]
    assert "after 3 retries" in err[0] and "--resume" in err[0]
    assert list((tmp_path / "dead" / "checkpoints").glob("*state.npz"))  # last chunk kept
    dead[0].repair()
    out = _run(tmp_path, "dead", make, ["--resume"])
    assert _bytes(out) == clean_run


def test_a_hanging_chip_times_out():
    def hang(weights, spikes):
        time.sleep(3.0)

    chip = chips.ExternalChip(hang, (1, 2), name="hung", retries=1, timeout_s=0.1, backoff_s=0)
    t0 = time.perf_counter()
    with pytest.raises(chips.ChipError, match=r"chip 'hung': query 1 .*no answer within 0.1 s "
                                              r"\(after 1 retries\)"):
        chip(np.zeros((2, 96), np.float32), np.zeros((10, 3, 30), np.float32))
    assert time.perf_counter() - t0 < 1.0
    assert (chip.faults, chip.retried, chip.queries) == (2, 1, 0)


def test_nan_for_one_weight_set_is_retried_then_reported():
    good = NumpyChip(sigma=0.0)
    w = np.random.default_rng(0).normal(size=(3, 96)).astype(np.float32)
    s = (np.random.default_rng(1).random((10, 4, 30)) < 0.5).astype(np.float32)
    calls = []

    def once_nan(weights, spikes):
        calls.append(1)
        counts = good(weights, spikes)
        if len(calls) == 1:
            counts[1, 2, 0] = np.nan
        return counts

    chip = chips.ExternalChip(once_nan, (1, 3), retries=2, backoff_s=0)
    np.testing.assert_array_equal(chip(w, s), good(w, s))
    assert (chip.faults, chip.retried, chip.queries, chip.presentations) == (1, 1, 3, 12)

    def always_nan(weights, spikes):
        counts = good(weights, spikes)
        counts[1] = np.nan
        return counts

    chip = chips.ExternalChip(always_nan, (1, 3), name="nan", retries=2, backoff_s=0)
    with pytest.raises(chips.ChipError, match=r"8 NaN/inf count\(s\) \(weight set 1\) "
                                              r"\(after 2 retries\)"):
        chip(w, s)
    assert (chip.faults, chip.queries) == (3, 0)


@pytest.mark.parametrize("answer, problem", [
    (lambda c: c.astype(str), "dtype <U32, expected numbers"),
    (lambda c: c + 11, "outside [0, T=10]"),
    (lambda c: c[None], "shape (1, 2, 4, 2), expected (2, 4, 2)"),
])
def test_every_malformed_answer_is_named(answer, problem):
    good = NumpyChip(sigma=0.0)
    chip = chips.ExternalChip(lambda w, s: answer(good(w, s)), (1, 2), retries=0)
    with pytest.raises(chips.ChipError) as err:
        chip(np.ones((2, 96), np.float32), np.ones((10, 4, 30), np.float32))
    assert problem in str(err.value) and "\n" not in str(err.value)
