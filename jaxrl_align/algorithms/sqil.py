"""SQIL (Reddy et al. 2019) as imitation's `SQIL` computes it: off-policy RL in which every
learner transition has reward 0 and every expert transition reward 1.

The learner (DQN for Discrete action spaces, SAC for Box ones) runs on the shared off-policy
loop (`rl/off_policy.py`); SQIL only swaps the batch each gradient step learns from
(`sample_batch`, imitation's `SQILReplayBuffer.sample`): of `batch_size`, the first
`batch_size // 2` are drawn from the learner's replay buffer with their rewards set to 0, the
last `batch_size - batch_size // 2` (imitation's `split_in_half`, rounded up) from the
demonstrations with reward 1, each uniformly with replacement. The demonstrations are the
algorithm's `data` (flat `Transitions`, as BC and GAIL take them), so a new dataset never
recompiles.

    algo = sqil.make(dqn.DQNConfig(...), env, env_params)    # or a sac.SACConfig; None: the
    state = algo.init(key, demos)                             # learner's defaults for the env
    state, metrics = algo.update(state, demos)

SQIL has no hyperparameters of its own (imitation's takes the learner's keyword arguments), so
its config is the learner's config. Deviation from imitation (deliberate): an expert
transition stops the bootstrap only when it `terminated`; imitation stores the demonstrations'
`dones`, which mark the end of every trajectory, time limits included, as terminal (on
seals/CartPole-v0, a fixed-horizon task, imitation's expert episodes all end "terminal" at step
500; here none does).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxrl_align.algorithm import Algorithm
from jaxrl_align.data import ring_buffer
from jaxrl_align.rl import dqn, off_policy
from jaxrl_align.spaces import space_spec
from jaxrl_align.types import Transitions


def split_in_half(n: int) -> tuple[int, int]:
    """imitation's `util.split_in_half`: (n // 2, n - n // 2)."""
    return n // 2, n - n // 2


def sample_batch(buffer: ring_buffer.RingBuffer, demos: Transitions, key: jax.Array,
                 batch_size: int) -> Transitions:
    """The SQIL batch: learner transitions at reward 0 first, then demonstrations at reward 1."""
    num_learner, num_expert = split_in_half(batch_size)
    learner_key, expert_key = jax.random.split(key)
    learner = ring_buffer.sample(buffer, learner_key, num_learner)
    index = jax.random.randint(expert_key, (num_expert,), 0, len(demos))
    stored = buffer.items
    expert = Transitions(
        obs=demos.obs[index].astype(stored.obs.dtype),
        acts=demos.acts[index].astype(stored.acts.dtype),
        next_obs=demos.next_obs[index].astype(stored.next_obs.dtype),
        terminated=demos.terminated[index].astype(bool),
        rews=jnp.ones((num_expert,), stored.rews.dtype),
        truncated=(jnp.zeros((num_expert,), bool) if demos.truncated is None
                   else demos.truncated[index].astype(bool)))
    learner = learner.replace(rews=jnp.zeros_like(learner.rews))
    return jax.tree.map(lambda a, b: jnp.concatenate([a, b]), learner, expert)


def _sac():
    try:
        from jaxrl_align.rl import sac
    except ImportError as error:
        raise ValueError("action space: SQIL on a Box action space needs SAC "
                         f"(jaxrl_align.rl.sac), which could not be imported: {error}") from error
    return sac


def default_config(env, env_params):
    """The learner's default config for the env's action space: `DQNConfig()` for Discrete,
    `SACConfig()` for Box."""
    if space_spec(env, env_params).discrete_actions:
        return dqn.DQNConfig()
    return _sac().SACConfig()


def learner(config, env, env_params) -> off_policy.Learner:
    """The learner whose config `config` is, checked against the env's action space."""
    discrete = space_spec(env, env_params).discrete_actions
    if isinstance(config, dqn.DQNConfig):
        if not discrete:
            raise ValueError("config: SQIL on a Box action space needs a SACConfig, got a "
                             "DQNConfig (DQN needs Discrete actions)")
        return dqn.learner(config, env, env_params)
    sac = _sac()
    if isinstance(config, sac.SACConfig):
        if discrete:
            raise ValueError("config: SQIL on a Discrete action space needs a DQNConfig, got "
                             "a SACConfig (SAC needs Box actions)")
        return sac.learner(config, env, env_params)
    raise ValueError(f"config: expected a DQNConfig or a SACConfig, got "
                     f"{type(config).__name__}")


def check_demos(demos: Transitions, env, env_params) -> None:
    """Refuse demonstrations that do not fit the env's spaces, naming the field."""
    spec = space_spec(env, env_params)
    if not isinstance(demos, Transitions):
        raise ValueError(f"demonstrations: expected flat Transitions, got "
                         f"{type(demos).__name__}")
    if demos.obs.ndim < 1 or len(demos) < 1:
        raise ValueError(f"demonstrations: expected at least 1 transition, got "
                         f"{demos.terminated.shape}")
    num = len(demos)
    expected = {"obs": (num,) + spec.obs_shape, "next_obs": (num,) + spec.obs_shape,
                "acts": (num,) + spec.act_shape, "terminated": (num,)}
    for field, shape in expected.items():
        actual = tuple(getattr(demos, field).shape)
        if actual != shape:
            raise ValueError(f"demonstrations.{field}: expected shape {shape} for this env, got "
                             f"{actual}")


def make(config, env, env_params) -> Algorithm:
    """SQIL with the learner `config` belongs to (None: `default_config`); data: the
    demonstrations (flat Transitions)."""
    config = default_config(env, env_params) if config is None else config
    loop = off_policy.make("sqil", learner(config, env, env_params), config, env, env_params,
                           sampler=sample_batch)

    def init(key, demos: Transitions, hparams=None):
        check_demos(demos, env, env_params)
        return loop.init(key, demos, hparams)

    return loop._replace(init=init)
