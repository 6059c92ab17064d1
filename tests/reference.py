"""An independent, loop-by-loop NumPy float64 implementation of PAPER.md's equations."""

import numpy as np


def f_sigma(v, sigma):
    return v + (sigma / 2) * v**2 + (sigma / 6) * v**3


def lif_reference(w1, w2, spikes, sigma, alpha=0.9, mu=1.0):
    """Output spike counts [N, 2] for spikes [T, N, 30], one sample and neuron at a time."""
    T, N, _ = spikes.shape
    counts = np.zeros((N, w2.shape[1]))
    for n in range(N):
        v1 = np.zeros(w1.shape[1])
        v2 = np.zeros(w2.shape[1])
        for t in range(T):
            s1 = np.zeros(w1.shape[1])
            for j in range(w1.shape[1]):
                current = sum(spikes[t, n, i] * w1[i, j] for i in range(w1.shape[0]))
                vt = f_sigma(alpha * v1[j] + (1 - alpha) * current, sigma)
                s1[j] = 1.0 if vt >= mu else 0.0
                v1[j] = 0.0 if (vt >= mu or vt < 0) else vt
            for k in range(w2.shape[1]):
                current = sum(s1[j] * w2[j, k] for j in range(w2.shape[0]))
                vt = f_sigma(alpha * v2[k] + (1 - alpha) * current, sigma)
                if vt >= mu:
                    counts[n, k] += 1
                v2[k] = 0.0 if (vt >= mu or vt < 0) else vt
    return counts
