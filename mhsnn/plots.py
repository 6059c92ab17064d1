"""Matplotlib figures of the experiments (PNG, written atomically)."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from mhsnn import metrics
from mhsnn.io import atomic_write_bytes

STYLE = {"mh_mean": ("C0", "o", "-"), "mh_bma": ("C1", "s", "-"), "mh_vote": ("C7", "D", "-"),
         "pt_vote": ("C8", "D", "-"), "pt_mean": ("C4", "o", "-"),
         "pt_bma": ("C5", "s", "-"), "sg_offline": ("C2", "^", "--"),
         "sg_in_loop": ("C3", "v", "--"), "sg_offline_literal": ("C2", "^", ":"),
         "sg_in_loop_literal": ("C3", "v", ":")}


def save(fig, path: Path) -> None:
    """Write a figure as PNG to ``path`` atomically and close it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def _style(method):
    return STYLE.get(method, ("k", "x", "-"))


def accuracy_vs_sigma(summary: list[dict], path: Path, title: str) -> None:
    """Mean +- std over folds of test accuracy against sigma, one line per method."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for method in dict.fromkeys(r["method"] for r in summary):
        rs = sorted((r for r in summary if r["method"] == method), key=lambda r: r["sigma"])
        color, marker, ls = _style(method)
        ax.errorbar([r["sigma"] for r in rs], [r["mean"] for r in rs], [r["std"] for r in rs],
                    label=method, color=color, marker=marker, ls=ls, capsize=3)
    ax.set(xlabel="chip non-linearity sigma", ylabel="test accuracy", title=title, ylim=(0.3, 1))
    ax.axhline(0.87, color="grey", lw=0.8, ls=":")
    ax.legend(fontsize=7)
    save(fig, path)


def accuracy_vs_ntrain(summary: list[dict], path: Path, title: str) -> None:
    """One panel per sigma: mean +- std test accuracy against N_t (log axis)."""
    sigmas = sorted({r["sigma"] for r in summary})
    fig, axes = plt.subplots(1, len(sigmas), figsize=(4 * len(sigmas), 3.6), sharey=True,
                             squeeze=False)
    for ax, sigma in zip(axes[0], sigmas):
        for method in dict.fromkeys(r["method"] for r in summary):
            rs = sorted((r for r in summary if r["method"] == method and r["sigma"] == sigma),
                        key=lambda r: r["n_train"])
            color, marker, ls = _style(method)
            ax.errorbar([r["n_train"] for r in rs], [r["mean"] for r in rs],
                        [r["std"] for r in rs], label=method, color=color, marker=marker, ls=ls,
                        capsize=2)
        ax.set(xscale="log", xlabel="training samples N_t", title=f"sigma = {sigma:g}",
               ylim=(0.3, 1))
        ax.axhline(0.9, color="grey", lw=0.8, ls=":")
    axes[0, 0].set_ylabel("test accuracy")
    axes[0, -1].legend(fontsize=7)
    fig.suptitle(title)
    save(fig, path)


def reliability_diagram(panels: dict[float, dict[str, tuple[np.ndarray, np.ndarray]]],
                        path: Path, title: str) -> None:
    """CORP reliability (isotonic fit of top-label correctness on confidence, 90% bootstrap
    band) of each method's pooled test predictions: a row per sigma (or per named variant,
    such as a predictive), a column per method."""
    sigmas = list(panels)
    methods = list(dict.fromkeys(m for by_method in panels.values() for m in by_method))
    fig, axes = plt.subplots(len(sigmas), len(methods), figsize=(2.4 * len(methods),
                                                                 2.5 * len(sigmas)),
                             sharex=True, sharey=True, squeeze=False)
    for i, sigma in enumerate(sigmas):
        for j, method in enumerate(methods):
            ax = axes[i, j]
            ax.plot([0, 1], [0, 1], color="grey", lw=0.8)
            if method in panels[sigma]:
                probs, labels = panels[sigma][method]
                c = metrics.corp(probs, labels)
                color = _style(method)[0]
                ax.fill_between(c.confidence, c.band_low, c.band_high, color=color, alpha=0.2,
                                step="post")
                ax.step(c.confidence, c.calibrated, where="post", color=color)
                score = f"MCB {c.miscalibration:.3f}\nECE {metrics.ece(probs, labels):.3f}"
                ax.text(0.02, 0.95, score,
                        fontsize=6, va="top", transform=ax.transAxes)
            if i == 0:
                ax.set_title(method, fontsize=8)
            if j == 0:
                row = f"sigma = {sigma:g}" if isinstance(sigma, (int, float)) else str(sigma)
                ax.set_ylabel(f"{row}\nCEP (accuracy)", fontsize=7)
            if i == len(sigmas) - 1:
                ax.set_xlabel("confidence", fontsize=7)
    for ax in axes.ravel():
        ax.set(xlim=(0, 1.0), ylim=(0, 1.02))
    fig.suptitle(title)
    save(fig, path)
