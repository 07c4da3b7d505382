"""Proximal Policy Optimisation in the PureJaxRL style: environment, rollout, GAE and minibatch
epochs all inside one jitted program.

The engine is split in two so that outer algorithms (GAIL, AIRL, preference comparisons) can
train their generator on a learned reward (the on-policy engine contract, docs/design.md):

    state, batch = engine.rollout(state)                        # act in the environment
    rewards = reward_fn(*batch.transitions.reward_inputs)       # any reward: learned, shaped ...
    state, metrics = engine.learn(state, batch, rewards)        # normalise (optionally), learn

`make` wraps both halves into an `Algorithm`, on the environment's own reward or on a learned
reward whose variables are the data.

Deviation from SB3 (deliberate): terminated and truncated stay apart. At a time limit the
advantage bootstraps from V(final observation); only a true termination zeroes the next value
(`losses.gae`).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxrl_align.algorithm import Algorithm
from jaxrl_align.data import rollout
from jaxrl_align.data.shuffle import permutation
from jaxrl_align.hparams import (as_arrays, check_choice, check_positive, check_widths,
                                 concrete, static)
from jaxrl_align.nn import optim
from jaxrl_align.nn.mlp import ACTIVATIONS
from jaxrl_align.nn.normalization import (init_reward_norm, init_running_stats, normalize_rewards,
                                          standardize, update_running_stats)
from jaxrl_align.nn.policies import ActorCritic
from jaxrl_align.rl.losses import gae, ppo_loss
from jaxrl_align.spaces import box_scaling, space_spec
from jaxrl_align.types import Transitions

OBS_NORMALIZATIONS = ("none", "box", "running")
# SB3's VecNormalize clips normalised observations to ±10; "running" does the same.
RUNNING_OBS_CLIP = 10.0
# Key of the running observation statistics inside `PPOState.params` (see `PPOEngine.policy`).
OBS_NORM = "obs_norm"


@struct.dataclass
class PPOConfig:
    """Defaults are PureJaxRL's CartPole settings except for 16 environments, a learning rate of
    1e-3 and no entropy bonus (docs/algorithms/ppo.md). Numeric hyperparameters (lr, gamma,
    gae_lambda, clip_eps, ent_coef, vf_coef) are traced; the rest fixes the program."""

    num_envs: int = static(16)
    """parallel environments per seed"""
    num_steps: int = static(128)
    """steps per environment in each rollout"""
    update_epochs: int = static(4)
    """passes over each rollout"""
    num_minibatches: int = static(4)
    """minibatches per epoch"""
    lr: float = 1e-3
    """Adam learning rate"""
    anneal_lr: bool = static(True)
    """decay the learning rate linearly to 0 over `total_timesteps`"""
    total_timesteps: int = static(500_000)
    """environment steps per seed that the annealing schedule spans (and a run's length)"""
    gamma: float = 0.99
    """discount"""
    gae_lambda: float = 0.95
    """GAE lambda"""
    clip_eps: float = 0.2
    """PPO ratio (and value) clipping"""
    ent_coef: float = 0.0
    """entropy bonus coefficient"""
    vf_coef: float = 0.5
    """value loss coefficient"""
    max_grad_norm: float = static(0.5)
    """global gradient norm clip"""
    clip_value: bool = static(True)
    """clip the value loss around the rollout's values by clip_eps (PureJaxRL; SB3's default
    does not). With unscaled returns of hundreds (Pendulum) it limits how far the critic can
    move per update to clip_eps, and the critic lags far behind"""
    reward_scale: float = static(1.0)
    """multiply the rewards PPO learns from by this constant before GAE (value targets and
    advantages; the reported returns stay the environment's)"""
    hidden: tuple[int, ...] = static((64, 64))
    """hidden layer widths of the actor and of the critic"""
    activation: str = static("tanh")
    """tanh or relu"""
    obs_normalization: str = static("none")
    """what the actor and critic see: "none", the raw observation; "box", each feature
    rescaled to [-1, 1] by the observation space's bounds (features whose bounds are infinite
    or wider than ±1e6 pass through unchanged); or "running", standardised by the running mean
    and variance of every observation the rollouts have seen and clipped to ±10 (SB3's
    VecNormalize, as imitation's MuJoCo experts were trained)"""

    def __post_init__(self):
        for name in ("num_envs", "num_steps", "update_epochs", "num_minibatches",
                     "total_timesteps"):
            check_positive(name, getattr(self, name))
        check_widths("hidden", self.hidden)
        check_choice("activation", self.activation, ACTIVATIONS)
        check_choice("obs_normalization", self.obs_normalization, OBS_NORMALIZATIONS)
        if not (self.reward_scale > 0 and self.reward_scale < float("inf")):
            raise ValueError(f"reward_scale: expected a finite value > 0, got {self.reward_scale}")
        if concrete(self.lr) and not self.lr >= 0:
            raise ValueError(f"lr: expected a learning rate >= 0, got {self.lr}")
        if self.steps_per_update % self.num_minibatches:
            raise ValueError(f"num_minibatches: num_envs*num_steps={self.steps_per_update} must "
                             f"be divisible by num_minibatches={self.num_minibatches}")

    @property
    def steps_per_update(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def num_updates(self) -> int:
        return max(1, self.total_timesteps // self.steps_per_update)


@struct.dataclass
class PPOState:
    params: dict
    opt_state: optax.OptState
    env_state: object  # `rollout.EpisodeReturn` state of the E environments
    obs: jax.Array  # [E, ...] current observation of each environment
    key: jax.Array
    hparams: PPOConfig
    env_steps: jax.Array  # int32
    last_return: jax.Array  # mean true return of the episodes that ended most recently
    reward_norm: dict  # running statistics of a learned reward (unused on the env's reward)


@struct.dataclass
class RolloutBatch:
    """A time-major [T, E] rollout: `transitions` (executed actions, true next observations,
    environment rewards), plus what PPO learns from: the sampled, unclipped `actions`, their
    `log_prob` and the critic's `value`."""

    transitions: Transitions
    actions: jax.Array
    log_prob: jax.Array
    value: jax.Array


class PPOEngine:
    """Static structure of PPO for one (config, env); every method is a pure function.

    `normalize_reward` standardises a learned reward by its running mean and variance before
    learning (imitation's `NormalizedRewardNet`)."""

    def __init__(self, config: PPOConfig, env, env_params, normalize_reward: bool = False):
        self.config, self.env_params = config, env_params
        self.env = rollout.EpisodeReturn(env)
        self.normalize_reward = normalize_reward
        self.spec = space_spec(env, env_params)
        obs_space = env.observation_space(env_params)
        self.obs_center, self.obs_halfwidth = (
            box_scaling(obs_space) if config.obs_normalization == "box" else (None, None))
        if config.obs_normalization == "box" and self.obs_center is None:
            raise ValueError(f"obs_normalization: 'box' needs a Box observation space, got "
                             f"{type(obs_space).__name__} (use 'none')")
        self.network = ActorCritic(self.spec.act_dim, self.spec.discrete_actions, config.hidden,
                                   config.activation, xnnpack_weight_grads=True)
        schedule = (optim.linear_decay_per_update(
            config.update_epochs * config.num_minibatches, config.num_updates)
            if config.anneal_lr else None)
        self.optimizer = lambda lr: optim.adam(lr, eps=1e-5, max_grad_norm=config.max_grad_norm,
                                               schedule=schedule)

    def init(self, key: jax.Array, hparams: PPOConfig | None = None) -> PPOState:
        cfg = self.config
        hparams = as_arrays(cfg) if hparams is None else hparams
        net_key, env_key, key = jax.random.split(key, 3)
        dummy_obs = jnp.zeros((1,) + self.spec.obs_shape, self.spec.obs_dtype)
        params = self.network.init(net_key, self.spec.encode_obs(dummy_obs))
        obs, env_state = rollout.reset(self.env, self.env_params, env_key, cfg.num_envs)
        if cfg.obs_normalization == "running":
            # The statistics ride in the parameters, so that every saved or evaluated policy
            # carries the normalisation it was trained with. They get no gradient
            # (`policy` stops it), so Adam leaves them unchanged; `rollout` updates them.
            stats = init_running_stats(self.spec.encode_obs(dummy_obs).shape[-1])
            params = {**params, OBS_NORM: update_running_stats(stats, self.spec.encode_obs(obs))}
        return PPOState(
            params=params, opt_state=self.optimizer(hparams.lr).init(params),
            env_state=env_state, obs=obs, key=key, hparams=hparams,
            env_steps=jnp.zeros((), jnp.int32), last_return=jnp.zeros(()),
            reward_norm=init_reward_norm())

    def encode_obs(self, params, obs):
        """The observation as the actor and critic see it (see `PPOConfig.obs_normalization`)."""
        x = self.spec.encode_obs(obs)
        if self.config.obs_normalization == "running":
            return jnp.clip(standardize(params[OBS_NORM], x), -RUNNING_OBS_CLIP, RUNNING_OBS_CLIP)
        if self.obs_center is None:
            return x
        return (x - self.obs_center) / self.obs_halfwidth

    def policy(self, params, obs):
        """(action distribution, value) of observations [..., *obs_shape]."""
        network_params = {k: v for k, v in params.items() if k != OBS_NORM}
        return self.network.apply(network_params, self.encode_obs(params, obs))

    def act(self, state: PPOState, key: jax.Array, obs: jax.Array, deterministic: bool = True):
        dist, _ = self.policy(state.params, obs)
        return self.spec.clip_action(dist.mode() if deterministic else dist.sample(key))

    def rollout(self, state: PPOState) -> tuple[PPOState, RolloutBatch]:
        cfg = self.config

        def act(key, obs):
            dist, value = self.policy(state.params, obs)
            sample = dist.sample(key)
            return self.spec.clip_action(sample), (sample, dist.log_prob(sample), value)

        def record(step, extras, info):
            done = step.terminated | step.truncated
            return step, extras, (done, info["episode_return"])

        (obs, env_state, key), (steps, (actions, log_prob, value), (done, returns)) = \
            rollout.unroll(self.env, self.env_params, act, state.obs, state.env_state, state.key,
                           cfg.num_steps, record)
        count = jnp.sum(done)
        last_return = jnp.where(count > 0, jnp.sum(jnp.where(done, returns, 0.0))
                                / jnp.maximum(count, 1), state.last_return)
        state = state.replace(obs=obs, env_state=env_state, key=key, last_return=last_return,
                              env_steps=state.env_steps + cfg.steps_per_update)
        if cfg.obs_normalization == "running":
            # After the rollout: its advantages and the learning phase use the statistics the
            # rollout acted with; the next rollout sees these observations counted.
            params = {**state.params, OBS_NORM: update_running_stats(
                state.params[OBS_NORM], self.spec.encode_obs(steps.next_obs))}
            state = state.replace(params=params)
        return state, RolloutBatch(steps, actions, log_prob, value)

    def learn(self, state: PPOState, batch: RolloutBatch, rewards: jax.Array | None = None):
        """One learning phase on `batch` with `rewards` [T, E] (a learned reward; default: the
        environment's). Returns (state, metrics)."""
        cfg, hp = self.config, state.hparams
        metrics = {}
        if rewards is None:
            if self.normalize_reward:
                raise ValueError("normalize_reward: expected a learned reward to normalise, got "
                                 "None; the environment's own reward is used as it is")
            rewards = batch.transitions.rews
        else:
            if self.normalize_reward:
                rewards, reward_norm = normalize_rewards(state.reward_norm, rewards)
                state = state.replace(reward_norm=reward_norm)
            metrics["learned_reward"] = jnp.mean(rewards)
        if cfg.reward_scale != 1.0:
            rewards = rewards * cfg.reward_scale
        steps = batch.transitions
        _, next_value = self.policy(state.params, steps.next_obs)
        advantages = gae(rewards, batch.value, next_value, steps.terminated, steps.truncated,
                         hp.gamma, hp.gae_lambda)
        targets = advantages + batch.value
        flat = jax.tree.map(lambda x: x.reshape((cfg.steps_per_update,) + x.shape[2:]),
                            (steps.obs, batch.actions, batch.log_prob, batch.value, advantages,
                             targets))
        optimizer = self.optimizer(hp.lr)

        def loss_fn(params, minibatch):
            obs, actions, old_log_prob, old_value, adv, target = minibatch
            dist, value = self.policy(params, obs)
            return ppo_loss(dist, value, actions, old_log_prob, old_value, adv, target,
                            clip_eps=hp.clip_eps, vf_coef=hp.vf_coef, ent_coef=hp.ent_coef,
                            clip_value=cfg.clip_value)

        def minibatch_step(train, minibatch):
            params, opt_state = train
            grads, aux = jax.grad(loss_fn, has_aux=True)(params, minibatch)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), aux

        def epoch(carry, _):
            train, key = carry
            key, perm_key = jax.random.split(key)
            perm = permutation(perm_key, cfg.steps_per_update)
            minibatches = jax.tree.map(
                lambda x: x[perm].reshape((cfg.num_minibatches, -1) + x.shape[1:]), flat)
            train, aux = jax.lax.scan(minibatch_step, train, minibatches)
            return (train, key), aux

        key, epoch_key = jax.random.split(state.key)
        ((params, opt_state), _), aux = jax.lax.scan(
            epoch, ((state.params, state.opt_state), epoch_key), None, length=cfg.update_epochs)
        metrics = {**jax.tree.map(jnp.mean, aux), **metrics, "return": state.last_return}
        return state.replace(params=params, opt_state=opt_state, key=key), metrics


def make(config: PPOConfig, env, env_params, reward_apply=None,
         normalize_reward: bool = False) -> Algorithm:
    """PPO on the environment's own reward (how experts are trained) or, with `reward_apply`,
    on a learned reward `reward_apply(reward_variables, obs, act, next_obs, terminated)` whose
    variables are the `data` argument (so a new reward never recompiles).

    `normalize_reward` standardises the learned reward by its running mean and variance, as
    imitation's scripts do for every learned reward (`NormalizedRewardNet`). Learned rewards can
    be large and far from unit scale (AIRL's g), and the critic's gradients then swamp the
    actor's under the shared gradient-norm clip."""
    if normalize_reward and reward_apply is None:
        raise ValueError("normalize_reward: expected a learned reward (reward_apply), got None; "
                         "the environment's own reward is used as it is")
    engine = PPOEngine(config, env, env_params, normalize_reward)

    def init(key, data=None, hparams=None):
        return engine.init(key, hparams)

    def update(state: PPOState, data=None):
        state, batch = engine.rollout(state)
        rewards = None
        if reward_apply is not None:
            rewards = reward_apply(data, *batch.transitions.reward_inputs)
        return engine.learn(state, batch, rewards)

    return Algorithm(name="ppo", config=config, init=init, update=update, act=engine.act)
