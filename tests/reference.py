"""An independent, loop-by-loop NumPy float64 implementation of the equations in docs/paper.md."""

import numpy as np


def f_sigma(v, sigma):
    return v + (sigma / 2) * v**2 + (sigma / 6) * v**3


def lif_reference_layers(ws, spikes, sigma, alpha=0.9, mu=1.0):
    """Output spike counts [N, O] of a stack of LIF layers ``ws`` ([fan_in, fan_out] each)
    for spikes [T, N, F], one sample, layer and neuron at a time."""
    T, N, _ = spikes.shape
    counts = np.zeros((N, ws[-1].shape[1]))
    for n in range(N):
        vs = [np.zeros(w.shape[1]) for w in ws]
        for t in range(T):
            s_in = spikes[t, n]
            for w, v in zip(ws, vs):
                s_out = np.zeros(w.shape[1])
                for j in range(w.shape[1]):
                    current = sum(s_in[i] * w[i, j] for i in range(w.shape[0]))
                    vt = f_sigma(alpha * v[j] + (1 - alpha) * current, sigma)
                    s_out[j] = 1.0 if vt >= mu else 0.0
                    v[j] = 0.0 if (vt >= mu or vt < 0) else vt
                s_in = s_out
            counts[n] += s_in
    return counts


def lif_reference(w1, w2, spikes, sigma, alpha=0.9, mu=1.0):
    """Output spike counts [N, 2] of the two-layer network of docs/paper.md, spikes [T, N, 30]."""
    return lif_reference_layers([w1, w2], spikes, sigma, alpha, mu)
