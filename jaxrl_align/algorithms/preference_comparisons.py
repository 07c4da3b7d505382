"""Deep RL from human preferences (Christiano et al. 2017), as imitation's `PreferenceComparisons`,
with the whole loop in one compiled `update`.

`init` (imitation's first iteration): the untrained agent collects one PPO rollout; the initial
`int(total_comparisons · initial_comparison_frac)` pairs of fragments are cut from it, labelled
and stored; the reward model trains for `initial_reward_steps` steps (imitation's
`initial_epoch_multiplier`).

Each round (one `update`):
1. the agent (PPO) collects one rollout;
2. query trajectories: that rollout and, with `exploration_frac > 0`, a separate ε-greedy rollout
   of the same policy (each step a uniformly random action with probability ε), optionally from
   fresh episodes (`query_reset`); `exploration_frac` of the candidate pairs come from it;
3. fragments are cut from them (`fragments.random_pairs`), optionally actively selected by
   ensemble disagreement, and the round's scheduled number of them is labelled (synthetic
   Bradley-Terry gatherer) and appended to the preallocated comparison buffer;
4. the reward model takes `reward_steps_per_round` AdamW steps on the buffer;
5. PPO learns on the rollout of step 1 with the updated learned reward (the ensemble mean,
   running-normalised when `normalize_reward`).

Rounds are PPO updates, so the query schedule spreads the comparisons over `ppo.num_updates`
rounds (imitation: `num_iterations`, default 5, with a long agent phase in between). The number
queried per round is a traced count `≤ max_pairs_per_round`: shapes never change.

Held-out accuracy: each round also cuts `heldout_pairs_per_round` pairs from the query
trajectories and labels them noiselessly by their true returns (not counted as comparisons, never
trained on); those whose true returns differ enter a ring of the latest `heldout_size`, and
`heldout_acc` is the reward model's accuracy on that ring (`heldout_size` metric: how many it
holds). Once the agent balances for whole fragments its new pairs tie, and the ring keeps the
last decisive ones. Each round scores a random contiguous block of `heldout_eval_pairs` of the
ring (all of it when that is at least `heldout_size`): scoring all 256 pairs every round cost 14%
of a round's time (8 seeds, CartPole), and a chunk's mean of `heldout_acc` averages thousands
of scored pairs all the same.

`make_offline` learns from a fixed dataset of labelled pairs instead (`preference_data`): the
reward model trains on it in `init` (a random `heldout_frac` of the pairs held out; `heldout_acc`
scores the held-out pairs whose label is not a 0.5 tie), then every update is a PPO round on the
learned reward.

Agent environment steps: `init` takes one PPO rollout (`init_env_steps`) besides the
`env_steps_per_update` of every round.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from jaxrl_align import fragments as frag
from jaxrl_align import preference_gatherer as gatherer
from jaxrl_align.algorithm import Algorithm
from jaxrl_align.algorithms import ppo
from jaxrl_align.hparams import hparams_from_config
from jaxrl_align.preference_data import PreferenceDataset
from jaxrl_align.preference_model import (ComparisonBuffer, PreferenceModel,
                                          PreferenceModelConfig, add_pairs, empty_buffer)
from jaxrl_align.query_schedule import query_schedule
from jaxrl_align.rewards import init_reward_norm, normalize_rewards


@dataclass(frozen=True)
class PreferenceComparisonsConfig:
    """Defaults: the settings tuned here on seals/CartPole-v0 (2000 comparisons, < 1M agent
    steps). They differ from imitation's defaults (in parentheses): fragments of 25 steps (100);
    16 reward-model steps in every PPO round (a few long training phases); a 3-member
    bootstrapped, state-only ensemble with active selection (one (s, a) network, random
    fragments); half of the query pairs from a separate ε-greedy rollout of the agent's policy
    (none); soft labels, the Bradley-Terry probability itself (a sampled 0/1 label)."""

    total_comparisons: int = 2000
    """synthetic comparisons over the whole run (imitation's scripts: 5000)"""
    initial_comparison_frac: float = 0.1
    """share of the comparisons queried in `init`, before any agent training (imitation: 0.1)"""
    query_schedule: str = "hyperbolic"
    """constant, hyperbolic or inverse_quadratic (imitation: hyperbolic)"""
    comparison_queue_size: int | None = None
    """comparisons kept (FIFO); None keeps all of them"""
    fragment_length: int = 25
    """steps per fragment (imitation: 100); at most the rollout length"""
    initial_reward_steps: int = 1000
    """reward-model steps in `init` on the initial comparisons"""
    reward_steps_per_round: int = 16
    """reward-model steps in every round"""
    active_selection: bool = True
    """keep the pairs the ensemble disagrees on most (needs model.ensemble_size > 1)"""
    active_selection_oversampling: int = 4
    """candidate pairs per queried pair under active selection (imitation: 2)"""
    uncertainty_on: str = "logit"
    """disagreement measure for active selection: logit, probability or label"""
    exploration_frac: float = 0.5
    """share of query pairs cut from a separate ε-greedy rollout of the current policy (the rest
    from the agent's own rollout); 0: no such rollout (imitation's exploration_frac, default 0)"""
    exploration_eps: float = 0.1
    """probability of a uniformly random action in each step of the query rollout"""
    query_num_envs: int = 8
    """environments of the ε-greedy query rollout (only with exploration_frac > 0)"""
    query_num_steps: int = 64
    """steps per environment of the ε-greedy query rollout, each round"""
    query_reset: bool = False
    """start every round's query rollout from fresh episodes (reset). Off by default: the query
    environments then run on through whole episodes, so queries also cover late states (on
    CartPole, a cart drifting out of bounds after a hundred balanced steps); with resets and
    64-step query rollouts they never did, and seeds learned to balance while drifting off"""
    normalize_reward: bool = True
    """running-normalise the learned reward before PPO sees it (imitation's NormalizedRewardNet)"""
    heldout_size: int = 256
    """held-out labelled pairs (ring) on which `heldout_acc` is measured"""
    heldout_pairs_per_round: int = 16
    """new held-out pairs per round"""
    heldout_eval_pairs: int = 32
    """held-out pairs scored each round (a random contiguous block of the ring); at least
    heldout_size scores the whole ring every round"""
    heldout_frac: float = 0.1
    """offline mode: share of the dataset held out from reward training"""
    gatherer: gatherer.GathererConfig = field(
        default_factory=lambda: gatherer.GathererConfig(sample=False))
    """synthetic preferences (Bradley-Terry on true fragment returns); here the probability
    itself is the label (imitation samples a 0/1 label from it): once the agent balances, most
    pairs tie, and a sampled label turns each tie into a coin flip the reward model must fit"""
    model: PreferenceModelConfig = field(
        default_factory=lambda: PreferenceModelConfig(ensemble_size=3, use_action=False))
    """reward model, preference model and its trainer (here: 3 bootstrapped members, state only)"""
    ppo: ppo.PPOConfig = field(default_factory=lambda: ppo.PPOConfig(total_timesteps=796_672))
    """the agent's PPO settings; its total_timesteps sets the number of rounds (389 rounds of
    2048 agent steps plus 512 query steps, plus init's rollout: 997,888 agent steps)"""

    @property
    def reward_lr(self) -> float:
        return self.model.lr

    @property
    def reward_weight_decay(self) -> float:
        return self.model.weight_decay


# Pendulum-v1 (gymnax), issue 7's budget of 1,000 comparisons: the CartPole-tuned defaults with
# PPO's Pendulum settings (`ppo.PENDULUM`: rewards scaled by 0.1, unclipped value loss, γ 0.99,
# 10 epochs × 8 minibatches) for 97 rounds (250,368 agent steps with the query rollouts).
# Measured, 8 seeds in one call, 20 final episodes each: seeds 0-7, 8-15 and 16-23 all 8 of 8
# ≥ −200 (−192 to −109). Twice the rounds gave no better policies (8 of 8, −159 to −118) at
# twice the run time; with the earlier agent (γ 0.9, clipped values, unscaled rewards, 1M agent
# steps) 3 of 8.
PENDULUM = PreferenceComparisonsConfig(
    total_comparisons=1000, ppo=dataclasses.replace(ppo.PENDULUM, total_timesteps=200_000))

SWEEPABLE = ("reward_lr", "reward_weight_decay")


class Steps(NamedTuple):
    """Time-major [T, E, ...] transitions that fragments are cut from (executed actions)."""

    obs: jax.Array
    acts: jax.Array
    next_obs: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    rews: jax.Array


@struct.dataclass
class PreferenceState:
    agent: ppo.PPOState
    reward_vars: dict
    reward_opt_state: optax.OptState
    buffer: ComparisonBuffer  # labelled comparisons (online) / bootstrap weights (offline)
    heldout: ComparisonBuffer | jax.Array  # held-out pairs (online) / held-out mask (offline)
    query_obs: jax.Array  # ε-greedy query environments (empty unless exploring)
    query_env_state: object
    reward_norm: dict
    round: jax.Array
    key: jax.Array
    hparams: dict
    heldout_acc: jax.Array  # offline: fixed after init


def _split_hparams(hparams):
    hparams = dict(hparams or {})
    own = {k: hparams.pop(k) for k in SWEEPABLE if k in hparams}
    return own, hparams


class _Loop:
    """What online and offline modes share: the agent, the reward model, exploration."""

    def __init__(self, config: PreferenceComparisonsConfig, env, env_params):
        self.config = config
        self.engine = ppo.PPOEngine(config.ppo, env, env_params)
        self.spec = self.engine.spec
        self.env, self.env_params = env, env_params
        self.model = PreferenceModel(config.model, self.spec)
        if config.fragment_length > config.ppo.num_steps:
            raise ValueError(f"fragment_length: {config.fragment_length} is longer than the "
                             f"agent's rollout (ppo.num_steps={config.ppo.num_steps})")
        if config.exploration_frac and config.fragment_length > config.query_num_steps:
            raise ValueError(f"fragment_length: {config.fragment_length} is longer than the query "
                             f"rollout (query_num_steps={config.query_num_steps})")
        for name in ("exploration_eps", "exploration_frac"):
            if not 0.0 <= getattr(config, name) <= 1.0:
                raise ValueError(f"{name}: expected a value in [0, 1], got "
                                 f"{getattr(config, name)}")
        if config.heldout_eval_pairs < 1:
            raise ValueError(f"heldout_eval_pairs: expected at least 1, got "
                             f"{config.heldout_eval_pairs}")
        if config.active_selection_oversampling < 1:
            raise ValueError("active_selection_oversampling: expected at least 1, got "
                             f"{config.active_selection_oversampling}")
        frag.uncertainty(jnp.zeros((2, 1)), config.uncertainty_on)  # validates the name

    @property
    def exploring(self) -> bool:
        return self.config.exploration_frac > 0

    def steps_of(self, batch: ppo.RolloutBatch) -> Steps:
        obs, acts, next_obs, terminated = self.engine.reward_inputs(batch)
        return Steps(obs, acts, next_obs, terminated, batch.truncated, batch.rews)

    def random_action(self, key, num):
        spec = self.spec
        if spec.discrete_actions:
            return jax.random.randint(key, (num,), 0, spec.num_actions)
        low = jnp.asarray(spec.act_low).reshape(spec.act_shape)
        high = jnp.asarray(spec.act_high).reshape(spec.act_shape)
        return jax.random.uniform(key, (num,) + spec.act_shape, minval=low, maxval=high)

    def explore(self, policy_params, obs, env_state, key):
        """ε-greedy rollout of the current policy on the query environments -> (Steps, obs,
        env_state)."""
        cfg, spec = self.config, self.spec
        num_envs = cfg.query_num_envs
        if cfg.query_reset:
            key, reset_key = jax.random.split(key)
            obs, env_state = self.init_query_envs(reset_key)

        def step(carry, key):
            obs, env_state = carry
            act_key, rand_key, coin_key, env_key = jax.random.split(key, 4)
            dist, _ = self.engine.policy(policy_params, obs)
            acts = spec.clip_action(dist.sample(act_key))
            explore = jax.random.bernoulli(coin_key, cfg.exploration_eps, (num_envs,))
            explore = explore.reshape((num_envs,) + (1,) * (acts.ndim - 1))
            acts = jnp.where(explore, self.random_action(rand_key, num_envs), acts)
            next_obs, env_state, rews, terminated, truncated, info = jax.vmap(
                self.env.step, in_axes=(0, 0, 0, None))(
                    jax.random.split(env_key, num_envs), env_state, acts, self.env_params)
            record = Steps(obs, acts, info["final_observation"], terminated, truncated, rews)
            return (next_obs, env_state), record

        (obs, env_state), steps = jax.lax.scan(step, (obs, env_state),
                                               jax.random.split(key, cfg.query_num_steps))
        return steps, obs, env_state

    def init_query_envs(self, key):
        if not self.exploring:
            return jnp.zeros((0,)), ()
        obs, env_state = jax.vmap(self.env.reset, in_axes=(0, None))(
            jax.random.split(key, self.config.query_num_envs), self.env_params)
        return obs, env_state

    def agent_rewards(self, state: PreferenceState, batch: ppo.RolloutBatch):
        rewards = self.model.agent_reward(state.reward_vars, *self.engine.reward_inputs(batch))
        norm_vars = state.reward_norm
        if self.config.normalize_reward:
            rewards, norm_vars = normalize_rewards(norm_vars, rewards)
        return rewards, norm_vars

    def act(self, state: PreferenceState, key, obs, deterministic: bool = True):
        return self.engine.act(state.agent, key, obs, deterministic)


def make(config: PreferenceComparisonsConfig, env, env_params) -> Algorithm:
    """Online preference comparisons with synthetic preferences; `data` is unused (None)."""
    if config.active_selection and config.model.ensemble_size < 2:
        raise ValueError("active_selection: needs a reward ensemble "
                         f"(model.ensemble_size >= 2, got {config.model.ensemble_size})")
    loop = _Loop(config, env, env_params)
    engine, model, cfg = loop.engine, loop.model, config
    num_rounds = cfg.ppo.num_updates
    initial, per_round = query_schedule(cfg.query_schedule, cfg.total_comparisons, num_rounds,
                                        cfg.initial_comparison_frac)
    max_pairs = max(int(per_round.max()), 1)
    num_candidates = max_pairs * (cfg.active_selection_oversampling if cfg.active_selection else 1)
    capacity = cfg.comparison_queue_size or cfg.total_comparisons
    schedule = np.asarray(per_round, np.int32)
    length, discount = cfg.fragment_length, cfg.gatherer.discount
    members = cfg.model.ensemble_size
    env_steps_per_update = cfg.ppo.steps_per_update + (
        cfg.query_num_envs * cfg.query_num_steps if loop.exploring else 0)

    def cut_pairs(key, sources, num):
        """`num` random pairs: `exploration_frac` of them from the query rollout, the rest from
        the agent's, in random order."""
        agent_steps, query_steps = sources
        if query_steps is None:
            return frag.random_pairs(key, agent_steps, num, length, discount)
        from_query = int(round(num * cfg.exploration_frac))
        agent_key, query_key, perm_key = jax.random.split(key, 3)
        parts = [frag.random_pairs(k, src, n, length, discount) for k, src, n in
                 ((agent_key, agent_steps, num - from_query), (query_key, query_steps, from_query))
                 if n > 0]
        both = jax.tree.map(lambda *xs: jnp.concatenate(xs), *parts)
        return frag.take_pairs(both, jax.random.permutation(perm_key, num))

    def label_heldout(heldout, key, sources, num):
        """Cut `num` pairs, label them noiselessly and keep those whose true returns differ."""
        pairs, returns = cut_pairs(key, sources, num)
        prefs = gatherer.preference_probability(returns, temperature=0.0)  # noiseless truth
        decisive = prefs != 0.5
        order = jnp.argsort(~decisive, stable=True)  # decisive pairs first
        pairs, prefs = frag.take_pairs((pairs, prefs), order)
        return add_pairs(heldout, key, pairs, prefs, decisive.sum(), bootstrap=False)

    def heldout_accuracy(reward_vars, heldout: ComparisonBuffer, key):
        if cfg.heldout_eval_pairs >= heldout.capacity:
            filled = jnp.arange(heldout.capacity) < heldout.size
            _, acc = model.evaluate(reward_vars, heldout.frags, heldout.prefs, filled)
            return acc, heldout.size
        filled_size = jnp.maximum(heldout.size, 1)
        start = jax.random.randint(key, (), 0, filled_size)
        idx = (start + jnp.arange(cfg.heldout_eval_pairs)) % filled_size
        scored = jnp.arange(cfg.heldout_eval_pairs) < heldout.size  # no pair counted twice
        frags = jax.tree.map(lambda x: x[idx], heldout.frags)
        _, acc = model.evaluate(reward_vars, frags, heldout.prefs[idx], scored)
        return acc, heldout.size

    def init(key, data=None, hparams=None) -> PreferenceState:
        del data
        own, agent_hparams = _split_hparams(hparams)
        (agent_key, model_key, frag_key, label_key, boot_key, held_key, query_key, train_key,
         key) = jax.random.split(key, 9)
        agent = engine.init(agent_key, agent_hparams)
        agent, batch = engine.rollout(agent)  # the untrained agent's experience
        steps = loop.steps_of(batch)
        num_initial = max(initial, 1)
        pairs, returns = frag.random_pairs(frag_key, steps, num_initial, length, discount)
        prefs = gatherer.gather(label_key, returns, cfg.gatherer)
        reward_vars, reward_opt_state = model.init(model_key, pairs)
        example = jax.tree.map(lambda x: x[:1], pairs)
        buffer = add_pairs(empty_buffer(example, capacity, members), boot_key, pairs, prefs,
                           initial, cfg.model.bootstrap)
        heldout = empty_buffer(example, cfg.heldout_size, 1)
        heldout = label_heldout(heldout, held_key, (steps, None), cfg.heldout_size)
        hp = hparams_from_config(cfg, SWEEPABLE, own)
        if initial > 0:
            reward_vars, reward_opt_state, _ = model.train(
                reward_vars, reward_opt_state, buffer, train_key, cfg.initial_reward_steps,
                hp["reward_lr"], hp["reward_weight_decay"])
        query_obs, query_env_state = loop.init_query_envs(query_key)
        return PreferenceState(
            agent=agent, reward_vars=reward_vars, reward_opt_state=reward_opt_state,
            buffer=buffer, heldout=heldout, query_obs=query_obs, query_env_state=query_env_state,
            reward_norm=init_reward_norm(),
            round=jnp.zeros((), jnp.int32), key=key, hparams=hp,
            heldout_acc=jnp.zeros(()))

    def update(state: PreferenceState, data=None):
        del data
        key, explore_key, frag_key, label_key, boot_key, held_key, train_key = jax.random.split(
            state.key, 7)
        # 1. The agent acts (on the current learned reward: it is trained on it below).
        agent, batch = engine.rollout(state.agent)
        steps = loop.steps_of(batch)
        query_obs, query_env_state = state.query_obs, state.query_env_state
        # 2. Query trajectories.
        sources = (steps, None)
        if loop.exploring:
            query_steps, query_obs, query_env_state = loop.explore(
                agent.params, query_obs, query_env_state, explore_key)
            sources = (steps, query_steps)
        # 3. Fragments, (active) selection, labels, buffer.
        pairs, returns = cut_pairs(frag_key, sources, num_candidates)
        if cfg.active_selection:
            diff, _ = model.return_diff(state.reward_vars, pairs)
            idx = frag.select_most_uncertain(diff, max_pairs, cfg.uncertainty_on,
                                             cfg.model.noise_prob, cfg.model.threshold)
            pairs, returns = frag.take_pairs((pairs, returns), idx)
        count = jnp.asarray(schedule)[jnp.minimum(state.round, num_rounds - 1)]
        prefs = gatherer.gather(label_key, returns, cfg.gatherer)
        buffer = add_pairs(state.buffer, boot_key, pairs, prefs, count, cfg.model.bootstrap)
        heldout = label_heldout(state.heldout, held_key, sources, cfg.heldout_pairs_per_round)
        # 4. The reward model learns.
        hp = state.hparams
        reward_vars, reward_opt_state, reward_metrics = model.train(
            state.reward_vars, state.reward_opt_state, buffer, train_key,
            cfg.reward_steps_per_round, hp["reward_lr"], hp["reward_weight_decay"])
        heldout_acc, heldout_size = heldout_accuracy(reward_vars, heldout,
                                                     jax.random.fold_in(held_key, 1))
        state = state.replace(reward_vars=reward_vars)
        # 5. The agent learns on the updated learned reward.
        rewards, norm_vars = loop.agent_rewards(state, batch)
        agent, agent_metrics = engine.learn(agent, batch, rewards)
        metrics = {**agent_metrics, **reward_metrics,
                   "heldout_acc": heldout_acc, "heldout_size": heldout_size.astype(jnp.float32),
                   "comparisons": buffer.size.astype(jnp.float32),
                   "label_mean": jnp.sum(jnp.where(jnp.arange(max_pairs) < count, prefs, 0.0))
                   / jnp.maximum(count, 1),
                   "learned_reward": jnp.mean(rewards)}
        return state.replace(
            agent=agent, reward_opt_state=reward_opt_state, buffer=buffer, heldout=heldout,
            query_obs=query_obs, query_env_state=query_env_state, reward_norm=norm_vars,
            round=state.round + 1, key=key, heldout_acc=heldout_acc), metrics

    algo = Algorithm(name="preference_comparisons", init=init, update=update, act=loop.act,
                     env_steps_per_update=env_steps_per_update, config=config)
    return algo


def init_env_steps(config: PreferenceComparisonsConfig) -> int:
    """Agent environment steps `init` takes (one PPO rollout), besides the rounds'."""
    return config.ppo.steps_per_update


def comparisons_queried(config: PreferenceComparisonsConfig) -> int:
    """Comparisons an online run of `ppo.num_updates` rounds queries in all."""
    initial, per_round = query_schedule(config.query_schedule, config.total_comparisons,
                                        config.ppo.num_updates, config.initial_comparison_frac)
    return int(initial + per_round.sum())


def learned_reward(config: PreferenceComparisonsConfig, env, env_params):
    """The agent's reward `r(reward_vars, obs, acts, next_obs, terminated)` (ensemble mean,
    before the agent-side normalisation)."""
    model = PreferenceModel(config.model, ppo.PPOEngine(config.ppo, env, env_params).spec)
    return model.agent_reward


def make_offline(config: PreferenceComparisonsConfig, env, env_params) -> Algorithm:
    """Learn a reward from a fixed `PreferenceDataset` (the `data` argument) in `init`, then
    train the agent on it; every update is one PPO round (plus `reward_steps_per_round` more
    reward steps on the training pairs)."""
    loop = _Loop(config, env, env_params)
    engine, model, cfg = loop.engine, loop.model, config
    members = cfg.model.ensemble_size
    if not 0.0 <= cfg.heldout_frac < 1.0:
        raise ValueError(f"heldout_frac: expected a value in [0, 1), got {cfg.heldout_frac}")

    def view(data: PreferenceDataset, weights) -> ComparisonBuffer:
        n = data.prefs.shape[0]
        return ComparisonBuffer(frags=data.frags, prefs=data.prefs, weights=weights,
                                size=jnp.asarray(n, jnp.int32), next=jnp.zeros((), jnp.int32))

    def init(key, data: PreferenceDataset, hparams=None) -> PreferenceState:
        own, agent_hparams = _split_hparams(hparams)
        agent_key, model_key, split_key, boot_key, train_key, key = jax.random.split(key, 6)
        n = data.prefs.shape[0]
        agent = engine.init(agent_key, agent_hparams)
        reward_vars, reward_opt_state = model.init(model_key, data.frags)
        heldout = jax.random.uniform(split_key, (n,)) < cfg.heldout_frac
        scored = heldout & (data.prefs != 0.5)  # a tie has no right answer to score
        if cfg.model.bootstrap and members > 1:
            counts = jax.random.poisson(boot_key, 1.0, (members, n)).astype(jnp.float32)
        else:
            counts = jnp.ones((members, n), jnp.float32)
        weights = counts * (~heldout)[None, :]
        hp = hparams_from_config(cfg, SWEEPABLE, own)
        reward_vars, reward_opt_state, _ = model.train(
            reward_vars, reward_opt_state, view(data, weights), train_key,
            cfg.initial_reward_steps, hp["reward_lr"], hp["reward_weight_decay"])
        _, acc = model.evaluate(reward_vars, data.frags, data.prefs, scored)
        query_obs, query_env_state = jnp.zeros((0,)), ()
        empty = ComparisonBuffer(frags=(), prefs=jnp.zeros(0), weights=weights,
                                 size=jnp.zeros((), jnp.int32), next=jnp.zeros((), jnp.int32))
        return PreferenceState(
            agent=agent, reward_vars=reward_vars, reward_opt_state=reward_opt_state,
            buffer=empty, heldout=scored, query_obs=query_obs,
            query_env_state=query_env_state,
            reward_norm=init_reward_norm(),
            round=jnp.zeros((), jnp.int32), key=key, hparams=hp, heldout_acc=acc)

    def update(state: PreferenceState, data: PreferenceDataset):
        key, train_key = jax.random.split(state.key)
        reward_metrics = {}
        reward_vars, reward_opt_state = state.reward_vars, state.reward_opt_state
        if cfg.reward_steps_per_round:
            hp = state.hparams
            reward_vars, reward_opt_state, reward_metrics = model.train(
                reward_vars, reward_opt_state, view(data, state.buffer.weights), train_key,
                cfg.reward_steps_per_round, hp["reward_lr"], hp["reward_weight_decay"])
        heldout_acc = state.heldout_acc
        if cfg.reward_steps_per_round:
            _, heldout_acc = model.evaluate(reward_vars, data.frags, data.prefs, state.heldout)
        state = state.replace(reward_vars=reward_vars, reward_opt_state=reward_opt_state,
                              heldout_acc=heldout_acc)
        agent, batch = engine.rollout(state.agent)
        rewards, norm_vars = loop.agent_rewards(state, batch)
        agent, agent_metrics = engine.learn(agent, batch, rewards)
        metrics = {**agent_metrics, **reward_metrics, "heldout_acc": state.heldout_acc,
                   "learned_reward": jnp.mean(rewards)}
        return state.replace(agent=agent, reward_norm=norm_vars, round=state.round + 1,
                             key=key), metrics

    return Algorithm(name="preference_comparisons_offline", init=init, update=update,
                     act=loop.act, env_steps_per_update=cfg.ppo.steps_per_update, config=config)
