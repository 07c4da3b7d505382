"""Policy and value networks (flax linen, so parameters are plain pytrees that vmap over seeds)."""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from jaxrl_align.distributions import Categorical, DiagGaussian

ACTIVATIONS = {"tanh": nn.tanh, "relu": nn.relu}


class MLP(nn.Module):
    hidden: Sequence[int]
    out_dim: int
    activation: str = "tanh"
    out_scale: float = 1.0

    @nn.compact
    def __call__(self, x):
        act = ACTIVATIONS[self.activation]
        for width in self.hidden:
            x = act(nn.Dense(width, kernel_init=nn.initializers.orthogonal(np.sqrt(2)))(x))
        return nn.Dense(self.out_dim, kernel_init=nn.initializers.orthogonal(self.out_scale))(x)


class Policy(nn.Module):
    """The actor alone: an MLP giving the action distribution (what BC trains)."""

    act_dim: int
    discrete: bool
    hidden: Sequence[int] = (64, 64)
    activation: str = "tanh"

    @nn.compact
    def __call__(self, obs):
        head = MLP(self.hidden, self.act_dim, self.activation, out_scale=0.01, name="actor")(obs)
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
