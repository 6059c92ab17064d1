"""Chips as a user writes them, for tests/test_user_chip.py: loaded by ``chip.path``."""

from pathlib import Path

import numpy as np

from experiments.external_chip import NumpyChip


class FakeTensor:
    """What a torch tensor looks like to the engine, without torch: NumPy can read it
    (``__array__``) unless it requires grad, as torch refuses then."""

    def __init__(self, values, requires_grad=False):
        self.values, self.requires_grad = np.asarray(values), requires_grad

    def __array__(self, dtype=None, copy=None):
        if self.requires_grad:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad.")
        return self.values if dtype is None else self.values.astype(dtype)


class TensorChip:
    """A chip answering tensors; it writes into its inputs in place, as torch's in-place
    ops on ``torch.from_numpy`` views do (read-only arrays would fail or warn)."""

    def __init__(self, sizes, requires_grad=False, kill_file=""):
        self.sizes, self.requires_grad = tuple(sizes), requires_grad
        self.chip, self.kill_file, self.calls = NumpyChip(sigma=1.0, sizes=sizes), kill_file, 0

    def __call__(self, weights, spikes):
        self.calls += 1
        if self.kill_file and Path(self.kill_file).exists() and self.calls > 6:
            raise ConnectionError("link down")
        weights *= 1.0  # in place: fails on a read-only array
        return FakeTensor(self.chip(weights, spikes), self.requires_grad)


def for_four_inputs(weights, spikes):
    """A chip built for a 4-8-3 network, whatever it is given (as a user's torch chip was)."""
    assert weights.shape[1] == 4 * 8 + 8 * 3, (weights.shape, spikes.shape)
    return np.zeros((weights.shape[0], spikes.shape[1], 3), np.float32)
