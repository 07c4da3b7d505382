"""Reward confusion in offline preference learning: a benchmark (docs/reward-confusion.md).

    python -m experiments.reward_confusion            # 6 tasks x 7 conditions x 8 seeds
    python -m experiments.reward_confusion --help     # every setting, with its default

Six gridworlds (`envs.confusing_grid`) each have a true reward over causal features and a
nuisance feature the true reward never reads. Offline data come from four behaviour policies,
soft-optimal (soft value iteration at inverse temperature `beta`) for
`±goal ± nuisance_weight·nuisance`, minus `lava_penalty·lava` for the good ones: good or bad
(seeking or avoiding the goal), with or without the nuisance. A trajectory is aligned (good
with, bad without) with probability (1 + correlation) / 2, so that the nuisance tracks the true
return at the set correlation.

Conditions, each trained and scored on the same data (per task and seed):
- `offline`: the reward ensemble on `dataset_pairs` random pairs of the correlated dataset;
- `decorrelated`: the same on a dataset with correlation 0 (the control);
- `random`, `variance`, `bald`, `chain`: `budget` queries on a pool of `pool_size` unlabelled
  correlated trajectories, over `rounds` rounds (`jaxrl_align.preferences.query_strategies`); the
  chain trains on every pair its order implies.
Labels are Bernoulli draws of Bradley–Terry on the true returns (`temperature`).

Scores: accuracy on in-distribution pairs (fresh correlated trajectories) and on the
off-correlation split (pairs of decorrelated trajectories whose nuisance and true return order
them oppositely); the normalised true return of PPO trained on the learned reward (mostly
from exploring starts; exact, from the task's start: (R − R_uniform) / (R_optimal −
R_uniform)); the confusion rate, the share of the PPO policy's episodes that reach the nuisance
(it is on at some step) and never the goal; the same two of the planner, the learned reward's
exact optimal policy (what a perfect optimiser makes of it). The `true_reward` condition is the
reference: PPO and the planner on the true reward.
Every condition is one compiled program over tasks × seeds. The command writes
reward_confusion.json (every number), .md (the tables) and .png (the figure) to `--out`, and
seed 0's datasets in the preference-dataset format to `--out`/datasets/.
"""
from __future__ import annotations

import dataclasses
import sys
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import tyro
from flax import struct

from envs import confusing_grid
from envs.diagnostics.experts import optimal_return, tabular_expert_actions
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
REFERENCE = "true_reward"  # PPO and the planner on the true reward: what policy scores can reach
CONDITIONS = BASELINES + query_strategies.STRATEGIES + (REFERENCE,)
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
    seed: int = 0
    """base seed: seed i of a task draws the same data under every condition"""
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
    ppo_timesteps: int = 102_400
    """PPO steps on each learned reward"""
    exploring_starts: float = 0.9
    """share of PPO's training episodes that start in a state drawn uniformly from those
    reachable from the start (the rest start at the task's start)"""
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
        if not 0.0 <= self.exploring_starts <= 1.0:
            raise ValueError(f"exploring_starts: expected a share in [0, 1], got "
                             f"{self.exploring_starts}")
        for name in ("correlation", "pool_correlation"):
            if not -1.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name}: expected a value in [-1, 1], got {getattr(self, name)}")
        if not self.tasks or len(set(self.tasks)) != len(self.tasks):
            raise ValueError(f"tasks: expected distinct names, got {list(self.tasks)}")
        if not self.conditions or len(set(self.conditions)) != len(self.conditions):
            raise ValueError(f"conditions: expected distinct names, got {list(self.conditions)}")
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
    reachable_dist: jax.Array  # [S] uniform over the states reachable from the start


def task_models(names) -> TaskModel:
    """The tasks stacked along a leading axis."""
    models = []
    for name in names:
        arrays = confusing_grid.task_arrays(confusing_grid.TASKS[name])
        models.append(TaskModel(confusing_grid.task_params(confusing_grid.TASKS[name]),
                                jnp.asarray(arrays["at_goal"]), jnp.asarray(arrays["nuisance"]),
                                jnp.asarray(arrays["reward"] < 0),
                                jnp.asarray(arrays["reachable"] / arrays["reachable"].sum(),
                                            jnp.float32)))
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


def labelled_pairs(key, episodes: Episodes, num: int, temperature: float):
    """`num` random pairs [num, 2] of `episodes` and their oracle labels [num]."""
    pair_key, label_key = jax.random.split(key)
    pairs = query_strategies.candidate_pairs(pair_key, episodes.returns.shape[0], num)
    return pairs, query_strategies.oracle_labels(label_key, episodes.returns, pairs, temperature)


def offline_reward(key, model: PreferenceModel, episodes: Episodes, pairs, labels,
                   cfg: ConfusionConfig):
    """The reward ensemble trained on the labelled pairs `pairs` [P, 2] of `episodes`."""
    init_key, boot_key, train_key = jax.random.split(key, 3)
    hparams = model.config
    reward_vars, opt_state = model.init(init_key, take_pairs(episodes, pairs[:1]), hparams)
    buffer = labelled_buffer(boot_key, episodes, pairs, labels, pairs.shape[0], pairs.shape[0],
                             cfg)
    reward_vars, _, _ = model.train(reward_vars, opt_state, buffer, train_key, cfg.offline_steps,
                                    hparams)
    return reward_vars


def queried_reward(key, task: TaskModel, model: PreferenceModel, pool: Episodes, strategy: str,
                   splits: Splits, cfg: ConfusionConfig):
    """The reward ensemble after `budget` queries on `pool` by `strategy`, over `rounds` rounds
    (select, label, train). Returns (reward variables, per-round curves [R]: accuracies in and
    off, labels in the buffer, the planner's normalised true return)."""
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
        planner = planner_policy(task, learned_state_reward(task, model, reward_vars))
        scores = (accuracy(model, reward_vars, splits.in_distribution),
                  accuracy(model, reward_vars, splits.off_correlation),
                  buffer.size.astype(jnp.float32), normalized_return(task, planner))
        return (reward_vars, opt_state, buffer, chain_state), scores

    (reward_vars, *_), curves = jax.lax.scan(
        one_round, (reward_vars, opt_state, buffer, chain_state),
        jax.random.split(key, cfg.rounds))
    return reward_vars, dict(zip(CURVES, curves))


CURVES = ("curve_acc_in", "curve_acc_off", "curve_labels", "curve_planner_return")


# --- Policies on a reward, and their scores -------------------------------------------------

def grid_env(task: TaskModel) -> TabularEnv:
    return TabularEnv(task.params, name="ConfusingGrid")


def ppo_policy(key, task: TaskModel, cfg: ConfusionConfig, reward_fn=None) -> jax.Array:
    """[S, A] action probabilities of PPO trained on `reward_fn(obs, acts, next_obs,
    terminated)` (a learned reward), or on the true reward when it is None; running-normalised
    either way, as preference comparisons trains its agent. A share `exploring_starts` of its
    episodes start anywhere reachable: from the task's one start alone, PPO fails on the true
    reward of lava and key_door, so its score would measure exploration, not the reward (the
    figures: docs/reward-confusion.md). Scores are from the task's start."""
    params = task.params.replace(initial_state_dist=cfg.exploring_starts * task.reachable_dist
                                 + (1 - cfg.exploring_starts) * task.params.initial_state_dist)
    engine = ppo.PPOEngine(cfg.ppo, grid_env(task), params, normalize_reward=True)

    def update(state, _):
        state, batch = engine.rollout(state)
        rewards = (batch.transitions.rews if reward_fn is None
                   else reward_fn(*batch.transitions.reward_inputs))
        return engine.learn(state, batch, rewards)[0], ()

    state, _ = jax.lax.scan(update, engine.init(key), None, length=cfg.ppo.num_updates)
    dist, _ = engine.policy(state.params, task.params.observation_features)
    return jax.nn.softmax(dist.logits)


def learned_state_reward(task: TaskModel, model: PreferenceModel, reward_vars) -> jax.Array:
    """[S] the ensemble-mean learned reward of each state (it reads the state only)."""
    features = task.params.observation_features
    num_states = features.shape[0]
    return model.agent_reward(reward_vars, features, jnp.zeros(num_states, jnp.int32), features,
                              jnp.zeros(num_states, bool))


def planner_policy(task: TaskModel, state_reward) -> jax.Array:
    """[S, A] the greedy policy of a state reward [S] by exact planning over the horizon: what
    a perfect optimiser does with the reward, without PPO's own failures."""
    actions = tabular_expert_actions(task.params.replace(reward=state_reward))
    return jax.nn.one_hot(actions, task.params.transition.shape[1])


def normalized_return(task: TaskModel, probs) -> jax.Array:
    """Exact true return of a stationary policy [S, A]: (R − R_uniform) / (R_optimal −
    R_uniform)."""
    params = task.params
    uniform = jnp.full(probs.shape, 1.0 / probs.shape[-1])
    low, high = exact_expected_return(params, uniform), optimal_return(params)
    return (exact_expected_return(params, probs) - low) / (high - low)


def confusion_rate(key, task: TaskModel, probs, num_episodes: int) -> jax.Array:
    """Share of a policy's episodes that reach the nuisance (it is on at some step) and never
    the goal."""
    states = sample_trajectories(key, task.params, probs, num_episodes).obs
    reached_goal = task.at_goal[states].any(-1)
    reached_nuisance = (task.nuisance[states] > 0).any(-1)
    return jnp.mean(reached_nuisance & ~reached_goal)


def policy_scores(key, task: TaskModel, probs, num_episodes: int, prefix: str) -> dict:
    return {f"{prefix}_return": normalized_return(task, probs),
            f"{prefix}_confusion": confusion_rate(key, task, probs, num_episodes)}


# --- One condition over tasks × seeds -------------------------------------------------------

@struct.dataclass
class BenchmarkData:
    """What every condition of one (task, seed) sees: the same datasets, pool and test splits."""
    correlated: Episodes  # the offline dataset's trajectories, at `correlation`
    decorrelated: Episodes  # the control's, at correlation 0
    pool: Episodes  # the query strategies' unlabelled trajectories, at `pool_correlation`
    correlated_pairs: tuple  # (pairs [P, 2], labels [P]) of the offline dataset
    decorrelated_pairs: tuple  # the same for the control
    test_in: Episodes
    test_off: Episodes
    splits: Splits
    split_correlation: jax.Array  # of the off-correlation split's return and nuisance differences


def benchmark_data(key, task: TaskModel, cfg: ConfusionConfig) -> BenchmarkData:
    keys = jax.random.split(key, 9)
    policies = behaviour_policies(task, cfg)
    episodes = [sample_episodes(k, task, policies, num, correlation) for k, num, correlation in (
        (keys[0], cfg.dataset_trajectories, cfg.correlation),
        (keys[1], cfg.dataset_trajectories, 0.0),
        (keys[2], cfg.pool_size, cfg.pool_correlation),
        (keys[3], cfg.dataset_trajectories, cfg.correlation),
        (keys[4], cfg.dataset_trajectories, 0.0))]
    correlated, decorrelated, pool, test_in, test_off = episodes
    splits = Splits(test_split(keys[5], test_in, cfg.test_pairs, off_correlation=False),
                    test_split(keys[6], test_off, cfg.test_pairs, off_correlation=True))
    return BenchmarkData(
        correlated, decorrelated, pool,
        labelled_pairs(keys[7], correlated, cfg.dataset_pairs, cfg.temperature),
        labelled_pairs(keys[8], decorrelated, cfg.dataset_pairs, cfg.temperature),
        test_in, test_off, splits, split_correlation(keys[6], test_off, cfg.test_pairs))


def run_condition(key, task: TaskModel, condition: str, cfg: ConfusionConfig) -> dict:
    """Every score of one (task, seed) under `condition`. The data depend on `key` only, so every
    condition sees the same datasets, pool and test splits."""
    data_key, learn_key, ppo_key, eval_key = jax.random.split(key, 4)
    data = benchmark_data(data_key, task, cfg)
    model = PreferenceModel(cfg.model, space_spec(grid_env(task), task.params))
    scores, curves = {}, {}
    if condition == REFERENCE:
        probs = ppo_policy(ppo_key, task, cfg)
        planner = planner_policy(task, task.params.reward)
        scores = dict(acc_in=jnp.nan, acc_off=jnp.nan)
    else:
        if condition in BASELINES:
            episodes, (pairs, labels) = ((data.correlated, data.correlated_pairs)
                                         if condition == "offline" else
                                         (data.decorrelated, data.decorrelated_pairs))
            reward_vars = offline_reward(learn_key, model, episodes, pairs, labels, cfg)
        else:
            reward_vars, curves = queried_reward(learn_key, task, model, data.pool, condition,
                                                 data.splits, cfg)
        probs = ppo_policy(ppo_key, task, cfg, partial(model.agent_reward, reward_vars))
        planner = planner_policy(task, learned_state_reward(task, model, reward_vars))
        scores = dict(acc_in=accuracy(model, reward_vars, data.splits.in_distribution),
                      acc_off=accuracy(model, reward_vars, data.splits.off_correlation))
    ppo_eval_key, planner_eval_key = jax.random.split(eval_key)
    return dict(**scores,
                **policy_scores(ppo_eval_key, task, probs, cfg.eval_episodes, "ppo"),
                **policy_scores(planner_eval_key, task, planner, cfg.eval_episodes, "planner"),
                off_pairs=data.splits.off_correlation[2].sum(),
                split_correlation=data.split_correlation,
                data_correlation=weighted_correlation(data.correlated.returns,
                                                      data.correlated.nuisance,
                                                      jnp.ones_like(data.correlated.returns)),
                **curves)


def compiled_condition(condition: str, cfg: ConfusionConfig):
    """jit(vmap over tasks of vmap over seeds) of `run_condition`; call it with keys [T, N] and
    `task_models(cfg.tasks)`."""
    per_seed = jax.vmap(lambda key, task: run_condition(key, task, condition, cfg), (0, None))
    return jax.jit(jax.vmap(per_seed, (0, 0)))


def seed_keys(cfg: ConfusionConfig) -> jax.Array:
    """[T, N] keys: seed i of a task is the same key whichever other tasks run beside it."""
    base = jax.random.key(cfg.seed)
    return jnp.stack([jax.random.split(jax.random.fold_in(base, list(confusing_grid.TASKS)
                                                          .index(name)), cfg.seeds)
                      for name in cfg.tasks])


# --- The benchmark: table, figure, JSON, datasets -------------------------------------------

METRICS = ("acc_in", "acc_off", "ppo_return", "ppo_confusion", "planner_return",
           "planner_confusion")
METRIC_LABELS = {"acc_in": "acc. in-dist.", "acc_off": "acc. off-corr.",
                 "ppo_return": "PPO return", "ppo_confusion": "PPO confusion",
                 "planner_return": "planner return", "planner_confusion": "planner confusion"}
ACCURACY_BAR, OFF_ACCURACY_BAR, RETURN_BAR = 0.9, 0.6, 0.5  # issue 24's test of confusion


@dataclass(frozen=True)
class ConfusionFlags(ConfusionConfig):
    out: Path = Path("runs/reward_confusion")
    """output folder (reward_confusion.json, .md, .png; datasets/)"""
    save_datasets: bool = True
    """save seed 0's offline, decorrelated and off-correlation datasets of every task"""
    compile_cache: bool = True
    """use JAX's persistent compilation cache"""

    def config(self) -> ConfusionConfig:
        return ConfusionConfig(**{f.name: getattr(self, f.name)
                                  for f in dataclasses.fields(ConfusionConfig)})


def confused(cell: dict) -> bool:
    """Issue 24's test on one (task, condition) cell's means: accurate in distribution, yet
    wrong off the correlation or with a poor policy."""
    mean = {m: cell[m]["mean"] for m in METRICS}
    return bool(mean["acc_in"] >= ACCURACY_BAR and (mean["acc_off"] <= OFF_ACCURACY_BAR
                                                  or mean["ppo_return"] <= RETURN_BAR))


def summarize(results: dict, cfg: ConfusionConfig, resamples: int = 2000) -> dict:
    """Per (condition, task) cell: each metric's mean, 95% bootstrap interval over seeds and
    per-seed values; per condition the mean over tasks with a stratified-bootstrap interval;
    per task issue 24's verdict."""
    from jaxrl_align.evaluation import aggregate_mean, bootstrap_ci, stratified_bootstrap_ci

    cells, aggregates = {}, {}
    for condition, out in results.items():
        cells[condition], aggregates[condition] = {}, {}
        for t, task in enumerate(cfg.tasks):
            cell = {}
            for m in METRICS:
                values = np.asarray(out[m][t], np.float64)
                finite = np.isfinite(values).all()
                cell[m] = dict(mean=float(values.mean()), per_seed=values,
                               ci95=bootstrap_ci(values, np.mean, num_resamples=resamples)
                               if finite else (np.nan, np.nan))
            for name in ("split_correlation", "data_correlation", "off_pairs"):
                cell[name] = float(np.mean(out[name][t]))
            cells[condition][task] = cell
        for m in METRICS:
            matrix = np.asarray(out[m], np.float64).T  # [seeds, tasks]
            finite = np.isfinite(matrix).all()
            aggregates[condition][m] = dict(
                mean=float(matrix.mean()) if finite else np.nan,
                ci95=stratified_bootstrap_ci(aggregate_mean, matrix, num_resamples=resamples)
                if finite else (np.nan, np.nan))
    verdicts = {}
    if {"offline", "decorrelated"} <= set(results):
        for task in cfg.tasks:
            offline, control = confused(cells["offline"][task]), confused(
                cells["decorrelated"][task])
            verdicts[task] = dict(offline_confused=offline, decorrelated_confused=control,
                                  shows_confusion=offline and not control)
    return dict(cells=cells, aggregates=aggregates, verdicts=verdicts)


def fmt(stat: dict) -> str:
    if not np.isfinite(stat["mean"]):
        return "—"
    lo, hi = stat["ci95"]
    return f"{stat['mean']:.2f} [{lo:.2f}, {hi:.2f}]"


def tables(summary: dict, cfg: ConfusionConfig) -> str:
    """The markdown tables: per task, per condition, per metric; the means over tasks; the
    verdicts."""
    conditions = list(summary["cells"])
    head = "| task | condition | " + " | ".join(METRIC_LABELS[m] for m in METRICS) + " |"
    rule = "|" + "---|" * (len(METRICS) + 2)
    text = [f"Mean over {cfg.seeds} seeds [95% bootstrap interval]; returns normalised "
            "(0 uniform policy, 1 optimal).", "", head, rule]
    for task in cfg.tasks:
        for c in conditions:
            cell = summary["cells"][c][task]
            text.append(f"| {task} | {c} | " + " | ".join(fmt(cell[m]) for m in METRICS) + " |")
    text += ["", f"Mean over the {len(cfg.tasks)} tasks [95% stratified-bootstrap interval]:", "",
             "| condition | " + " | ".join(METRIC_LABELS[m] for m in METRICS) + " |",
             "|" + "---|" * (len(METRICS) + 1)]
    for c in conditions:
        text.append(f"| {c} | " + " | ".join(fmt(summary["aggregates"][c][m]) for m in METRICS)
                    + " |")
    if summary["verdicts"]:
        text += ["", f"Confused: in-distribution accuracy ≥ {ACCURACY_BAR} and (off-correlation "
                 f"accuracy ≤ {OFF_ACCURACY_BAR} or PPO return ≤ {RETURN_BAR}), on the means.",
                 "",
                 "| task | offline confused | decorrelated confused | shows confusion | "
                 "off-corr. split correlation | offline data correlation |",
                 "|---|---|---|---|---|---|"]
        for task, v in summary["verdicts"].items():
            cell = summary["cells"]["offline"][task]
            text.append(f"| {task} | {v['offline_confused']} | {v['decorrelated_confused']} | "
                        f"{v['shows_confusion']} | {cell['split_correlation']:+.2f} | "
                        f"{cell['data_correlation']:+.2f} |")
        shown = sum(v["shows_confusion"] for v in summary["verdicts"].values())
        text += ["", f"Confusion shown on {shown} of {len(summary['verdicts'])} tasks."]
    return "\n".join(text)


def plot(path: Path, results: dict, cfg: ConfusionConfig) -> Path | None:
    """Per task: off-correlation accuracy (solid) and in-distribution accuracy (dotted) against
    the number of queries for each query strategy, above the planner's normalised return, with
    the offline and decorrelated rewards as horizontal lines and PPO's final return as dots."""
    from jaxrl_align.runtime.plots import _pyplot, save_figure

    strategies = [c for c in results if c in query_strategies.STRATEGIES]
    if not strategies:
        return None
    plt = _pyplot()
    queries = cfg.budget // cfg.rounds * np.arange(1, cfg.rounds + 1)
    fig, axes = plt.subplots(2, len(cfg.tasks), figsize=(3.2 * len(cfg.tasks) + 1, 6.4),
                             squeeze=False, sharex=True, sharey=True)
    colours = {c: f"C{i}" for i, c in enumerate(CONDITIONS)}
    for t, task in enumerate(cfg.tasks):
        top, bottom = axes[0][t], axes[1][t]
        for c in strategies:
            out = results[c]
            top.plot(queries, np.mean(out["curve_acc_off"][t], 0), color=colours[c], label=c)
            top.plot(queries, np.mean(out["curve_acc_in"][t], 0), color=colours[c], ls=":")
            bottom.plot(queries, np.mean(out["curve_planner_return"][t], 0), color=colours[c],
                        label=c)
            bottom.scatter([cfg.budget], [np.mean(out["ppo_return"][t])], color=colours[c],
                           marker="o", s=18, zorder=3)
        for c in [c for c in BASELINES if c in results]:
            top.axhline(np.mean(results[c]["acc_off"][t]), color=colours[c], ls="--", label=c)
            bottom.axhline(np.mean(results[c]["planner_return"][t]), color=colours[c], ls="--",
                           label=c)
        top.set_title(task)
        bottom.set_xlabel("queries")
        for ax in (top, bottom):
            ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("accuracy (solid off-corr., dotted in-dist.)")
    axes[1][0].set_ylabel("normalised true return\n(lines planner, dots PPO)")
    axes[0][0].legend(loc="lower left", fontsize=7)
    fig.suptitle(f"Reward confusion: {cfg.seeds} seeds, mean; budget {cfg.budget} queries")
    fig.tight_layout()
    return save_figure(fig, path)


def save_datasets(folder: Path, cfg: ConfusionConfig) -> list[Path]:
    """Seed 0's offline dataset, decorrelated control and off-correlation test split of every
    task, in the preference-dataset format (`jaxrl_align.data.preference_dataset`)."""
    from jaxrl_align.data.preference_dataset import PreferenceDataset, save_preferences

    keys, tasks = seed_keys(cfg), task_models(cfg.tasks)
    data_of = jax.jit(lambda key, task: benchmark_data(jax.random.split(key, 4)[0], task, cfg))
    written = []
    for t, name in enumerate(cfg.tasks):
        data = data_of(keys[t, 0], jax.tree.map(lambda x: x[t], tasks))
        frags, labels, keep = data.splits.off_correlation
        keep = np.asarray(keep)
        sets = {"offline": (take_pairs(data.correlated, data.correlated_pairs[0]),
                            data.correlated_pairs[1], "Bradley–Terry draws on the true return"),
                "decorrelated": (take_pairs(data.decorrelated, data.decorrelated_pairs[0]),
                                 data.decorrelated_pairs[1],
                                 "Bradley–Terry draws on the true return"),
                "off_correlation": (jax.tree.map(lambda x: np.asarray(x)[keep], frags),
                                    np.asarray(labels)[keep], "noiseless true-return order")}
        for kind, (pairs, prefs, source) in sets.items():
            written.append(save_preferences(
                folder / f"{name}_{kind}.npz", PreferenceDataset(pairs, prefs),
                env_id=f"confusing_grid:{name}", source=f"reward_confusion {kind}: {source}",
                extra_metadata=dict(seed=cfg.seed, seed_index=0, correlation=cfg.correlation
                                    if kind == "offline" else 0.0)))
    return written


def main(flags: ConfusionFlags) -> dict:
    """Run every condition (one compiled call over tasks × seeds each), then write and print the
    benchmark; returns the record."""
    from tqdm import tqdm

    from experiments.bench.harness import machine_info
    from jaxrl_align.data.files import write_atomic
    from jaxrl_align.runtime import outputs

    cfg = flags.config()
    out = Path(flags.out)
    outputs.check_output_folder(out)
    if flags.compile_cache:
        from jaxrl_align.platform import compilation_cache

        compilation_cache.enable()
    start = time.perf_counter()
    keys, tasks = seed_keys(cfg), task_models(cfg.tasks)
    results, timings = {}, {}
    progress = tqdm(cfg.conditions, desc="reward confusion", unit="condition")
    for condition in progress:
        progress.set_postfix_str(f"{condition}: compiling")
        t0 = time.perf_counter()
        program = compiled_condition(condition, cfg).lower(keys, tasks).compile()
        t1 = time.perf_counter()
        progress.set_postfix_str(f"{condition}: running")
        results[condition] = jax.tree.map(np.asarray, jax.block_until_ready(program(keys, tasks)))
        timings[condition] = dict(compile_s=t1 - t0, run_s=time.perf_counter() - t1)
    summary = summarize(results, cfg)
    datasets = save_datasets(out / "datasets", cfg) if flags.save_datasets else []
    record = {
        "command": " ".join(["python -m experiments.reward_confusion", *sys.argv[1:]]),
        "config": dataclasses.asdict(cfg), "tasks": list(cfg.tasks),
        "conditions": list(cfg.conditions), **summary,
        "curves": {c: {k: r[k] for k in CURVES} for c, r in results.items() if CURVES[0] in r},
        "timings": timings, "wall_s": time.perf_counter() - start,
        "datasets": [str(p) for p in datasets], "hardware": machine_info(),
        "versions": outputs.package_versions(),
    }
    outputs.write_json(out / "reward_confusion.json", record)
    text = tables(summary, cfg)
    write_atomic(out / "reward_confusion.md", lambda f: f.write((text + "\n").encode()))
    figure = plot(out / "reward_confusion.png", results, cfg)
    print(f"\n{text}\n\nwall time {record['wall_s']:.0f}s; wrote {out}/reward_confusion.json, "
          f".md{', .png' if figure else ''}" + (f", {len(datasets)} datasets" if datasets else ""))
    return record


if __name__ == "__main__":
    main(tyro.cli(ConfusionFlags))
