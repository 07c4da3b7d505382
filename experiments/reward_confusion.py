"""Reward confusion in offline preference learning: a benchmark (docs/reward-confusion.md).

Work in progress (issue 24): the data, the reward learning under every condition, PPO on the
learned reward and the scores are here (`compiled_condition`); the command line, the table, the
figure and the docs page are not written yet.

Six gridworlds (`envs.confusing_grid`) each have a true reward over causal features and a
nuisance feature the true reward never reads. Offline data come from four behaviour policies,
soft-optimal (soft value iteration at inverse temperature `beta`) for
`±goal ± nuisance_weight·nuisance`, minus `lava_penalty·lava` for the good ones: good or bad
(seeking or avoiding the goal), with or without the nuisance. A trajectory is aligned (good with, bad without) with probability
(1 + correlation) / 2, so that the nuisance tracks the true return at the set correlation.

Conditions, each trained and scored on the same data (per task and seed):
- `offline`: the reward ensemble on `dataset_pairs` random pairs of the correlated dataset;
- `decorrelated`: the same on a dataset with correlation 0 (the control);
- `random`, `variance`, `bald`, `chain`: `budget` queries on a pool of `pool_size` unlabelled
  correlated trajectories, over `rounds` rounds (`jaxrl_align.preferences.query_strategies`); the
  chain trains on every pair its order implies.
Labels are Bernoulli draws of Bradley–Terry on the true returns (`temperature`).

Scores: accuracy on in-distribution pairs (fresh correlated trajectories) and on the
off-correlation split (pairs of decorrelated trajectories whose nuisance and true return order
them oppositely); the normalised true return of PPO trained on the learned reward (exact, from
the model: (R − R_uniform) / (R_optimal − R_uniform)); the confusion rate, the share of the PPO
policy's episodes that reach the nuisance (it is on at some step) and never the goal.
Every condition is one compiled program over tasks × seeds.
"""
from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import tyro
from flax import struct

from envs import confusing_grid
from envs.diagnostics.experts import optimal_return
from envs.tabular import TabularEnv
from jaxrl_align.data import ring_buffer
from jaxrl_align.preferences import query_strategies
from jaxrl_align.preferences.model import PreferenceModel, PreferenceModelConfig, add_pairs, \
    empty_buffer
from jaxrl_align.rl import ppo
from jaxrl_align.spaces import space_spec
from jaxrl_align.tabular import exact_expected_return, soft_value_iteration
from jaxrl_align.tabular.sampling import sample_trajectories
from jaxrl_align.types import Transitions

BASELINES = ("offline", "decorrelated")
CONDITIONS = BASELINES + query_strategies.STRATEGIES
# Behaviour policies: (goal weight, nuisance sign); good-with and bad-without are aligned.
BEHAVIOURS = ((1.0, 1.0), (-1.0, -1.0), (1.0, -1.0), (-1.0, 1.0))


@dataclass(frozen=True)
class ConfusionConfig:
    tasks: tuple[str, ...] = tuple(confusing_grid.TASKS)
    """tasks (envs.confusing_grid.TASKS)"""
    conditions: tuple[str, ...] = CONDITIONS
    """offline, decorrelated and the query strategies"""
    seeds: int = 8
    """seeds per task and condition, in one compiled call"""
    correlation: float = 1.0
    """share of aligned trajectories, 2·share − 1, in the offline dataset and the in-distribution
    test split (1: the nuisance comes with success, always)"""
    pool_correlation: float = 0.9
    """the same for the unlabelled pool of the query strategies"""
    beta: float = 4.0
    """inverse temperature of the behaviour policies' soft value iteration"""
    nuisance_weight: float = 0.5
    """weight of the nuisance in the behaviour policies' rewards"""
    lava_penalty: float = 2.0
    """weight of lava in the good behaviour policies' rewards (the bad ones ignore it, so lava is
    in the data)"""
    dataset_trajectories: int = 256
    """trajectories of each offline dataset"""
    dataset_pairs: int = 2000
    """labelled pairs of the offline (and decorrelated) dataset"""
    pool_size: int = 64
    """unlabelled trajectories the query strategies choose from"""
    budget: int = 64
    """queries per query strategy"""
    rounds: int = 8
    """query rounds (budget / rounds queries each, then reward training)"""
    candidates: int = 256
    """candidate pairs scored per round by random, variance and bald"""
    offline_steps: int = 2000
    """reward-model steps on an offline dataset"""
    steps_per_round: int = 250
    """reward-model steps after each query round"""
    temperature: float = 1.0
    """Bradley–Terry temperature of the synthetic labels"""
    test_pairs: int = 512
    """pairs of each test split (in-distribution; off-correlation candidates)"""
    ensemble_size: int = 4
    """reward-ensemble members"""
    ppo_timesteps: int = 409_600
    """PPO steps on each learned reward"""
    eval_episodes: int = 200
    """episodes of each PPO policy sampled for the confusion rate"""

    def __post_init__(self):
        for name in self.tasks:
            if name not in confusing_grid.TASKS:
                raise ValueError(f"tasks: expected names from {', '.join(confusing_grid.TASKS)}, "
                                 f"got {name!r}")
        for name in self.conditions:
            if name not in CONDITIONS:
                raise ValueError(f"conditions: expected names from {', '.join(CONDITIONS)}, "
                                 f"got {name!r}")
        for name in ("correlation", "pool_correlation"):
            if not -1.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name}: expected a value in [-1, 1], got {getattr(self, name)}")
        for name in ("seeds", "dataset_trajectories", "dataset_pairs", "pool_size", "budget",
                     "rounds", "candidates", "offline_steps", "steps_per_round", "test_pairs",
                     "ensemble_size", "ppo_timesteps", "eval_episodes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected a positive integer, got {getattr(self, name)}")
        if self.budget % self.rounds:
            raise ValueError(f"budget: expected a multiple of rounds={self.rounds}, got "
                             f"{self.budget}")
        if self.ensemble_size < 2 and {"variance", "bald", "chain"} & set(self.conditions):
            raise ValueError("ensemble_size: the variance, bald and chain strategies need an "
                             f"ensemble of at least 2, got {self.ensemble_size}")

    @property
    def model(self) -> PreferenceModelConfig:
        return PreferenceModelConfig(ensemble_size=self.ensemble_size, use_action=False,
                                     batch_size=32)

    @property
    def ppo(self) -> ppo.PPOConfig:
        return ppo.PPOConfig(num_envs=16, num_steps=confusing_grid.HORIZON, num_minibatches=4,
                             total_timesteps=self.ppo_timesteps, lr=3e-3, ent_coef=0.05)


# --- Data -----------------------------------------------------------------------------------

@struct.dataclass
class TaskModel:
    """A task's model and what the benchmark reads of each state."""
    params: object  # TabularParams
    at_goal: jax.Array  # [S] bool
    nuisance: jax.Array  # [S] float32, the observed nuisance
    lava: jax.Array  # [S] bool


def task_models(names) -> TaskModel:
    """The tasks stacked along a leading axis."""
    models = []
    for name in names:
        arrays = confusing_grid.task_arrays(confusing_grid.TASKS[name])
        models.append(TaskModel(confusing_grid.task_params(confusing_grid.TASKS[name]),
                                jnp.asarray(arrays["at_goal"]), jnp.asarray(arrays["nuisance"]),
                                jnp.asarray(arrays["reward"] < 0)))
    return jax.tree.map(lambda *xs: jnp.stack(xs), *models)


def behaviour_policies(task: TaskModel, cfg: ConfusionConfig) -> jax.Array:
    """[4, H, S, A] the time-indexed behaviour policies, in `BEHAVIOURS` order."""
    def policy(goal, sign):
        reward = (goal * task.at_goal + sign * cfg.nuisance_weight * task.nuisance
                  - (goal > 0) * cfg.lava_penalty * task.lava)
        return soft_value_iteration(task.params, cfg.beta * reward).policy
    return jnp.stack([policy(goal, sign) for goal, sign in BEHAVIOURS])


@struct.dataclass
class Episodes:
    """Whole episodes as the reward model sees them, with what the benchmark scores."""
    steps: Transitions  # [N, H, ...] (obs features, actions, next obs, terminated)
    returns: jax.Array  # [N] true return
    nuisance: jax.Array  # [N] the nuisance summed over the episode's states


def sample_episodes(key, task: TaskModel, policies, num: int, correlation) -> Episodes:
    """`num` episodes, each from an aligned behaviour with probability (1 + correlation) / 2."""
    kind_key, side_key, *keys = jax.random.split(key, 2 + len(BEHAVIOURS))
    drawn = [sample_trajectories(k, task.params, p, num) for k, p in zip(keys, policies)]
    aligned = jax.random.bernoulli(kind_key, (1 + correlation) / 2, (num,))
    good = jax.random.bernoulli(side_key, 0.5, (num,))
    kind = jnp.where(aligned, jnp.where(good, 0, 1), jnp.where(good, 2, 3))
    pick = lambda *xs: jnp.stack(xs)[kind, jnp.arange(num)]
    trajs = jax.tree.map(pick, *drawn)
    features = task.params.observation_features[trajs.obs]  # [N, H+1, F]
    states = trajs.obs[:, :-1]
    steps = Transitions(features[:, :-1], trajs.acts, features[:, 1:], trajs.terminated)
    return Episodes(steps, trajs.rews.sum(-1), task.nuisance[states].sum(-1))


def take_pairs(episodes: Episodes, pairs) -> Transitions:
    """Fragments [P, 2, H, ...] of the episode pairs `pairs` [P, 2]."""
    return jax.tree.map(lambda x: x[pairs], episodes.steps)


def pair_differences(key, episodes: Episodes, num: int):
    """`num` random episode pairs [num, 2] with their true-return and nuisance differences."""
    pairs = query_strategies.candidate_pairs(key, episodes.returns.shape[0], num)
    d_return = episodes.returns[pairs[:, 0]] - episodes.returns[pairs[:, 1]]
    d_nuisance = episodes.nuisance[pairs[:, 0]] - episodes.nuisance[pairs[:, 1]]
    return pairs, d_return, d_nuisance


def test_split(key, episodes: Episodes, num: int, off_correlation: bool):
    """(fragments [num, 2, H, ...], noiseless labels [num], mask [num]) of random pairs whose true
    returns differ; with `off_correlation`, only those whose nuisance orders them the other way."""
    pairs, d_return, d_nuisance = pair_differences(key, episodes, num)
    keep = d_return != 0
    if off_correlation:
        keep &= d_return * d_nuisance < 0
    return take_pairs(episodes, pairs), (d_return > 0).astype(jnp.float32), keep


def split_correlation(key, episodes: Episodes, num: int):
    """Pearson correlation of the return and nuisance differences over the kept pairs of the
    off-correlation split drawn with `key` (the check that it decorrelates: negative by
    construction)."""
    _, d_return, d_nuisance = pair_differences(key, episodes, num)
    keep = (d_return * d_nuisance < 0).astype(jnp.float32)
    return weighted_correlation(d_return, d_nuisance, keep)


def weighted_correlation(x, y, weight):
    total = jnp.maximum(weight.sum(), 1.0)
    mx, my = (weight * x).sum() / total, (weight * y).sum() / total
    cov = (weight * (x - mx) * (y - my)).sum() / total
    var_x, var_y = (weight * (x - mx) ** 2).sum() / total, (weight * (y - my) ** 2).sum() / total
    return cov / jnp.sqrt(jnp.maximum(var_x * var_y, 1e-12))


# --- Reward learning ------------------------------------------------------------------------

@struct.dataclass
class Splits:
    """The test splits: (fragments, noiseless labels, mask) each."""
    in_distribution: tuple
    off_correlation: tuple


def accuracy(model: PreferenceModel, reward_vars, split) -> jax.Array:
    """Accuracy of the ensemble-mean reward (the agent's) on a split's kept pairs."""
    frags, labels, mask = split
    diff, _ = model.return_diff(reward_vars, frags)
    right = ((diff.mean(0) > 0) == (labels > 0.5)).astype(jnp.float32)
    return (right * mask).sum() / jnp.maximum(mask.sum(), 1)


def member_returns(model: PreferenceModel, reward_vars, episodes: Episodes) -> jax.Array:
    """[K, N] each member's return of each episode."""
    return model.rewards(reward_vars, *episodes.steps.reward_inputs).sum(-1)


def labelled_buffer(key, episodes: Episodes, pairs, labels, count, capacity, cfg):
    """A comparison buffer holding the first `count` of `pairs` [P, 2] with `labels` [P]."""
    frags = take_pairs(episodes, pairs)
    return add_pairs(empty_buffer(frags, capacity, cfg.ensemble_size), key, frags, labels, count,
                     bootstrap=True)


def offline_reward(key, model: PreferenceModel, episodes: Episodes, cfg: ConfusionConfig):
    """The reward ensemble trained on `dataset_pairs` random labelled pairs of `episodes`."""
    pair_key, label_key, init_key, boot_key, train_key = jax.random.split(key, 5)
    hparams = model.config
    pairs = query_strategies.candidate_pairs(pair_key, episodes.returns.shape[0],
                                             cfg.dataset_pairs)
    labels = query_strategies.oracle_labels(label_key, episodes.returns, pairs, cfg.temperature)
    reward_vars, opt_state = model.init(init_key, take_pairs(episodes, pairs[:1]), hparams)
    buffer = labelled_buffer(boot_key, episodes, pairs, labels, cfg.dataset_pairs,
                             cfg.dataset_pairs, cfg)
    reward_vars, _, _ = model.train(reward_vars, opt_state, buffer, train_key, cfg.offline_steps,
                                    hparams)
    return reward_vars


def queried_reward(key, model: PreferenceModel, pool: Episodes, strategy: str, splits: Splits,
                   cfg: ConfusionConfig):
    """The reward ensemble after `budget` queries on `pool` by `strategy`, over `rounds` rounds
    (select, label, train). Returns (reward variables, per-round accuracies [R] in and off)."""
    per_round = cfg.budget // cfg.rounds
    hparams = model.config
    init_key, key = jax.random.split(key)
    reward_vars, opt_state = model.init(init_key, take_pairs(pool, jnp.zeros((1, 2), jnp.int32)),
                                        hparams)
    num_pool = pool.returns.shape[0]
    chain = strategy == "chain"
    capacity = num_pool * (num_pool - 1) // 2 if chain else cfg.budget
    buffer = labelled_buffer(key, pool, jnp.zeros((capacity, 2), jnp.int32),
                             jnp.zeros(capacity), 0, capacity, cfg)
    chain_state = query_strategies.chain_init(num_pool, cfg.budget)

    def one_round(carry, key):
        reward_vars, opt_state, buffer, chain_state = carry
        select_key, label_key, boot_key, train_key = jax.random.split(key, 4)
        returns = member_returns(model, reward_vars, pool)
        if chain:
            chain_state = query_strategies.chain_run(
                chain_state, select_key, returns, pool.returns, per_round, cfg.temperature,
                hparams.noise_prob, hparams.threshold)
            pairs, labels, mask = query_strategies.chain_pairs(chain_state)
            order = jnp.argsort(~mask, stable=True)  # implied pairs first
            buffer = labelled_buffer(boot_key, pool, pairs[order], labels[order], mask.sum(),
                                     capacity, cfg)
        else:
            pairs = query_strategies.select_pairs(select_key, strategy, returns, per_round,
                                                  cfg.candidates, hparams.noise_prob,
                                                  hparams.threshold)
            labels = query_strategies.oracle_labels(label_key, pool.returns, pairs,
                                                    cfg.temperature)
            buffer = add_pairs(buffer, boot_key, take_pairs(pool, pairs), labels, per_round,
                               bootstrap=True)
        reward_vars, opt_state, _ = model.train(reward_vars, opt_state, buffer, train_key,
                                                cfg.steps_per_round, hparams)
        scores = (accuracy(model, reward_vars, splits.in_distribution),
                  accuracy(model, reward_vars, splits.off_correlation),
                  buffer.size.astype(jnp.float32))
        return (reward_vars, opt_state, buffer, chain_state), scores

    (reward_vars, *_), (acc_in, acc_off, labels) = jax.lax.scan(
        one_round, (reward_vars, opt_state, buffer, chain_state),
        jax.random.split(key, cfg.rounds))
    return reward_vars, dict(curve_acc_in=acc_in, curve_acc_off=acc_off, curve_labels=labels)


# --- The policy on a learned reward ---------------------------------------------------------

def grid_env(task: TaskModel) -> TabularEnv:
    return TabularEnv(task.params, name="ConfusingGrid")


def ppo_on_reward(key, task: TaskModel, model: PreferenceModel, reward_vars,
                  cfg: ConfusionConfig) -> jax.Array:
    """[S, A] action probabilities of PPO trained on the learned reward (ensemble mean,
    running-normalised, as preference comparisons trains its agent)."""
    engine = ppo.PPOEngine(cfg.ppo, grid_env(task), task.params, normalize_reward=True)

    def update(state, _):
        state, batch = engine.rollout(state)
        rewards = model.agent_reward(reward_vars, *batch.transitions.reward_inputs)
        return engine.learn(state, batch, rewards)[0], ()

    state, _ = jax.lax.scan(update, engine.init(key), None, length=cfg.ppo.num_updates)
    dist, _ = engine.policy(state.params, task.params.observation_features)
    return jax.nn.softmax(dist.logits)


def policy_scores(key, task: TaskModel, probs, num_episodes: int) -> dict:
    """Normalised exact true return and confusion rate of a stationary policy [S, A]."""
    params = task.params
    uniform = jnp.full(probs.shape, 1.0 / probs.shape[-1])
    low, high = exact_expected_return(params, uniform), optimal_return(params)
    value = exact_expected_return(params, probs)
    states = sample_trajectories(key, params, probs, num_episodes).obs
    reached_goal = task.at_goal[states].any(-1)
    reached_nuisance = (task.nuisance[states] > 0).any(-1)
    return dict(true_return=value, normalized_return=(value - low) / (high - low),
                confusion_rate=jnp.mean(reached_nuisance & ~reached_goal))


# --- One condition over tasks × seeds -------------------------------------------------------

def run_condition(key, task: TaskModel, condition: str, cfg: ConfusionConfig) -> dict:
    """Every score of one (task, seed) under `condition`. The data depend on `key` only, so every
    condition sees the same datasets, pool and test splits."""
    data_key, learn_key, ppo_key, eval_key = jax.random.split(key, 4)
    keys = jax.random.split(data_key, 7)
    policies = behaviour_policies(task, cfg)
    correlated = sample_episodes(keys[0], task, policies, cfg.dataset_trajectories,
                                 cfg.correlation)
    decorrelated = sample_episodes(keys[1], task, policies, cfg.dataset_trajectories, 0.0)
    pool = sample_episodes(keys[2], task, policies, cfg.pool_size, cfg.pool_correlation)
    test_in = sample_episodes(keys[3], task, policies, cfg.dataset_trajectories, cfg.correlation)
    test_off = sample_episodes(keys[4], task, policies, cfg.dataset_trajectories, 0.0)
    splits = Splits(test_split(keys[5], test_in, cfg.test_pairs, off_correlation=False),
                    test_split(keys[6], test_off, cfg.test_pairs, off_correlation=True))
    model = PreferenceModel(cfg.model, space_spec(grid_env(task), task.params))
    curves = {}
    if condition in BASELINES:
        data = correlated if condition == "offline" else decorrelated
        reward_vars = offline_reward(learn_key, model, data, cfg)
    else:
        reward_vars, curves = queried_reward(learn_key, model, pool, condition, splits, cfg)
    probs = ppo_on_reward(ppo_key, task, model, reward_vars, cfg)
    nuisance_return = weighted_correlation(correlated.returns, correlated.nuisance,
                                           jnp.ones_like(correlated.returns))
    return dict(acc_in=accuracy(model, reward_vars, splits.in_distribution),
                acc_off=accuracy(model, reward_vars, splits.off_correlation),
                off_pairs=splits.off_correlation[2].sum(),
                split_correlation=split_correlation(keys[6], test_off, cfg.test_pairs),
                data_correlation=nuisance_return,
                **policy_scores(eval_key, task, probs, cfg.eval_episodes), **curves)


def compiled_condition(condition: str, cfg: ConfusionConfig):
    """jit(vmap over tasks of vmap over seeds) of `run_condition`."""
    per_seed = jax.vmap(lambda key, task: run_condition(key, task, condition, cfg), (0, None))
    return jax.jit(jax.vmap(per_seed, (0, 0)))
