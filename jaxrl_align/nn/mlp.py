"""The one MLP (flax linen, so parameters are plain pytrees that vmap over seeds), and the two
`dot_general`s that make it faster on XLA:CPU without changing its values or gradients."""
from __future__ import annotations

import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxrl_align.nn.normalization import RunningNorm

ACTIVATIONS = {"tanh": nn.tanh, "relu": nn.relu}


@jax.custom_vjp
def _dense_product(inputs, kernel):
    return jnp.dot(inputs, kernel)


def _dense_product_fwd(inputs, kernel):
    return jnp.dot(inputs, kernel), (inputs, kernel)


def _dense_product_bwd(residuals, out_grad):
    inputs, kernel = residuals
    rows, out_rows = inputs.reshape(-1, inputs.shape[-1]), out_grad.reshape(-1, out_grad.shape[-1])
    # XLA:CPU computes inputsᵀ·grad, whose contraction runs over both operands' leading axis,
    # with Eigen's transposed-operand product; XNNPACK only takes row-major operands. A
    # materialised transpose (the barrier keeps XLA from folding it back into the product)
    # sends the product to XNNPACK.
    if out_rows.shape[-1] == 1:
        # A one-wide layer (a critic's or a reward's head): XLA turns inputsᵀ·grad into a
        # scalar loop over the transposed inputs; gradᵀ·inputs reads them row by row instead.
        return jnp.dot(out_grad, kernel.T), jnp.dot(out_rows.T, rows).T
    inputs_t = jax.lax.optimization_barrier(rows.T)
    return jnp.dot(out_grad, kernel.T), jnp.dot(inputs_t, out_rows)


_dense_product.defvjp(_dense_product_fwd, _dense_product_bwd)


def transposed_input_dot_general(lhs, rhs, dimension_numbers, precision=None,
                                 preferred_element_type=None):
    """`lax.dot_general` for `nn.Dense` whose weight gradient takes a materialised transpose of
    the inputs (see `_dense_product_bwd`). Same values and gradients as `lax.dot_general`."""
    (lhs_contract, rhs_contract), batch = dimension_numbers
    if (precision, preferred_element_type) != (None, None) or batch != ((), ()) or (
            tuple(lhs_contract), tuple(rhs_contract)) != ((lhs.ndim - 1,), (0,)):
        return jax.lax.dot_general(lhs, rhs, dimension_numbers, precision=precision,
                                   preferred_element_type=preferred_element_type)
    return _dense_product(lhs, rhs)


def identity_input_dot_general(lhs, rhs, dimension_numbers, precision=None,
                               preferred_element_type=None):
    """`lax.dot_general` for an `nn.Dense` whose input `lhs` is the identity matrix (one row per
    state of a tabular model with one-hot observations): the product is the kernel itself.
    `lhs` is not read, so XLA drops it; values and gradients are those of the product."""
    (lhs_contract, rhs_contract), batch = dimension_numbers
    n = rhs.shape[0]
    if lhs.shape != (n, n) or batch != ((), ()) or (
            tuple(lhs_contract), tuple(rhs_contract)) != ((1,), (0,)):
        raise ValueError(f"identity_input_dot_general: expected an identity input of shape "
                         f"({n}, {n}) contracted with a kernel of {n} rows, got an input of "
                         f"shape {lhs.shape} and dimension numbers {dimension_numbers}")
    return rhs.astype(preferred_element_type or jnp.result_type(lhs, rhs))


# XLA:CPU's LAPACK QR of a batch of matrices (one per seed, under vmap) splits the batch into
# tasks on the intra-op thread pool and blocks a pool thread until they finish: when as many
# QRs run at once as the pool has threads (several CPU devices, or two initialisers of one
# device's program on a 2-core machine), every pool thread blocked and the run hung. On the CPU
# the QR under vmap is therefore a sequential map (same matrices, same values; it costs about a
# second more to compile); other backends keep the batched QR.
_sequential_qr = jax.custom_batching.sequential_vmap(lambda matrix: tuple(jnp.linalg.qr(matrix)))


def orthogonal(scale: float = 1.0):
    """`jax.nn.initializers.orthogonal(scale)` (the same values), with its QR decomposition run
    one matrix at a time under `vmap` on the CPU."""
    def init(key, shape, dtype=jnp.float32):
        rows, cols = math.prod(shape) // shape[-1], shape[-1]
        z = jax.random.normal(key, (max(rows, cols), min(rows, cols)), dtype)
        q, r = _sequential_qr(z) if jax.default_backend() == "cpu" else jnp.linalg.qr(z)
        q = q * jnp.expand_dims(jnp.sign(jnp.diagonal(r)), -2)
        q = q.mT if rows < cols else q
        return jnp.array(scale, dtype) * q.reshape(shape)
    return init


INITIALIZERS = ("orthogonal", "lecun_normal")


class MLP(nn.Module):
    """The one multilayer perceptron: Dense layers with `activation` between them.

    `initializer="orthogonal"` (PPO's and BC's networks, as PureJaxRL and SB3): orthogonal kernels with
    gain √2 in the hidden layers and `out_scale` in the last; `"lecun_normal"` (the reward nets,
    as imitation's torch defaults): flax's default Dense initialisation. `normalize_input` puts a
    `RunningNorm` first (imitation's reward nets); `squeeze` drops the last axis of a 1-wide
    output. `xnnpack_weight_grads` and `identity_input` change only speed (see the two
    `dot_general`s above and docs/performance.md).
    """

    hidden: Sequence[int]
    out_dim: int
    activation: str = "tanh"
    out_scale: float = 1.0
    initializer: str = "orthogonal"
    normalize_input: bool = False
    squeeze: bool = False
    # Weight gradients through XNNPACK (`transposed_input_dot_general`): faster for BC and the
    # MCE IRL reward on this CPU, slower for PPO, hence a choice per network.
    xnnpack_weight_grads: bool = False
    # `x` is the identity matrix (a tabular model's one-hot observations, one row per state):
    # the first layer's product is then its kernel, and is skipped (`identity_input_dot_general`).
    identity_input: bool = False

    @nn.compact
    def __call__(self, x):
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation: expected one of {sorted(ACTIVATIONS)}, got "
                             f"{self.activation!r}")
        if self.initializer not in INITIALIZERS:
            raise ValueError(f"initializer: expected one of {INITIALIZERS}, got {self.initializer!r}")
        act = ACTIVATIONS[self.activation]
        if self.normalize_input:
            x = RunningNorm()(x)
        dot = dict(dot_general=transposed_input_dot_general) if self.xnnpack_weight_grads else {}
        first = dict(dot_general=identity_input_dot_general) if self.identity_input else dot
        widths = tuple(self.hidden) + (self.out_dim,)
        for i, width in enumerate(widths):
            last = i == len(widths) - 1
            kernel = {} if self.initializer == "lecun_normal" else dict(
                kernel_init=orthogonal(self.out_scale if last else np.sqrt(2)))
            x = nn.Dense(width, **kernel, **(first if i == 0 else dot))(x)
            if not last:
                x = act(x)
        return x[..., 0] if self.squeeze else x
