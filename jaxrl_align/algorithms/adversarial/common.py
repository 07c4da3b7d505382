"""The adversarial imitation loop shared by GAIL and AIRL (imitation's `AdversarialTrainer`).

Each round (one `update`):
1. the generator (PPO) collects one rollout;
2. its transitions enter a FIFO replay of recent generator samples (`data.ring_buffer`);
3. `n_disc_updates_per_round` discriminator steps, each on `demo_batch_size` demonstration and
   `demo_batch_size` generator transitions (labels 1 and 0), binary cross-entropy on logits;
4. one PPO learning phase on that rollout, with the generator reward of the updated
   discriminator (running-normalised with `normalize_reward`).

GAIL and AIRL differ only in the discriminator's logit and the generator's reward, which they
pass in as a `Discriminator`. Deviation from imitation (deliberate): the discriminator's
`terminated` input and AIRL's shaping see true terminations only, never time-limit truncations.
Batches are drawn uniformly with replacement from both the demonstrations and the replay
(imitation draws demonstrations by shuffled epochs; with replacement avoids a data-dependent
reshuffle under `vmap`).
"""
from __future__ import annotations

import dataclasses
from typing import Callable, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxrl_align.algorithm import Algorithm
from jaxrl_align.data import ring_buffer
from jaxrl_align.hparams import as_arrays, check_positive, concrete, static
from jaxrl_align.nn import optim
from jaxrl_align.rl import ppo
from jaxrl_align.types import Transitions


@struct.dataclass
class AdversarialConfig:
    demo_batch_size: int = static(1024)
    """demonstration (and generator) transitions per discriminator step (imitation's scripts: 1024)"""
    n_disc_updates_per_round: int = static(2)
    """discriminator steps per round (imitation's API default 2; its scripts use 4)"""
    disc_lr: float = 1e-3
    """discriminator Adam learning rate (imitation: torch Adam default 1e-3)"""
    gen_replay_buffer_capacity: int | None = static(None)
    """generator transitions kept for the discriminator: at most one rollout (its last steps) or
    a multiple of it; None: one PPO rollout (imitation's default)"""
    normalize_reward: bool = static(False)
    """running-normalise the generator reward before PPO sees it (imitation's NormalizedRewardNet)"""
    ppo: ppo.PPOConfig = dataclasses.field(default_factory=ppo.PPOConfig)
    """the generator's PPO settings; its total_timesteps sets the number of rounds"""

    def __post_init__(self):
        check_positive("demo_batch_size", self.demo_batch_size)
        check_positive("n_disc_updates_per_round", self.n_disc_updates_per_round)
        if self.gen_replay_buffer_capacity is not None:
            check_positive("gen_replay_buffer_capacity", self.gen_replay_buffer_capacity)
            # Up to one rollout keeps the rollout's last `capacity` transitions (imitation's
            # truncating store); beyond it whole rollouts, each round overwriting the oldest.
            capacity, rollout = self.gen_replay_buffer_capacity, self.ppo.steps_per_update
            if capacity > rollout and capacity % rollout:
                raise ValueError(f"gen_replay_buffer_capacity: expected at most one rollout or "
                                 f"a multiple of it ({rollout} transitions), got {capacity}")
        if concrete(self.disc_lr) and not self.disc_lr >= 0:
            raise ValueError(f"disc_lr: expected a learning rate >= 0, got {self.disc_lr}")

    @property
    def replay_capacity(self) -> int:
        return self.gen_replay_buffer_capacity or self.ppo.steps_per_update

    @property
    def num_updates(self) -> int:
        return self.ppo.num_updates


class Discriminator(NamedTuple):
    """What distinguishes GAIL from AIRL. Both take the discriminator's variables, the generator's
    policy parameters and a transition batch (obs, acts, next_obs, terminated)."""

    module: nn.Module
    # logit(variables, policy_params, *batch) -> (logits [B], variables with updated statistics)
    logit: Callable
    # generator_reward(variables, policy_params, *batch) -> [B]
    generator_reward: Callable


@struct.dataclass
class AdversarialState:
    gen: ppo.PPOState
    disc_vars: dict
    disc_opt_state: optax.OptState
    replay: ring_buffer.RingBuffer  # the latest `replay_capacity` generator transitions
    key: jax.Array
    hparams: AdversarialConfig

    @property
    def env_steps(self) -> jax.Array:
        return self.gen.env_steps


def make(config: AdversarialConfig, env, env_params, make_discriminator, name: str) -> Algorithm:
    engine = ppo.PPOEngine(config.ppo, env, env_params, normalize_reward=config.normalize_reward)
    disc: Discriminator = make_discriminator(engine)
    rollout_size = config.ppo.steps_per_update
    capacity = config.replay_capacity
    batch_size = config.demo_batch_size

    def init(key, demos: Transitions, hparams: AdversarialConfig | None = None):
        hparams = as_arrays(config) if hparams is None else hparams
        if len(demos) == 0:
            raise ValueError("demonstrations: expected at least one transition, got none")
        gen_key, disc_key, key = jax.random.split(key, 3)
        gen = engine.init(gen_key, hparams.ppo)
        example = Transitions(demos.obs, demos.acts, demos.next_obs, demos.terminated)
        disc_vars = disc.module.init(disc_key, *jax.tree.map(lambda x: x[:1], example)
                                     .reward_inputs)
        return AdversarialState(
            gen=gen, disc_vars=disc_vars,
            disc_opt_state=optim.adam(hparams.disc_lr).init(disc_vars["params"]),
            replay=ring_buffer.init(example, capacity), key=key, hparams=hparams)

    def disc_loss(params, other_vars, policy_params, inputs, labels):
        logits, new_vars = disc.logit({"params": params, **other_vars}, policy_params, *inputs)
        loss = jnp.mean(optax.sigmoid_binary_cross_entropy(logits, labels))
        return loss, (logits, new_vars)

    def disc_step(carry, key, demos, replay, policy_params, optimizer):
        disc_vars, opt_state = carry
        demo_key, gen_key = jax.random.split(key)
        demo_idx = jax.random.randint(demo_key, (batch_size,), 0, len(demos))
        generated = ring_buffer.sample(replay, gen_key, batch_size)
        expert = jax.tree.map(lambda x: x[demo_idx], demos)
        inputs = jax.tree.map(lambda d, g: jnp.concatenate([d, g]), expert.reward_inputs,
                              generated.reward_inputs)
        labels = jnp.concatenate([jnp.ones(batch_size), jnp.zeros(batch_size)])
        params, other = disc_vars["params"], {k: v for k, v in disc_vars.items() if k != "params"}
        (loss, (logits, new_vars)), grads = jax.value_and_grad(disc_loss, has_aux=True)(
            params, other, policy_params, inputs, labels)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        expert_high = logits > 0
        metrics = dict(disc_loss=loss,
                       disc_acc=jnp.mean(expert_high == (labels > 0.5)),
                       disc_acc_expert=jnp.mean(expert_high[:batch_size]),
                       disc_acc_gen=jnp.mean(~expert_high[batch_size:]))
        return (dict(new_vars, params=params), opt_state), metrics

    def update(state: AdversarialState, demos: Transitions):
        gen, batch = engine.rollout(state.gen)
        steps = batch.transitions
        generated = jax.tree.map(lambda x: x.reshape((rollout_size,) + x.shape[2:]),
                                 Transitions(steps.obs, steps.acts, steps.next_obs,
                                             steps.terminated))
        replay = ring_buffer.add(state.replay, generated)
        key, disc_key = jax.random.split(state.key)
        optimizer = optim.adam(state.hparams.disc_lr)
        (disc_vars, opt_state), disc_metrics = jax.lax.scan(
            lambda c, k: disc_step(c, k, demos, replay, gen.params, optimizer),
            (state.disc_vars, state.disc_opt_state),
            jax.random.split(disc_key, config.n_disc_updates_per_round))
        rewards = disc.generator_reward(disc_vars, gen.params, *steps.reward_inputs)
        gen, gen_metrics = engine.learn(gen, batch, rewards)
        metrics = {**jax.tree.map(jnp.mean, disc_metrics), **gen_metrics}
        return state.replace(gen=gen, disc_vars=disc_vars, disc_opt_state=opt_state,
                             replay=replay, key=key), metrics

    def act(state: AdversarialState, key, obs, deterministic: bool = True):
        return engine.act(state.gen, key, obs, deterministic)

    return Algorithm(name=name, config=config, init=init, update=update, act=act)
