"""The samplers on a plain density, no network: a correlated 2-D Gaussian posterior whose
mean, covariance and normalising constant are known, sampled by adaptive random-walk MH
(``sample_mh``) and by parallel tempering (``sample_pt``, with its stepping-stone log Z).

    python examples/plain_density.py [STEPS]    (default 20,000 steps per chain)
"""
import sys

import jax
import jax.numpy as jnp
import numpy as np

from mhsnn.mcmc import sample_mh, sample_pt

MEAN = jnp.array([1.0, -2.0])
COV = jnp.array([[1.0, 0.9], [0.9, 1.0]])
PREC = jnp.linalg.inv(COV)


def log_prior(x):  # N(0, 10^2 I), normalised
    return -0.5 * jnp.sum(x**2) / 100.0 - jnp.log(2 * jnp.pi * 100.0)


def log_likelihood(x):  # unnormalised Gaussian bump around MEAN
    d = x - MEAN
    return -0.5 * d @ PREC @ d


def log_posterior(x):
    return log_prior(x) + log_likelihood(x)


if __name__ == "__main__":
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    start = jnp.zeros((8, 2))
    mh = sample_mh(jax.random.key(0), log_posterior, start, num_steps=steps, step_size=1.0,
                   adapt_covariance=True)
    draws = mh.samples.reshape(-1, 2)
    print("MH mean", draws.mean(0).round(2), "cov", np.cov(draws.T).round(2).tolist())
    print("MH R-hat", mh.rhat.round(3), "ESS", mh.ess.round(0))
    pt = sample_pt(jax.random.key(1), log_prior, log_likelihood, start, num_steps=steps // 4,
                   step_size=1.0, num_temperatures=6)
    # exact log Z = log N(MEAN; 0, COV + 100 I) + log(2 pi sqrt(det COV)) (the bump's mass)
    total = COV + 100.0 * jnp.eye(2)
    exact = (-0.5 * MEAN @ jnp.linalg.solve(total, MEAN) - jnp.log(2 * jnp.pi)
             - 0.5 * jnp.linalg.slogdet(total)[1]
             + jnp.log(2 * jnp.pi) + 0.5 * jnp.linalg.slogdet(COV)[1])
    print(f"PT log Z {pt.log_evidence:.3f} +- {pt.log_evidence_se:.3f} (exact {exact:.3f})")
