"""Scoring and tabulation: every test split scored in one place, rows per cell and fold,
MCMC diagnostics, summaries, and the per-sample predictions files."""

from __future__ import annotations

import gzip

import numpy as np

from experiments.outcomes import MCMCOutcome
from mhsnn import likelihood, metrics, posterior
from mhsnn.io import atomic_write_bytes
from mhsnn.mcmc import diagnostics


def test_split(problem: posterior.Problem, fold: int) -> tuple[np.ndarray, np.ndarray]:
    """(mask over the padded test rows, the labels of the real ones) of one fold."""
    mask = np.asarray(problem.test_mask[fold]).astype(bool)
    return mask, np.asarray(problem.test_labels[fold])[mask]


def cell_rows(method: str, probs: np.ndarray, problem: posterior.Problem, labels,
              pooled: bool, extra: dict | None = None) -> list[dict]:
    """Rows per (cell, fold). probs [F, S, R, Nte, O]: R chains or seeds; ``labels`` name the
    S cells (dicts of columns, or sigma values).

    pooled: the R predictives are averaged first (BMA over chains); otherwise each of the R
    is scored alone and the metrics are averaged (the expected result of one run).
    """
    rows = []
    for s, label in enumerate(labels_of(labels)):
        for f in range(probs.shape[0]):
            mask, y = test_split(problem, f)
            if pooled:
                scores = metrics.summary(probs[f, s].mean(0)[mask], y)
            else:
                each = [metrics.summary(p[mask], y) for p in probs[f, s]]
                scores = {k: float(np.mean([e[k] for e in each])) for k in each[0]}
            row = {"method": method, **label, "fold": f, **(extra or {}), **scores,
                   "n_test": int(mask.sum())}
            rows.append(row)
    return rows


def labels_of(labels) -> list[dict]:
    """Cell labels as row columns: dicts stay, a bare number is a sigma."""
    return [lab if isinstance(lab, dict) else {"sigma": float(lab)} for lab in labels]


def logdensity_diagnostics(logdensity: np.ndarray) -> dict[str, float]:
    """R-hat and ESS of one cell's log density draws [chains, draws]: the
    permutation-invariant summary of an SNN posterior run."""
    lds = logdensity[..., None]
    return {"rhat_logdensity": float(diagnostics.rhat(lds)[0]),
            "ess_logdensity": float(diagnostics.ess(lds)[0])}


def chain_cells(outcome: MCMCOutcome, problem: posterior.Problem,
                sigmas) -> list[tuple[int, int, dict]]:
    """Per (cell s, fold f) of an MCMC outcome: (s, f, {sigma, fold, rhat_logdensity,
    ess_logdensity, acc_mean (each chain's W* alone, averaged), acc_bma (all chains'
    draws pooled)})."""
    out = []
    for s, sigma in enumerate(sigmas):
        for f in range(problem.train_spikes.shape[0]):
            mask, labels = test_split(problem, f)
            out.append((s, f, {
                "sigma": float(sigma), "fold": f,
                **logdensity_diagnostics(outcome.draws_logdensity[f, s]),
                "acc_mean": float(np.mean([metrics.accuracy(p[mask], labels)
                                           for p in outcome.wstar_probs[f, s]])),
                "acc_bma": metrics.accuracy(outcome.bma_probs[f, s].mean(0)[mask], labels)}))
    return out


def mh_diagnostic_rows(outcome: MCMCOutcome, labels, extra: dict | None = None) -> list[dict]:
    """Acceptance, R-hat and ESS per (cell, fold) from the kept draws."""
    rows = []
    draws, lds, pt = outcome.draws, outcome.draws_logdensity, outcome.tempering
    for s, label in enumerate(labels_of(labels)):
        for f in range(draws.shape[0]):
            r_w = diagnostics.rhat(draws[f, s])
            e_w = diagnostics.ess(draws[f, s])
            rows.append({**label, "fold": f, **(extra or {}),
                         "acceptance": float(outcome.acceptance[f, s].mean()),
                         **logdensity_diagnostics(lds[f, s]),
                         "rhat_weights_median": float(np.median(r_w)),
                         "rhat_weights_max": float(np.max(r_w)),
                         "ess_weights_median": float(np.median(e_w)),
                         "ess_weights_min": float(np.min(e_w)),
                         "chains": draws.shape[2], "draws_per_chain": draws.shape[3]})
            if pt is not None:
                swap = pt.swap_acceptance[f, s].mean(0)
                rows[-1].update(
                    barrier=float((1 - swap).sum()),
                    swap_acceptance=" ".join(f"{a:.3f}" for a in swap),
                    betas=" ".join(f"{b:.4f}" for b in pt.betas[f, s].mean(0)),
                    round_trips_per_1000=float(pt.round_trips_per_1000[f, s].mean()),
                    recommended_temperatures=int(np.ceil(2 * (1 - swap).sum())) + 1)
                if pt.log_evidence is not None:  # stepping stone: mean and SE over chains
                    z = pt.log_evidence[f, s]
                    rows[-1].update(log_evidence=float(z.mean()),
                                    log_evidence_se=float(z.std(ddof=1) / np.sqrt(len(z)))
                                    if len(z) > 1 else float("nan"))
    return rows


def group_rows(rows: list[dict], keys: tuple[str, ...]) -> dict[tuple, list[dict]]:
    """Rows grouped by their values of ``keys``, groups in order of first appearance."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r)
    return groups


def summarise(rows: list[dict], keys: tuple[str, ...]) -> list[dict]:
    """Mean and std of test accuracy over folds per (method, *keys)."""
    out = []
    for g, group in group_rows(rows, ("method", *keys)).items():
        v = [r["test_accuracy"] for r in group]
        out.append({"method": g[0], **dict(zip(keys, g[1:])), "mean": float(np.mean(v)),
                    "std": float(np.std(v)), "folds": len(v)})
    return out


def pooled_predictions(raw: dict[str, np.ndarray], problem, sigma_index: int):
    """Per method: all test predictions at one sigma over folds (and chains/seeds), + labels.

    BMA and vote predictions are pooled over chains first; the others count each chain/seed
    alone.
    """
    out = {}
    for method, probs in raw.items():
        ps, ls = [], []
        for f in range(probs.shape[0]):
            mask, labels = test_split(problem, f)
            cell = probs[f, sigma_index][:, mask]  # [R, n, O]
            if method.endswith(("_bma", "_vote")):
                cell = cell.mean(0, keepdims=True)
            ps.append(cell.reshape(-1, cell.shape[-1]))
            ls.append(np.tile(labels, cell.shape[0]))
        out[method] = (np.concatenate(ps), np.concatenate(ls))
    return out


def probability_name(cfg) -> str:
    """How one weight set's class probabilities are formed under the config's likelihood:
    "counts" (the smoothed count share, MSE) or "softmax" (the categorical likelihood's)."""
    return likelihood.of(cfg.likelihood, cfg.softmax_scale).probabilities_from


def mcmc_raw(outcome: MCMCOutcome, method: str) -> dict[str, np.ndarray]:
    """An MCMC stage's test probabilities [F, S, R, Nte, O] under their method names: the
    per-chain W* (``_mean``), the BMA and the vote fraction over draws (``_bma``, ``_vote``)."""
    return {f"{method}_mean": outcome.wstar_probs, f"{method}_bma": outcome.bma_probs,
            f"{method}_vote": outcome.vote_probs}


def prediction_rows(raw: dict[str, np.ndarray], problem: posterior.Problem, labels,
                    probability: str = "counts", extra: dict | None = None) -> list[dict]:
    """Every test prediction: method, predictive ("votes" for the vote fraction, else
    ``probability``), ``extra`` columns, cell columns, fold, member (chain or seed; "pooled"
    for the BMA and vote fraction over all chains), sample (the row in the data set), label,
    p_0 ... p_{K-1}; from these every reported metric can be recomputed."""
    rows = []
    test_index, test_labels = np.asarray(problem.test_index), np.asarray(problem.test_labels)
    for method, probs in raw.items():
        pooled = method.endswith(("_bma", "_vote"))
        predictive = "votes" if method.endswith("_vote") else probability
        for s, label in enumerate(labels_of(labels)):
            for f in range(probs.shape[0]):
                mask = test_split(problem, f)[0]
                members = ([("pooled", probs[f, s].mean(0))] if pooled
                           else list(enumerate(probs[f, s])))
                for member, p in members:
                    for i in np.flatnonzero(mask):
                        rows.append({"method": method, "predictive": predictive,
                                     **(extra or {}), **label,
                                     "fold": f, "member": member,
                                     "sample": int(test_index[f, i]),
                                     "label": int(test_labels[f, i]),
                                     **{f"p_{k}": float(v) for k, v in enumerate(p[i])}})
    return rows


def write_predictions(path, rows: list[dict]) -> None:
    """``prediction_rows`` as a gzipped CSV (``<experiment>_predictions.csv.gz``; the
    probabilities to 4 significant digits, every other float exact): pandas and numpy read
    it as they read a plain CSV. Gzip's header time is fixed so a rerun is byte-identical."""
    fields = list(dict.fromkeys(k for r in rows for k in r))
    lines = [",".join(fields)]
    for r in rows:
        lines.append(",".join("" if k not in r  # a data set with fewer classes
                              else f"{r[k]:.4g}" if isinstance(r[k], float) and k.startswith("p_")
                              else f"{r[k]:g}" if isinstance(r[k], float) else str(r[k])
                              for k in fields))
    atomic_write_bytes(path, gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0))


def print_table(summary: list[dict], keys: tuple[str, ...]) -> None:
    for r in summary:
        where = " ".join(f"{k}={r[k]:g}" for k in keys)
        print(f"{r['method']:22s} {where:22s} {r['mean']:.3f} +- {r['std']:.3f}")

