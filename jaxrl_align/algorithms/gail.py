"""GAIL (Ho & Ermon 2016) as imitation implements it.

The discriminator's logit is a reward network `D_logit(s, a, s', terminated)` (imitation's
`BasicRewardNet`: MLP 32-32 over (s, a), running-normalised inputs). The generator's reward is
`−log(1 − D) = softplus(logit)`, always ≥ 0 (a built-in survival bonus).
"""
from __future__ import annotations

from dataclasses import dataclass

import jax

from jaxrl_align.algorithm import Algorithm
from jaxrl_align.algorithms import adversarial
from jaxrl_align.rewards import NORM_STATS, BasicRewardNet


@dataclass(frozen=True)
class GAILConfig(adversarial.AdversarialConfig):
    reward_hidden: tuple[int, ...] = (32, 32)
    """hidden widths of the discriminator network"""
    use_next_state: bool = False
    """discriminator sees s'"""
    use_done: bool = False
    """discriminator sees the terminated flag"""


def make(config: GAILConfig, env, env_params) -> Algorithm:
    def discriminator(engine) -> adversarial.Discriminator:
        net = BasicRewardNet(engine.spec, config.reward_hidden, use_next_state=config.use_next_state,
                             use_done=config.use_done)

        def logit(variables, policy_params, *batch):
            return net.apply(variables, *batch, mutable=[NORM_STATS])

        def generator_reward(variables, policy_params, *batch):
            return jax.nn.softplus(net.apply(variables, *batch))

        return adversarial.Discriminator(net, logit, generator_reward)

    return adversarial.make(config, env, env_params, discriminator, "gail")
