"""The adversarial imitation loop shared by GAIL and AIRL (imitation's `AdversarialTrainer`).

Each round (one `update`):
1. the generator (PPO) collects one rollout;
2. its transitions enter a FIFO replay of recent generator samples;
3. `n_disc_updates_per_round` discriminator steps, each on `demo_batch_size` demonstration and
   `demo_batch_size` generator transitions (labels 1 and 0), binary cross-entropy on logits;
4. one PPO learning phase on that rollout, with the generator reward of the updated
   discriminator.

GAIL and AIRL differ only in the discriminator's logit and the generator's reward, which they
pass in as a `Discriminator`. Deviation from imitation (deliberate): the discriminator's
`terminated` input and AIRL's shaping see true terminations only, never time-limit truncations.
Batches are drawn uniformly with replacement from both the demonstrations and the replay
(imitation draws demonstrations by shuffled epochs; with replacement avoids a data-dependent
reshuffle under `vmap`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxrl_align.algorithm import Algorithm
from jaxrl_align.algorithms import ppo
from jaxrl_align.hparams import hparams_from_config
from jaxrl_align.rewards import init_reward_norm, normalize_rewards
from jaxrl_align.types import Transitions


@dataclass(frozen=True)
class AdversarialConfig:
    demo_batch_size: int = 1024
    """demonstration (and generator) transitions per discriminator step (imitation's scripts: 1024)"""
    n_disc_updates_per_round: int = 2
    """discriminator steps per round (imitation's API default 2; its scripts use 4, which lets
    the discriminator win on seals/CartPole-v0: 3 of 4 GAIL seeds stall below 200)"""
    disc_lr: float = 1e-3
    """discriminator Adam learning rate (imitation: torch Adam default 1e-3)"""
    gen_replay_buffer_capacity: int | None = None
    """generator transitions kept for the discriminator; None: one PPO rollout (imitation's default)"""
    normalize_reward: bool = False
    """running-normalise the generator reward before PPO sees it (imitation's NormalizedRewardNet)"""
    ppo: ppo.PPOConfig = field(default_factory=ppo.PPOConfig)
    """the generator's PPO settings; its total_timesteps sets the number of rounds"""

    @property
    def replay_capacity(self) -> int:
        return self.gen_replay_buffer_capacity or self.ppo.steps_per_update


SWEEPABLE = ("disc_lr",)


class Discriminator(NamedTuple):
    """What distinguishes GAIL from AIRL. Both take the discriminator's variables, the generator's
    policy parameters and a transition batch (obs, acts, next_obs, terminated)."""

    module: nn.Module
    # logit(variables, policy_params, *batch, mutable) -> (logits [B], updated variables)
    logit: Callable
    # generator_reward(variables, policy_params, *batch) -> [B]
    generator_reward: Callable


@struct.dataclass
class AdversarialState:
    gen: ppo.PPOState
    disc_vars: dict
    disc_opt_state: optax.OptState
    replay: Transitions  # ring buffer of `replay_capacity` generator transitions
    replay_size: jax.Array
    replay_next: jax.Array
    reward_norm: dict  # running statistics of the generator reward (used if normalize_reward)
    key: jax.Array
    hparams: dict


def make(config: AdversarialConfig, env, env_params, make_discriminator, name: str) -> Algorithm:
    engine = ppo.PPOEngine(config.ppo, env, env_params)
    spec = engine.spec
    disc: Discriminator = make_discriminator(engine)
    optimizer = optax.scale_by_adam()
    rollout_size = config.ppo.steps_per_update
    capacity = config.replay_capacity
    if capacity % rollout_size:
        raise ValueError(f"gen_replay_buffer_capacity: expected a multiple of one rollout "
                         f"({rollout_size} transitions), got {capacity}")
    batch_size = config.demo_batch_size

    def init(key, demos: Transitions, hparams: dict | None = None) -> AdversarialState:
        if len(demos) == 0:
            raise ValueError("demonstrations: expected at least one transition, got none")
        hparams = dict(hparams or {})
        disc_hparams = {k: hparams.pop(k) for k in SWEEPABLE if k in hparams}
        gen_key, disc_key, key = jax.random.split(key, 3)
        gen = engine.init(gen_key, hparams)
        example = (demos.obs[:1], demos.acts[:1], demos.next_obs[:1], demos.terminated[:1])
        disc_vars = disc.module.init(disc_key, *example)
        replay = jax.tree.map(lambda x: jnp.zeros((capacity,) + x.shape[1:], x.dtype),
                              Transitions(demos.obs, demos.acts, demos.next_obs, demos.terminated))
        return AdversarialState(
            gen=gen, disc_vars=disc_vars, disc_opt_state=optimizer.init(disc_vars["params"]),
            replay=replay, replay_size=jnp.zeros((), jnp.int32),
            replay_next=jnp.zeros((), jnp.int32),
            reward_norm=init_reward_norm(),
            key=key, hparams=hparams_from_config(config, SWEEPABLE, disc_hparams))

    def add_to_replay(state: AdversarialState, batch: ppo.RolloutBatch) -> AdversarialState:
        obs, acts, next_obs, terminated = engine.reward_inputs(batch)
        flat = jax.tree.map(lambda x: x.reshape((rollout_size,) + x.shape[2:]),
                            Transitions(obs, acts, next_obs, terminated))
        replay = jax.tree.map(
            lambda buf, new: jax.lax.dynamic_update_slice_in_dim(buf, new, state.replay_next, 0),
            state.replay, flat)
        return state.replace(replay=replay,
                             replay_size=jnp.minimum(state.replay_size + rollout_size, capacity),
                             replay_next=(state.replay_next + rollout_size) % capacity)

    def disc_loss(params, other_vars, policy_params, inputs, labels):
        logits, new_vars = disc.logit({"params": params, **other_vars}, policy_params, *inputs)
        loss = jnp.mean(optax.sigmoid_binary_cross_entropy(logits, labels))
        return loss, (logits, new_vars)

    def disc_step(carry, key, demos, policy_params):
        disc_vars, opt_state, replay, replay_size, lr = carry
        demo_key, gen_key = jax.random.split(key)
        demo_idx = jax.random.randint(demo_key, (batch_size,), 0, len(demos))
        gen_idx = jax.random.randint(gen_key, (batch_size,), 0, replay_size)
        pick = lambda t, idx: (t.obs[idx], t.acts[idx], t.next_obs[idx], t.terminated[idx])
        inputs = jax.tree.map(lambda d, g: jnp.concatenate([d, g]), pick(demos, demo_idx),
                              pick(replay, gen_idx))
        labels = jnp.concatenate([jnp.ones(batch_size), jnp.zeros(batch_size)])
        params, other = disc_vars["params"], {k: v for k, v in disc_vars.items() if k != "params"}
        (loss, (logits, new_vars)), grads = jax.value_and_grad(disc_loss, has_aux=True)(
            params, other, policy_params, inputs, labels)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, jax.tree.map(lambda u: -lr * u, updates))
        expert_high = logits > 0
        metrics = dict(disc_loss=loss,
                       disc_acc=jnp.mean(expert_high == (labels > 0.5)),
                       disc_acc_expert=jnp.mean(expert_high[:batch_size]),
                       disc_acc_gen=jnp.mean(~expert_high[batch_size:]))
        return (dict(new_vars, params=params), opt_state, replay, replay_size, lr), metrics

    def update(state: AdversarialState, demos: Transitions):
        gen, batch = engine.rollout(state.gen)
        state = add_to_replay(state.replace(gen=gen), batch)
        key, disc_key = jax.random.split(state.key)
        (disc_vars, opt_state, *_), disc_metrics = jax.lax.scan(
            lambda c, k: disc_step(c, k, demos, gen.params),
            (state.disc_vars, state.disc_opt_state, state.replay, state.replay_size,
             state.hparams["disc_lr"]),
            jax.random.split(disc_key, config.n_disc_updates_per_round))
        rewards = disc.generator_reward(disc_vars, gen.params, *engine.reward_inputs(batch))
        norm_vars = state.reward_norm
        if config.normalize_reward:
            rewards, norm_vars = normalize_rewards(norm_vars, rewards)
        gen, gen_metrics = engine.learn(gen, batch, rewards)
        metrics = {**jax.tree.map(jnp.mean, disc_metrics), **gen_metrics,
                   "learned_reward": jnp.mean(rewards)}
        return state.replace(gen=gen, disc_vars=disc_vars, disc_opt_state=opt_state,
                             reward_norm=norm_vars, key=key), metrics

    def act(state: AdversarialState, key, obs, deterministic: bool = True):
        return engine.act(state.gen, key, obs, deterministic)

    return Algorithm(name=name, init=init, update=update, act=act,
                     env_steps_per_update=rollout_size, config=config)
