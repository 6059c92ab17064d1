"""The config translated into methods: the network settings, the chip grid, the SG runs, and
what each method's training costs in chip presentations."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mhsnn import chips, config, posterior, sgd, snn, trainers
from mhsnn.config import Config


def settings_of(cfg: Config, problem: posterior.Problem) -> posterior.SNNSettings:
    """The network of the config on this problem's data, its layout resolved on the host."""
    layout = snn.default_layout() if cfg.snn.layout == "auto" else cfg.snn.layout
    return posterior.SNNSettings(
        alpha=cfg.snn.alpha, threshold=cfg.snn.threshold, layout=layout,
        sizes=config.network(cfg, problem.num_features, problem.num_classes),
        likelihood=cfg.likelihood, softmax_scale=cfg.softmax_scale)


def grid_chip(num_folds: int, cells, per_cell: int) -> chips.Chip:
    """Chip leaves [F, S * per_cell, ...]: the s-th cell's chip for the s-th block of chains
    (or seeds). ``cells`` is a list of chips with the same fields, or of sigma values."""
    cells = [c if isinstance(c, chips.Chip) else chips.polynomial(c) for c in cells]
    stacked = chips.stack(cells)
    return jax.tree.map(lambda leaf: jnp.broadcast_to(
        jnp.repeat(leaf, per_cell, axis=0), (num_folds, leaf.shape[0] * per_cell, *leaf.shape[1:])),
        stacked)


def sg_variants(cfg: Config) -> list[tuple[str, bool, sgd.SGHyper]]:
    """(method name, in_loop, hyper) for each SG run the config asks for."""
    tuned = trainers.sg_hyper(cfg)
    out = []
    for mode in ("offline", "in_loop"):
        if f"sg_{mode}" in cfg.methods:
            out.append((f"sg_{mode}", mode == "in_loop", tuned))
        if f"sg_{mode}_literal" in cfg.methods:
            out.append((f"sg_{mode}_literal", mode == "in_loop",
                        tuned._replace(**sgd.PAPER_LITERAL)))
    return out


def training_presentations(method: str, cfg: Config, n_train: int) -> int:
    """Chip sample presentations (one weight set on one sample) one cell's training costs.

    mh ("rw" of TRAINERS), pt and every other sampler of ``config.grid_samplers()``: as
    ``trainers.presentations_of`` counts them, chains x (steps + 1) x N (the start, then one
    proposal per step on every training row), times K replicas for pt (``cfg.mh.num_steps``
    is PT's own step count); sg_offline and ann_convert: 0 (trained on the model; deploying
    is an evaluation); sg_in_loop: seeds x epochs x N (every row once per epoch, forward on
    the chip). Test-set evaluation is not counted.
    """
    base = method.removesuffix("_literal")
    if base in ("mh", "pt", *config.grid_samplers()):
        return trainers.presentations_of("rw" if base == "mh" else base, cfg.mh.num_steps,
                                         cfg.mh.num_chains, n_train, cfg)
    return {"sg_offline": 0, "sg_in_loop": cfg.sg.seeds * cfg.sg.epochs * n_train,
            "ann_convert": 0}[base]

