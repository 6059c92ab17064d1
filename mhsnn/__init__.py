"""mhsnn: chip-in-the-loop training of spiking neural networks by MCMC, in JAX.

Public modules: ``data``, ``chips``, ``snn``, ``mcmc`` (``sample_mh``, ``sample_pt``),
``sgd``, ``metrics``, ``config``.
"""

from mhsnn import chips, data, mcmc, metrics, snn

__version__ = "0.1.0"

__all__ = ["__version__", "chips", "data", "mcmc", "metrics", "snn"]
