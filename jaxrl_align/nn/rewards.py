"""Reward networks with imitation's signature `r(obs, act, next_obs, terminated) -> [B]`.

- `BasicRewardNet`: an MLP over any of (s, a, s', terminated), as imitation's `BasicRewardNet`.
- `ShapedRewardNet`: `g(s, a, s') + γ·Φ(s')·(1 − terminated) − Φ(s)`. Φ of a terminal state is
  0 (imitation PR #323). Only *termination* zeroes Φ(s'): a time limit is not a terminal state,
  so truncation never enters the shaping term (imitation merges the two).
- Inputs are running-normalised (`jaxrl_align.nn.normalization.RunningNorm`) by default, as
  imitation's nets; every network is the one `MLP` (32-32 ReLU, flax's default initialisation).
- `RewardEnsemble`: K independently initialised members vmapped in one module (one shared input
  normaliser); returns [K, B].

Observations and actions arrive raw; `spec` (a `SpaceSpec`) one-hot encodes discrete ones.
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxrl_align.nn.mlp import MLP
from jaxrl_align.nn.normalization import RunningNorm
from jaxrl_align.spaces import SpaceSpec

def reward_inputs(spec: SpaceSpec, obs, act, next_obs, terminated, *, use_state: bool,
                  use_action: bool, use_next_state: bool, use_done: bool):
    parts = []
    if use_state:
        parts.append(spec.encode_obs(obs))
    if use_action:
        parts.append(spec.encode_act(act))
    if use_next_state:
        parts.append(spec.encode_obs(next_obs))
    if use_done:
        parts.append(terminated.astype(jnp.float32)[..., None])
    if not parts:
        raise ValueError("reward net: at least one of use_state, use_action, use_next_state, "
                         "use_done must be True")
    return jnp.concatenate(parts, axis=-1)


def reward_mlp(hidden: Sequence[int], normalize_input: bool, **kwargs) -> MLP:
    """imitation's reward MLP: ReLU, flax's default initialisation, one output per input
    (weight gradients through XNNPACK: AIRL ~14% faster, docs/performance.md)."""
    return MLP(tuple(hidden), 1, "relu", initializer="lecun_normal", normalize_input=normalize_input,
               squeeze=True, xnnpack_weight_grads=True, **kwargs)


class BasicRewardNet(nn.Module):
    """imitation's `BasicRewardNet`: MLP (32, 32, ReLU) over (s, a) by default."""

    spec: SpaceSpec
    hidden: Sequence[int] = (32, 32)
    use_state: bool = True
    use_action: bool = True
    use_next_state: bool = False
    use_done: bool = False
    normalize_input: bool = True

    @nn.compact
    def __call__(self, obs, act, next_obs, terminated):
        x = reward_inputs(self.spec, obs, act, next_obs, terminated, use_state=self.use_state,
                          use_action=self.use_action, use_next_state=self.use_next_state,
                          use_done=self.use_done)
        return reward_mlp(self.hidden, self.normalize_input, name="base")(x)


class ShapedRewardNet(nn.Module):
    """imitation's `BasicShapedRewardNet`: g is an MLP (32,) over (s, a); Φ an MLP (32, 32) over
    s; the shaping discount is its own constant (0.99), not tied to the RL discount.

    `__call__` returns the shaped reward f; `base_reward` returns g alone (what AIRL exports).
    """

    spec: SpaceSpec
    reward_hidden: Sequence[int] = (32,)
    potential_hidden: Sequence[int] = (32, 32)
    discount: float = 0.99
    use_state: bool = True
    use_action: bool = True
    use_next_state: bool = False
    use_done: bool = False
    normalize_input: bool = True

    def setup(self):
        self.base = BasicRewardNet(self.spec, self.reward_hidden, self.use_state, self.use_action,
                                   self.use_next_state, self.use_done, self.normalize_input)
        self.potential_head = reward_mlp(self.potential_hidden, self.normalize_input)

    def potential(self, obs):
        return self.potential_head(self.spec.encode_obs(obs))

    def base_reward(self, obs, act, next_obs, terminated):
        return self.base(obs, act, next_obs, terminated)

    def __call__(self, obs, act, next_obs, terminated):
        g = self.base(obs, act, next_obs, terminated)
        not_terminated = 1.0 - terminated.astype(jnp.float32)
        return g + self.discount * not_terminated * self.potential(next_obs) - self.potential(obs)


class RewardEnsemble(nn.Module):
    """`num_members` copies of a `BasicRewardNet` `member`, each with its own initialisation;
    returns [K, ...].

    The input normaliser is shared: every member reads the same inputs, so per-member running
    statistics would be identical copies (imitation keeps one per member), and one shared
    normaliser computes the same function at a fraction of the cost."""
    member: BasicRewardNet
    num_members: int = 5

    @nn.compact
    def __call__(self, obs, act, next_obs, terminated):
        member = self.member
        if not isinstance(member, BasicRewardNet):
            raise TypeError(f"RewardEnsemble.member: expected a BasicRewardNet, got "
                            f"{type(member).__name__}")
        x = reward_inputs(member.spec, obs, act, next_obs, terminated,
                          use_state=member.use_state, use_action=member.use_action,
                          use_next_state=member.use_next_state, use_done=member.use_done)
        if member.normalize_input:
            x = RunningNorm(name="input_norm")(x)
        heads = nn.vmap(MLP, variable_axes={"params": 0}, split_rngs={"params": True},
                        in_axes=None, axis_size=self.num_members)
        return heads(tuple(member.hidden), 1, "relu", initializer="lecun_normal", squeeze=True,
                     name="members")(x)


def ensemble_moments(member_rewards: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Mean and (population) variance over the member axis, as imitation's
    `predict_reward_moments`."""
    return member_rewards.mean(axis=0), member_rewards.var(axis=0)
