"""An experiment's life outside its science: the shared command line, the start (data checked
before any write), the manifest, and the exit codes.

A run's stages are checkpointed by ``mhsnn.runs.Stages``: ``--resume`` skips finished stages
and continues an unfinished one from its last chunk, ending with the same bytes as an
uninterrupted run; ``--fresh`` discards another run's checkpoints first.

Exit codes: 0 done; 2 bad input (config, data, checkpoint) or a folder in use, with one line
and nothing written; 1 a failed write (disk full, permissions), one line naming the path, the
previous checkpoint intact; 3 a chip fault that persisted after its retries (one line naming
the chip, the query and the fault), the last whole chunk's checkpoint kept for --resume;
143 stopped by SIGTERM after checkpointing.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import NamedTuple

import jax

from mhsnn import chips, config, data, runs, sharding
from mhsnn.config import Config, ConfigError
from mhsnn.io import write_json
from mhsnn.runs import Stages

CODE_VERSION = "5"  # bump when a change makes old checkpoints meaningless
# (2: the key tree; 3: PT state split into PTState + PTTally; 4: W* outcomes named
# wstar_probs, the chip and data.label config sections)

# The manifest fields that differ between two runs of the same command on the same machine
# (the commit, the clock); every other byte a run writes is a function of its code, config,
# package versions and compilation (see ``compilation``). .ci/results_unchanged.py reads
# this to check that the README's main command reproduces the committed results.
VOLATILE = ("git_commit", "wall_s", "stage_wall_s (compile included)")
# The manifest fields that name the machine and its packages: a check of reproduction
# reports a difference there (it explains a moved result) but does not fail on it alone.
ENVIRONMENT = ("versions", "python", "device", "platform")
_NO_OPT = "jax_disable_most_optimizations"  # the test suite's compiler setting (compilation)


def parse_args(argv, description: str,
               defaults: list[str] = ()) -> tuple[Config, Path, str]:
    """Parse the shared options; a bad value exits with code 2 and one line, nothing written.

    ``defaults`` are ``KEY=VALUE`` settings of this experiment, applied before the user's
    ``--set`` (which override them). Returns (config, output folder, mode): mode is "new",
    "resume" or "fresh" (``runs.MODES``)."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--preset", default="quick", help="quick (default), paper (CPU-sized) or gpu")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config field, e.g. mh.num_steps=2000 (repeatable)")
    ap.add_argument("--out", type=Path, default=None, help="output folder (results/<preset>/)")
    how = ap.add_mutually_exclusive_group()
    how.add_argument("--resume", action="store_true",
                     help="continue the unfinished checkpoints of this experiment in --out")
    how.add_argument("--fresh", action="store_true",
                     help="discard this experiment's unfinished checkpoints in --out first")
    ap.add_argument("--distributed", action="store_true",
                    help="join a multi-process job with jax.distributed (see README)")
    args = ap.parse_args(argv)
    try:
        cfg = config.build(args.preset, [*defaults, *args.sets])
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    out = args.out if args.out is not None else Path("results") / cfg.preset
    try:
        if args.distributed:  # before anything touches a JAX backend
            sharding.initialize_distributed()
    except (ValueError, RuntimeError) as err:
        print(f"error: --distributed: {str(err).strip().splitlines()[0]} (outside Slurm, Open "
              "MPI or TPU, set JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID)",
              file=sys.stderr)
        raise SystemExit(2) from None
    return cfg, out, "resume" if args.resume else "fresh" if args.fresh else "new"


class Run(NamedTuple):
    """What every experiment starts from: its stages, the data set, the root key."""

    stages: Stages
    dataset: data.Dataset
    key: jax.Array
    t0: float

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0


def load_data(cfg: Config, folds: int | None = None, n_train: bool = False) -> data.Dataset:
    """The config's data set, checked against the network, the folds (``folds``, default
    ``cfg.folds``) and, with ``n_train``, the training sizes, before any write; anything
    wrong is a ConfigError of one line."""
    try:
        dataset = data.load(cfg.data.path or cfg.data.name, label=cfg.data.label)
        data.check_folds(dataset.y, cfg.folds if folds is None else folds)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    lo, hi = data.n_train_range(dataset.y)
    for n in cfg.n_train if n_train else ():
        if not lo <= n <= hi:
            raise ConfigError(f"n_train={list(cfg.n_train)}: values must be in [{lo}, {hi}] "
                              "for this data set (every class on both sides of the split)")
    config.network(cfg, dataset.X.shape[1], int(dataset.y.max()) + 1)
    return dataset


def start(out: Path, cfg: Config, experiment: str, mode: bool | str, folds: int | None = None,
          n_train: bool = False, grid: bool = False) -> Run:
    """Load the data, check it (see ``load_data``), create the output folder and the stage
    book-keeping. ``grid``: the experiment runs every method through
    ``runners.method_rows``, so ``methods`` may also name the samplers of
    ``config.grid_samplers()`` and the per-cell methods of ``config.grid_per_cell()``; the
    others refuse them in one line."""
    t0 = time.perf_counter()
    extra = [m for m in cfg.methods if m not in config.ALL_METHODS]
    if extra and not grid:
        raise ConfigError(f"methods: {extra[0]!r} runs in the grid experiments (sigma-sweep, "
                          f"data-efficiency, nonidealities, scaling); {experiment} takes "
                          f"{', '.join(config.ALL_METHODS)}")
    dataset = load_data(cfg, folds, n_train)
    if compilation()[_NO_OPT] and Path(out) == Path("results") / cfg.preset:
        print("warning: JAX_DISABLE_MOST_OPTIMIZATIONS is set: XLA compiles with other "
              "floating-point rewrites, so results differ in the last bits from a default run "
              "(ann_convert's 1,000 Adam steps amplify them into other predictions); "
              "the committed results/ are written without it", file=sys.stderr)
    stages = Stages(out, config.to_dict(cfg), experiment, mode, CODE_VERSION)
    return Run(stages, dataset, jax.random.key(cfg.seed), t0)


def manifest(cfg: Config, experiment: str, wall: float, stages: Stages | None,
             extra: dict | None = None) -> dict:
    """Config, seed, versions, commit, device, wall and per-stage times."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                check=False, cwd=Path(__file__).parent).stdout.strip()
    except OSError:
        commit = ""
    versions = {}
    for pkg in ("jax", "jaxlib", "optax", "numpyro", "scikit-learn", "numpy", "matplotlib"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    return {"experiment": experiment, "code_version": CODE_VERSION,
            "config": config.to_dict(cfg), "seed": cfg.seed,
            "data": data_source(cfg),
            "versions": versions, "python": platform.python_version(), "git_commit": commit,
            "compilation": compilation(),
            "device": str(jax.devices()[0]), "platform": jax.default_backend(),
            "num_devices": jax.device_count(), "num_processes": jax.process_count(),
            "wall_s": round(wall, 2),
            "stage_wall_s (compile included)": {
                k: round(v, 2) for k, v in (stages.timings if stages else {}).items()},
            **(extra or {})}


def compilation() -> dict:
    """How XLA compiled the run. Results are bit-stable under load and thread counts
    (docs/reliability.md), not across these: a rewrite of one multiply-add changes the last
    bit of a step, and a long optimisation carries it into other predictions."""
    return {"xla_flags": os.environ.get("XLA_FLAGS", ""),
            _NO_OPT: bool(jax.config.read(_NO_OPT))}



def data_source(cfg: Config) -> dict:
    """What the run read: a built-in set's name, or a user file's path, sha256, label
    column and classes (label values in the order of the class indices)."""
    if not cfg.data.path:
        return {"name": cfg.data.name}
    path = Path(cfg.data.path).resolve()
    classes = data.load(path, label=cfg.data.label).classes
    return {"path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "label": cfg.data.label, "classes": list(classes)}


def write_manifest(out: Path, cfg: Config, experiment: str, wall: float, stages: Stages | None,
                   extra: dict | None = None) -> None:
    """The run's last write; it completes the run (its checkpoints go, ``--out`` is freed)."""
    write_json(out / f"{experiment}_manifest.json",
               manifest(cfg, experiment, wall, stages, extra))
    if stages is not None:
        stages.complete()


def _chip_log(err: BaseException, out: Path | None) -> Path | None:
    """Write the chip exception's full traceback beside the results; its path, or None."""
    if err.__cause__ is None or out is None or not Path(out).is_dir():
        return None
    path = Path(out) / "chip_fault.log"
    try:
        path.write_text(f"{err}\n\n" + "".join(traceback.format_exception(err.__cause__)))
    except OSError:
        return None
    return path


def refuse_unknown(option: str, given, allowed) -> None:
    """An experiment's own name-list option (``--methods``, ``--data``): any name outside
    ``allowed`` stops with one line and exit code 2."""
    for value in given:
        if value not in allowed:
            print(f"error: {option} {value}: expected names from {', '.join(allowed)}",
                  file=sys.stderr)
            raise SystemExit(runs.EXIT_BAD_INPUT)


def cli(run: Callable, doc: str, argv=None, defaults: list[str] = ()) -> None:
    """An experiment's ``main``: parse the shared options, then ``run(cfg, out, mode)``."""
    cfg, out, mode = parse_args(argv, doc.splitlines()[0], defaults)
    main_guard(lambda: run(cfg, out, mode), out)


def main_guard(fn: Callable[[], None], out: Path | None = None) -> None:
    """Run an experiment, turning the ways it can stop into one line and an exit code (see the
    module docstring). A chip fault's own traceback goes to ``out/chip_fault.log``."""
    try:
        with chips.reporting_faults():
            fn()
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(runs.EXIT_BAD_INPUT) from None
    except chips.ChipError as err:
        log = _chip_log(err, out)
        where = f" (the chip's traceback: {log})" if log else ""
        if not err.fixable_by_retry:  # the chip does not fit the network: bad input
            print(f"error: {err}{where}", file=sys.stderr)
            raise SystemExit(runs.EXIT_BAD_INPUT) from None
        print(f"error: {err}{where}; rerun the same command with --resume once the chip "
              "works", file=sys.stderr)
        raise SystemExit(runs.EXIT_CHIP_FAULT) from None
    except runs.Terminated as err:
        print(f"{err}; rerun the same command with --resume to continue", file=sys.stderr)
        raise SystemExit(runs.EXIT_TERMINATED) from None
    except OSError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(runs.EXIT_WRITE_FAILED) from None

