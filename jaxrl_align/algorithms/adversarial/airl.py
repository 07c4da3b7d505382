"""AIRL (Fu et al. 2018) as imitation implements it.

The discriminator's logit is `f(s, a, s', terminated) − log π(a|s)`, with f a shaped reward
`g(s, a) + γ·Φ(s')·(1 − terminated) − Φ(s)` (imitation's `BasicShapedRewardNet`) and π the
current generator policy. By default the generator is trained on f itself (imitation: the shaped
reward net, output running-normalised), not on the paper's `f − log π` (`generator_reward=
"logit"` selects that). The transferable reward is g, the shaping stripped: `learned_reward`
returns it as a function, `save_reward` / `load_reward` store it. Train a fresh agent on it with
`ppo.make(config, env, params, reward_apply=learned_reward(...), normalize_reward=True)`.

Defaults follow imitation's AIRL tutorial for seals/CartPole-v0 where imitation's API defaults
fail here: 16 discriminator steps per round, a generator discount of 0.95 and a small entropy
bonus (docs/algorithms/adversarial.md has the measurements behind them).
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from flax import serialization, struct

from jaxrl_align.algorithm import Algorithm
from jaxrl_align.algorithms.adversarial import common as adversarial
from jaxrl_align.data.files import write_atomic
from jaxrl_align.hparams import check_choice, check_widths, config_to_dict, static
from jaxrl_align.nn.normalization import NORM_STATS
from jaxrl_align.nn.rewards import ShapedRewardNet
from jaxrl_align.rl import ppo
from jaxrl_align.spaces import SpaceSpec, space_spec

GENERATOR_REWARDS = ("f", "logit")


@struct.dataclass
class AIRLConfig(adversarial.AdversarialConfig):
    normalize_reward: bool = static(True)
    """running-normalise f before PPO sees it (imitation's scripts wrap AIRL's net this way)"""
    reward_hidden: tuple[int, ...] = static((32,))
    """hidden widths of g"""
    potential_hidden: tuple[int, ...] = static((32, 32))
    """hidden widths of the potential Φ"""
    shaping_discount: float = static(0.99)
    """γ of the shaping term (imitation: 0.99, not tied to the RL discount)"""
    reward_use_action: bool = static(True)
    """g sees the action (imitation's default); False gives the paper's state-only g(s)"""
    generator_reward: str = static("f")
    """what PPO maximises: "f", the shaped reward (imitation's choice), or "logit", the paper's
    `log D − log(1 − D) = f − log π` (an entropy-regularised objective)"""
    n_disc_updates_per_round: int = static(16)
    """discriminator steps per round (imitation's AIRL tutorial: 16)"""
    ppo: ppo.PPOConfig = dataclasses.field(default_factory=lambda: ppo.PPOConfig(
        gamma=0.95, ent_coef=0.01, total_timesteps=800_000))
    """the generator's PPO settings: γ 0.95 as in imitation's AIRL tutorial, a small entropy
    bonus, 800k steps"""

    def __post_init__(self):
        super().__post_init__()
        check_choice("generator_reward", self.generator_reward, GENERATOR_REWARDS)
        check_widths("reward_hidden", self.reward_hidden)
        check_widths("potential_hidden", self.potential_hidden)


def reward_net(config: AIRLConfig, spec: SpaceSpec) -> ShapedRewardNet:
    return ShapedRewardNet(spec, config.reward_hidden, config.potential_hidden,
                           config.shaping_discount, use_action=config.reward_use_action)


def discriminator(config: AIRLConfig, engine: ppo.PPOEngine) -> adversarial.Discriminator:
    """AIRL's logit and generator reward around the reward net, for the generator `engine`."""
    net = reward_net(config, engine.spec)

    def log_policy(policy_params, obs, acts):
        dist, _ = engine.policy(policy_params, obs)
        return dist.log_prob(acts)

    def logit(variables, policy_params, obs, acts, next_obs, terminated):
        f, new_vars = net.apply(variables, obs, acts, next_obs, terminated, mutable=[NORM_STATS])
        return f - log_policy(policy_params, obs, acts), new_vars

    def generator_reward(variables, policy_params, obs, acts, next_obs, terminated):
        f = net.apply(variables, obs, acts, next_obs, terminated)
        if config.generator_reward == "f":
            return f
        return f - log_policy(policy_params, obs, acts)

    return adversarial.Discriminator(net, logit, generator_reward)


def make(config: AIRLConfig, env, env_params) -> Algorithm:
    return adversarial.make(config, env, env_params,
                            lambda engine: discriminator(config, engine), "airl")


def learned_reward(config: AIRLConfig, env, env_params):
    """`apply(reward_variables, obs, act, next_obs, terminated) -> g`: AIRL's reward without its
    shaping, for `ppo.make(..., reward_apply=apply)` with the variables as data."""
    net = reward_net(config, space_spec(env, env_params))
    return lambda variables, *batch: net.apply(variables, *batch, method=net.base_reward)


def save_reward(path: Path, config: AIRLConfig, env_id: str, disc_vars: dict) -> Path:
    """The reward network's variables (msgpack, no pickle) and the settings that rebuild it."""
    path = Path(path)
    settings = {k: v for k, v in config_to_dict(config).items() if k != "ppo"}
    write_atomic(path.with_suffix(".json"), lambda f: f.write(json.dumps(
        {"env_id": env_id, "airl_config": settings}, indent=2).encode()))
    return write_atomic(path, lambda f: f.write(serialization.to_bytes(disc_vars)))


def load_reward(path: Path, config: AIRLConfig, template_vars: dict) -> dict:
    """Variables saved by `save_reward`, restored into the structure of `template_vars`."""
    return serialization.from_bytes(template_vars, Path(path).read_bytes())
