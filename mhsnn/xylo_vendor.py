"""SynSense's own workflow for Xylo, as a library: rockpool's float model, mapper and quantiser.

What a Xylo user deploys today, and what ``SNNClassifier(init="vendor")`` starts from on a
Xylo chip (``XyloChip.vendor_init``): a float model of Xylo's neurons in rockpool's modules
(``LinearJax``/``LIFJax``; tau_mem = 8 dt and tau_syn = 2 dt, the chip's dashes 3 and 1;
trained biases; thresholds fixed at 1) is trained by surrogate-gradient BPTT (optax Adam,
the cross-entropy of the softmax of output counts) on the training rows, mapped with
rockpool's Xylo ``mapper`` and quantised with its ``global_quantize`` (one int8 scale for
the whole network, thresholds and biases scaled with it). Training it costs the chip no
presentations: only the float model sees the rows. ``vendor_fit(chip=...)`` fine-tunes it
with the chip in the loop instead (the chip's counts forward, the model's derivative back).

The settings are rockpool's usual, untuned defaults (Adam lr 0.01, batches of 32, 200
epochs; in the loop, batches of 128).
"""

from __future__ import annotations

import functools
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mhsnn import data
from mhsnn.xylo import DASH_MEM, DASH_SYN, check_spec, rockpool_module, run_configs

VENDOR_LR, VENDOR_BATCH, VENDOR_EPOCHS = 0.01, 32, 200
IN_LOOP_BATCH = 128  # rows per chip query in the loop (each step re-quantises and queries)
TAU_MEM, TAU_SYN = 2.0**DASH_MEM, 2.0**DASH_SYN  # in dt: rockpool maps tau to dash


def vendor_net(F: int, H: int, O: int, key: jax.Array):
    """rockpool's float model of Xylo's neurons: Linear -> LIF -> Linear -> LIF."""
    nn = rockpool_module("rockpool.nn.modules")
    Sequential = rockpool_module("rockpool.nn.combinators").Sequential
    k1, k2 = jax.random.split(key)

    def lif(n, **kw):
        return nn.LIFJax(n, tau_mem=np.full(n, TAU_MEM * 1e-3), tau_syn=np.full(n, TAU_SYN * 1e-3),
                         bias=np.zeros(n), threshold=np.ones(n), dt=1e-3, **kw)

    def linear(a, b, k, positive=False):  # rockpool's Kaiming-uniform bound, keyed by ours
        bound = np.sqrt(6.0 / a)
        w = jax.random.uniform(k, (a, b), minval=-bound, maxval=bound)
        return nn.LinearJax((a, b), has_bias=False,
                            weight=np.asarray(jnp.abs(w) if positive else w))

    # an output neuron spikes at most once a step on the chip: so does the model's
    # rockpool's LIF surrogate is zero below threshold - 0.5: an output silent at the start
    # never learns (with signed output weights, iris stayed at chance), so the output
    # weights start positive, as the engine's tuned SG initialisation does (sg.init_mean2)
    return Sequential(linear(F, H, k1), lif(H), linear(H, O, k2, positive=True),
                      lif(O, max_spikes_per_dt=1.0))


TRAINED = (("0_LinearJax", "weight"), ("1_LIFJax", "bias"), ("2_LinearJax", "weight"),
           ("3_LIFJax", "bias"))  # taus (the chip's dashes) and thresholds stay fixed


def _trainable(net) -> dict:
    p = net.parameters()
    return {m: {k: jnp.asarray(p[m][k])} for m, k in TRAINED}


def _rates(net, params, spikes_btf):
    out, _, _ = net.reset_state().set_attributes(params)(spikes_btf)
    return out.mean(1)  # [B, O] spikes per step


@functools.partial(jax.jit, static_argnums=(0, 1))
def _step(net, opt, params, opt_state, x, y_onehot, chip_rates):
    """One Adam step on the cross-entropy of softmax(output counts); with the chip's rates,
    straight-through (in the loop: the chip's values, the model's derivative)."""
    def loss(p):
        rates = _rates(net, p, x)
        if chip_rates is not None:
            rates = rates + jax.lax.stop_gradient(chip_rates - rates)
        return optax.softmax_cross_entropy(rates * x.shape[1], y_onehot).mean()
    value, grads = jax.value_and_grad(loss)(params)
    updates, opt_state = opt.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, value


def float_spec(params, net) -> dict:
    """rockpool's ``mapper`` of the model: its float specification for Xylo."""
    mapper = rockpool_module("rockpool.devices.xylo.syns61201.xylo_mapper").mapper
    graph = net.reset_state().set_attributes(params).as_graph()
    spec = mapper(graph, weight_dtype="float", threshold_dtype="float", dash_dtype="float")
    for key in ("mapped_graph", "dt"):
        spec.pop(key, None)
    return spec


def with_params(spec: dict, params) -> dict:
    """``spec`` with the trained arrays of ``params`` (what ``mapper`` puts there for this
    feed-forward network: the tests check it), without re-mapping the graph each step."""
    return {**spec, "weights_in": np.asarray(params["0_LinearJax"]["weight"]),
            "weights_out": np.asarray(params["2_LinearJax"]["weight"]),
            "bias": np.asarray(params["1_LIFJax"]["bias"]),
            "bias_out": np.asarray(params["3_LIFJax"]["bias"])}


def quantised(spec: dict) -> dict:
    """rockpool's ``global_quantize`` of a float specification, checked against the chip."""
    quantize = rockpool_module("rockpool.transform.quantize_methods").global_quantize
    return check_spec({**spec, **quantize(**spec)})


def vendor_fit(key, spikes, y, H, O, chip=None, budget=0.0, start=None):
    """Train the float model offline (``chip=None``) or in the loop for ``budget``
    presentations from ``start``; returns (params, net, presentations)."""
    T, N, F = spikes.shape
    key_init, key_batches = jax.random.split(key)
    net = vendor_net(F, H, O, key_init)
    params = _trainable(net) if start is None else start
    opt = optax.adam(VENDOR_LR)
    opt_state = opt.init(params)
    x = jnp.swapaxes(jnp.asarray(spikes), 0, 1)  # [N, T, F]: rockpool is batch-major
    y1 = jnp.asarray(data.one_hot(y, O))
    rng = np.random.default_rng(int(jax.random.randint(key_batches, (), 0, 2**31 - 1)))
    spec = float_spec(params, net) if chip is not None else None
    used, epoch = 0, 0
    while (epoch < VENDOR_EPOCHS) if chip is None else (used + N <= budget):
        batch = VENDOR_BATCH if chip is None else IN_LOOP_BATCH
        for idx in np.array_split(rng.permutation(N), max(1, N // batch)):
            chip_rates = None
            if chip is not None:
                t0 = time.perf_counter()
                counts = run_configs([quantised(with_params(spec, params))],
                                          np.asarray(spikes)[:, idx])[0]
                chip.seconds += time.perf_counter() - t0
                chip.presentations += len(idx)
                chip_rates = jnp.asarray(counts / T)
                used += len(idx)
            params, opt_state, _ = _step(net, opt, params, opt_state, x[idx], y1[idx],
                                         chip_rates)
        epoch += 1
    return params, net, used


def deploy(key: jax.Array, spikes, labels, sizes) -> dict:
    """The vendor's deployed network for ``sizes`` (F, H, O): the float model trained
    offline on ``spikes`` [T, N, F] and ``labels`` [N] (0 .. O-1), mapped and quantised;
    a ``from_specification`` dict, checked against the chip."""
    F, H, O = sizes
    params, net, _ = vendor_fit(key, spikes, np.asarray(labels), H, O)
    return quantised(float_spec(params, net))


def engine_weights(spec: dict, weight_scale: float) -> np.ndarray:
    """The engine's weight vector [F H + H O] (``snn.flatten``'s layout, in engine units of
    ``weight_scale`` int8 steps) whose rounding gives ``spec``'s int8 weights back exactly."""
    w_in = np.asarray(spec["weights_in"], np.float64)
    w_in = w_in[..., 0] if w_in.ndim == 3 else w_in  # [F, H, 1]: one synapse per neuron
    w_out = np.asarray(spec["weights_out"], np.float64)
    return (np.concatenate([w_in.ravel(), w_out.ravel()]) / weight_scale).astype(np.float32)
