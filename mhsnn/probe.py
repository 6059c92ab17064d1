"""Learn a chip's weight unit before training, from a few counted forward runs.

Every default of the engine (start and prior spreads, proposal and perturbation sizes, ES's
sigma, SPSA's c, EKI's prior) is in the engine's weight unit: a tenth of the threshold per
input spike on the ideal chip (docs/your-chip.md). A chip whose unit is 100 times smaller
sees those weights as nothing, and every model-free method then starts from, and stays at,
a silent network. The probe measures where the network wakes up instead of assuming it:

- draw ``sets`` weight sets W ~ N(0, 1) (in engine units) once;
- for a scale s on a geometric grid (two points a decade, from 1 outward), present the first
  ``rows`` training rows to the chip with the weights s x W, and measure the share of
  (weight set, row) pairs with any output spike;
- the chosen scale is the smallest grid s at which more than half of the pairs are active:
  below it the network is mostly silent, above it every method's start is awake.
- a chip that spikes at every scale down to the grid's end is driven by something other
  than the weights (a deployed network's biases, ``init="vendor"``): the probe then
  presents the network of zero weights once, and a pair is active where its counts differ
  from that network's; the scales already presented are judged again without new queries.

The chip then stores s x W for the engine's W (``chips.scaled`` for a JAX chip; the
estimator wraps a host chip likewise), so every method's defaults are in units of the
chip's own activity. The rule, and its threshold of a half, are those of the throwaway
experiment in the issue that asked for this (it landed inside the flat range of accuracy
against scale on the four chips tried), not tuned here.

The probe also records the output count range the chip reached (the highest count, and
the mean per-row maximum at the chosen scale, as fractions of T): a chip whose outputs
never come near T has a narrow range that the MSE likelihood's targets (0 and T) ignore.
With ``reach=True`` it also presents the weights at 10 and 100 times the chosen scale,
where a network of random weights drives some outputs as hard as the chip allows, so that
the highest count is the chip's ceiling rather than that of the quiet scales (the
estimator's ``count_range="auto"`` stretches the likelihood's rates by it).

Its cost is ``sets x rows`` presentations per scale tried, all counted
(``Probe.presentations``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

LOWEST, HIGHEST = 1e-4, 1e4  # the grid's ends: beyond them the chip is not a weight-unit away
ACTIVE = 0.5  # more than this share of (weight set, row) pairs spiking: awake


class Probe(NamedTuple):
    """What the probe found: the chosen scale, every scale tried with its active share and
    mean per-row maximum count (/ T), the highest count seen (/ T), and its cost."""

    scale: float
    scales: tuple[float, ...]
    active: tuple[float, ...]
    level: tuple[float, ...]
    max_count: float
    presentations: int
    awake: bool  # False: silent at every scale up to HIGHEST (scale is then HIGHEST)

    def summary(self) -> dict:
        """The figures ``diagnostics_`` and manifests record."""
        at = self.scales.index(self.scale)
        return {"weight_scale": self.scale, "probe_presentations": self.presentations,
                "probe_scales_tried": len(self.scales), "probe_active": self.active[at],
                "probe_count_level": self.level[at], "probe_max_count": self.max_count,
                "probe_awake": self.awake}


REACH = (2, 4)  # with reach=True: grid points above the chosen scale (10x and 100x)


def probe(counts: Callable[[np.ndarray], np.ndarray], num_weights: int, num_rows: int,
          T: int, seed: int = 0, sets: int = 32, rows: int = 64, reach: bool = False) -> Probe:
    """Find the weight scale of a chip.

    ``counts(weights [sets, P]) -> counts [sets, rows, O]`` runs the weight sets on the
    chip's first ``rows`` training rows (the caller binds the rows and the chip);
    ``num_rows`` is how many rows there are (``rows`` is capped by it)."""
    rows = min(rows, num_rows)
    W = np.random.default_rng(seed).standard_normal((sets, num_weights)).astype(np.float32)
    seen: dict[float, np.ndarray] = {}  # every scale's counts [sets, rows, O], queried once
    base: list[np.ndarray] = []  # the network's answer at zero weights, when needed

    def counts_at(s: float) -> np.ndarray:
        if s not in seen:
            seen[s] = np.asarray(counts(np.float32(s) * W), np.float64)
        return seen[s]

    def share(s: float) -> float:  # (set, row) pairs that answer the weights
        c = counts_at(s)
        moved = c.max(-1) > 0 if not base else np.any(c != base[0], -1)
        return float(np.mean(moved))

    def grid(k: int) -> float:  # exact decades: a chip 100x off is found exactly 100x off
        return float(10.0 ** (k / 2))

    lo, hi = round(2 * np.log10(LOWEST)), round(2 * np.log10(HIGHEST))

    def walk() -> int:
        k = 0
        if share(grid(k)) > ACTIVE:  # awake at the engine's unit: down to the last awake
            while k > lo and share(grid(k - 1)) > ACTIVE:
                k -= 1
        else:  # silent: up to the first awake scale
            while k < hi:
                k += 1
                if share(grid(k)) > ACTIVE:
                    break
        return k

    k = walk()
    if k == lo and share(grid(k)) > ACTIVE:
        # spiking even at the faintest weights: the chip's own drive (a deployed network's
        # biases) does it, not the weights. Awake then means answering otherwise than the
        # network of zero weights; the scales already seen are judged again, not re-queried
        base.append(np.asarray(counts(np.zeros_like(W)), np.float64))
        k = walk()
    s = grid(k)
    awake = share(s) > ACTIVE
    for up in REACH if reach and awake else ():
        if k + up <= hi:
            counts_at(grid(k + up))
    order = sorted(seen)
    top = max(float(c.max()) for c in seen.values()) / T
    return Probe(float(s), tuple(order), tuple(share(x) for x in order),
                 tuple(float(np.mean(seen[x].max(-1))) / T for x in order), top,
                 (len(seen) + len(base)) * sets * rows, awake)
