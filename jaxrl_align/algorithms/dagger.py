"""DAgger (Ross et al. 2011) as imitation's `SimpleDAggerTrainer` computes it, every round in one
compiled `update`.

Each round (one `update`), with β = the schedule's value at this round:
1. `num_envs` fresh episodes are stepped `num_steps` times (auto-reset within the round). At
   every step each environment independently executes the learner's action when a uniform draw
   exceeds β (imitation's `mask = uniform > beta`), the expert's otherwise; the learner's action
   is sampled from its policy (imitation's `policy.predict`, stochastic by default), the
   expert's is the expert policy's deterministic choice;
2. every visited observation enters the aggregated dataset labelled with the expert's action,
   whichever action was executed;
3. BC (`algorithms/bc.py`, its loss and Adam state carried over from round to round) trains for
   `bc_epochs` epochs (imitation's `DEFAULT_N_EPOCHS = 4`) over the whole aggregate.

β schedules: `LinearBetaSchedule(rampdown_rounds)`, β = min(1, max(0, (R − round) / R)) (the
default, R = 15), and `ExponentialBetaSchedule(decay_probability)`, β = p ** round; round 0 is
always all expert.

The aggregate is a preallocated `data.ring_buffer` of (observation, expert action) pairs sized at
`init`: the optional expert demonstrations (imitation's `expert_trajs`, added to round 0) plus
`rounds × num_envs × num_steps`. BC's epochs cover its filled part only (`bc.make(...).update`
with `count`, a traced trip count), so nothing depends on data in shape.

The expert is any `expert(expert_params, key, obs) -> action` for one observation, given to
`make` (static), with its parameters in the data (`DAggerData.expert_params`): a trained PPO
run's parameters (`ppo_expert`) enter as arrays, so a new expert of the same shapes never
recompiles; a controller or any `policy(key, obs)` takes no parameters (`policy_expert`).
`save_ppo_expert` / `load_ppo_expert` keep a PPO run's policy on disk as an expert.

Steps per round: imitation collects at least `max(rollout_round_min_timesteps=500, batch_size)`
steps and 3 whole episodes, finishing every episode in flight. A fixed-shape round instead
steps `num_envs` (default 3, the minimum episodes) environments from fresh episodes for
`num_steps` steps each; by default `num_steps = H · ceil(max(500, batch_size) / (num_envs · H))`
with H the episode length bound, i.e. whole episodes, enough for 500 steps. On fixed-horizon
tasks that is what imitation collects with one environment (seals/CartPole-v0: 3 × 500 steps;
Pendulum-v1: 3 × 200).

Deviations from imitation (deliberate):
- The round's length is fixed: an episode cut short by the end of a round (possible only when
  episodes end early, or with a `num_steps` that is not a multiple of H) is kept in part, where
  imitation finishes it; the round's last steps are labelled all the same.
- Past `rounds` updates (a runner `num_updates` above it) the dataset keeps the latest
  `capacity` pairs (FIFO) where imitation keeps everything.
- The learner's deterministic action can be chosen instead (`learner_deterministic`).
"""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any, Callable

import jax
import jax.numpy as jnp
from flax import serialization, struct

from jaxrl_align.algorithm import Algorithm
from jaxrl_align.algorithms import bc
from jaxrl_align.data import ring_buffer, rollout
from jaxrl_align.data.files import write_atomic
from jaxrl_align.hparams import (as_arrays, check_choice, check_positive, concrete,
                                 config_to_dict, static)
from jaxrl_align.rl import ppo
from jaxrl_align.spaces import space_spec
from jaxrl_align.types import Transitions

BETA_SCHEDULES = ("linear", "exponential")

# expert(expert_params, key, obs) -> action, for one observation.
Expert = Callable[[Any, jax.Array, jax.Array], jax.Array]


@struct.dataclass
class DAggerConfig:
    rounds: int = static(15)
    """rounds in a run (each `update` is one); fixes the dataset's size"""
    beta_schedule: str = static("linear")
    """"linear" (imitation's LinearBetaSchedule, the default) or "exponential"
    (ExponentialBetaSchedule)"""
    rampdown_rounds: int = 15
    """linear schedule: β = min(1, max(0, (rampdown_rounds − round) / rampdown_rounds))"""
    decay_probability: float = 0.5
    """exponential schedule: β = decay_probability ** round, in (0, 1] (1: expert only)"""
    bc_epochs: int = static(4)
    """BC epochs over the aggregate per round (imitation's DEFAULT_N_EPOCHS)"""
    num_envs: int = static(3)
    """environments per round (imitation: at least 3 episodes per round)"""
    min_timesteps: int = static(500)
    """imitation's rollout_round_min_timesteps: the default num_steps collects at least this
    many (and at least bc.batch_size) steps per round"""
    num_steps: int | None = static(None)
    """steps per environment per round; None: whole episodes, enough for min_timesteps"""
    learner_deterministic: bool = static(False)
    """execute the learner's mode instead of a sample (imitation samples)"""
    bc: bc.BCConfig = dataclasses.field(default_factory=bc.BCConfig)
    """the learner and its training (bc.epochs is unused: bc_epochs per round)"""

    def __post_init__(self):
        for name in ("rounds", "bc_epochs", "num_envs", "min_timesteps"):
            check_positive(name, getattr(self, name))
        if self.num_steps is not None:
            check_positive("num_steps", self.num_steps)
        check_choice("beta_schedule", self.beta_schedule, BETA_SCHEDULES)
        check_positive("rampdown_rounds", self.rampdown_rounds)
        if concrete(self.decay_probability) and not 0 < self.decay_probability <= 1:
            raise ValueError(f"decay_probability: expected a value in (0, 1], got "
                             f"{self.decay_probability}")

    @property
    def num_updates(self) -> int:
        return self.rounds

    def steps_per_env(self, episode_steps: int) -> int:
        """Steps per environment per round (see the module docstring)."""
        if self.num_steps is not None:
            return self.num_steps
        wanted = max(self.min_timesteps, self.bc.batch_size)
        return episode_steps * math.ceil(wanted / (self.num_envs * episode_steps))


def beta(hparams: DAggerConfig, schedule: str, round_num: jax.Array) -> jax.Array:
    """β at `round_num` (from 0): the probability that an environment executes the expert's
    action at a step of that round."""
    if schedule == "linear":
        ramp = jnp.asarray(hparams.rampdown_rounds, jnp.float32)
        return jnp.clip((ramp - round_num) / ramp, 0.0, 1.0)
    return jnp.asarray(hparams.decay_probability, jnp.float32) ** round_num


@struct.dataclass
class Labelled:
    """What DAgger aggregates: visited observations and the expert's action at each (not the
    executed one). BC reads `obs` and `acts`."""

    obs: jax.Array
    acts: jax.Array

    def __len__(self) -> int:
        return self.obs.shape[0]


@struct.dataclass
class DAggerData:
    """The `data` argument: the expert's parameters (None for a controller) and optional expert
    demonstrations added to round 0 (imitation's `expert_trajs`), flat `Transitions`."""

    expert_params: Any = None
    demos: Transitions | None = None


@struct.dataclass
class DAggerState:
    bc: bc.BCState  # the learner
    dataset: ring_buffer.RingBuffer  # Labelled pairs of every round so far
    round: jax.Array  # int32: rounds done
    key: jax.Array
    hparams: DAggerConfig
    env_steps: jax.Array  # int32


def policy_expert(policy: Callable[[jax.Array, jax.Array], jax.Array]) -> Expert:
    """An expert without parameters from `policy(key, obs) -> action` (a controller such as
    `envs.controllers.cartpole_controller`); pass `DAggerData(expert_params=None)`."""
    def expert(params, key, obs):
        del params
        return policy(key, obs)
    return expert


def ppo_expert(config: ppo.PPOConfig, env, env_params) -> Expert:
    """The deterministic policy (mode, clipped to the action space) of a PPO run with `config`,
    taking that run's `PPOState.params` as `DAggerData.expert_params`."""
    engine = ppo.PPOEngine(config, env, env_params)

    def expert(params, key, obs):
        del key
        dist, _ = engine.policy(params, obs)
        return engine.spec.clip_action(dist.mode())
    return expert


def save_ppo_expert(path, config: ppo.PPOConfig, env_id: str, params) -> Path:
    """A PPO run's policy parameters (msgpack, no pickle) at `path`, and beside it (`.json`) the
    environment id and the PPO settings that rebuild its network: what `load_ppo_expert` reads."""
    path = Path(path)
    write_atomic(path.with_suffix(".json"), lambda f: f.write(json.dumps(
        {"env_id": env_id, "ppo_config": config_to_dict(config)}, indent=2).encode()))
    return write_atomic(path, lambda f: f.write(serialization.to_bytes(params)))


def load_ppo_expert(path, env, env_params, env_id: str | None = None) -> tuple[Expert, Any]:
    """(expert, expert_params) from a file of `save_ppo_expert`; with `env_id`, the file's
    environment must be that one."""
    path = Path(path)
    record = json.loads(path.with_suffix(".json").read_text())
    if env_id is not None and record["env_id"] != env_id:
        raise ValueError(f"expert: {path} holds a policy for {record['env_id']}, not {env_id}")
    settings = {k: tuple(v) if isinstance(v, list) else v
                for k, v in record["ppo_config"].items()}
    config = ppo.PPOConfig(**settings)
    template = ppo.PPOEngine(config, env, env_params).init(jax.random.PRNGKey(0)).params
    params = serialization.from_bytes(template, path.read_bytes())
    return ppo_expert(config, env, env_params), params


def make(config: DAggerConfig, env, env_params, expert: Expert) -> Algorithm:
    spec = space_spec(env, env_params)
    learner = bc.make(config.bc, env, env_params)
    env = rollout.EpisodeReturn(env)
    num_envs = config.num_envs
    num_steps = config.steps_per_env(rollout.max_episode_steps(env_params))
    per_round = num_envs * num_steps
    if per_round < config.bc.batch_size:
        raise ValueError(f"num_steps: num_envs*num_steps={per_round} steps per round, fewer "
                         f"than bc.batch_size={config.bc.batch_size}")
    act_shape, obs_shape = tuple(spec.act_shape), tuple(spec.obs_shape)

    def check_expert(data: DAggerData):
        obs = jax.ShapeDtypeStruct(obs_shape, spec.obs_dtype)
        out = jax.eval_shape(expert, data.expert_params, jax.random.PRNGKey(0), obs)
        if out.shape != act_shape:
            raise ValueError(f"expert: expected an action of shape {act_shape} for one "
                             f"observation, got {out.shape}")
        if spec.discrete_actions != jnp.issubdtype(out.dtype, jnp.integer):
            raise ValueError(f"expert: expected {'integer' if spec.discrete_actions else 'float'} "
                             f"actions, got {out.dtype}")
        return out.dtype

    def init(key, data: DAggerData, hparams: DAggerConfig | None = None) -> DAggerState:
        hparams = as_arrays(config) if hparams is None else hparams
        data = DAggerData() if data is None else data
        act_dtype = check_expert(data)
        example = Labelled(jnp.zeros((1,) + obs_shape, spec.obs_dtype),
                           jnp.zeros((1,) + act_shape, act_dtype))
        demos = data.demos
        num_demos = 0 if demos is None else len(demos)
        if demos is not None and (demos.obs.shape[1:] != obs_shape
                                  or demos.acts.shape[1:] != act_shape):
            raise ValueError(f"demos: expected observations [N, *{obs_shape}] and actions "
                             f"[N, *{act_shape}], got {demos.obs.shape} and {demos.acts.shape}")
        dataset = ring_buffer.init(example, num_demos + config.rounds * per_round)
        if demos is not None:
            dataset = ring_buffer.add(dataset, Labelled(demos.obs, demos.acts))
        bc_key, key = jax.random.split(key)
        return DAggerState(bc=learner.init(bc_key, dataset.items, hparams.bc), dataset=dataset,
                           round=jnp.zeros((), jnp.int32), key=key, hparams=hparams,
                           env_steps=jnp.zeros((), jnp.int32))

    def collect(state: DAggerState, data: DAggerData, key):
        """One round's episodes: (Labelled [T·E], executed-by-expert flags [T, E], episode ends
        [T, E], their returns [T, E])."""
        b = beta(state.hparams, config.beta_schedule, state.round)
        reset_key, run_key = jax.random.split(key)
        obs, env_state = rollout.reset(env, env_params, reset_key, num_envs)

        def act(key, obs):
            expert_key, learner_key, mask_key = jax.random.split(key, 3)
            labels = jax.vmap(expert, in_axes=(None, 0, 0))(
                data.expert_params, jax.random.split(expert_key, num_envs), obs)
            own = learner.act(state.bc, learner_key, obs, config.learner_deterministic)
            use_learner = jax.random.uniform(mask_key, (num_envs,)) > b
            executed = jnp.where(use_learner.reshape((num_envs,) + (1,) * len(act_shape)),
                                 own.astype(labels.dtype), labels)
            return executed, (labels, use_learner)

        def record(step, extras, info):
            labels, use_learner = extras
            return step.obs, labels, ~use_learner, step.terminated | step.truncated, \
                info["episode_return"]

        _, (obs, labels, by_expert, done, returns) = rollout.unroll(
            env, env_params, act, obs, env_state, run_key, num_steps, record)
        flat = lambda x: x.reshape((per_round,) + x.shape[2:])
        return Labelled(flat(obs), flat(labels)), b, by_expert, done, returns

    def update(state: DAggerState, data: DAggerData):
        data = DAggerData() if data is None else data
        key, collect_key = jax.random.split(state.key)
        pairs, b, by_expert, done, returns = collect(state, data, collect_key)
        dataset = ring_buffer.add(state.dataset, pairs)

        def epoch(learner_state, _):
            return learner.update(learner_state, dataset.items, count=dataset.size)

        learner_state, bc_metrics = jax.lax.scan(epoch, state.bc, None, length=config.bc_epochs)
        episodes = jnp.sum(done)
        metrics = {
            **jax.tree.map(jnp.mean, bc_metrics),
            "beta": b,
            "expert_fraction": jnp.mean(by_expert.astype(jnp.float32)),
            # Episodes that ended this round; 0 when none did (a num_steps below the horizon).
            "round_return": jnp.sum(jnp.where(done, returns, 0.0)) / jnp.maximum(episodes, 1),
            "round_episodes": episodes.astype(jnp.float32),
            "dataset_size": dataset.size.astype(jnp.float32),
        }
        return state.replace(bc=learner_state, dataset=dataset, round=state.round + 1, key=key,
                             env_steps=state.env_steps + per_round), metrics

    def act(state: DAggerState, key: jax.Array, obs: jax.Array, deterministic: bool = True):
        return learner.act(state.bc, key, obs, deterministic)

    return Algorithm(name="dagger", config=config, init=init, update=update, act=act)
