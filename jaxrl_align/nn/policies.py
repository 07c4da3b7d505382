"""Policy and value networks on the one MLP (`jaxrl_align.nn.mlp`)."""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxrl_align.nn.distributions import Categorical, DiagGaussian
from jaxrl_align.nn.mlp import MLP


class Policy(nn.Module):
    """The actor alone: an MLP giving the action distribution (what BC trains). For continuous
    actions the log standard deviation is a state-independent parameter, initialised at 0."""

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
    """Separate actor and critic MLPs (as PureJaxRL and SB3's default MlpPolicy); returns
    (action distribution, value)."""

    act_dim: int
    discrete: bool
    hidden: Sequence[int] = (64, 64)
    activation: str = "tanh"
    xnnpack_weight_grads: bool = False  # see MLP

    @nn.compact
    def __call__(self, obs):
        dist = Policy(self.act_dim, self.discrete, self.hidden, self.activation,
                      self.xnnpack_weight_grads, name="policy")(obs)
        value = MLP(self.hidden, 1, self.activation, out_scale=1.0,
                    xnnpack_weight_grads=self.xnnpack_weight_grads, name="critic")(obs)[..., 0]
        return dist, value
