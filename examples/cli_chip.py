"""Your chip on the command line: a NumPy LIF chip of any layer sizes, loaded by
``chip.path`` and run by the experiment modules (checkpoints, manifests, --resume).

    mhsnn chip-methods --set chip.path=examples/cli_chip.py:LeakyChip \\
        --set 'chip.args={leak = 0.8}' --set data.path=my_data.csv --set data.label=species \\
        --methods snes rw_adapt --budget 1e6 --out results/my_chip
    mhsnn external-chip --set chip.path=examples/cli_chip.py:LeakyChip --out results/my_mh

The engine calls ``LeakyChip(sizes=(F, *hidden, K), **chip.args)`` once, then asks the
instance for spike counts; it first sends one checking query (one weight set, two rows), so
a chip built for another network stops at once, naming the layout it was sent
(``mhsnn.weight_layout``). A chip that does not take ``sizes`` gets only ``chip.args``; a
plain function ``(weights, spikes) -> counts`` is used as it is.
"""

import numpy as np

import mhsnn


class LeakyChip:
    """LIF layers with leak ``leak`` and threshold 1; the membrane saturates at
    ``v_max``. ``sizes`` is read by the engine to check the network it runs."""

    def __init__(self, sizes, leak=0.9, v_max=1.5):
        self.sizes, self.leak, self.v_max = tuple(sizes), float(leak), float(v_max)

    def __call__(self, weights, spikes):  # [C, P], [T, N, F] -> counts [C, N, O]
        ws = [weights[:, where].reshape(-1, *shape)
              for _, where, shape in mhsnn.weight_layout(self.sizes)]
        v = [0.0] * len(ws)
        counts = 0.0
        for s in spikes[:, None]:  # [1, N, F]: broadcast over the C weight sets
            for i, w in enumerate(ws):
                v[i] = np.minimum(self.leak * v[i] + (1 - self.leak) * (s @ w), self.v_max)
                s, v[i] = v[i] >= 1, np.where(v[i] >= 1, 0.0, np.maximum(v[i], 0.0))
            counts = counts + s
        return np.asarray(counts, np.float32)
