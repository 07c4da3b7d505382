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
3. fragments are cut from them (`preferences.fragments`), optionally actively selected by
   ensemble disagreement (`preferences.active_selection`), and the round's scheduled number of
   them is labelled (`preferences.gatherer`) and appended to the comparison buffer;
4. the reward model takes `reward_steps_per_round` AdamW steps on the buffer;
5. PPO learns on the rollout of step 1 with the updated learned reward (the ensemble mean,
   running-normalised when `normalize_reward`).

Rounds are PPO updates, so the query schedule spreads the comparisons over `ppo.num_updates`
rounds (imitation: `num_iterations`, default 5, with a long agent phase in between). The number
queried per round is a traced count `≤ max_pairs_per_round`: shapes never change.

Held-out accuracy: each round also cuts `heldout_pairs_per_round` pairs from the query
trajectories and labels them noiselessly by their true returns (not counted as comparisons, never
trained on); those whose true returns differ enter a ring of the latest `heldout_size`, and
`heldout_acc` is the reward model's accuracy on a random contiguous block of
`heldout_eval_pairs` of that ring (`heldout_size` metric: how many it holds).

`make_offline` learns from a fixed dataset of labelled pairs instead (`data.preference_dataset`):
the reward model trains on it in `init` (a random `heldout_frac` of the pairs held out;
`heldout_acc` scores the held-out pairs whose label is not a 0.5 tie), then every update is a
PPO round on the learned reward.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from jaxrl_align.algorithm import Algorithm
from jaxrl_align.data import ring_buffer, rollout
from jaxrl_align.data.preference_dataset import PreferenceDataset
from jaxrl_align.hparams import as_arrays, check_choice, check_positive, static
from jaxrl_align.preferences import fragments as frag
from jaxrl_align.preferences import gatherer
from jaxrl_align.preferences.active_selection import UNCERTAINTY, select_most_uncertain
from jaxrl_align.preferences.model import (Comparisons, PreferenceModel, PreferenceModelConfig,
                                           add_pairs, empty_buffer)
from jaxrl_align.preferences.schedule import SCHEDULES, query_schedule
from jaxrl_align.rl import ppo


@struct.dataclass
class PreferenceComparisonsConfig:
    """Defaults: the settings tuned here on seals/CartPole-v0 (2000 comparisons, < 1M agent
    steps). They differ from imitation's defaults (in parentheses): fragments of 25 steps (100);
    16 reward-model steps in every PPO round (a few long training phases); a 3-member
    bootstrapped, state-only ensemble with active selection (one (s, a) network, random
    fragments); half of the query pairs from a separate ε-greedy rollout of the agent's policy
    (none); soft labels, the Bradley-Terry probability itself (a sampled 0/1 label). The traced
    hyperparameters are the reward model's (`model.lr`, `model.weight_decay`) and the agent's
    (`ppo.*`)."""

    total_comparisons: int = static(2000)
    """synthetic comparisons over the whole run (imitation's scripts: 5000)"""
    initial_comparison_frac: float = static(0.1)
    """share of the comparisons queried in `init`, before any agent training (imitation: 0.1)"""
    query_schedule: str = static("hyperbolic")
    """constant, hyperbolic or inverse_quadratic (imitation: hyperbolic)"""
    comparison_queue_size: int | None = static(None)
    """comparisons kept (FIFO); None keeps all of them"""
    fragment_length: int = static(25)
    """steps per fragment (imitation: 100); at most the rollout length"""
    initial_reward_steps: int = static(1000)
    """reward-model steps in `init` on the initial comparisons"""
    reward_steps_per_round: int = static(16)
    """reward-model steps in every round"""
    active_selection: bool = static(True)
    """keep the pairs the ensemble disagrees on most (needs model.ensemble_size > 1)"""
    active_selection_oversampling: int = static(4)
    """candidate pairs per queried pair under active selection (imitation: 2)"""
    uncertainty_on: str = static("logit")
    """disagreement measure for active selection: logit, probability or label"""
    exploration_frac: float = static(0.5)
    """share of query pairs cut from a separate ε-greedy rollout of the current policy (the rest
    from the agent's own rollout); 0: no such rollout (imitation's exploration_frac, default 0)"""
    exploration_eps: float = static(0.1)
    """probability of a uniformly random action in each step of the query rollout"""
    query_num_envs: int = static(8)
    """environments of the ε-greedy query rollout (only with exploration_frac > 0)"""
    query_num_steps: int = static(64)
    """steps per environment of the ε-greedy query rollout, each round"""
    query_reset: bool = static(False)
    """start every round's query rollout from fresh episodes (reset). Off by default: the query
    environments then run on through whole episodes, so queries also cover late states (on
    CartPole, a cart drifting out of bounds after a hundred balanced steps); with resets and
    64-step query rollouts they never did, and seeds learned to balance while drifting off"""
    normalize_reward: bool = static(True)
    """running-normalise the learned reward before PPO sees it (imitation's NormalizedRewardNet)"""
    heldout_size: int = static(256)
    """held-out labelled pairs (ring) on which `heldout_acc` is measured"""
    heldout_pairs_per_round: int = static(16)
    """new held-out pairs per round"""
    heldout_eval_pairs: int = static(32)
    """held-out pairs scored each round (a random contiguous block of the ring); at least
    heldout_size scores the whole ring every round"""
    heldout_frac: float = static(0.1)
    """offline mode: share of the dataset held out from reward training"""
    gatherer: gatherer.GathererConfig = dataclasses.field(
        default_factory=lambda: gatherer.GathererConfig(sample=False))
    """synthetic preferences (Bradley-Terry on true fragment returns); here the probability
    itself is the label (imitation samples a 0/1 label from it): once the agent balances, most
    pairs tie, and a sampled label turns each tie into a coin flip the reward model must fit"""
    model: PreferenceModelConfig = dataclasses.field(
        default_factory=lambda: PreferenceModelConfig(ensemble_size=3, use_action=False))
    """reward model, preference model and its trainer (here: 3 bootstrapped members, state only)"""
    ppo: ppo.PPOConfig = dataclasses.field(
        default_factory=lambda: ppo.PPOConfig(total_timesteps=796_672))
    """the agent's PPO settings; its total_timesteps sets the number of rounds (389 rounds of
    2048 agent steps plus 512 query steps, plus init's rollout: 997,888 agent steps)"""

    def __post_init__(self):
        for name in ("total_comparisons", "fragment_length", "active_selection_oversampling",
                     "query_num_envs", "query_num_steps", "heldout_size",
                     "heldout_pairs_per_round", "heldout_eval_pairs"):
            check_positive(name, getattr(self, name))
        if self.comparison_queue_size is not None:
            check_positive("comparison_queue_size", self.comparison_queue_size)
        check_choice("query_schedule", self.query_schedule, SCHEDULES)
        check_choice("uncertainty_on", self.uncertainty_on, UNCERTAINTY)
        for name in ("exploration_eps", "exploration_frac", "initial_comparison_frac"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name}: expected a value in [0, 1], got {getattr(self, name)}")
        if not 0.0 <= self.heldout_frac < 1.0:
            raise ValueError(f"heldout_frac: expected a value in [0, 1), got {self.heldout_frac}")
        if self.fragment_length > self.ppo.num_steps:
            raise ValueError(f"fragment_length: {self.fragment_length} is longer than the "
                             f"agent's rollout (ppo.num_steps={self.ppo.num_steps})")
        if self.exploring and self.fragment_length > self.query_num_steps:
            raise ValueError(f"fragment_length: {self.fragment_length} is longer than the query "
                             f"rollout (query_num_steps={self.query_num_steps})")

    @property
    def exploring(self) -> bool:
        return self.exploration_frac > 0

    @property
    def num_updates(self) -> int:
        return self.ppo.num_updates


@struct.dataclass
class PreferenceState:
    agent: ppo.PPOState
    reward_vars: dict
    reward_opt_state: optax.OptState
    buffer: ring_buffer.RingBuffer  # labelled `Comparisons`
    heldout: ring_buffer.RingBuffer  # held-out `Comparisons`, labelled by the true returns
    query_obs: jax.Array | None  # ε-greedy query environments (None unless exploring)
    query_env_state: object
    query_env_steps: jax.Array  # int32: steps of the query environments
    round: jax.Array
    key: jax.Array
    hparams: PreferenceComparisonsConfig
    heldout_acc: jax.Array

    @property
    def env_steps(self) -> jax.Array:
        return self.agent.env_steps + self.query_env_steps


@struct.dataclass
class OfflinePreferenceState:
    agent: ppo.PPOState
    reward_vars: dict
    reward_opt_state: optax.OptState
    weights: jax.Array  # [N, K] bootstrap counts per training pair and member (0: held out)
    heldout: jax.Array  # [N] bool: held-out pairs that are scored (ties excluded)
    round: jax.Array
    key: jax.Array
    hparams: PreferenceComparisonsConfig
    heldout_acc: jax.Array  # fixed after init unless reward_steps_per_round > 0

    @property
    def env_steps(self) -> jax.Array:
        return self.agent.env_steps


class _Loop:
    """What online and offline modes share: the agent, the reward model, exploration."""

    def __init__(self, config: PreferenceComparisonsConfig, env, env_params):
        self.config = config
        self.engine = ppo.PPOEngine(config.ppo, env, env_params,
                                    normalize_reward=config.normalize_reward)
        self.spec = self.engine.spec
        self.env, self.env_params = env, env_params
        self.model = PreferenceModel(config.model, self.spec)

    def random_action(self, key, num):
        spec = self.spec
        if spec.discrete_actions:
            return jax.random.randint(key, (num,), 0, spec.num_actions)
        low = jnp.asarray(spec.act_low).reshape(spec.act_shape)
        high = jnp.asarray(spec.act_high).reshape(spec.act_shape)
        return jax.random.uniform(key, (num,) + spec.act_shape, minval=low, maxval=high)

    def init_query_envs(self, key):
        if not self.config.exploring:
            return None, None
        return rollout.reset(self.env, self.env_params, key, self.config.query_num_envs)

    def explore(self, policy_params, obs, env_state, key):
        """ε-greedy rollout of the current policy on the query environments -> (steps [T, E],
        obs, env_state)."""
        cfg, spec = self.config, self.spec
        num_envs = cfg.query_num_envs
        if cfg.query_reset:
            key, reset_key = jax.random.split(key)
            obs, env_state = self.init_query_envs(reset_key)

        def act(key, obs):
            sample_key, random_key, coin_key = jax.random.split(key, 3)
            dist, _ = self.engine.policy(policy_params, obs)
            acts = spec.clip_action(dist.sample(sample_key))
            explore = jax.random.bernoulli(coin_key, cfg.exploration_eps, (num_envs,))
            explore = explore.reshape((num_envs,) + (1,) * (acts.ndim - 1))
            return jnp.where(explore, self.random_action(random_key, num_envs), acts), ()

        (obs, env_state, _), (steps, _) = rollout.unroll(
            self.env, self.env_params, act, obs, env_state, key, cfg.query_num_steps)
        return steps, obs, env_state

    def learn(self, agent, batch: ppo.RolloutBatch, reward_vars):
        """The agent's learning phase on the learned reward (the ensemble mean)."""
        rewards = self.model.agent_reward(reward_vars, *batch.transitions.reward_inputs)
        return self.engine.learn(agent, batch, rewards)

    def act(self, state, key, obs, deterministic: bool = True):
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
    query_steps = cfg.query_num_envs * cfg.query_num_steps if cfg.exploring else 0

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

    def heldout_accuracy(reward_vars, heldout: ring_buffer.RingBuffer, key):
        items = heldout.items
        if cfg.heldout_eval_pairs >= heldout.capacity:
            filled = jnp.arange(heldout.capacity) < heldout.size
            _, acc = model.evaluate(reward_vars, items.frags, items.prefs, filled)
            return acc, heldout.size
        filled_size = jnp.maximum(heldout.size, 1)
        start = jax.random.randint(key, (), 0, filled_size)
        idx = (start + jnp.arange(cfg.heldout_eval_pairs)) % filled_size
        scored = jnp.arange(cfg.heldout_eval_pairs) < heldout.size  # no pair counted twice
        frags = jax.tree.map(lambda x: x[idx], items.frags)
        _, acc = model.evaluate(reward_vars, frags, items.prefs[idx], scored)
        return acc, heldout.size

    def init(key, data=None, hparams: PreferenceComparisonsConfig | None = None):
        del data
        hparams = as_arrays(cfg) if hparams is None else hparams
        (agent_key, model_key, frag_key, label_key, boot_key, held_key, query_key, train_key,
         key) = jax.random.split(key, 9)
        agent = engine.init(agent_key, hparams.ppo)
        agent, batch = engine.rollout(agent)  # the untrained agent's experience
        steps = batch.transitions
        num_initial = max(initial, 1)
        pairs, returns = frag.random_pairs(frag_key, steps, num_initial, length, discount)
        prefs = gatherer.gather(label_key, returns, cfg.gatherer)
        reward_vars, reward_opt_state = model.init(model_key, pairs, hparams.model)
        buffer = add_pairs(empty_buffer(pairs, capacity, members), boot_key, pairs, prefs,
                           initial, cfg.model.bootstrap)
        heldout = label_heldout(empty_buffer(pairs, cfg.heldout_size, 1), held_key,
                                (steps, None), cfg.heldout_size)
        if initial > 0:
            reward_vars, reward_opt_state, _ = model.train(
                reward_vars, reward_opt_state, buffer, train_key, cfg.initial_reward_steps,
                hparams.model)
        query_obs, query_env_state = loop.init_query_envs(query_key)
        return PreferenceState(
            agent=agent, reward_vars=reward_vars, reward_opt_state=reward_opt_state,
            buffer=buffer, heldout=heldout, query_obs=query_obs, query_env_state=query_env_state,
            query_env_steps=jnp.zeros((), jnp.int32), round=jnp.zeros((), jnp.int32), key=key,
            hparams=hparams, heldout_acc=jnp.zeros(()))

    def update(state: PreferenceState, data=None):
        del data
        key, explore_key, frag_key, label_key, boot_key, held_key, train_key = jax.random.split(
            state.key, 7)
        # 1. The agent acts (on the current learned reward: it is trained on it below).
        agent, batch = engine.rollout(state.agent)
        query_obs, query_env_state = state.query_obs, state.query_env_state
        # 2. Query trajectories.
        sources = (batch.transitions, None)
        if cfg.exploring:
            query_rollout, query_obs, query_env_state = loop.explore(
                agent.params, query_obs, query_env_state, explore_key)
            sources = (batch.transitions, query_rollout)
        # 3. Fragments, (active) selection, labels, buffer.
        pairs, returns = cut_pairs(frag_key, sources, num_candidates)
        if cfg.active_selection:
            diff, _ = model.return_diff(state.reward_vars, pairs)
            idx = select_most_uncertain(diff, max_pairs, cfg.uncertainty_on,
                                        cfg.model.noise_prob, cfg.model.threshold)
            pairs, returns = frag.take_pairs((pairs, returns), idx)
        count = jnp.asarray(schedule)[jnp.minimum(state.round, num_rounds - 1)]
        prefs = gatherer.gather(label_key, returns, cfg.gatherer)
        buffer = add_pairs(state.buffer, boot_key, pairs, prefs, count, cfg.model.bootstrap)
        heldout = label_heldout(state.heldout, held_key, sources, cfg.heldout_pairs_per_round)
        # 4. The reward model learns.
        reward_vars, reward_opt_state, reward_metrics = model.train(
            state.reward_vars, state.reward_opt_state, buffer, train_key,
            cfg.reward_steps_per_round, state.hparams.model)
        heldout_acc, heldout_size = heldout_accuracy(reward_vars, heldout,
                                                     jax.random.fold_in(held_key, 1))
        # 5. The agent learns on the updated learned reward.
        agent, agent_metrics = loop.learn(agent, batch, reward_vars)
        metrics = {**agent_metrics, **reward_metrics,
                   "heldout_acc": heldout_acc, "heldout_size": heldout_size.astype(jnp.float32),
                   "comparisons": buffer.size.astype(jnp.float32),
                   "label_mean": jnp.sum(jnp.where(jnp.arange(max_pairs) < count, prefs, 0.0))
                   / jnp.maximum(count, 1)}
        return state.replace(
            agent=agent, reward_vars=reward_vars, reward_opt_state=reward_opt_state,
            buffer=buffer, heldout=heldout, query_obs=query_obs, query_env_state=query_env_state,
            query_env_steps=state.query_env_steps + query_steps, round=state.round + 1, key=key,
            heldout_acc=heldout_acc), metrics

    return Algorithm(name="preference_comparisons", config=config, init=init, update=update,
                     act=loop.act)


def comparisons_queried(config: PreferenceComparisonsConfig) -> int:
    """Comparisons an online run of `ppo.num_updates` rounds queries in all."""
    initial, per_round = query_schedule(config.query_schedule, config.total_comparisons,
                                        config.ppo.num_updates, config.initial_comparison_frac)
    return int(initial + per_round.sum())


def learned_reward(config: PreferenceComparisonsConfig, env, env_params):
    """The agent's reward `r(reward_vars, obs, acts, next_obs, terminated)` (ensemble mean,
    before the agent-side normalisation)."""
    from jaxrl_align.spaces import space_spec

    return PreferenceModel(config.model, space_spec(env, env_params)).agent_reward


def make_offline(config: PreferenceComparisonsConfig, env, env_params) -> Algorithm:
    """Learn a reward from a fixed `PreferenceDataset` (the `data` argument) in `init`, then
    train the agent on it; every update is one PPO round (plus `reward_steps_per_round` more
    reward steps on the training pairs)."""
    loop = _Loop(config, env, env_params)
    engine, model, cfg = loop.engine, loop.model, config
    members = cfg.model.ensemble_size

    def training_pairs(data: PreferenceDataset, weights) -> ring_buffer.RingBuffer:
        """The whole dataset as a full comparison buffer, with each pair's bootstrap weights."""
        n = data.prefs.shape[0]
        return ring_buffer.RingBuffer(Comparisons(data.frags, data.prefs, weights),
                                      size=jnp.asarray(n, jnp.int32),
                                      next=jnp.zeros((), jnp.int32))

    def init(key, data: PreferenceDataset, hparams: PreferenceComparisonsConfig | None = None):
        hparams = as_arrays(cfg) if hparams is None else hparams
        agent_key, model_key, split_key, boot_key, train_key, key = jax.random.split(key, 6)
        n = data.prefs.shape[0]
        agent = engine.init(agent_key, hparams.ppo)
        reward_vars, reward_opt_state = model.init(model_key, data.frags, hparams.model)
        heldout = jax.random.uniform(split_key, (n,)) < cfg.heldout_frac
        scored = heldout & (data.prefs != 0.5)  # a tie has no right answer to score
        if cfg.model.bootstrap and members > 1:
            counts = jax.random.poisson(boot_key, 1.0, (members, n)).astype(jnp.float32)
        else:
            counts = jnp.ones((members, n), jnp.float32)
        weights = (counts * (~heldout)[None, :]).T
        reward_vars, reward_opt_state, _ = model.train(
            reward_vars, reward_opt_state, training_pairs(data, weights), train_key,
            cfg.initial_reward_steps, hparams.model)
        _, acc = model.evaluate(reward_vars, data.frags, data.prefs, scored)
        return OfflinePreferenceState(
            agent=agent, reward_vars=reward_vars, reward_opt_state=reward_opt_state,
            weights=weights, heldout=scored, round=jnp.zeros((), jnp.int32), key=key,
            hparams=hparams, heldout_acc=acc)

    def update(state: OfflinePreferenceState, data: PreferenceDataset):
        key, train_key = jax.random.split(state.key)
        reward_metrics = {}
        reward_vars, reward_opt_state = state.reward_vars, state.reward_opt_state
        heldout_acc = state.heldout_acc
        if cfg.reward_steps_per_round:
            reward_vars, reward_opt_state, reward_metrics = model.train(
                reward_vars, reward_opt_state, training_pairs(data, state.weights), train_key,
                cfg.reward_steps_per_round, state.hparams.model)
            _, heldout_acc = model.evaluate(reward_vars, data.frags, data.prefs, state.heldout)
        agent, batch = engine.rollout(state.agent)
        agent, agent_metrics = loop.learn(agent, batch, reward_vars)
        metrics = {**agent_metrics, **reward_metrics, "heldout_acc": heldout_acc}
        return state.replace(agent=agent, reward_vars=reward_vars,
                             reward_opt_state=reward_opt_state, heldout_acc=heldout_acc,
                             round=state.round + 1, key=key), metrics

    return Algorithm(name="preference_comparisons_offline", config=config, init=init,
                     update=update, act=loop.act)
