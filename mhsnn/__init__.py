"""mhsnn: chip-in-the-loop training of spiking neural networks by MCMC, in JAX.

Public: ``SNNClassifier`` (the scikit-learn estimator), ``TRAINERS`` (every method by
name), ``ChipError`` (a chip fault that persisted after its retries), ``weight_layout``
(which slice of a flat weight vector is which layer's [fan_in, fan_out] matrix), and the modules
``data``, ``chips``, ``snn``, ``mcmc`` (``sample_mh``, ``sample_pt``, ...), ``sgd``,
``metrics``, ``config``, ``trainers``.
"""

from mhsnn import chips, data, mcmc, metrics, snn
from mhsnn.chips import ChipError, weight_layout
from mhsnn.estimator import SNNClassifier
from mhsnn.trainers import TRAINERS

__version__ = "0.2.0"

__all__ = ["TRAINERS", "ChipError", "SNNClassifier", "__version__", "chips", "data", "mcmc",
           "metrics", "snn", "weight_layout"]
