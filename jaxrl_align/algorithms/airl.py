"""AIRL (Fu et al. 2018) as imitation implements it.

The discriminator's logit is `f(s, a, s', terminated) − log π(a|s)`, with f a shaped reward
`g(s, a) + γ·Φ(s')·(1 − terminated) − Φ(s)` (imitation's `BasicShapedRewardNet`) and π the
current generator policy. The generator is trained on f itself (imitation: the shaped reward net,
output running-normalised), not on `f − log π`. The transferable reward is g, the shaping
stripped: `learned_reward` returns it as a function, `save_reward` / `load_reward` store it.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from flax import serialization

from jaxrl_align.algorithm import Algorithm
from jaxrl_align.algorithms import adversarial
from jaxrl_align.outputs import write_atomic
from jaxrl_align.rewards import NORM_STATS, ShapedRewardNet
from jaxrl_align.spaces import SpaceSpec, space_spec


@dataclass(frozen=True)
class AIRLConfig(adversarial.AdversarialConfig):
    normalize_reward: bool = True
    """running-normalise f before PPO sees it (imitation's scripts wrap AIRL's net this way)"""
    reward_hidden: tuple[int, ...] = (32,)
    """hidden widths of g"""
    potential_hidden: tuple[int, ...] = (32, 32)
    """hidden widths of the potential Φ"""
    shaping_discount: float = 0.99
    """γ of the shaping term (imitation: 0.99, not tied to the RL discount)"""
    reward_use_action: bool = True
    """g sees the action (imitation's default); False gives the paper's state-only g(s)"""


def reward_net(config: AIRLConfig, spec: SpaceSpec) -> ShapedRewardNet:
    return ShapedRewardNet(spec, config.reward_hidden, config.potential_hidden,
                           config.shaping_discount, use_action=config.reward_use_action)


def make(config: AIRLConfig, env, env_params) -> Algorithm:
    def discriminator(engine) -> adversarial.Discriminator:
        net = reward_net(config, engine.spec)

        def logit(variables, policy_params, obs, acts, next_obs, terminated):
            f, new_vars = net.apply(variables, obs, acts, next_obs, terminated,
                                    mutable=[NORM_STATS])
            dist, _ = engine.policy(policy_params, obs)
            return f - dist.log_prob(acts), new_vars

        def generator_reward(variables, policy_params, *batch):
            return net.apply(variables, *batch)

        return adversarial.Discriminator(net, logit, generator_reward)

    return adversarial.make(config, env, env_params, discriminator, "airl")


def learned_reward(config: AIRLConfig, env, env_params):
    """`apply(reward_variables, obs, act, next_obs, terminated) -> g`: AIRL's reward without its
    shaping, for `ppo.make(..., reward_apply=apply)` with the variables as data."""
    net = reward_net(config, space_spec(env, env_params))
    return lambda variables, *batch: net.apply(variables, *batch, method=net.base_reward)


def save_reward(path: Path, config: AIRLConfig, env_id: str, disc_vars: dict) -> Path:
    """The reward network's variables (msgpack, no pickle) and the settings that rebuild it."""
    path = Path(path)
    write_atomic(path.with_suffix(".json"), lambda f: f.write(json.dumps(
        {"env_id": env_id, "airl_config": {k: v for k, v in asdict(config).items() if k != "ppo"}},
        indent=2).encode()))
    return write_atomic(path, lambda f: f.write(serialization.to_bytes(disc_vars)))


def load_reward(path: Path, config: AIRLConfig, template_vars: dict) -> dict:
    """Variables saved by `save_reward`, restored into the structure of `template_vars`."""
    return serialization.from_bytes(template_vars, Path(path).read_bytes())
