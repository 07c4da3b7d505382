"""GAIL (Ho & Ermon 2016) as imitation implements it.

The discriminator's logit is a reward network `D_logit(s, a, s', terminated)` (imitation's
`BasicRewardNet`: MLP 32-32 over (s, a), running-normalised inputs). The generator's reward is
`−log(1 − D) = softplus(logit)`, always ≥ 0 (a built-in survival bonus).
"""
from __future__ import annotations

import jax
from flax import struct

from jaxrl_align.algorithm import Algorithm
from jaxrl_align.algorithms.adversarial import common as adversarial
from jaxrl_align.hparams import check_widths, static
from jaxrl_align.nn.normalization import NORM_STATS
from jaxrl_align.nn.rewards import BasicRewardNet


@struct.dataclass
class GAILConfig(adversarial.AdversarialConfig):
    reward_hidden: tuple[int, ...] = static((32, 32))
    """hidden widths of the discriminator network"""
    use_next_state: bool = static(False)
    """discriminator sees s'"""
    use_done: bool = static(False)
    """discriminator sees the terminated flag"""

    def __post_init__(self):
        super().__post_init__()
        check_widths("reward_hidden", self.reward_hidden)


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
