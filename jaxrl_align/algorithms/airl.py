"""AIRL (Fu et al. 2018) as imitation implements it.

The discriminator's logit is `f(s, a, s', terminated) − log π(a|s)`, with f a shaped reward
`g(s, a) + γ·Φ(s')·(1 − terminated) − Φ(s)` (imitation's `BasicShapedRewardNet`) and π the
current generator policy. By default the generator is trained on f itself (imitation: the shaped
reward net, output running-normalised), not on the paper's `f − log π` (`generator_reward=
"logit"` selects that). The transferable reward is g, the shaping stripped: `learned_reward`
returns it as a function, `save_reward` / `load_reward` store it. Train a fresh agent on it with
`ppo.make(config, env, params, reward_apply=learned_reward(...), normalize_reward=True)`: on the
raw g (large and negative off the expert's states) PPO fails on most CartPole seeds, on the
standardised g it reaches 500 on 8 of 8 (`experiments/airl_transfer.py`).

Defaults follow imitation's AIRL tutorial for seals/CartPole-v0 where imitation's API defaults
fail here: 16 discriminator steps per round and a generator discount of 0.95. Measured on
CartPole from 10 controller episodes (600k steps, 4 seeds): API defaults (2 steps, γ 0.99) 1 of
4 seeds at 500; 16 steps alone 1 of 4; γ 0.95 alone 1 of 4; both 3 of 4, and 8 of 8 with 800k
steps and an entropy bonus of 0.01. One reading: with a deterministic expert, `−log π(a|s)` by
itself labels every expert action the generator rarely takes, so f has few informative samples
and needs more steps on them; and with equal RL and shaping discounts the potential term of f
telescopes out of the generator's objective.

seals/MountainCar-v0 (`MOUNTAIN_CAR`, `python -m experiments.airl_mountaincar`): the same
settings, with the generator's observations rescaled to [-1, 1] (`PPOConfig.obs_normalization=
"box"`), reach −110 to −117 on 8 of 8 seeds from 10 episodes of a pumping controller (−108);
with raw observations every seed stays at −200 (4 of 4). In the raw-observation seed we
inspected, f did reward pushing in the direction of the velocity (at velocity < 0, f of the
demonstrations' left pushes about −0.5, of the generator's right pushes about −6), but the
generator's policy, whose input velocity lies within ±0.07, had collapsed to pushing right in
every state (mean entropy 0.04 after 200k steps) and never reached the goal.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from flax import serialization

from jaxrl_align.algorithm import Algorithm
from jaxrl_align.algorithms import adversarial, ppo
from jaxrl_align.outputs import write_atomic
from jaxrl_align.rewards import NORM_STATS, ShapedRewardNet
from jaxrl_align.spaces import SpaceSpec, space_spec


GENERATOR_REWARDS = ("f", "logit")


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
    generator_reward: str = "f"
    """what PPO maximises: "f", the shaped reward (imitation's choice), or "logit", the paper's
    `log D − log(1 − D) = f − log π` (an entropy-regularised objective)"""
    n_disc_updates_per_round: int = 16
    """discriminator steps per round (imitation's AIRL tutorial: 16; with 2, 1 to 2 of 4 seeds
    learn seals/CartPole-v0)"""
    ppo: ppo.PPOConfig = field(default_factory=lambda: ppo.PPOConfig(
        gamma=0.95, ent_coef=0.01, total_timesteps=800_000))
    """the generator's PPO settings: γ 0.95 as in imitation's AIRL tutorial (with 0.99, 1 of 4
    seeds learns), a small entropy bonus, 800k steps (8 of 8 seeds at 500 on CartPole)"""

    def __post_init__(self):
        if self.generator_reward not in GENERATOR_REWARDS:
            raise ValueError(f"generator_reward: expected one of {GENERATOR_REWARDS}, "
                             f"got {self.generator_reward!r}")


def reward_net(config: AIRLConfig, spec: SpaceSpec) -> ShapedRewardNet:
    return ShapedRewardNet(spec, config.reward_hidden, config.potential_hidden,
                           config.shaping_discount, use_action=config.reward_use_action)


def discriminator(config: AIRLConfig, engine) -> adversarial.Discriminator:
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
    write_atomic(path.with_suffix(".json"), lambda f: f.write(json.dumps(
        {"env_id": env_id, "airl_config": {k: v for k, v in asdict(config).items() if k != "ppo"}},
        indent=2).encode()))
    return write_atomic(path, lambda f: f.write(serialization.to_bytes(disc_vars)))


def load_reward(path: Path, config: AIRLConfig, template_vars: dict) -> dict:
    """Variables saved by `save_reward`, restored into the structure of `template_vars`."""
    return serialization.from_bytes(template_vars, Path(path).read_bytes())


# seals/MountainCar-v0 (`python -m experiments.airl_mountaincar`): the defaults, but the
# generator's actor and critic see observations rescaled to [-1, 1] by the observation space's
# bounds. With raw observations (velocity within ±0.07) every seed stays at −200: the generator
# of the seed inspected settled on one action in every state before reaching the goal (see the
# module docstring).
MOUNTAIN_CAR = AIRLConfig(ppo=replace(AIRLConfig().ppo, obs_normalization="box"))
