"""Checkpointed stages of a run, and the guards that keep a long run's work from being lost.

A run is a sequence of named stages (one jitted computation each: MH on a grid, SG in one
mode). A stage's state is checkpointed atomically after every chunk; a finished stage's
outcome is saved too, so a resumed run skips finished stages and continues an unfinished one
from its last chunk, ending with the same bytes as an uninterrupted run. When the whole run
has written its results (``Stages.complete``) its checkpoints are removed.

Guards (each a one-line message; exit codes in ``EXIT_*``):
- a run finding another run's unfinished checkpoints of the same experiment in ``--out``
  stops unless told ``resume`` (continue them) or ``fresh`` (discard them): nothing else
  ever deletes a checkpoint;
- a checkpoint that cannot be read (truncated, not a zip, missing or misshapen arrays) or
  comes from another config is reported by name and left in place;
- ``--out`` is locked (``fcntl.flock``: the OS releases it when the process dies, so a
  SIGKILL never leaves a stale lock) and a second run on it stops at once;
- SIGTERM (batch pre-emption) lets the current chunk finish and be checkpointed, then ends
  the run with ``EXIT_TERMINATED``; a second SIGTERM ends it at once.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import signal
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np

from mhsnn import chips, sharding
from mhsnn.errors import ConfigError
from mhsnn.io import atomic_write_bytes

EXIT_BAD_INPUT = 2  # bad config, data or checkpoint; a folder in use
EXIT_WRITE_FAILED = 1  # an OSError writing results or checkpoints (disk full, permissions)
EXIT_CHIP_FAULT = 3  # a chip fault that persisted after its retries; checkpoint kept
EXIT_TERMINATED = 143  # SIGTERM: stopped after checkpointing (128 + 15, as a shell reports it)
MODES = ("new", "resume", "fresh")
LOCK_NAME = ".mhsnn.lock"


class Terminated(Exception):
    """SIGTERM arrived; the current chunk was checkpointed."""


class _Termination:
    """Turns the first SIGTERM into a flag checked between chunks; the second ends at once."""

    def __init__(self):
        self.requested = False
        self.installed = False

    def install(self) -> None:
        if self.installed:
            return
        try:
            signal.signal(signal.SIGTERM, self._handle)
            self.installed = True
        except ValueError:  # not the main thread: leave the default
            pass

    def _handle(self, signum, frame) -> None:
        if self.requested:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        self.requested = True
        print("SIGTERM: finishing the current chunk and writing its checkpoint "
              "(send SIGTERM again to stop at once)", file=sys.stderr, flush=True)


TERMINATION = _Termination()
_HELD_LOCKS: dict[Path, int] = {}


def lock_folder(out: Path) -> None:
    """Hold an advisory lock on ``out`` for the life of this process (or ``unlock_folder``)."""
    out = out.resolve()
    if out in _HELD_LOCKS or not sharding.is_writer():
        return
    path = out / LOCK_NAME
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise ConfigError(f"--out {out}: in use by another run (PID {holder}); wait for "
                              "it or choose another --out") from None
        try:  # the file we locked is still the folder's: not one a finished run removed
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _HELD_LOCKS[out] = fd


def unlock_folder(out: Path, remove: bool = False) -> None:
    """Release ``out``'s lock; ``remove``: also delete the lock file (a finished run), which
    ``lock_folder``'s inode check makes safe against a run that opened it meanwhile."""
    fd = _HELD_LOCKS.pop(out.resolve(), None)
    if fd is not None:
        if remove:
            (out / LOCK_NAME).unlink(missing_ok=True)
        os.close(fd)  # closing the descriptor releases the flock


def _mode(resume: bool | str) -> str:
    mode = {True: "resume", False: "new"}.get(resume, resume) if isinstance(resume, bool) \
        else resume
    if mode not in MODES:
        raise ValueError(f"mode {resume!r}: expected one of {', '.join(MODES)}")
    return mode


def _advanced(advance: Callable, state: Any) -> tuple[Any, Any]:
    state = advance(state)
    return state, sharding.to_host(state)  # waits for the chunk: a chip fault surfaces here


def _chip_checked(fn: Callable, arg: Any, stage: str, ckpt: Path | None) -> Any:
    """``fn(arg)``, turning a chip fault raised inside a callback into one ChipError that
    says where the run's last whole chunk is."""
    try:
        return fn(arg)
    except Exception as err:
        fault = chips.chip_fault(err)
        if fault is None:
            raise
        where = f"; the last whole chunk is in {ckpt}" if ckpt and ckpt.exists() else ""
        raise chips.ChipError(f"[{stage}] {fault}{where}") from None


def run_stage(stages: Stages | None, stage: str, init: Callable[[], Any],
              advance: Callable[[Any], Any], done: Callable[[Any], bool],
              finish: Callable[[Any], dict[str, np.ndarray]],
              progress: Callable[[Any], None] | None = None) -> dict[str, np.ndarray]:
    """The one chunk driver: ``stages.run`` (checkpointed) or, without ``stages``, the
    same loop in memory, with the same progress calls and chip-fault reporting."""
    if stages is not None:
        return stages.run(stage, init, advance, done, finish, progress)
    state = init()
    host = sharding.to_host(state)
    while not done(host):
        state, host = _chip_checked(lambda s: _advanced(advance, s), state, stage, None)
        if progress is not None:
            progress(host)
    return _chip_checked(finish, host, stage, None)


def run_once(stages: Stages | None, stage: str, compute: Callable[[], dict[str, np.ndarray]],
             template: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A stage of one step (an offline fit, one estimator fit): ``compute()`` once, its
    arrays (the keys and shapes of ``template``) the outcome; a resumed run loads them."""
    start = {**template, "done": np.False_}
    return run_stage(stages, stage, lambda: start,
                     lambda _: {**compute(), "done": np.True_}, lambda s: bool(s["done"]),
                     lambda s: {k: s[k] for k in template})


class Stages:
    """Checkpoints and finished outcomes of one run's stages, under ``out/checkpoints``.

    ``mode``: "new" (refuses unfinished checkpoints of this experiment), "resume" (continues
    them), "fresh" (discards them first); ``True`` / ``False`` mean "resume" / "new".
    ``code_version`` joins the config in the fingerprint that ties a checkpoint to its run.
    """

    def __init__(self, out: Path, config: dict, experiment: str, mode: bool | str,
                 code_version: str):
        self.out, self.dir, self.experiment = out, out / "checkpoints", experiment
        self.mode = _mode(mode)
        self.resume = self.mode == "resume"
        self.fingerprint = hashlib.sha256(json.dumps(
            {"config": config, "code": code_version, "experiment": experiment},
            sort_keys=True, default=str).encode()).hexdigest()[:16]
        self.timings: dict[str, float] = {}
        out.mkdir(parents=True, exist_ok=True)
        lock_folder(out)
        leftovers = sorted(self.dir.glob(f"{experiment}__*.npz")) if self.dir.exists() else []
        if leftovers and self.mode == "new":
            unlock_folder(out)
            raise ConfigError(f"--out {out}: holds {len(leftovers)} unfinished checkpoint(s) of "
                              f"{experiment}; add --resume to continue them or --fresh to "
                              "discard them")
        if self.mode == "fresh" and sharding.is_writer():
            for f in leftovers:
                f.unlink()
        if self.mode != "resume" and sharding.is_writer():
            # An earlier run's per-cell draws are named by cell, not by run: a new run
            # (whatever its seed or cells) replaces all of them rather than sit beside them.
            for f in (out / "arviz").glob(f"{experiment}__*.nc"):
                f.unlink()
        TERMINATION.install()

    def _path(self, stage: str, kind: str) -> Path:
        return self.dir / f"{self.experiment}__{stage}__{kind}.npz"

    def _save(self, path: Path, tree: Any) -> None:
        leaves = jax.tree.leaves(tree)
        arrays = {f"a{i}": np.asarray(jax.random.key_data(x) if sharding.is_key(x) else x)
                  for i, x in enumerate(leaves)}
        self._save_arrays(path, arrays)

    def _save_arrays(self, path: Path, arrays: dict[str, np.ndarray]) -> None:
        buf = io.BytesIO()
        np.savez(buf, fingerprint=np.array(self.fingerprint), **arrays)
        atomic_write_bytes(path, buf.getvalue())

    def _read(self, path: Path) -> dict[str, np.ndarray]:
        """Every array of a checkpoint file, after checking it is this run's."""
        try:
            with np.load(path) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, EOFError, ValueError, zipfile.BadZipFile) as err:
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ConfigError(f"--resume: checkpoint {path} cannot be read ({reason}); move it "
                              "away or rerun with --fresh") from None
        if "fingerprint" not in arrays:
            raise ConfigError(f"--resume: checkpoint {path} has no fingerprint: not an mhsnn "
                              "checkpoint; move it away or rerun with --fresh")
        if str(arrays.pop("fingerprint")) != self.fingerprint:
            raise ConfigError(f"--resume: checkpoint {path} comes from a different config or "
                              "code version; use a new --out, or --fresh to discard it")
        return arrays

    def _load(self, path: Path, template: Any) -> Any | None:
        if not (self.resume and path.exists()):
            return None
        arrays = self._read(path)
        leaves, treedef = jax.tree.flatten(template)
        loaded = []
        for i, x in enumerate(leaves):
            want = np.shape(jax.random.key_data(x) if sharding.is_key(x) else x)
            got = arrays.get(f"a{i}")
            if got is None or got.shape != want:
                raise ConfigError(f"--resume: checkpoint {path}: array a{i} is "
                                  f"{'missing' if got is None else got.shape}, expected {want}; "
                                  "move it away or rerun with --fresh")
            loaded.append(jax.random.wrap_key_data(got) if sharding.is_key(x) else got)
        return sharding.like(jax.tree.unflatten(treedef, loaded), template)

    def run(self, stage: str, init: Callable[[], Any], advance: Callable[[Any], Any],
            done: Callable[[Any], bool], finish: Callable[[Any], dict[str, np.ndarray]],
            progress: Callable[[Any], None] | None = None) -> dict[str, np.ndarray]:
        """Run one stage from its checkpoint (if resuming) to the end; return its outcome.

        ``advance`` gets the (possibly sharded) device state; ``done``, ``finish`` and
        ``progress`` get its host copy, gathered from every process after each chunk.
        Raises ``Terminated`` after the chunk during which SIGTERM arrived is checkpointed.
        """
        final = self._path(stage, "outcome")
        if self.resume and final.exists():
            outcome = self._read(final)
            print(f"[{stage}] finished earlier: loaded", file=sys.stderr)
            return outcome
        t0 = time.perf_counter()
        state = init()
        ckpt = self._path(stage, "state")
        restored = self._load(ckpt, state)
        if restored is not None:
            state = restored
            print(f"[{stage}] resumed from {ckpt}", file=sys.stderr)
        host = sharding.to_host(state)
        while not done(host):
            state, host = _chip_checked(lambda s: _advanced(advance, s), state, stage, ckpt)
            self._save(ckpt, host)
            if progress is not None:
                progress(host)
            if TERMINATION.requested:
                raise Terminated(f"[{stage}] stopped by SIGTERM; its last chunk is in {ckpt}")
        outcome = _chip_checked(finish, host, stage, ckpt)
        self._save_arrays(final, outcome)
        if sharding.is_writer():
            ckpt.unlink(missing_ok=True)
        self.timings[stage] = time.perf_counter() - t0
        return outcome

    def complete(self) -> None:
        """The run's results are written: drop its checkpoints and release ``--out``."""
        if sharding.is_writer() and self.dir.exists():
            # with the temporary files of a write that a killed process left half done
            # (io.atomic_path names them .NAME.XXXX.tmp)
            for pattern in (f"{self.experiment}__*.npz", f".{self.experiment}__*.tmp"):
                for f in self.dir.glob(pattern):
                    f.unlink()
            if not any(self.dir.iterdir()):
                self.dir.rmdir()
        unlock_folder(self.out, remove=True)
