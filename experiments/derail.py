"""A DERAIL-style report (Freire et al., 2020): algorithms × seals diagnostic tasks × seeds.

    python -m experiments.derail --algos ppo,bc --seeds 15 --out runs/derail

Every (algorithm, task) cell trains all seeds in one program with `jaxrl_align.runtime.runner`
and scores each seed's final policy by its normalised return
(x - random) / (expert - random), with the reference returns of `envs.reference_returns`.
Writes derail.json (per-seed scores), derail.md (mean and 95% bootstrap interval per
cell) and derail.png (a heatmap).

The first two rows are the optimal expert of each task (`envs.diagnostics.experts`) and
the uniformly random policy, evaluated like the others: a check that the scale is right.
The other rows come from `ALGORITHMS`; a new algorithm adds its row by registering how to
build one trial of it (or None where the algorithm does not apply: the cell reads n/a):

    @register("mine")
    def my_trial(task: Task, flags: DerailFlags) -> Trial | None:
        algo = mine.make(mine.Config(...), task.env, task.params)
        return Trial(algo, num_updates=..., data=task.demonstrations(flags))
"""
from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import tyro

BASELINES = ("expert", "random")

@dataclass(frozen=True)
class DerailFlags:
    algos: str = "ppo,bc"
    """comma-separated algorithms (registered: see ALGORITHMS); the expert and random rows
    are always there"""
    seeds: int = 15
    """seeds per (algorithm, task), trained together in one program"""
    tasks: str = ""
    """comma-separated task ids (default: every seals diagnostic task)"""
    budget: float = 1.0
    """multiplies every training budget (PPO steps, BC epochs): <1 for a quick look"""
    demo_transitions: int = 2000
    """expert demonstrations for imitation: ceil(this / time limit) whole episodes, i.e. this
    many transitions (fewer where the expert ends episodes early: EarlyTermNeg)"""
    eval_episodes: int = 100
    """episodes per seed for the final score"""
    workers: int = 2
    """processes running tasks side by side (compilation is single-threaded); 1: in-process"""
    out: Path = Path("runs/derail")
    """output folder"""
    compile_cache: bool = True
    """use JAX's persistent compilation cache"""


@dataclass(frozen=True)
class Task:
    """One diagnostic task as the algorithms see it."""

    env_id: str
    env: Any  # Sort's MultiDiscrete actions are numbered: `FlatActions`
    params: Any
    reference_returns: tuple[float, float]  # (random, expert)
    expert: Callable  # policy(key, obs) -> action, optimal on `env`
    # Where demonstrations come from: the task itself, except InitShiftTest, whose
    # point is that the expert demonstrated from InitShiftTrain's initial state.
    demo_env_id: str

    def demonstrations(self, flags: DerailFlags):
        """Flat expert transitions (see `expert_demonstrations`)."""
        return expert_demonstrations(self.demo_env_id, flags.demo_transitions)

    def demonstration_episodes(self, flags: DerailFlags):
        """The same expert episodes, as `Trajectories`."""
        return expert_trajectories(self.demo_env_id, flags.demo_transitions)


@dataclass(frozen=True)
class Trial:
    """What the runner needs to train one algorithm on one task."""

    algo: Any  # jaxrl_align.algorithm.Algorithm
    num_updates: int
    data: Any = None


TrialFactory = Callable[[Task, DerailFlags], Trial | None]
ALGORITHMS: dict[str, TrialFactory] = {}


def register(name: str) -> Callable[[TrialFactory], TrialFactory]:
    """Adds a row: `@register("name")` on a `(task, flags) -> Trial` function."""

    def add(factory: TrialFactory) -> TrialFactory:
        if name in ALGORITHMS:
            raise ValueError(f"derail algorithm {name!r} is already registered")
        ALGORITHMS[name] = factory
        return factory

    return add


def diagnostic_task_ids() -> list[str]:
    from envs.diagnostics import DIAGNOSTIC_ENVS

    return list(DIAGNOSTIC_ENVS)


DEMO_ENV_IDS = {"seals/InitShiftTest-v0": "seals/InitShiftTrain-v0"}


def make_task(env_id: str) -> Task:
    import envs
    from envs.diagnostics.experts import expert_policy
    from envs.diagnostics.spaces import FlatActions, MultiDiscrete

    env, params = envs.make(env_id)
    expert = expert_policy(env, params)
    if isinstance(env.action_space(params), MultiDiscrete):
        env, vector_expert = FlatActions(env), expert
        expert = lambda key, obs: env.to_flat(vector_expert(key, obs))
    return Task(env_id, env, params, envs.reference_returns(env_id), expert,
                DEMO_ENV_IDS.get(env_id, env_id))


@functools.cache
def expert_trajectories(env_id: str, n_transitions: int):
    """Whole expert episodes on `env_id`, `n_transitions` transitions if no episode ends
    before the time limit (cached: every imitation algorithm learns from the same data)."""
    from jaxrl_align.data import rollout

    task = make_task(env_id)
    max_steps = rollout.max_episode_steps(task.params)
    n_episodes = math.ceil(n_transitions / max_steps)
    return rollout.collect_episodes(task.env, task.params, task.expert,
                                    jax.random.PRNGKey(12345), n_episodes, max_steps)


@functools.cache
def expert_demonstrations(env_id: str, n_transitions: int):
    """`expert_trajectories` as flat transitions."""
    from jaxrl_align.data import demonstrations

    return demonstrations.demo_transitions(expert_trajectories(env_id, n_transitions))


@register("ppo")
def ppo_trial(task: Task, flags: DerailFlags) -> Trial:
    from experiments.configs import derail_ppo
    from jaxrl_align.rl import ppo

    config = derail_ppo(task.env_id, flags.budget)
    return Trial(ppo.make(config, task.env, task.params), num_updates=config.num_updates)


# BC with imitation's defaults; one update is one epoch over the demonstrations.
BC_EPOCHS = 50


@register("bc")
def bc_trial(task: Task, flags: DerailFlags) -> Trial:
    from experiments.configs import scaled
    from jaxrl_align.algorithms import bc

    return Trial(bc.make(bc.BCConfig(), task.env, task.params),
                 num_updates=scaled(BC_EPOCHS, flags.budget, 1),
                 data=task.demonstrations(flags))


# DAgger: imitation's defaults (linear β over 15 rounds, 4 BC epochs a round) for 10 rounds.
DAGGER_ROUNDS = 10


@register("dagger")
def dagger_trial(task: Task, flags: DerailFlags) -> Trial:
    from experiments.configs import scaled
    from jaxrl_align.algorithms import dagger

    # DAgger interacts where the demonstrations come from (InitShiftTest: InitShiftTrain, its
    # expert queried there) and is evaluated on the task itself.
    source = task if task.demo_env_id == task.env_id else make_task(task.demo_env_id)
    rounds = scaled(DAGGER_ROUNDS, flags.budget, 1)
    algo = dagger.make(dagger.DAggerConfig(rounds=rounds), source.env, source.params,
                       dagger.policy_expert(source.expert))
    return Trial(algo, num_updates=rounds, data=dagger.DAggerData())


# SQIL on the same expert demonstrations as BC and GAIL: DQN as configs.SQIL_CARTPOLE for 20,000
# steps on Discrete tasks; SAC (lr 1e-3, 64-64, α fixed at 0.01) for 10,000 steps on Box ones
# (Parabola).
SQIL_DQN_STEPS, SQIL_SAC_STEPS = 20_000, 10_000


@register("sqil")
def sqil_trial(task: Task, flags: DerailFlags) -> Trial:
    from experiments.configs import SQIL_CARTPOLE, scaled
    from jaxrl_align.algorithms import sqil
    from jaxrl_align.spaces import space_spec

    if space_spec(task.env, task.params).discrete_actions:
        config = dataclasses.replace(SQIL_CARTPOLE, total_timesteps=scaled(
            SQIL_DQN_STEPS, flags.budget, SQIL_CARTPOLE.learning_starts + SQIL_CARTPOLE.train_freq))
    else:
        from jaxrl_align.rl import sac

        # A fixed temperature, as configs.SQIL_SAC_PENDULUM (a learned one collapses SQIL).
        config = sac.SACConfig(hidden=(64, 64), lr=1e-3, learn_ent_coef=False,
                               ent_coef_init=0.01,
                               total_timesteps=scaled(SQIL_SAC_STEPS, flags.budget, 200))
    return Trial(sqil.make(config, task.env, task.params), num_updates=config.num_updates,
                 data=task.demonstrations(flags))


# Density-based reward: imitation's defaults (a state-action KDE, bandwidth 0.5, standardised
# inputs), PPO as the PPO row's on the same budget, on the log density of the demonstrations.
@register("density")
def density_trial(task: Task, flags: DerailFlags) -> Trial:
    from experiments.configs import derail_ppo
    from jaxrl_align.algorithms import density

    config = density.DensityConfig(ppo=derail_ppo(task.env_id, flags.budget, clip_value=False))
    return Trial(density.make(config, task.env, task.params), num_updates=config.ppo.num_updates,
                 data=task.demonstration_episodes(flags))


# GAIL and AIRL: imitation's trainer defaults (AIRL's own: 16 discriminator steps, generator
# γ 0.95), the generator being the PPO of the row above on the same budget. Discriminator batches
# are capped at the demonstrations available (2,000 transitions by default).
ADVERSARIAL_DEMO_BATCH = 512


def adversarial_trial(module, config, task: Task, flags: DerailFlags) -> Trial:
    from experiments.configs import derail_ppo

    generator = derail_ppo(task.env_id, flags.budget, gamma=config.ppo.gamma)
    config = dataclasses.replace(config, ppo=generator, demo_batch_size=ADVERSARIAL_DEMO_BATCH)
    return Trial(module.make(config, task.env, task.params), num_updates=config.ppo.num_updates,
                 data=task.demonstrations(flags))


@register("gail")
def gail_trial(task: Task, flags: DerailFlags) -> Trial:
    from jaxrl_align.algorithms.adversarial import gail

    return adversarial_trial(gail, gail.GAILConfig(), task, flags)


@register("airl")
def airl_trial(task: Task, flags: DerailFlags) -> Trial:
    from jaxrl_align.algorithms.adversarial import airl

    return adversarial_trial(airl, airl.AIRLConfig(), task, flags)


# Preference comparisons: synthetic Bradley-Terry preferences from each task's true reward, no
# demonstrations, labelled as imitation's gatherer does (a 0/1 label sampled from the
# probability, set here rather than inherited from the CartPole-tuned defaults), query rollouts
# from fresh episodes. The agent is the PPO of the ppo row on the same budget (its rounds are
# that PPO's updates); the reward model is imitation's: one state-action net per member (several
# tasks pay for the action: LargestSum, Sort, Parabola), here a 3-member ensemble with active
# selection as in the CartPole defaults. Fragments are whole episodes (DERAIL horizons are 1-20
# steps, and a fragment never spans two episodes), capped at the rollouts they are cut from.
PREFERENCE_COMPARISONS = 1000
PREFERENCE_REWARD_STEPS = 200


def preference_config(task: Task, flags: DerailFlags):
    from experiments.configs import derail_ppo
    from jaxrl_align.algorithms import preference_comparisons as pc
    from jaxrl_align.data import rollout
    from jaxrl_align.preferences import gatherer
    from jaxrl_align.preferences.model import PreferenceModelConfig

    agent = derail_ppo(task.env_id, flags.budget)
    query_num_steps = pc.PreferenceComparisonsConfig.query_num_steps
    length = min(rollout.max_episode_steps(task.params), agent.num_steps, query_num_steps)
    return pc.PreferenceComparisonsConfig(
        total_comparisons=PREFERENCE_COMPARISONS, fragment_length=length,
        initial_reward_steps=PREFERENCE_REWARD_STEPS, query_reset=True,
        gatherer=gatherer.GathererConfig(temperature=1.0, sample=True),
        model=PreferenceModelConfig(ensemble_size=3, use_action=True), ppo=agent)


@register("preferences")
def preferences_trial(task: Task, flags: DerailFlags) -> Trial:
    from jaxrl_align.algorithms import preference_comparisons as pc

    config = preference_config(task, flags)
    return Trial(pc.make(config, task.env, task.params), num_updates=config.ppo.num_updates)


# MCE IRL (imitation's defaults: linear reward over the one-hot states, Adam 1e-2, at most 1000
# iterations) on the tabular tasks without terminal states (occupancy matching here covers
# fixed horizons only, as imitation's does): RiskyPath, Branching, InitShiftTrain/Test. It learns
# from the state visits of the same expert episodes as the other rows. The model it fits is the
# task's own, so on InitShiftTest it knows the test initial state and fits a reward to the
# InitShiftTrain expert's visits: the question that task asks of reward learning.
@register("mce_irl")
def mce_irl_trial(task: Task, flags: DerailFlags) -> Trial | None:
    import envs
    from experiments.configs import scaled
    from jaxrl_align.algorithms.irl import mce_irl, occupancy_matching

    if not envs.is_tabular(task.env) or not mce_irl.has_fixed_horizon(task.params):
        return None
    config = mce_irl.MCEIRLConfig()
    data = occupancy_matching.expert_data(task.params, config.discount,
                                          trajectories=task.demonstration_episodes(flags))
    return Trial(mce_irl.make(config, task.env, task.params),
                 num_updates=scaled(config.max_iter, flags.budget, 1), data=data)


@dataclass
class Cell:
    algo: str
    env_id: str
    scores: list[float]  # normalised score of each seed (none where the algorithm does not apply)
    returns: list[float]  # mean return of each seed
    mean: float | None  # None: not applicable
    ci95: tuple[float, float] | None
    compile_s: float
    run_s: float

    def summary(self) -> str:
        if self.mean is None:
            return "n/a"
        return f"{self.mean:.2f} [{self.ci95[0]:.2f}, {self.ci95[1]:.2f}]"


def make_cell(algo: str, task: Task, returns, compile_s: float, run_s: float) -> Cell:
    """`returns` [seeds, episodes] of the final policies, scored like results.json."""
    from jaxrl_align import evaluation

    summary = evaluation.summarize(returns, *task.reference_returns)
    scores = np.asarray(summary["normalized_score"])
    return Cell(algo, task.env_id, scores.tolist(), summary["return_mean"],
                float(scores.mean()), evaluation.bootstrap_ci(scores, statistic=np.mean),
                compile_s, run_s)


def baseline_cells(task: Task, flags: DerailFlags) -> list[Cell]:
    """The expert and random rows. Neither learns, so instead of two runs they are one
    evaluation program: each seed's episodes of both policies."""
    from jaxrl_align.data import rollout
    from jaxrl_align.runtime import runner

    space = task.env.action_space(task.params)
    max_steps = rollout.max_episode_steps(task.params)

    def returns(is_expert, key):
        def policy(key, obs):
            return jnp.where(is_expert, task.expert(key, obs), space.sample(key))

        return rollout.rollout_episodes(task.env, task.params, policy, key,
                                        flags.eval_episodes, max_steps).returns

    per_seed = jax.vmap(returns, in_axes=(None, 0))
    both = jax.jit(jax.vmap(per_seed, in_axes=(0, None)))
    is_expert = jnp.array([True, False])
    keys = runner.seed_keys(range(flags.seeds))
    start = time.perf_counter()
    compiled = both.lower(is_expert, keys).compile()
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    expert_returns, random_returns = np.asarray(compiled(is_expert, keys))
    run_s = time.perf_counter() - start
    return [make_cell("expert", task, expert_returns, compile_s, run_s),
            make_cell("random", task, random_returns, 0.0, 0.0)]


def run_cell(name: str, task: Task, flags: DerailFlags) -> Cell:
    from jaxrl_align.runtime import runner

    trial = ALGORITHMS[name](task, flags)
    if trial is None:
        return Cell(name, task.env_id, [], [], None, None, 0.0, 0.0)
    # One chunk, evaluated like the final evaluation: the two evaluation programs are
    # then the same, and the second one comes from the compilation cache.
    settings = runner.RunSettings(
        seeds=flags.seeds, num_updates=trial.num_updates, num_chunks=1,
        eval_episodes=flags.eval_episodes, final_eval_episodes=flags.eval_episodes,
        progress=False)
    result = runner.run(trial.algo, task.env, task.params, settings, trial.data,
                        env_id=task.env_id, reference_returns=task.reference_returns)
    return make_cell(name, task, result.final_returns, result.compile_s, result.run_s)


def run_task(task_id: str, algos: list[str], flags: DerailFlags) -> list[Cell]:
    """The baselines and every algorithm on one task (in a worker process when
    `flags.workers` > 1)."""
    from jaxrl_align.platform import compilation_cache

    if flags.compile_cache:
        compilation_cache.enable()
    task = make_task(task_id)
    cells = baseline_cells(task, flags)
    cells += [run_cell(algo, task, flags) for algo in algos]
    for cell in cells:
        print(f"{short_name(task_id):>14} {cell.algo:>8}: {cell.summary()}  "
              f"(compile {cell.compile_s:.1f}s, run {cell.run_s:.1f}s)", flush=True)
    return cells


def run_tasks(task_ids: list[str], algos: list[str], flags: DerailFlags) -> list[Cell]:
    """All cells, in `task_ids` order. Workers take the tasks with the largest PPO budget
    first, so that none is left running a long task alone at the end. They are spawned,
    not forked (JAX is not fork-safe), so they see the algorithms registered in this
    module."""
    if flags.workers == 1:
        return [cell for task_id in task_ids for cell in run_task(task_id, algos, flags)]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from experiments.configs import derail_total_timesteps as ppo_budget

    with ProcessPoolExecutor(flags.workers, multiprocessing.get_context("spawn")) as pool:
        futures = {task_id: pool.submit(run_task, task_id, algos, flags)
                   for task_id in sorted(task_ids, key=ppo_budget, reverse=True)}
        return [cell for task_id in task_ids for cell in futures[task_id].result()]


def short_name(env_id: str) -> str:
    return env_id.removeprefix("seals/").removesuffix("-v0")


def markdown_table(cells: list[Cell], algos: list[str], task_ids: list[str]) -> str:
    by_key = {(c.algo, c.env_id): c for c in cells}
    lines = ["| algorithm | " + " | ".join(short_name(t) for t in task_ids) + " |",
             "|---|" + "---|" * len(task_ids)]
    for algo in algos:
        entries = [by_key[(algo, task_id)].summary() for task_id in task_ids]
        lines.append(f"| {algo} | " + " | ".join(entries) + " |")
    return "\n".join(lines)


def plot_heatmap(path: Path, cells: list[Cell], algos: list[str], task_ids: list[str],
                 seeds: int) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from jaxrl_align.runtime import plots

    by_key = {(c.algo, c.env_id): c for c in cells}
    means = np.array([[np.nan if by_key[(a, t)].mean is None else by_key[(a, t)].mean
                       for t in task_ids] for a in algos])
    fig, ax = plt.subplots(figsize=(1.25 * len(task_ids) + 2, 0.7 * len(algos) + 1.8))
    cmap = plt.get_cmap("RdYlGn").with_extremes(bad="lightgrey")  # bad: not applicable
    image = ax.imshow(np.ma.masked_invalid(np.clip(means, 0, 1)), cmap=cmap, vmin=0, vmax=1,
                      aspect="auto")
    for i, algo in enumerate(algos):
        for j, task_id in enumerate(task_ids):
            ax.text(j, i, by_key[(algo, task_id)].summary().replace(" [", "\n["),
                    ha="center", va="center", fontsize=7)
    ax.set_xticks(range(len(task_ids)), [short_name(t) for t in task_ids], rotation=40,
                  ha="right")
    ax.set_yticks(range(len(algos)), algos)
    ax.set_title(f"Normalised score, mean and 95% bootstrap CI over {seeds} seeds")
    fig.colorbar(image, ax=ax, fraction=0.025, pad=0.02)
    fig.tight_layout()
    return plots.save_figure(fig, path, dpi=120)


def parse_names(text: str, known: list[str], flag: str) -> list[str]:
    from experiments.common import UsageError

    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UsageError(f"{flag}: unknown {', '.join(unknown)}; known: {', '.join(known)}")
    return names


def main(flags: DerailFlags) -> list[Cell]:
    from experiments.common import UsageError, exit_on_usage_error
    from jaxrl_align.data.files import write_atomic
    from jaxrl_align.runtime import outputs

    try:
        if min(flags.seeds, flags.budget, flags.eval_episodes, flags.workers) <= 0:
            raise UsageError("--seeds, --budget, --eval-episodes and --workers must be "
                             "positive")
        algos = parse_names(flags.algos, list(ALGORITHMS), "--algos")
        task_ids = (parse_names(flags.tasks, diagnostic_task_ids(), "--tasks")
                    or diagnostic_task_ids())
    except UsageError as error:
        exit_on_usage_error(error)

    start = time.perf_counter()
    cells = run_tasks(task_ids, algos, flags)
    wall_s = time.perf_counter() - start

    rows = list(BASELINES) + algos
    table = markdown_table(cells, rows, task_ids)
    flags.out.mkdir(parents=True, exist_ok=True)
    write_atomic(flags.out / "derail.md", lambda f: f.write((table + "\n").encode()))
    outputs.write_json(flags.out / "derail.json", {
        "flags": {k: str(v) if isinstance(v, Path) else v
                  for k, v in dataclasses.asdict(flags).items()},
        "seeds": list(range(flags.seeds)), "wall_s": wall_s,
        "cells": [dataclasses.asdict(c) for c in cells]})
    plot_heatmap(flags.out / "derail.png", cells, rows, task_ids, flags.seeds)
    print()
    print(table)
    print(f"\nwall time {wall_s:.0f}s; wrote {flags.out}/derail.md, derail.json, derail.png")
    return cells


if __name__ == "__main__":
    main(tyro.cli(DerailFlags))
