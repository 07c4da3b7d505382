"""The off-policy loop that DQN, SAC and SQIL share, as SB3's `OffPolicyAlgorithm` runs it:
act in the environment with an exploring policy, store every transition in a replay buffer,
take gradient steps on batches drawn from it.

    learner = dqn.learner(config, env, env_params)        # a `Learner`: pure functions
    algo = off_policy.make("dqn", learner, config, env, env_params)
    state = algo.init(key, data)       # networks, empty buffer, then the random-action steps
    state, metrics = algo.update(state, data)   # train_freq steps on num_envs envs, then
                                                # gradient_steps gradient steps

A learner supplies its networks and its losses (`Learner`); the loop owns the environments
(wrapped in `rollout.EpisodeReturn`, stepped by `rollout.unroll`), the ring buffer
(`data.ring_buffer`, flat `Transitions`) and the step counts. What a gradient step learns from
is the `sampler`'s batch: `replay_batch` (the default) draws `batch_size` stored transitions
with the environment's rewards; SQIL swaps in its own (half learner transitions at reward 0,
half demonstrations at reward 1), with the demonstrations as the algorithm's `data`.

The config is the learner's own flat config (as SB3's keyword arguments); the loop reads these
fields of it (`FIELDS`; checked by `check_config`): `buffer_size`, `learning_starts`,
`batch_size`, `train_freq`, `gradient_steps`, `num_envs`, `total_timesteps` (static), `gamma`,
`tau` (traced leaves, read from `state.hparams` by the learner).

SB3 semantics kept: the first `learning_starts` steps take uniformly random actions from the
action space (here all inside `init`, so `update` has no data-dependent branch under `vmap`);
`train_freq` counts vectorised steps, so one update adds `train_freq * num_envs` transitions;
a run ends once `total_timesteps` environment steps (the random ones included) are taken.
Deviations (deliberate): terminated and truncated stay apart, the stored `next_obs` is the true
final observation, and only `terminated` stops a bootstrap (SB3's `handle_timeout_termination`,
its default, does the same through `infos["TimeLimit.truncated"]`); the exploring policy sees
the step count at the start of its update (SB3 updates ε every step; they differ by at most
`train_freq * num_envs` steps of the schedule); the buffer holds
`min(buffer_size, steps of a run of config.num_updates updates)` transitions, the same data
as `buffer_size` unless a run is made longer than its `total_timesteps`.
"""
from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from flax import struct

from jaxrl_align.algorithm import Algorithm
from jaxrl_align.data import ring_buffer, rollout
from jaxrl_align.hparams import as_arrays, check_positive, concrete
from jaxrl_align.spaces import space_spec
from jaxrl_align.types import Transitions

FIELDS = ("buffer_size", "learning_starts", "batch_size", "train_freq", "gradient_steps",
          "num_envs", "total_timesteps", "gamma", "tau")

LearnerState = Any  # any pytree: parameters, target parameters, optimiser states, counters


class Learner(NamedTuple):
    """What DQN or SAC supplies to the loop; every function is pure. `hp` is the config-shaped
    pytree of (possibly traced) hyperparameters (`state.hparams`); `env_steps` an int32 scalar.

    init(key, hp) -> ls
        the learner's state: networks, target networks, optimiser states.
    explore(ls, hp, key, obs [E, ...], env_steps) -> actions [E, ...]
        the exploring actions the environments execute after `learning_starts` (DQN:
        ε-greedy with ε at `env_steps`; SAC: a sample of the squashed Gaussian), in the
        environment's action space (what the buffer stores as `acts`).
    train_step(ls, hp, key, batch, env_steps) -> (ls, metrics: dict of scalars)
        one gradient step on `batch`, a flat `Transitions` [batch_size] whose `rews` are the
        rewards to learn from (the environment's or SQIL's 0/1). Bootstrap from `next_obs`
        unless `terminated`; `truncated` (a time limit) must not stop the bootstrap.
        Targets updated per gradient step (SAC's Polyak step) belong here.
    act(ls, hp, key, obs, deterministic, env_steps) -> action
        the policy for ONE observation, as evaluation runs it (deterministic: greedy / mean).
    after_collect(ls, hp, env_steps_before, env_steps_after) -> ls   (optional)
        called once per update after the environment steps, before the gradient steps: for
        targets on an environment-step clock (DQN's `target_update_interval`, as SB3's
        `_on_step`). None: nothing.
    """

    init: Callable
    explore: Callable
    train_step: Callable
    act: Callable
    after_collect: Callable | None = None


# sampler(buffer, data, key, batch_size) -> Transitions [batch_size] with `rews` set.
Sampler = Callable[[ring_buffer.RingBuffer, Any, jax.Array, int], Transitions]


def replay_batch(buffer: ring_buffer.RingBuffer, data, key: jax.Array,
                 batch_size: int) -> Transitions:
    """Plain RL: `batch_size` stored transitions (uniform, with replacement) at the
    environment's rewards."""
    del data
    return ring_buffer.sample(buffer, key, batch_size)


@struct.dataclass
class OffPolicyState:
    learner: LearnerState
    buffer: ring_buffer.RingBuffer  # flat Transitions with the environment's rewards
    env_state: Any  # `rollout.EpisodeReturn` state of the E environments
    obs: jax.Array  # [E, ...]
    key: jax.Array
    hparams: Any
    env_steps: jax.Array  # int32, the random-action steps of `init` included
    last_return: jax.Array  # mean return of the training episodes that ended most recently


def check_config(config) -> None:
    """The loop's fields of a learner's config (call it from the config's `__post_init__`)."""
    for name in ("buffer_size", "batch_size", "train_freq", "gradient_steps", "num_envs",
                 "total_timesteps"):
        check_positive(name, getattr(config, name))
    if not config.learning_starts >= 0:
        raise ValueError(f"learning_starts: expected an integer >= 0, got "
                         f"{config.learning_starts}")
    if concrete(config.gamma) and not 0 <= config.gamma <= 1:
        raise ValueError(f"gamma: expected a discount in [0, 1], got {config.gamma}")
    if concrete(config.tau) and not 0 < config.tau <= 1:
        raise ValueError(f"tau: expected a target update coefficient in (0, 1], got "
                         f"{config.tau}")


def random_steps(config) -> int:
    """Vectorised random-action steps `init` takes: learning_starts rounded up to num_envs."""
    return -(-config.learning_starts // config.num_envs)


def steps_per_update(config) -> int:
    return config.train_freq * config.num_envs


def num_updates(config) -> int:
    """Updates until `total_timesteps` environment steps (the random ones included)."""
    remaining = config.total_timesteps - random_steps(config) * config.num_envs
    return max(1, math.ceil(remaining / steps_per_update(config)))


def buffer_capacity(config) -> int:
    total = random_steps(config) * config.num_envs + num_updates(config) * steps_per_update(config)
    return min(config.buffer_size, total)


def polyak(target, online, tau):
    """τ·online + (1 − τ)·target, leaf by leaf (τ = 1: a hard copy)."""
    return jax.tree.map(lambda t, o: tau * o + (1 - tau) * t, target, online)


def updates_crossed(before, after, period: int):
    """How many multiples of `period` lie in (before, after]: how many times a clock that fires
    every `period` ticks fired between the two counts."""
    return after // period - before // period


def linear_schedule(initial, final, fraction, progress):
    """SB3's `get_linear_fn`: `initial` → `final` linearly over the first `fraction` of the
    run (progress = env steps / total_timesteps), then `final`."""
    t = jnp.clip(progress / jnp.maximum(fraction, 1e-12), 0.0, 1.0)
    return initial + t * (final - initial)


def _flat(steps: Transitions) -> Transitions:
    return jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), steps)


def _record(step, extras, info):
    del extras
    return step, (step.terminated | step.truncated, info["episode_return"])


def _last_return(done, returns, previous):
    count = jnp.sum(done)
    return jnp.where(count > 0, jnp.sum(jnp.where(done, returns, 0.0)) / jnp.maximum(count, 1),
                     previous)


def make(name: str, learner: Learner, config, env, env_params,
         sampler: Sampler = replay_batch) -> Algorithm:
    """The loop around `learner` as an `Algorithm` (`data` goes to `sampler` only)."""
    check_config(config)
    spec = space_spec(env, env_params)
    env = rollout.EpisodeReturn(env)
    action_space = env.action_space(env_params)
    num_envs, train_freq = config.num_envs, config.train_freq
    example = Transitions(
        obs=jnp.zeros((1,) + spec.obs_shape, spec.obs_dtype),
        acts=jnp.zeros((1,) + spec.act_shape, spec.act_dtype),
        next_obs=jnp.zeros((1,) + spec.obs_shape, spec.obs_dtype),
        terminated=jnp.zeros((1,), bool), rews=jnp.zeros((1,), jnp.float32),
        truncated=jnp.zeros((1,), bool))
    capacity = buffer_capacity(config)

    def random_act(key, obs):
        acts = jax.vmap(action_space.sample)(jax.random.split(key, num_envs))
        return acts.astype(spec.act_dtype).reshape((num_envs,) + spec.act_shape), ()

    def init(key, data=None, hparams=None) -> OffPolicyState:
        hparams = as_arrays(config) if hparams is None else hparams
        learner_key, env_key, key = jax.random.split(key, 3)
        obs, env_state = rollout.reset(env, env_params, env_key, num_envs)
        buffer = ring_buffer.init(example, capacity)
        last_return = jnp.zeros(())
        if random_steps(config):
            (obs, env_state, key), (steps, (done, returns)) = rollout.unroll(
                env, env_params, random_act, obs, env_state, key, random_steps(config), _record)
            buffer = ring_buffer.add(buffer, _flat(steps))
            last_return = _last_return(done, returns, last_return)
        return OffPolicyState(
            learner=learner.init(learner_key, hparams), buffer=buffer, env_state=env_state,
            obs=obs, key=key, hparams=hparams,
            env_steps=jnp.asarray(random_steps(config) * num_envs, jnp.int32),
            last_return=last_return)

    def update(state: OffPolicyState, data=None):
        hp, before = state.hparams, state.env_steps

        def explore(key, obs):
            return learner.explore(state.learner, hp, key, obs, before), ()

        (obs, env_state, key), (steps, (done, returns)) = rollout.unroll(
            env, env_params, explore, state.obs, state.env_state, state.key, train_freq, _record)
        buffer = ring_buffer.add(state.buffer, _flat(steps))
        after = before + steps_per_update(config)
        ls = state.learner
        if learner.after_collect is not None:
            ls = learner.after_collect(ls, hp, before, after)

        def gradient_step(ls, key):
            sample_key, step_key = jax.random.split(key)
            batch = sampler(buffer, data, sample_key, config.batch_size)
            return learner.train_step(ls, hp, step_key, batch, after)

        key, steps_key = jax.random.split(key)
        ls, metrics = jax.lax.scan(gradient_step, ls,
                                   jax.random.split(steps_key, config.gradient_steps))
        last_return = _last_return(done, returns, state.last_return)
        state = state.replace(learner=ls, buffer=buffer, env_state=env_state, obs=obs, key=key,
                              env_steps=after, last_return=last_return)
        return state, {**jax.tree.map(jnp.mean, metrics), "return": last_return}

    def act(state: OffPolicyState, key, obs, deterministic: bool = True):
        return learner.act(state.learner, state.hparams, key, obs, deterministic,
                           state.env_steps)

    return Algorithm(name=name, config=config, init=init, update=update, act=act)
