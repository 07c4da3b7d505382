"""Proximal Policy Optimisation in the PureJaxRL style: environment, rollout, GAE and minibatch
epochs all inside one jitted program.

The engine is split in two so that outer algorithms (GAIL, AIRL, preference comparisons) can
train their generator on a learned reward:

    state, batch = engine.rollout(state)                 # act in the environment
    rewards = reward_fn(*engine.reward_inputs(batch))    # any reward: true, learned, shaped ...
    state, metrics = engine.learn(state, batch, rewards)

`make` wraps both halves into an `Algorithm` trained on the environment's own reward.

Deviation from SB3 (deliberate): terminated and truncated stay apart. At a time limit the
advantage bootstraps from V(final observation); only a true termination zeroes the next value.
"""
from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxrl_align.algorithm import Algorithm
from jaxrl_align.hparams import hparams_from_config
from jaxrl_align.networks import ActorCritic
from jaxrl_align.rewards import init_reward_norm, normalize_rewards
from jaxrl_align.shuffle import permutation
from jaxrl_align.spaces import box_scaling, space_spec


OBS_NORMALIZATIONS = ("none", "box")


@dataclass(frozen=True)
class PPOConfig:
    """Defaults are PureJaxRL's CartPole settings except for 16 environments, a learning rate of
    1e-3 and no entropy bonus: with those, 10 of 10 seeds reach 500 on seals/CartPole-v0 within
    500k steps (PureJaxRL's own settings: 6 of 10). `PUREJAXRL_CARTPOLE` keeps the original."""

    num_envs: int = 16
    """parallel environments per seed"""
    num_steps: int = 128
    """steps per environment in each rollout"""
    update_epochs: int = 4
    """passes over each rollout"""
    num_minibatches: int = 4
    """minibatches per epoch"""
    lr: float = 1e-3
    """Adam learning rate"""
    anneal_lr: bool = True
    """decay the learning rate linearly to 0 over `total_timesteps`"""
    total_timesteps: int = 500_000
    """environment steps per seed that the annealing schedule spans"""
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
    max_grad_norm: float = 0.5
    """global gradient norm clip"""
    clip_value: bool = True
    """clip the value loss around the rollout's values by clip_eps (PureJaxRL; SB3's default
    does not). With unscaled returns of hundreds (Pendulum) it limits how far the critic can
    move per update to clip_eps, and the critic lags far behind"""
    reward_scale: float = 1.0
    """multiply the rewards PPO learns from by this constant before GAE (value targets and
    advantages; the reported returns stay the environment's)"""
    hidden: tuple[int, ...] = (64, 64)
    """hidden layer widths of the actor and of the critic"""
    activation: str = "tanh"
    """tanh or relu"""
    obs_normalization: str = "none"
    """what the actor and critic see: "none", the raw observation, or "box", each feature
    rescaled to [-1, 1] by the observation space's bounds (features whose bounds are infinite
    or wider than ±1e6 pass through unchanged). seals/MountainCar-v0's velocity lies in ±0.07;
    on raw observations AIRL's generator never reaches the goal there (see airl.MOUNTAIN_CAR)"""

    def __post_init__(self):
        if self.obs_normalization not in OBS_NORMALIZATIONS:
            raise ValueError(f"obs_normalization: expected one of {OBS_NORMALIZATIONS}, "
                             f"got {self.obs_normalization!r}")
        if not (self.reward_scale > 0 and self.reward_scale < float("inf")):
            raise ValueError(f"reward_scale: expected a finite value > 0, got {self.reward_scale}")

    @property
    def steps_per_update(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def num_updates(self) -> int:
        return max(1, self.total_timesteps // self.steps_per_update)


# PureJaxRL's CartPole configuration (the speed benchmark's reference point).
PUREJAXRL_CARTPOLE = PPOConfig(num_envs=4, lr=2.5e-4, ent_coef=0.01)

# Pendulum-v1 (gymnax): rewards scaled to -1.6..0 and an unclipped value loss. Unscaled, the
# critic's gradients (returns of hundreds) dominate the global-norm clip and starve the actor;
# clipped, the critic moves only clip_eps per update. Measured on the true reward, 8 seeds in
# one call: 8 of 8 seeds >= -200 after 300k steps (7 of 8 after 150k), every policy -143 to -159
# over 200 common evaluation episodes (PPO with clipped values and unscaled rewards: 4-5 of 8).
PENDULUM = PPOConfig(update_epochs=10, num_minibatches=8, gamma=0.99, clip_value=False,
                     reward_scale=0.1, total_timesteps=300_000)

SWEEPABLE = ("lr", "gamma", "gae_lambda", "clip_eps", "ent_coef", "vf_coef")


@struct.dataclass
class PPOState:
    params: dict
    opt_state: optax.OptState
    env_state: object
    obs: jax.Array  # [E, ...] current observation of each environment
    key: jax.Array
    hparams: dict
    update_idx: jax.Array
    episode_return: jax.Array  # [E] true return of the episode in progress
    last_return: jax.Array  # mean true return of the episodes that ended most recently


@struct.dataclass
class RolloutBatch:
    """Time-major [T, E, ...]. `acts` are the sampled (unclipped) actions; `next_obs` is the true
    next observation (the final one when an episode ended, not the auto-reset one)."""

    obs: jax.Array
    acts: jax.Array
    log_prob: jax.Array
    value: jax.Array
    rews: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    next_obs: jax.Array


class PPOEngine:
    """Static structure of PPO for one (config, env). Every method is a pure function of arrays."""

    def __init__(self, config: PPOConfig, env, env_params):
        if config.steps_per_update % config.num_minibatches:
            raise ValueError(f"num_envs*num_steps={config.steps_per_update} must be divisible by "
                             f"num_minibatches={config.num_minibatches}")
        self.config, self.env, self.env_params = config, env, env_params
        self.spec = space_spec(env, env_params)
        obs_space = env.observation_space(env_params)
        self.obs_center, self.obs_halfwidth = (
            box_scaling(obs_space) if config.obs_normalization == "box" else (None, None))
        if config.obs_normalization == "box" and self.obs_center is None:
            raise ValueError(f"obs_normalization: 'box' needs a Box observation space, got "
                             f"{type(obs_space).__name__} (use 'none')")
        self.network = ActorCritic(self.spec.act_dim, self.spec.discrete_actions, config.hidden,
                                   config.activation)
        # The learning rate is applied by hand in `learn` so that it can be a traced hparam.
        self.optimizer = optax.chain(optax.clip_by_global_norm(config.max_grad_norm),
                                     optax.scale_by_adam(eps=1e-5))

    # -- state -------------------------------------------------------------------------------
    def init(self, key: jax.Array, hparams: dict | None = None) -> PPOState:
        cfg = self.config
        net_key, env_key, key = jax.random.split(key, 3)
        dummy_obs = jnp.zeros((1,) + self.spec.obs_shape, self.spec.obs_dtype)
        params = self.network.init(net_key, self.encode_obs(dummy_obs))
        obs, env_state = jax.vmap(self.env.reset, in_axes=(0, None))(
            jax.random.split(env_key, cfg.num_envs), self.env_params)
        return PPOState(
            params=params, opt_state=self.optimizer.init(params), env_state=env_state, obs=obs,
            key=key, hparams=hparams_from_config(cfg, SWEEPABLE, hparams),
            update_idx=jnp.zeros((), jnp.int32), episode_return=jnp.zeros(cfg.num_envs),
            last_return=jnp.zeros(()))

    def encode_obs(self, obs):
        """The observation as the actor and critic see it (see `PPOConfig.obs_normalization`)."""
        x = self.spec.encode_obs(obs)
        if self.obs_center is None:
            return x
        return (x - self.obs_center) / self.obs_halfwidth

    def policy(self, params, obs):
        return self.network.apply(params, self.encode_obs(obs))

    def act(self, state: PPOState, key: jax.Array, obs: jax.Array, deterministic: bool = True):
        dist, _ = self.policy(state.params, obs)
        return self.spec.clip_action(dist.mode() if deterministic else dist.sample(key))

    # -- acting ------------------------------------------------------------------------------
    def rollout(self, state: PPOState) -> tuple[PPOState, RolloutBatch]:
        cfg = self.config

        def env_step(carry, _):
            obs, env_state, key, ep_ret, done_sum, done_count = carry
            key, act_key, env_key = jax.random.split(key, 3)
            dist, value = self.policy(state.params, obs)
            acts = dist.sample(act_key)
            next_obs, env_state, rews, terminated, truncated, info = jax.vmap(
                self.env.step, in_axes=(0, 0, 0, None))(
                    jax.random.split(env_key, cfg.num_envs), env_state,
                    self.spec.clip_action(acts), self.env_params)
            done = terminated | truncated
            ep_ret = ep_ret + rews
            done_sum = done_sum + jnp.sum(jnp.where(done, ep_ret, 0.0))
            done_count = done_count + jnp.sum(done)
            step = RolloutBatch(obs, acts, dist.log_prob(acts), value, rews, terminated,
                                truncated, info["final_observation"])
            return (next_obs, env_state, key, jnp.where(done, 0.0, ep_ret), done_sum,
                    done_count), step

        carry = (state.obs, state.env_state, state.key, state.episode_return, jnp.zeros(()),
                 jnp.zeros((), jnp.int32))
        (obs, env_state, key, ep_ret, done_sum, done_count), batch = jax.lax.scan(
            env_step, carry, None, length=cfg.num_steps)
        last_return = jnp.where(done_count > 0, done_sum / jnp.maximum(done_count, 1),
                                state.last_return)
        return state.replace(obs=obs, env_state=env_state, key=key, episode_return=ep_ret,
                             last_return=last_return), batch

    def reward_inputs(self, batch: RolloutBatch):
        """(obs, acts, next_obs, terminated) in the form reward functions take: executed
        (clipped) actions, imitation's `r(s, a, s', done)` order."""
        return batch.obs, self.spec.clip_action(batch.acts), batch.next_obs, batch.terminated

    # -- learning ----------------------------------------------------------------------------
    def advantages(self, params, hp, batch: RolloutBatch, rewards: jax.Array) -> jax.Array:
        """GAE over a time-major batch. Only termination zeroes the next value; truncation
        bootstraps from V(final observation). Both end the GAE trace."""
        _, next_value = self.policy(params, batch.next_obs)
        not_terminated = 1.0 - batch.terminated.astype(jnp.float32)
        episode_continues = 1.0 - (batch.terminated | batch.truncated).astype(jnp.float32)

        def gae_step(next_adv, x):
            rew, value, next_v, not_term, cont = x
            delta = rew + hp["gamma"] * next_v * not_term - value
            adv = delta + hp["gamma"] * hp["gae_lambda"] * cont * next_adv
            return adv, adv

        _, advantages = jax.lax.scan(
            gae_step, jnp.zeros(rewards.shape[1:]),
            (rewards, batch.value, next_value, not_terminated, episode_continues),
            reverse=True, unroll=16)
        return advantages

    def learn(self, state: PPOState, batch: RolloutBatch, rewards: jax.Array):
        cfg, hp = self.config, state.hparams
        if cfg.reward_scale != 1.0:
            rewards = rewards * cfg.reward_scale
        advantages = self.advantages(state.params, hp, batch, rewards)
        targets = advantages + batch.value

        lr = hp["lr"]
        if cfg.anneal_lr:
            lr = lr * (1.0 - state.update_idx.astype(jnp.float32) / cfg.num_updates)

        flat = jax.tree.map(lambda x: x.reshape((cfg.steps_per_update,) + x.shape[2:]),
                            (batch.obs, batch.acts, batch.log_prob, batch.value, advantages,
                             targets))

        def loss_fn(params, mb):
            obs, acts, old_log_prob, old_value, adv, target = mb
            dist, value = self.policy(params, obs)
            log_prob = dist.log_prob(acts)
            if cfg.clip_value:
                value_clipped = old_value + jnp.clip(value - old_value, -hp["clip_eps"],
                                                     hp["clip_eps"])
                value_loss = 0.5 * jnp.mean(jnp.maximum((value - target) ** 2,
                                                        (value_clipped - target) ** 2))
            else:
                value_loss = 0.5 * jnp.mean((value - target) ** 2)
            ratio = jnp.exp(log_prob - old_log_prob)
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
            policy_loss = -jnp.mean(jnp.minimum(
                ratio * adv, jnp.clip(ratio, 1 - hp["clip_eps"], 1 + hp["clip_eps"]) * adv))
            entropy = jnp.mean(dist.entropy())
            total = policy_loss + hp["vf_coef"] * value_loss - hp["ent_coef"] * entropy
            approx_kl = jnp.mean((ratio - 1) - (log_prob - old_log_prob))
            return total, dict(policy_loss=policy_loss, value_loss=value_loss, entropy=entropy,
                               approx_kl=approx_kl)

        def minibatch_step(train, mb):
            params, opt_state = train
            grads, aux = jax.grad(loss_fn, has_aux=True)(params, mb)
            updates, opt_state = self.optimizer.update(grads, opt_state, params)
            params = optax.apply_updates(params, jax.tree.map(lambda u: -lr * u, updates))
            return (params, opt_state), aux

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
        metrics = jax.tree.map(jnp.mean, aux)
        metrics["return"] = state.last_return
        return state.replace(params=params, opt_state=opt_state, key=key,
                             update_idx=state.update_idx + 1), metrics

    def update(self, state: PPOState, reward_fn=None):
        """One rollout and one learning phase, on `reward_fn(obs, acts, next_obs, terminated)` or,
        when it is None, on the environment's reward."""
        state, batch = self.rollout(state)
        rewards = batch.rews if reward_fn is None else reward_fn(*self.reward_inputs(batch))
        return self.learn(state, batch, rewards)


@struct.dataclass
class NormalizedRewardState:
    """PPO on a learned reward with a running reward normaliser (`make(normalize_reward=True)`)."""

    agent: PPOState
    reward_norm: dict


def make(config: PPOConfig, env, env_params, reward_apply=None,
         normalize_reward: bool = False) -> Algorithm:
    """PPO on the environment's own reward (how experts are trained) or, with `reward_apply`,
    on a learned reward `reward_apply(reward_variables, obs, act, next_obs, terminated)` whose
    variables are the `data` argument (so a new reward never recompiles).

    `normalize_reward` standardises the learned reward by its running mean and variance, as
    imitation's scripts do for every learned reward (`NormalizedRewardNet`); the state is then a
    `NormalizedRewardState`. Learned rewards can be large and far from unit scale (AIRL's g is
    ~-100 per step where the expert never goes), and the critic's gradients then swamp the
    actor's under the shared gradient-norm clip."""
    if normalize_reward and reward_apply is None:
        raise ValueError("normalize_reward: expected a learned reward (reward_apply), got None; "
                         "the environment's own reward is used as it is")
    engine = PPOEngine(config, env, env_params)

    if not normalize_reward:
        def init(key, data=None, hparams=None):
            return engine.init(key, hparams)

        def update(state, data=None):
            if reward_apply is None:
                return engine.update(state)
            return engine.update(state, lambda *inputs: reward_apply(data, *inputs))

        act = engine.act
    else:
        def init(key, data=None, hparams=None):
            return NormalizedRewardState(engine.init(key, hparams), init_reward_norm())

        def update(state: NormalizedRewardState, data):
            agent, batch = engine.rollout(state.agent)
            rewards, reward_norm = normalize_rewards(
                state.reward_norm, reward_apply(data, *engine.reward_inputs(batch)))
            agent, metrics = engine.learn(agent, batch, rewards)
            return NormalizedRewardState(agent, reward_norm), metrics

        def act(state: NormalizedRewardState, key, obs, deterministic: bool = True):
            return engine.act(state.agent, key, obs, deterministic)

    return Algorithm(name="ppo", init=init, update=update, act=act,
                     env_steps_per_update=config.steps_per_update, config=config)
