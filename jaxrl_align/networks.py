"""Policy and value networks (flax linen, so parameters are plain pytrees that vmap over seeds)."""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxrl_align.distributions import Categorical, DiagGaussian

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


class MLP(nn.Module):
    hidden: Sequence[int]
    out_dim: int
    activation: str = "tanh"
    out_scale: float = 1.0
    # The weight gradients through XNNPACK (`transposed_input_dot_general`). Measured on the
    # 2-core CPU in alternating processes: BC, 16 seeds, mean 48.1k -> 54.5k gradient steps/s
    # (six runs each); MCE IRL's MLP-256 reward, one MDP, 0.122 -> 0.111 ms an iteration; but
    # PPO, 16 seeds, 123-127k -> 107-115k env steps/s, so it is a choice per network.
    xnnpack_weight_grads: bool = False
    # `x` is the identity matrix (a tabular model's one-hot observations, one row per state):
    # the first layer's product is then its kernel, and is skipped (`identity_input_dot_general`).
    # MCE IRL's MLP-256 reward on CliffWorld 7x4: ~0.115 -> ~0.07-0.09 ms an iteration.
    identity_input: bool = False

    @nn.compact
    def __call__(self, x):
        act = ACTIVATIONS[self.activation]
        dot = dict(dot_general=transposed_input_dot_general) if self.xnnpack_weight_grads else {}
        first = dict(dot_general=identity_input_dot_general) if self.identity_input else dot
        widths = tuple(self.hidden) + (self.out_dim,)
        for i, width in enumerate(widths):
            last = i == len(widths) - 1
            x = nn.Dense(width, kernel_init=nn.initializers.orthogonal(
                self.out_scale if last else np.sqrt(2)), **(first if i == 0 else dot))(x)
            if not last:
                x = act(x)
        return x


class Policy(nn.Module):
    """The actor alone: an MLP giving the action distribution (what BC trains)."""

    act_dim: int
    discrete: bool
    hidden: Sequence[int] = (64, 64)
    activation: str = "tanh"
    xnnpack_weight_grads: bool = False  # see MLP

    @nn.compact
    def __call__(self, obs):
        head = MLP(self.hidden, self.act_dim, self.activation, out_scale=0.01,
                   xnnpack_weight_grads=self.xnnpack_weight_grads, name="actor")(obs)
        if self.discrete:
            return Categorical(head)
        log_std = self.param("log_std", nn.initializers.zeros, (self.act_dim,))
        return DiagGaussian(head, jnp.broadcast_to(log_std, head.shape))


class ActorCritic(nn.Module):
    """Separate actor and critic MLPs (as PureJaxRL and SB3's default MlpPolicy).

    Returns (action distribution, value). For continuous actions the log standard deviation is a
    state-independent parameter, initialised at 0.
    """

    act_dim: int
    discrete: bool
    hidden: Sequence[int] = (64, 64)
    activation: str = "tanh"

    @nn.compact
    def __call__(self, obs):
        dist = Policy(self.act_dim, self.discrete, self.hidden, self.activation, name="policy")(obs)
        value = MLP(self.hidden, 1, self.activation, out_scale=1.0, name="critic")(obs)[..., 0]
        return dist, value
