"""Train any algorithm on any environment, many seeds in one compiled program.

    python -m experiments.train ppo --env seals/CartPole-v0 --seeds 8 --out runs/ppo
    python -m experiments.train bc --demos runs/quickstart/demos.npz --seeds 8 --out runs/bc
    python -m experiments.train gail --demos runs/quickstart/demos.npz --seeds 8
    python -m experiments.train airl --demos runs/quickstart/demos.npz --seeds 8
    python -m experiments.train mce_irl --env seals/CliffWorld7x4-v0 --mce-irl.hidden 32 32
    python -m experiments.train maxent_irl --env seals/RiskyPath-v0 --expert-episodes 100
    python -m experiments.train preferences --env seals/CartPole-v0 --seeds 8 --save-comparisons
    python -m experiments.train preferences --dataset runs/preferences/comparisons.npz

Writes config.json, results.json, metrics.jsonl and learning_curve.png to --out (AIRL also
writes its transferable reward g: reward.msgpack + reward.json; preferences with
--save-comparisons writes the best seed's labelled pairs: comparisons.npz).
"""
from __future__ import annotations

if __name__ == "__main__":  # jax.distributed must start before gymnax (imported below) touches JAX
    from experiments.common import init_distributed_from_argv

    init_distributed_from_argv()

from dataclasses import dataclass, field
from pathlib import Path

import jax
import tyro

from experiments.common import (RunFlags, UsageError, check_flags, exit_on_usage_error,
                                init_distributed, make_env, reference_returns_or_none,
                                results_table, run_settings, setup_jax)
from jaxrl_align.algorithms import airl, bc, gail, maxent_irl, mce_irl, ppo
from jaxrl_align.algorithms import preference_comparisons

Flags = tyro.conf.OmitArgPrefixes[RunFlags]


@dataclass(frozen=True)
class PPOCommand:
    """PPO on the environment's reward (how experts are made)."""

    run: Flags = field(default_factory=RunFlags)
    ppo: ppo.PPOConfig = field(default_factory=ppo.PPOConfig)

    def build(self, env, env_params):
        return ppo.make(self.ppo, env, env_params), self.ppo.num_updates


@dataclass(frozen=True)
class BCCommand:
    """Behavioural cloning from a demonstrations file (.npz, see jaxrl_align.demos)."""

    demos: Path
    """demonstrations file written by `jaxrl_align.demos.save_demos` (e.g. by the quickstart)"""
    epochs: int = 40
    """passes over the demonstrations (each pass is N // batch_size gradient steps)"""
    run: Flags = field(default_factory=RunFlags)
    bc: bc.BCConfig = field(default_factory=bc.BCConfig)

    def build(self, env, env_params):
        if self.epochs <= 0:
            raise UsageError(f"--epochs: expected a positive integer, got {self.epochs}")
        return bc.make(self.bc, env, env_params), self.epochs


@dataclass(frozen=True)
class GAILCommand:
    """GAIL from a demonstrations file; the generator is PPO (--gail.ppo.*)."""

    demos: Path
    """demonstrations file written by `jaxrl_align.demos.save_demos`"""
    run: Flags = field(default_factory=RunFlags)
    gail: gail.GAILConfig = field(default_factory=gail.GAILConfig)

    def build(self, env, env_params):
        return gail.make(self.gail, env, env_params), self.gail.ppo.num_updates


@dataclass(frozen=True)
class AIRLCommand:
    """AIRL from a demonstrations file; exports the learned reward g (shaping stripped)."""

    demos: Path
    """demonstrations file written by `jaxrl_align.demos.save_demos`"""
    run: Flags = field(default_factory=RunFlags)
    airl: airl.AIRLConfig = field(default_factory=airl.AIRLConfig)

    def build(self, env, env_params):
        return airl.make(self.airl, env, env_params), self.airl.ppo.num_updates


def tabular_irl_data(command, env, env_params, discount: float) -> mce_irl.TabularIRLData:
    """The demonstrations of a tabular IRL command: a demonstrations file, or the env's own
    soft-optimal expert (its exact occupancy, or --expert-episodes sampled episodes)."""
    from jaxrl_align import demos as demos_io
    from jaxrl_align import tabular

    n_states = env_params.transition.shape[0]
    if command.demos_file is not None:
        trajs, _ = demos_io.load_demos(command.demos_file, env=env, env_params=env_params,
                                       env_id=command.run.env)
        visits = tabular.visits_from_trajectories(trajs, n_states, discount,
                                                  env_params.observation_matrix)
        return mce_irl.TabularIRLData(env_params, visits)
    if command.expert_episodes < 0:
        raise UsageError(f"--expert-episodes: expected 0 (exact occupancy) or a positive "
                         f"number of episodes, got {command.expert_episodes}")
    expert = tabular.soft_value_iteration(env_params, env_params.reward, discount).policy
    if command.expert_episodes == 0:
        visits = tabular.visits_from_occupancy(
            tabular.occupancy_measures(env_params, expert, discount), discount)
    else:
        trajs = tabular.sample_trajectories(jax.random.PRNGKey(command.run.first_seed),
                                            env_params, expert, command.expert_episodes)
        visits = tabular.visits_from_trajectories(trajs, n_states, discount)
    return mce_irl.TabularIRLData(env_params, visits)


def require_tabular(env, env_id: str) -> None:
    import envs

    if not envs.is_tabular(env):
        raise UsageError(f"--env {env_id}: tabular IRL needs an env with an exact model "
                         "(seals/CliffWorld*, seals/Random-v0, seals/RiskyPath-v0, ...)")


@dataclass(frozen=True)
class MCEIRLCommand:
    """MCE IRL on a tabular env, from its soft-optimal expert or a demonstrations file."""

    demos_file: Path | None = None
    """demonstrations (.npz, see jaxrl_align.demos); default: the env's soft-optimal expert"""
    expert_episodes: int = 0
    """without --demos-file: 0 fits the expert's exact occupancy, N > 0 N sampled episodes"""
    run: Flags = field(default_factory=RunFlags)
    mce_irl: mce_irl.MCEIRLConfig = field(default_factory=mce_irl.MCEIRLConfig)

    def build(self, env, env_params):
        require_tabular(env, self.run.env)
        return mce_irl.make(self.mce_irl, env, env_params), self.mce_irl.max_iter

    def tabular_data(self, env, env_params):
        return tabular_irl_data(self, env, env_params, self.mce_irl.discount)


@dataclass(frozen=True)
class MaxEntIRLCommand:
    """Non-causal MaxEnt IRL (Ziebart 2008) on a tabular env, the contrast to mce_irl."""

    demos_file: Path | None = None
    """demonstrations (.npz, see jaxrl_align.demos); default: the env's soft-optimal expert"""
    expert_episodes: int = 0
    """without --demos-file: 0 fits the expert's exact occupancy, N > 0 N sampled episodes"""
    run: Flags = field(default_factory=RunFlags)
    maxent_irl: maxent_irl.MaxEntIRLConfig = field(default_factory=maxent_irl.MaxEntIRLConfig)

    def build(self, env, env_params):
        require_tabular(env, self.run.env)
        return maxent_irl.make(self.maxent_irl, env, env_params), self.maxent_irl.max_iter

    def tabular_data(self, env, env_params):
        return tabular_irl_data(self, env, env_params, 1.0)


@dataclass(frozen=True)
class PreferencesCommand:
    """Preference comparisons: a reward model learned from synthetic Bradley-Terry preferences
    (or, with --dataset, from a saved file of labelled fragment pairs), and PPO trained on it."""

    dataset: Path | None = None
    """offline mode: labelled pairs (.npz, see jaxrl_align.preference_data); default: online,
    synthetic preferences from the true reward"""
    save_comparisons: bool = False
    """online mode: write the best seed's labelled pairs to <out>/comparisons.npz"""
    run: Flags = field(default_factory=RunFlags)
    preferences: preference_comparisons.PreferenceComparisonsConfig = field(
        default_factory=preference_comparisons.PreferenceComparisonsConfig)

    def build(self, env, env_params):
        if self.dataset is not None and self.save_comparisons:
            raise UsageError("--save-comparisons: only online runs query comparisons "
                             "(drop --dataset)")
        make = preference_comparisons.make_offline if self.dataset else preference_comparisons.make
        return make(self.preferences, env, env_params), self.preferences.ppo.num_updates

    def load_data(self, env, env_params):
        if self.dataset is None:
            return None
        from jaxrl_align.preference_data import load_preferences

        data, _ = load_preferences(self.dataset, env=env, env_params=env_params,
                                   env_id=self.run.env)
        return data


COMMANDS = {"ppo": PPOCommand, "bc": BCCommand, "gail": GAILCommand, "airl": AIRLCommand,
            "mce_irl": MCEIRLCommand, "maxent_irl": MaxEntIRLCommand,
            "preferences": PreferencesCommand}


def prepare(command):
    """Everything that can fail on bad input, before any compilation or output."""
    from jaxrl_align import demos as demos_io
    flags = command.run
    check_flags(flags)
    env, env_params = make_env(flags.env)
    algo, num_updates = command.build(env, env_params)
    data = None
    if hasattr(command, "tabular_data"):
        data = command.tabular_data(env, env_params)
    elif hasattr(command, "load_data"):
        data = command.load_data(env, env_params)
    elif hasattr(command, "demos"):
        trajs, _ = demos_io.load_demos(command.demos, env=env, env_params=env_params,
                                       env_id=flags.env)
        data = demos_io.demo_transitions(trajs)
        batch_size = getattr(algo.config, "batch_size", 1)
        if len(data) < batch_size:
            raise UsageError(f"{command.demos}: {len(data)} transitions, fewer than "
                             f"batch_size={batch_size}")
    settings = run_settings(flags, num_updates)
    out = flags.out or Path("runs") / f"{algo.name}-{flags.env.replace('/', '_')}"
    return algo, env, env_params, data, settings, out


def main(command, sweep=None):
    """Train `command`; with `sweep` (a `jaxrl_align.sweep.Sweep`) every configuration × seed.
    Returns the RunResult (None in processes other than 0 of a multi-process run)."""
    from jaxrl_align import runner

    init_distributed(command.run)
    try:
        algo, env, env_params, data, settings, out = prepare(command)
    except ValueError as e:  # UsageError, DemonstrationError, unknown env id
        exit_on_usage_error(e)
    setup_jax(command.run)
    from jaxrl_align.checkpoints import ResumeError

    try:
        result = runner.run(algo, env, env_params, settings, data, env_id=command.run.env,
                            reference_returns=reference_returns_or_none(command.run.env),
                            out_dir=out, extra_config={"command": type(command).__name__},
                            sweep=sweep)
    except ResumeError as e:
        exit_on_usage_error(e)
    if jax.process_index() != 0:
        return None
    if isinstance(command, AIRLCommand):
        best = int(result.final_returns.mean(axis=1).argmax())
        disc_vars = jax.tree.map(lambda x: x[best], result.state.disc_vars)
        airl.save_reward(out / "reward.msgpack", command.airl, command.run.env, disc_vars)
    if isinstance(command, PreferencesCommand) and command.save_comparisons:
        from jaxrl_align import preference_data

        best = int(result.final_returns.mean(axis=1).argmax())
        buffer = jax.tree.map(lambda x: x[best], result.state.buffer)
        preference_data.save_preferences(
            out / "comparisons.npz", preference_data.dataset_from_buffer(buffer),
            env_id=command.run.env, source=f"synthetic preferences, seed {result.seeds[best]}",
            extra_metadata={"gatherer": vars(command.preferences.gatherer)})
    if sweep is None:
        print(results_table(f"{algo.name} on {command.run.env}", result.seeds, result.summary))
    print(f"compile {result.compile_s:.1f}s, run {result.run_s:.1f}s; wrote {out}/")
    return result


if __name__ == "__main__":
    main(tyro.extras.subcommand_cli_from_dict(COMMANDS))
