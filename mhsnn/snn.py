"""A stack of LIF layers as one ``lax.scan`` over time (time-major), on any chip.

A network is its weights ``{"w1": [F, H1], "w2": [H1, H2], ..., "wL": [H_{L-1}, O]}``
(any depth L >= 1, no biases); its layer sizes (F, H1, ..., O) are static and decide the
compiled shapes. The paper's network is ``{"w1": [30, 3], "w2": [3, 2]}``. Per layer and
time step (docs/paper.md, 'Network'; the chip distorts the updated potential before the
threshold test):

    u  = alpha * V + (1 - alpha) * I        ideal leaky integration
    V~ = chip.potential(u)                  f_sigma, read noise, saturation (see chips)
    S  = 1 if V~ >= threshold else 0        spike
    V  = 0 if V~ >= threshold or V~ < 0 else V~

Layer 1's input current at step k is ``spikes[k] @ w1``; layer l's is layer l-1's spikes of
the same step times ``wl``. The output is the last layer's spike rate over the T steps.

Class decision: ``argmax`` of the rates with ties going to the lower class index, so a
silent network predicts class 0, as docs/paper.md observed.

The spike function is a Heaviside step forward; only when a gradient is taken does its
derivative become the Gaussian surrogate (1/sqrt(2 pi)) exp(-2 (V~ - threshold)^2).
The reset is detached from the gradient (the where() masks it), as is usual for BPTT
with surrogate gradients.

Paths: ``run`` (one weight set) is the readable reference; ``run_batched`` is its ``vmap``
and serves counts and evaluation. The MH likelihood's hot path ``sq_error_batched`` has two
measured fast layouts (see ``LAYOUTS``), chosen once on the host by ``default_layout`` and
passed in as a static argument.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp

from mhsnn import chips
from mhsnn.chips import Chip, LayerChip

Params = dict[str, jax.Array]  # {"w1": [..., F, H1], ..., "wL": [..., H_{L-1}, O]}

PAPER_NETWORK = chips.PAPER_NETWORK  # (30, 3, 2)
EXACT = jax.lax.Precision.HIGHEST  # fp32 products on every backend. A GPU's default for
# float32 is TF32, which changed 2,828 of 919,680 counts of 64-32-10 on an H200 (10 of 58,240
# on the paper network) against the CPU's; at HIGHEST none (docs/experiments/benchmark.md).
ALPHA = 0.9  # membrane decay (docs/paper.md); every default below and in the config is this one
THRESHOLD = 1.0  # firing threshold mu


def surrogate(x: jax.Array) -> jax.Array:
    """Gaussian surrogate derivative of the spike function at x = V~ - threshold."""
    return jnp.exp(-2.0 * x**2) / math.sqrt(2.0 * math.pi)


@jax.custom_jvp
def spike(x: jax.Array) -> jax.Array:
    """Heaviside step: 1.0 where x >= 0 (V~ at or above threshold)."""
    return (x >= 0).astype(x.dtype)


@spike.defjvp
def _spike_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    return spike(x), surrogate(x) * dx


# ---- the network's shape -------------------------------------------------------------

def layers_of(params: Params) -> list[jax.Array]:
    """The weight matrices w1 ... wL in order; refuses missing or misfitting layers."""
    names = [f"w{i + 1}" for i in range(len(params))]
    if not params or sorted(params) != sorted(names):
        raise ValueError(f"params: keys {sorted(params)}, expected w1 ... w{len(params)}")
    ws = [params[n] for n in names]
    for i in range(1, len(ws)):
        if ws[i].shape[-2] != ws[i - 1].shape[-1]:
            raise ValueError(f"params: w{i + 1} takes {ws[i].shape[-2]} inputs but w{i} "
                             f"has {ws[i - 1].shape[-1]} neurons")
    return ws


def sizes_of(params: Params) -> tuple[int, ...]:
    """Layer sizes (F, H1, ..., O) of a network, inputs first."""
    ws = layers_of(params)
    return (int(ws[0].shape[-2]), *(int(w.shape[-1]) for w in ws))


def num_weights(sizes: Sequence[int] = PAPER_NETWORK) -> int:
    """Weights of the network with layer ``sizes``: sum of fan_in x fan_out."""
    return int(sum(a * b for a, b in itertools.pairwise(sizes)))


START_SPREAD = 0.1  # a start's draws spread a tenth of the method's own start spread


def around(start: jax.Array, spread, noise: jax.Array) -> jax.Array:
    """Every method's first weights when it is given a start (``trainers.fit(start=...)``):
    ``start`` [P] plus ``START_SPREAD`` x the method's own start spread (its ``init_std``,
    broadcast against ``noise``) x ``noise``. A tenth keeps what the start does (a
    deployed network) while a population's members still differ, so R-hat and an
    ensemble's spread are defined."""
    return jnp.asarray(start, jnp.float32) + START_SPREAD * spread * noise


def check_sizes(sizes: Sequence[int]) -> tuple[int, ...]:
    sizes = tuple(int(s) for s in sizes)
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"network {list(sizes)}: needs inputs and >= 1 layer, widths >= 1")
    return sizes


def unflatten(theta: jax.Array, sizes: Sequence[int] = PAPER_NETWORK) -> Params:
    """Flat weight vectors [..., P] -> {"w1": [..., F, H1], ...}: layer after layer, row-major."""
    sizes = check_sizes(sizes)
    if theta.shape[-1] != num_weights(sizes):
        raise ValueError(f"theta: {theta.shape[-1]} weights, the network "
                         f"{'-'.join(map(str, sizes))} has {num_weights(sizes)}")
    lead, out, at = theta.shape[:-1], {}, 0
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        out[f"w{i + 1}"] = theta[..., at:at + a * b].reshape(*lead, a, b)
        at += a * b
    return out


def flatten(params: Params) -> jax.Array:
    """{"w1": [..., F, H1], ...} -> flat weight vectors [..., P] (``unflatten``'s layout)."""
    ws = layers_of(params)
    lead = ws[0].shape[:-2]
    return jnp.concatenate([w.reshape(*lead, -1) for w in ws], axis=-1)


# ---- the reference path ----------------------------------------------------------------

def lif_step(v, current, *, chip: LayerChip, in_loop: bool = False, noise=None):
    """One LIF update of a layer; returns (new potential, spikes).

    ``chip`` (see ``chips.layer``) broadcasts against ``v``; ``noise`` is a standard normal
    draw of ``v``'s shape when the chip has read noise.
    """
    u = chip.alpha * v + (1.0 - chip.alpha) * current
    v_chip = chips.potential(chip, u, noise, in_loop)
    s = spike(v_chip - chip.threshold)
    keep = (v_chip >= 0) & (v_chip < chip.threshold)
    return jnp.where(keep, v_chip, 0.0), s


def _check_key(chip: Chip, key) -> jax.Array | None:
    if chips.is_noisy(chip) and key is None:
        raise ValueError("key: this chip has membrane read noise; pass a key for the query")
    return key if chips.is_noisy(chip) else None


def run(params: Params, spikes: jax.Array, *, chip: Chip | None = None, alpha: float = ALPHA,
        threshold: float = THRESHOLD, in_loop: bool = False,
        key: jax.Array | None = None) -> jax.Array:
    """Output spike counts [N, O] of one weight set on spikes [T, N, F].

    ``in_loop=True`` gives chip values with the ideal model's derivative (chip-in-the-loop).
    ``key`` draws the read noise of a noisy chip (fresh per query: pass a new key each time).
    """
    chip = chips.ideal() if chip is None else chip
    key = _check_key(chip, key)
    sizes = sizes_of(params)
    chips.check_network(chip, sizes)
    ws = [chips.quantize(chip, w, in_loop) for w in layers_of(params)]
    layers = [chips.layer(chip, sizes, i, alpha, threshold) for i in range(len(ws))]
    N = spikes.shape[1]

    def body(carry, x):
        vs, count = carry
        t, s = x
        new = []
        for i, (w, v) in enumerate(zip(ws, vs)):
            current = jnp.matmul(s, w, precision=EXACT)
            v, s = lif_step(v, current, chip=layers[i], in_loop=in_loop,
                            noise=chips.read_noise(key, t, i, v.shape))
            new.append(v)
        return (new, count + s), None

    vs = [jnp.zeros((N, h), jnp.float32) for h in sizes[1:]]
    (_, count), _ = jax.lax.scan(body, (vs, jnp.zeros((N, sizes[-1]), jnp.float32)),
                                 (jnp.arange(spikes.shape[0]), spikes))
    return count


def forward(params: Params, spikes: jax.Array, *, chip: Chip | None = None, alpha: float = ALPHA,
            threshold: float = THRESHOLD, in_loop: bool = False,
            key: jax.Array | None = None) -> jax.Array:
    """Output spike rates [N, O] (counts / T) of one weight set."""
    counts = run(params, spikes, chip=chip, alpha=alpha, threshold=threshold, in_loop=in_loop,
                 key=key)
    return counts / spikes.shape[0]


def run_batched(params: Params, spikes: jax.Array, *, chip: Chip | None = None,
                alpha: float = ALPHA, threshold: float = THRESHOLD,
                key: jax.Array | None = None) -> jax.Array:
    """Output spike counts [C, N, O] of C weight sets (every "wI" with a leading [C] axis).

    The ``vmap`` of ``run``. Chip leaves may be shared or carry one value per weight set
    ([C], per-neuron [C, n]), so a grid of chips rides the same axis. A noisy chip's query
    draws each set's noise from ``split(key, C)``.
    """
    C = layers_of(params)[0].shape[0]
    chip = chips.broadcast(chips.ideal() if chip is None else chip, (C,))
    key = _check_key(chip, key)
    keys = None if key is None else jax.random.split(key, C)

    def one(p, ch, k):
        return run(p, spikes, chip=ch, alpha=alpha, threshold=threshold, key=k)

    return jax.vmap(one)(params, chip, keys)


def forward_batched(params: Params, spikes: jax.Array, *, chip: Chip | None = None,
                    alpha: float = ALPHA, threshold: float = THRESHOLD,
                    key: jax.Array | None = None) -> jax.Array:
    """Output spike rates [C, N, O] of C weight sets."""
    counts = run_batched(params, spikes, chip=chip, alpha=alpha, threshold=threshold, key=key)
    return counts / spikes.shape[0]


def predict(rates: jax.Array) -> jax.Array:
    """Class decision: argmax of the rates, ties (a silent network too) to class 0."""
    return jnp.argmax(rates, axis=-1).astype(jnp.int32)


# ---- the likelihood's fast paths -------------------------------------------------------

LAYOUTS = ("fused", "hoisted", "reference", "blocked")
"""How ``sq_error_batched`` lays the work out (measured with experiments/benchmark.py):

- "fused" (CPU): one first-layer product for all time steps, then a single elementwise
  pass over per-neuron [N, C] arrays that runs every step in registers and ends in the
  per-sample squared error, reduced over samples by a matrix-vector product. It unrolls
  every neuron and synapse after the first layer, which pays only while layers are narrow:
  a network with a layer wider than ``UNROLL_WIDTH`` takes "reference" instead, whose
  per-step products are then the cheaper work (64 sets on 455 rows, 2-core CPU: 30-8-2
  fused 1.3 ms vs reference 7.5 ms; 30-16-2 fused 17 ms vs 7.2 ms; 64-32-10 on 1,437 rows,
  per-neuron or [N, H, C]-stacked, 124-187 ms vs 73 ms, of which the first-layer GEMM
  alone is 56 ms).
- "hoisted" (accelerators): the same first-layer product, then an unrolled scan over
  stacked [H, C, N] state that XLA fuses into few passes (memory-bound otherwise).
- "reference": ``run_batched``, then the squared error: the slowest forward, but its
  gradient is the fastest (the fused pass's reverse mode stores every step).
- "blocked" (CPU, wide layers): blocks of ``ROW_BLOCK`` rows one after another, each with
  one first-layer product for every step and set, then a scan over the steps whose state
  [rows, C, H] stays in cache (the reference's [N, C, H] state and currents stream through
  memory at every step). Its per-row losses go through the reference's final sum.
"""

UNROLL_WIDTH = 8  # the widest layer the "fused" layout unrolls (measured, see LAYOUTS)


def default_layout() -> str:
    """The backend's layout, resolved once on the host (never at trace time)."""
    return "fused" if jax.default_backend() == "cpu" else "hoisted"


def check_layout(layout: str) -> str:
    if layout not in LAYOUTS:
        raise ValueError(f"snn.layout={layout!r}: expected one of {', '.join(LAYOUTS)}")
    return layout


LOSSES = ("mse", "categorical")


def sample_loss(rates: list, targets: list, loss: str = "mse", scale: float = 1.0):
    """Per-sample loss from the output rates and one-hot targets, each given as a list over
    the O classes (so that every layout keeps one output per element):

    - "mse": sum_k (scale r_k - t_k)^2 (``scale`` stretches a chip's narrow count range onto
      the targets; 1 is the paper's);
    - "categorical": -log softmax(scale r)_y = logsumexp_k(scale r_k) - scale sum_k t_k r_k.
    """
    if loss == "mse":
        return sum((scale * r - t) ** 2 for r, t in zip(rates, targets))
    if loss != "categorical":
        raise ValueError(f"loss={loss!r}: expected one of {', '.join(LOSSES)}")
    z = [scale * r for r in rates]
    top = functools.reduce(jnp.maximum, z)
    lse = top + jnp.log(sum(jnp.exp(zk - top) for zk in z))
    return lse - sum(t * zk for t, zk in zip(targets, z))


def sq_error_batched(params: Params, spikes: jax.Array, targets: jax.Array, mask: jax.Array,
                     *, chip: Chip | None = None, alpha: float = ALPHA,
                     threshold: float = THRESHOLD, layout: str = "fused",
                     chain_block: int | None = None,
                     key: jax.Array | None = None, loss: str = "mse",
                     scale: float = 1.0) -> jax.Array:
    """Summed squared error [C] of C weight sets' output rates against ``targets`` [N, O]:
    sum_n mask[n] * sum_k (counts[c, n, k] / T - targets[n, k])^2; with
    ``loss="categorical"`` the summed cross-entropy of softmax(``scale`` x rates) instead
    (``sample_loss``).

    The MH likelihood's hot path. Counts are identical on every layout; only the order of
    the final sum over samples can differ. ``chain_block`` (default ``chain_block_size``)
    splits the "fused" and "reference" layouts' sets into blocks run one after another; results are
    identical either way. A noisy chip's read noise depends on the layout and the blocks.
    """
    check_layout(layout)
    ws = layers_of(params)
    C = ws[0].shape[0]
    chip = chips.broadcast(chips.ideal() if chip is None else chip, (C,))
    key = _check_key(chip, key)
    sizes = sizes_of(params)
    chips.check_network(chip, sizes)
    layout = resolved_layout(layout, sizes, chip, spikes.shape[1])
    kernel = {"fused": _fused_sq_error, "hoisted": _hoisted_sq_error,
              "reference": _reference_sq_error, "blocked": _blocked_sq_error}[layout]
    T, N, _ = spikes.shape
    block = C if layout in ("hoisted", "blocked") else chain_block_size(C, T * N * sizes[1],
                                                                        layout)
    block = block if chain_block is None else chain_block

    def one_block(inputs):
        block_ws, block_chip, block_key = inputs
        block_key = None if block_key is None else block_key.reshape(())  # [1] per block
        return kernel(block_ws, sizes, spikes, targets, mask, block_chip, alpha, threshold,
                      block_key, (loss, scale))

    keys = None if key is None else jax.random.split(key, max(C // block, 1))
    if block >= C or C % block:
        return one_block((ws, chip, None if keys is None else keys[0]))
    return _in_blocks(one_block, (ws, chip, keys), C // block)


BLOCK_FLOATS = {"fused": 128 * 10 * 455 * 3, "reference": 10 * 2**20}
"""First-layer currents [T, N, H1, sets] per block of weight sets, by layout (measured on the
2-core CPU). "fused": about 1.75M floats, 128 sets of the paper network on 455 rows (93k
chain-steps/s in blocks of 64 at 1,024 sets, against 33k in one block); at most 128 sets.
"reference": 40 MiB, a little above this CPU's 32 MiB L3, because its currents stream through
memory at every step anyway: the best of the blocks tried on each of 30-16-2, 30-32-2 and
64-32-10 on 455 or 1,437 rows at 64 sets, and 64-32-10 and 64-128-10 on 128 rows at 256
sets (the fused budget had taken blocks of 2 to 32 sets there, up to 1.46x slower)."""


def chain_block_size(num_sets: int, currents_per_set: int = 10 * 455 * 3,
                     layout: str = "fused") -> int:
    """Weight sets per block of the "fused" and "reference" layouts: a block's first-layer
    currents stay within ``BLOCK_FLOATS[layout]``; the largest divisor of ``num_sets`` that
    fits, down to a quarter of the cap (one block when none divides)."""
    cap = max(1, BLOCK_FLOATS[layout] // max(currents_per_set, 1))
    cap = min(128, cap) if layout == "fused" else cap
    if num_sets <= cap:
        return num_sets
    for block in range(cap, max(cap // 4, 1) - 1, -1):
        if num_sets % block == 0:
            return block
    return num_sets


def _in_blocks(fn, inputs, num_blocks: int):
    """``fn`` on each of ``num_blocks`` leading-axis blocks of ``inputs``, one after another.

    A block's inputs reach ``fn`` through the loop carry (the next block's are sliced while
    this one runs): sliced inside the loop body, XLA would fuse the slicing into the
    elementwise pass and recompute it for every element (measured 4x slower).
    """
    blocks = jax.tree.map(lambda x: x.reshape(num_blocks, -1, *x.shape[1:]), inputs)
    first = jax.tree.map(lambda x: x[0], blocks)
    following = jax.tree.map(lambda x: jnp.concatenate([x[1:], x[:1]]), blocks)  # last unused
    _, out = jax.lax.scan(lambda current, upcoming: (upcoming, fn(current)), first, following)
    return out.reshape(-1, *out.shape[2:])


def _reference_sq_error(ws, sizes, spikes, targets, mask, chip, alpha, threshold, key, loss):
    params = {f"w{i + 1}": w for i, w in enumerate(ws)}
    counts = run_batched(params, spikes, chip=chip, alpha=alpha, threshold=threshold, key=key)
    return _summed_loss_of_counts(counts, spikes.shape[0], targets, mask, loss)


def _summed_loss_of_counts(counts, T, targets, mask, loss):
    """[C]: the masked sum over rows of each set's per-row loss, from counts [C, N, O] of T
    steps."""
    rates = counts / T
    if loss[0] == "mse":  # kept as one reduction: the committed results' summation order
        err = jnp.sum((loss[1] * rates - targets) ** 2, axis=-1)
    else:
        O = rates.shape[-1]
        err = sample_loss([rates[..., k] for k in range(O)],
                          [targets[:, k] for k in range(O)], *loss)
    return jnp.sum(err * mask, axis=-1)


ROW_BLOCK = 160  # rows per block of the "blocked" layout (64-32-10, 64 sets: best of 48-640)


def _blocked_counts(ws, sizes, spikes, chip, alpha, threshold, key) -> jax.Array:
    """Output counts [C, N, O] of C sets, ``ROW_BLOCK`` rows at a time (the "blocked" layout)."""
    T, N, F = spikes.shape
    C = ws[0].shape[0]
    ws = chips.quantize_sets(chip, ws)
    nb = min(ROW_BLOCK, N)
    blocks = -(-N // nb)
    pad = blocks * nb - N
    # rows in blocks [blocks, T, nb, F]; weights [F, C H1] (column c H1 + h), then [C, K, H]
    x = jnp.pad(spikes, ((0, 0), (0, pad), (0, 0))).reshape(T, blocks, nb, F)
    x = jnp.transpose(x, (1, 0, 2, 3))
    w1 = jnp.transpose(ws[0], (1, 0, 2)).reshape(F, -1)
    rest = [jnp.swapaxes(w, 1, 2) for w in ws[1:]]
    # fields [C] -> [C, 1], per-neuron [C, n] -> [C, n]: they broadcast on state [nb, C, n]
    layers = _row_block_layers(chip, sizes, alpha, threshold)
    keys = None if key is None else jax.random.split(key, blocks)

    def block(_, inputs):
        x_b, key_b = inputs

        def step(carry, inp):
            vs, count = carry
            t, x_t = inp
            s = jnp.matmul(x_t, w1, precision=EXACT).reshape(nb, C, sizes[1])  # in cache
            vs, s = _row_block_step(vs, s, layers, rest, lambda i, shape: chips.read_noise(
                key_b, t, i, shape))
            return (vs, count + s), None

        state = [jnp.zeros((nb, C, h), jnp.float32) for h in sizes[1:]]
        (_, count), _ = jax.lax.scan(step, (state, jnp.zeros((nb, C, sizes[-1]))),
                                     (jnp.arange(T), x_b))
        return None, jnp.swapaxes(count, 0, 1)  # [C, nb, O]

    _, counts = jax.lax.scan(block, None, (x, keys))
    return jnp.transpose(counts, (1, 0, 2, 3)).reshape(C, blocks * nb, -1)[:, :N]


def _row_block_layers(chip: Chip, sizes, alpha: float, threshold: float) -> list[LayerChip]:
    """Every layer's fields for state [rows, C, n]: [C] -> [C, 1], per-neuron [C, n] stay."""
    return [chips.layer(chip, sizes, i, alpha, threshold,
                        expand=lambda f: f[:, None] if f.ndim == 1 else f)
            for i in range(len(sizes) - 1)]


def _row_block_step(vs, s, layers, rest, noise, first: int = 0):
    """One time step of a row block from layer ``first`` up: ``s`` [rows, C, n] is the first
    layer's input current (``first = 0``) or, from ``first = 1``, layer ``first - 1``'s
    spikes; ``vs`` the potentials of layers ``first``...; ``rest`` the weights above the
    first layer as [C, K, H]. Returns (new potentials, output spikes)."""
    new = []
    for i, v in enumerate(vs, start=first):
        if i > 0:  # [rows, C, H] x [C, K, H], reduced over the minor H in cache
            s = jnp.sum(s[:, :, None, :] * rest[i - 1][None], axis=-1)
        v, s = lif_step(v, s, chip=layers[i], noise=noise(i, v.shape))
        new.append(v)
    return new, s


def _blocked_sq_error(ws, sizes, spikes, targets, mask, chip, alpha, threshold, key, loss):
    counts = _blocked_counts(ws, sizes, spikes, chip, alpha, threshold, key)
    return _summed_loss_of_counts(counts, spikes.shape[0], targets, mask, loss)


def counts_batched(params: Params, spikes: jax.Array, *, chip: Chip | None = None,
                   alpha: float = ALPHA, threshold: float = THRESHOLD,
                   key: jax.Array | None = None, layout: str = "reference") -> jax.Array:
    """``run_batched``'s counts [C, N, O], by the row-blocked path where ``resolved_layout``
    picks it (the same counts)."""
    ws = layers_of(params)
    chip = chips.broadcast(chips.ideal() if chip is None else chip, (ws[0].shape[0],))
    if resolved_layout(layout, sizes_of(params), chip, spikes.shape[1]) != "blocked":
        return run_batched(params, spikes, chip=chip, alpha=alpha, threshold=threshold, key=key)
    chips.check_network(chip, sizes_of(params))
    return _blocked_counts(ws, sizes_of(params), spikes, chip, alpha, threshold, None)


BLOCKED_MIN_ROWS = 4 * ROW_BLOCK  # where the blocks pay (64 sets, 2-core CPU, plain call:
# digits' 1,437 rows 64-32-10 104 -> 75 ms, 64-128-10 336 -> 231 ms; breast cancer's 455
# rows 30-16-2 13.0 -> 16.5 ms, 30-32-2 17.6 -> 20.2 ms)


def resolved_layout(layout: str, sizes, chip, num_rows: int) -> str:
    """The layout that runs: "fused" unrolls narrow layers only, so a wider one takes the
    "reference", or "blocked" (the same counts) on ``BLOCKED_MIN_ROWS`` rows or more and a
    chip without read noise (the blocks would draw it otherwise)."""
    if layout == "fused" and max(sizes[1:]) > UNROLL_WIDTH:
        blocked = num_rows >= BLOCKED_MIN_ROWS and not chips.is_noisy(chip)
        return "blocked" if blocked else "reference"
    return layout


def _first_layer_currents(w1: jax.Array, spikes: jax.Array) -> jax.Array:
    """One [T*N, F] x [F, H1*C] product for every step and set: [T, N, H1, C]."""
    T, N, F = spikes.shape
    C, _, H = w1.shape
    cols = jnp.transpose(w1, (1, 2, 0)).reshape(F, H * C)  # column h*C + c
    return jnp.matmul(spikes.reshape(T * N, F), cols, precision=EXACT).reshape(T, N, H, C)


def _fused_sq_error(ws, sizes, spikes, targets, mask, chip, alpha, threshold, key, loss):
    T, N, _ = spikes.shape
    C = ws[0].shape[0]
    ws = chips.quantize_sets(chip, ws)
    cur = _first_layer_currents(ws[0], spikes)
    widths = sizes[1:]
    # Per-set fields [C] -> [1, C]; per-neuron [C, n] -> [1, n_layer, C], then per neuron.
    layers = [[_neuron(chips.layer(chip, sizes, i, alpha, threshold, neuron_axis=0,
                                   expand=lambda x: x[None]), h) for h in range(width)]
              for i, width in enumerate(widths)]
    zeros = jnp.zeros((N, C), jnp.float32)
    vs = [[zeros] * width for width in widths]
    count = [zeros] * widths[-1]
    for t in range(T):  # unrolled: XLA fuses all steps into one pass over [N, C]
        s = [cur[t, :, h] for h in range(widths[0])]
        for i, width in enumerate(widths):
            if i > 0:
                s = [sum(s[h] * ws[i][:, h, k] for h in range(widths[i - 1]))
                     for k in range(width)]
            noise = chips.read_noise(key, t, i, (width, N, C))
            out = [lif_step(vs[i][h], s[h], chip=layers[i][h],
                            noise=None if noise is None else noise[h]) for h in range(width)]
            vs[i], s = [o[0] for o in out], [o[1] for o in out]
        count = [c + s_k for c, s_k in zip(count, s)]
    # One output per element: a second output (or a transpose, or a stack of the per-neuron
    # counts) would make XLA duplicate the whole pass per output element.
    err = sample_loss([c / T for c in count],
                      [targets[:, k, None] for k in range(widths[-1])], *loss)
    return jnp.matmul(mask, err, precision=EXACT)


def _neuron(layer_chip: LayerChip, h: int) -> LayerChip:
    """Neuron h's fields from a layer's [1, H, C] per-neuron fields ([1, C] ones stay)."""
    def pick(x):
        return x[:, h] if getattr(x, "ndim", 0) == 3 else x

    return layer_chip._replace(alpha=pick(layer_chip.alpha),
                               threshold=pick(layer_chip.threshold))


def _hoisted_sq_error(ws, sizes, spikes, targets, mask, chip, alpha, threshold, key, loss):
    T = spikes.shape[0]
    ws = chips.quantize_sets(chip, ws)
    cur = jnp.transpose(_first_layer_currents(ws[0], spikes), (0, 2, 3, 1))  # [T, H1, C, N]
    # Fields [C] -> [1, C, 1]; per-neuron [C, n] -> [n_layer, C, 1] (state [H, C, N]).
    layers = [chips.layer(chip, sizes, i, alpha, threshold, neuron_axis=0,
                          expand=lambda x: x[..., None] if x.ndim == 2 else x[None, :, None])
              for i in range(len(ws))]

    def body(carry, x):
        vs, count = carry
        t, s = x
        new = []
        for i, v in enumerate(vs):
            current = s if i == 0 else jnp.einsum("hcn,chk->kcn", s, ws[i], precision=EXACT)
            v, s = lif_step(v, current, chip=layers[i],
                            noise=chips.read_noise(key, t, i, v.shape))
            new.append(v)
        return (new, count + s), None

    C, N = ws[0].shape[0], spikes.shape[1]
    vs = [jnp.zeros((h, C, N), jnp.float32) for h in sizes[1:]]
    (_, count), _ = jax.lax.scan(body, (vs, jnp.zeros((sizes[-1], C, N), jnp.float32)),
                                 (jnp.arange(T), cur), unroll=min(T, 32))
    if loss[0] == "mse":  # kept as one reduction: the committed results' summation order
        err = jnp.sum((loss[1] * (count / T) - targets.T[:, None, :]) ** 2, axis=0)  # [C, N]
    else:
        err = sample_loss([count[k] / T for k in range(sizes[-1])],
                          [targets.T[k][None, :] for k in range(sizes[-1])], *loss)
    return jnp.matmul(err, mask, precision=EXACT)


# ---- unit-block proposals: the first hidden layer's trains, cached ---------------------
#
# A proposal that moves one unit j of the first hidden layer (its fan-in column of w1 and
# its fan-out row of w2) leaves every other unit's spike train as it was: they see the same
# input through the same weights, and a layer's neurons do not talk to each other. So a
# sampler keeps the first layer's trains of its current weights and, per proposal, runs
# only unit j's train (one [T N, F] x [F, C] product) and the layers above, in the row
# blocks of the "blocked" layout. The first-layer product, most of a wide network's forward
# (64-32-10 on 1,437 rows: 45 of 56 ms at 64 sets), is gone. The cache is
# [blocks, T, ROW_BLOCK, C, H1] int8: a row block's trains are contiguous, as the blocked
# layout's state [rows, C, H] wants them, and a spike is exact in a byte.


def unit_cache_pays(sizes) -> bool:
    """Whether ``unit_counts`` beats a full forward: where the first hidden layer is wider
    than the fused layout unrolls. Below that the fused forward wins (64 sets on 455 rows,
    2-core CPU, one run while another job held a core, ms per query, unit / full: 30-3-2
    14 / 1.6, 30-16-2 14.5 / 12.5); above it the unit path does
    (``python -m experiments.benchmark --unit-blocks``)."""
    return len(sizes) > 2 and sizes[1] > UNROLL_WIDTH


def _check_cacheable(chip: Chip, sizes) -> None:
    if len(sizes) < 3:
        raise ValueError(f"unit blocks: the network {'-'.join(map(str, sizes))} has no "
                         "hidden layer to cache")
    if chips.is_noisy(chip):
        raise ValueError("unit blocks: a chip with read noise draws fresh noise on every "
                         "query, so its trains cannot be cached")


def _in_row_blocks(x: jax.Array) -> jax.Array:
    """[T, N, ...] -> [blocks, T, ROW_BLOCK, ...], the last block padded with zeros."""
    T, N = x.shape[:2]
    blocks = -(-N // ROW_BLOCK)
    x = jnp.pad(x, ((0, 0), (0, blocks * ROW_BLOCK - N)) + ((0, 0),) * (x.ndim - 2))
    return jnp.swapaxes(x.reshape(T, blocks, ROW_BLOCK, *x.shape[2:]), 0, 1)


def unit_cache(params: Params, spikes: jax.Array, *, chip: Chip | None = None,
               alpha: float = ALPHA, threshold: float = THRESHOLD) -> jax.Array:
    """The first hidden layer's spike trains of C weight sets (every "wI" with a leading
    [C] axis), as ``unit_counts`` reads them: [blocks, T, ROW_BLOCK, C, H1] int8."""
    ws = layers_of(params)
    sizes = sizes_of(params)
    chip = chips.broadcast(chips.ideal() if chip is None else chip, (ws[0].shape[0],))
    _check_cacheable(chip, sizes)
    chips.check_network(chip, sizes)

    def one(w1, ch):  # [T, N, H1], as ``run`` steps the first layer
        w1 = chips.quantize(ch, w1)
        layer = chips.layer(ch, sizes, 0, alpha, threshold)
        return jax.lax.scan(lambda v, s: lif_step(v, jnp.matmul(s, w1, precision=EXACT),
                                                  chip=layer),
                            jnp.zeros((spikes.shape[1], sizes[1]), jnp.float32), spikes)[1]

    trains = jax.vmap(one, out_axes=2)(ws[0], chip)  # [T, N, C, H1]
    return _in_row_blocks(trains.astype(jnp.int8))


def unit_counts(params: Params, cache: jax.Array, unit: jax.Array, spikes: jax.Array, *,
                chip: Chip | None = None, alpha: float = ALPHA,
                threshold: float = THRESHOLD) -> tuple[jax.Array, jax.Array]:
    """(output counts [C, N, O], unit ``unit``'s train [blocks, T, ROW_BLOCK, C] int8) of C
    weight sets that differ from those ``cache`` (``unit_cache``) holds in the first hidden
    layer's unit ``unit`` only (traced: one program serves every unit). The counts are
    ``run_batched``'s."""
    ws = layers_of(params)
    sizes = sizes_of(params)
    T, N, F = spikes.shape
    C = ws[0].shape[0]
    chip = chips.broadcast(chips.ideal() if chip is None else chip, (C,))
    _check_cacheable(chip, sizes)
    chips.check_network(chip, sizes)
    ws = chips.quantize_sets(chip, ws)
    # unit j's train in every set: its fields [C] (a per-neuron field's column j)
    first = chips.layer(chip, sizes, 0, alpha, threshold)
    mine = first._replace(**{f: jnp.take(getattr(first, f), unit, axis=-1)
                             for f in ("alpha", "threshold")
                             if getattr(getattr(first, f), "ndim", 0) == 2})
    current = jnp.matmul(spikes.reshape(T * N, F), jnp.take(ws[0], unit, axis=-1).T,
                         precision=EXACT).reshape(T, N, C)
    own = jax.lax.scan(lambda v, c: lif_step(v, c, chip=mine),
                       jnp.zeros((N, C), jnp.float32), current)[1]
    own = _in_row_blocks(own.astype(jnp.int8))  # [blocks, T, rows, C]
    layers = _row_block_layers(chip, sizes, alpha, threshold)
    rest = [jnp.swapaxes(w, 1, 2) for w in ws[1:]]

    def block(_, inputs):
        cached, own_b = inputs
        x = jax.lax.dynamic_update_index_in_dim(cached, own_b[..., None], unit, axis=-1)

        def step(carry, x_t):
            vs, count = carry
            vs, s = _row_block_step(vs, x_t.astype(jnp.float32), layers, rest,
                                    lambda i, shape: None, first=1)
            return (vs, count + s), None

        state = [jnp.zeros((ROW_BLOCK, C, h), jnp.float32) for h in sizes[2:]]
        (_, count), _ = jax.lax.scan(step, (state, jnp.zeros((ROW_BLOCK, C, sizes[-1]))), x)
        return None, jnp.swapaxes(count, 0, 1)  # [C, rows, O]

    _, counts = jax.lax.scan(block, None, (cache, own))
    return jnp.swapaxes(counts, 0, 1).reshape(C, -1, sizes[-1])[:, :N], own


def unit_accept(cache: jax.Array, own: jax.Array, unit: jax.Array,
                accepted: jax.Array) -> jax.Array:
    """``cache`` with unit ``unit``'s trains replaced by ``own`` (``unit_counts``) in the
    sets where ``accepted`` [C]."""
    kept = jnp.where(accepted, own, jnp.take(cache, unit, axis=-1))
    return jax.lax.dynamic_update_index_in_dim(cache, kept[..., None], unit, axis=-1)
