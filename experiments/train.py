"""Train any algorithm on any environment, many seeds in one compiled program.

    python -m experiments.train ppo --env seals/CartPole-v0 --seeds 8 --out runs/ppo
    python -m experiments.train dqn --env seals/CartPole-v0 --seeds 8
    python -m experiments.train sac --env Pendulum-v1 --seeds 8
    python -m experiments.train sqil --demos runs/quickstart/demos.npz --seeds 8
    python -m experiments.train bc --demos runs/quickstart/demos.npz --seeds 8 --out runs/bc
    python -m experiments.train gail --env seals/CartPole-v0 --seeds 8   # the cached expert's demos
    python -m experiments.train dagger --env seals/CartPole-v0 --seeds 8 --dagger.rounds 4
    python -m experiments.train dagger --env Pendulum-v1 --expert-policy runs/ppo-Pendulum-v1/policy.msgpack
    python -m experiments.train density --demos runs/quickstart/demos.npz --seeds 8
    python -m experiments.train gail --demos runs/quickstart/demos.npz --seeds 8
    python -m experiments.train airl --demos runs/quickstart/demos.npz --seeds 8
    python -m experiments.train mce_irl --env seals/CliffWorld7x4-v0 --mce-irl.hidden 32 32
    python -m experiments.train maxent_irl --env seals/RiskyPath-v0 --expert-episodes 100
    python -m experiments.train preferences --env seals/CartPole-v0 --seeds 8 --save-comparisons
    python -m experiments.train preferences --dataset runs/preferences/comparisons.npz

Writes config.json, results.json, metrics.jsonl and learning_curve.png to --out (PPO also
writes its best seed's policy: policy.msgpack + policy.json, an expert for DAgger; AIRL
its transferable reward g: reward.msgpack + reward.json; preferences with
--save-comparisons writes the best seed's labelled pairs: comparisons.npz). The run flags
(--seeds, --num-chunks, --resume, ...) are `jaxrl_align.runtime.runner.RunSettings`.
"""
from __future__ import annotations

if __name__ == "__main__":  # jax.distributed must start before gymnax (imported below) touches JAX
    from experiments.common import init_distributed_from_argv

    init_distributed_from_argv()

from dataclasses import dataclass, field, replace
from pathlib import Path

import jax
import tyro

from experiments.common import (ProcessFlags, UsageError, check_process_flags,
                                exit_on_usage_error, flag_error, init_distributed, make_env,
                                parse_command_line, reference_returns_or_none, results_table,
                                setup_jax)
from jaxrl_align.algorithms import bc, dagger, density, preference_comparisons, sqil
from jaxrl_align.algorithms.adversarial import airl, gail
from jaxrl_align.algorithms.irl import maxent_irl, mce_irl, occupancy_matching
from jaxrl_align.hparams import config_to_dict
from jaxrl_align.rl import dqn, ppo, sac
from jaxrl_align.runtime.runner import RunSettings


@dataclass(frozen=True, kw_only=True)
class Command:
    """What every command has: the runner's settings and the process's flags, both as
    top-level flags (--seeds, --env, ...)."""

    run: tyro.conf.OmitArgPrefixes[RunSettings] = field(default_factory=RunSettings)
    process: tyro.conf.OmitArgPrefixes[ProcessFlags] = field(default_factory=ProcessFlags)


@dataclass(frozen=True, kw_only=True)
class PPOCommand(Command):
    """PPO on the environment's reward (how experts are made)."""

    ppo: ppo.PPOConfig = field(default_factory=ppo.PPOConfig)

    def build(self, env, env_params):
        return ppo.make(self.ppo, env, env_params)

    def after(self, result, out: Path) -> None:
        # The best seed's policy, an expert for `dagger --expert-policy <out>/policy.msgpack`.
        dagger.save_ppo_expert(out / "policy.msgpack", self.ppo, self.process.env,
                               result.run_state(result.best_run()).params)


@dataclass(frozen=True, kw_only=True)
class DQNCommand(Command):
    """DQN on the environment's reward (Discrete actions); SB3's defaults."""

    dqn: dqn.DQNConfig = field(default_factory=dqn.DQNConfig)

    def build(self, env, env_params):
        return dqn.make(self.dqn, env, env_params)


@dataclass(frozen=True, kw_only=True)
class SACCommand(Command):
    """SAC on the environment's reward (Box actions); SB3's defaults."""

    sac: sac.SACConfig = field(default_factory=sac.SACConfig)

    def build(self, env, env_params):
        return sac.make(self.sac, env, env_params)


def load_trajectories(path, env, env_params, env_id: str):
    """A demonstrations file, checked against the environment it is trained on."""
    from jaxrl_align.data import demonstrations

    trajs, _ = demonstrations.load_demos(path, env=env, env_params=env_params, env_id=env_id)
    return trajs


@dataclass(frozen=True, kw_only=True)
class DemosCommand(Command):
    """What the commands that learn from a demonstrations file share."""

    demos: Path | None = None
    """demonstrations file written by `save_demos` (experiments.experts, the quickstart,
    experiments.controller_demos, experiments.convert); default: the cached demonstrations of
    the task's expert (experiments.experts), made first if missing"""

    def demos_path(self) -> Path:
        """--demos, or the task's cached expert demonstrations (made on first use)."""
        if self.demos is not None:
            return Path(self.demos)
        if not hasattr(self, "_cached_demos"):
            from experiments import experts

            try:
                path = experts.expert_demos(self.process.env)
            except ValueError as e:
                raise UsageError(f"--demos: none given and {e}") from None
            object.__setattr__(self, "_cached_demos", path)
        return self._cached_demos

    def data_paths(self) -> dict:
        return {"demos": self.demos_path()}

    def load_trajectories(self, env, env_params):
        return load_trajectories(self.demos_path(), env, env_params, self.process.env)

    def load_data(self, env, env_params):
        """The demonstrations as flat transitions, checked against the environment."""
        from jaxrl_align.data import demonstrations

        return demonstrations.demo_transitions(self.load_trajectories(env, env_params))


@dataclass(frozen=True, kw_only=True)
class BCCommand(DemosCommand):
    """Behavioural cloning from a demonstrations file (.npz, see jaxrl_align.data.demonstrations)."""

    bc: bc.BCConfig = field(default_factory=bc.BCConfig)

    def build(self, env, env_params):
        return bc.make(self.bc, env, env_params)

    def load_data(self, env, env_params):
        data = super().load_data(env, env_params)
        if len(data) < self.bc.batch_size:
            raise UsageError(f"{self.demos_path()}: {len(data)} transitions, fewer than "
                             f"--bc.batch-size={self.bc.batch_size}")
        return data


@dataclass(frozen=True, kw_only=True)
class GAILCommand(DemosCommand):
    """GAIL from a demonstrations file; the generator is PPO (--gail.ppo.*)."""

    gail: gail.GAILConfig = field(default_factory=gail.GAILConfig)

    def build(self, env, env_params):
        return gail.make(self.gail, env, env_params)


@dataclass(frozen=True, kw_only=True)
class AIRLCommand(DemosCommand):
    """AIRL from a demonstrations file; exports the learned reward g (shaping stripped)."""

    airl: airl.AIRLConfig = field(default_factory=airl.AIRLConfig)

    def build(self, env, env_params):
        return airl.make(self.airl, env, env_params)

    def after(self, result, out: Path) -> None:
        best = result.run_state(result.best_run())
        airl.save_reward(out / "reward.msgpack", self.airl, self.process.env, best.disc_vars)


@dataclass(frozen=True, kw_only=True)
class DAggerCommand(Command):
    """DAgger, the expert queried at every step: with --expert-policy, a PPO run's policy
    (<out>/policy.msgpack of `experiments.train ppo` or `experiments.experts`); otherwise the
    task's expert recipe (experiments.experts): its controller or exact optimal policy, or its
    cached PPO expert (trained first if missing)."""

    expert_policy: Path | None = None
    """a PPO policy written by `experiments.train ppo` (<out>/policy.msgpack); default: the
    task's expert (experiments.experts)"""
    demos: Path | None = None
    """optional expert demonstrations (.npz) added to round 0 (imitation's expert_trajs)"""
    dagger: dagger.DAggerConfig = field(default_factory=dagger.DAggerConfig)

    def expert(self, env, env_params):
        """(expert, expert_params), or a UsageError naming the flag."""
        path = self.expert_policy_path()
        if path is None:
            from envs.controllers import CONTROLLERS
            from envs.diagnostics.experts import expert_policy

            if self.process.env in CONTROLLERS:
                return dagger.policy_expert(CONTROLLERS[self.process.env]), None
            return dagger.policy_expert(expert_policy(env, env_params)), None
        path = Path(path)
        if not path.is_file() or not path.with_suffix(".json").is_file():
            raise UsageError(f"--expert-policy: expected {path} and {path.with_suffix('.json')} "
                             "(written by experiments.train ppo)")
        try:
            return dagger.load_ppo_expert(path, env, env_params, env_id=self.process.env)
        except ValueError as e:
            raise UsageError(f"--expert-policy: {e}") from None

    def build(self, env, env_params):
        return dagger.make(self.dagger, env, env_params, self.expert(env, env_params)[0])

    def expert_policy_path(self) -> Path | None:
        """--expert-policy, the task's cached PPO expert, or None (a controller or an exact
        optimal policy, nothing on disk)."""
        if self.expert_policy is not None:
            return Path(self.expert_policy)
        from experiments import experts

        try:
            recipe = experts.recipe_of(self.process.env)
        except ValueError as e:
            raise UsageError(f"--expert-policy: none given and {e}") from None
        if recipe.kind != "ppo":
            return None
        return experts.ensure_expert(self.process.env) / "policy.msgpack"

    def data_paths(self) -> dict:
        paths = {"expert_policy": self.expert_policy_path(), "demos": self.demos}
        return {name: path for name, path in paths.items() if path is not None}

    def load_data(self, env, env_params):
        demos = None
        if self.demos is not None:
            from jaxrl_align.data import demonstrations

            demos = demonstrations.demo_transitions(
                load_trajectories(self.demos, env, env_params, self.process.env))
        return dagger.DAggerData(expert_params=self.expert(env, env_params)[1], demos=demos)


@dataclass(frozen=True, kw_only=True)
class SQILCommand(DemosCommand):
    """SQIL from a demonstrations file: DQN (--dqn.*) on Discrete action spaces, SAC (--sac.*)
    on Box ones; the other learner's flags are ignored."""

    dqn: dqn.DQNConfig = field(default_factory=dqn.DQNConfig)
    sac: sac.SACConfig = field(default_factory=sac.SACConfig)

    def build(self, env, env_params):
        from jaxrl_align.spaces import space_spec

        discrete = space_spec(env, env_params).discrete_actions
        return sqil.make(self.dqn if discrete else self.sac, env, env_params)


@dataclass(frozen=True, kw_only=True)
class DensityCommand(DemosCommand):
    """Density-based reward: PPO (--density.ppo.*) on the log of a kernel density estimate of
    the demonstrations (imitation's DensityAlgorithm)."""

    density: density.DensityConfig = field(default_factory=density.DensityConfig)

    def build(self, env, env_params):
        return density.make(self.density, env, env_params)

    def load_data(self, env, env_params):
        """The demonstrations as trajectories (a per-timestep model needs their timesteps)."""
        return self.load_trajectories(env, env_params)


def require_tabular(env, env_id: str) -> None:
    import envs

    if not envs.is_tabular(env):
        raise UsageError(f"--env {env_id}: tabular IRL needs an env with an exact model "
                         "(seals/CliffWorld*, seals/Random-v0, seals/RiskyPath-v0, ...)")


@dataclass(frozen=True, kw_only=True)
class TabularIRLCommand(Command):
    """What MCE IRL and MaxEnt IRL commands share: their demonstrations."""

    demos_file: Path | None = None
    """demonstrations (.npz, see jaxrl_align.data.demonstrations); default: the env's
    soft-optimal expert"""
    expert_episodes: int = 0
    """without --demos-file: 0 fits the expert's exact occupancy, N > 0 N sampled episodes"""

    def data_paths(self) -> dict:
        return {} if self.demos_file is None else {"demos": self.demos_file}

    def tabular_data(self, env, env_params, discount):
        trajs = None
        if self.demos_file is not None:
            trajs = load_trajectories(self.demos_file, env, env_params, self.process.env)
        if self.expert_episodes < 0:
            raise UsageError(f"--expert-episodes: expected 0 (exact occupancy) or a positive "
                             f"number of episodes, got {self.expert_episodes}")
        return occupancy_matching.expert_data(
            env_params, discount, self.expert_episodes,
            jax.random.PRNGKey(self.run.first_seed), trajectories=trajs)


@dataclass(frozen=True, kw_only=True)
class MCEIRLCommand(TabularIRLCommand):
    """MCE IRL on a tabular env, from its soft-optimal expert or a demonstrations file."""

    mce_irl: mce_irl.MCEIRLConfig = field(default_factory=mce_irl.MCEIRLConfig)

    def build(self, env, env_params):
        require_tabular(env, self.process.env)
        return mce_irl.make(self.mce_irl, env, env_params)

    def load_data(self, env, env_params):
        return self.tabular_data(env, env_params, self.mce_irl.discount)


@dataclass(frozen=True, kw_only=True)
class MaxEntIRLCommand(TabularIRLCommand):
    """Non-causal MaxEnt IRL (Ziebart 2008) on a tabular env, the contrast to mce_irl."""

    maxent_irl: maxent_irl.MaxEntIRLConfig = field(default_factory=maxent_irl.MaxEntIRLConfig)

    def build(self, env, env_params):
        require_tabular(env, self.process.env)
        return maxent_irl.make(self.maxent_irl, env, env_params)

    def load_data(self, env, env_params):
        return self.tabular_data(env, env_params, 1.0)


@dataclass(frozen=True, kw_only=True)
class PreferencesCommand(Command):
    """Preference comparisons: a reward model learned from synthetic Bradley-Terry preferences
    (or, with --dataset, from a saved file of labelled fragment pairs), and PPO trained on it."""

    dataset: Path | None = None
    """offline mode: labelled pairs (.npz, see jaxrl_align.data.preference_dataset); default:
    online, synthetic preferences from the true reward"""
    save_comparisons: bool = False
    """online mode: write the best seed's labelled pairs to <out>/comparisons.npz"""
    preferences: preference_comparisons.PreferenceComparisonsConfig = field(
        default_factory=preference_comparisons.PreferenceComparisonsConfig)

    def build(self, env, env_params):
        if self.dataset is not None and self.save_comparisons:
            raise UsageError("--save-comparisons: only online runs query comparisons "
                             "(drop --dataset)")
        make = preference_comparisons.make_offline if self.dataset else preference_comparisons.make
        return make(self.preferences, env, env_params)

    def data_paths(self) -> dict:
        return {} if self.dataset is None else {"dataset": self.dataset}

    def load_data(self, env, env_params):
        if self.dataset is None:
            return None
        from jaxrl_align.data.preference_dataset import load_preferences

        data, _ = load_preferences(self.dataset, env=env, env_params=env_params,
                                   env_id=self.process.env)
        return data

    def after(self, result, out: Path) -> None:
        if not self.save_comparisons:
            return
        from jaxrl_align.data import preference_dataset

        best = result.best_run()
        preference_dataset.save_preferences(
            out / "comparisons.npz",
            preference_dataset.dataset_from_buffer(result.run_state(best).buffer),
            env_id=self.process.env, source=f"synthetic preferences, seed {result.seeds[best]}",
            extra_metadata={"gatherer": config_to_dict(self.preferences.gatherer)})


COMMANDS = {"ppo": PPOCommand, "dqn": DQNCommand, "sac": SACCommand, "bc": BCCommand,
            "dagger": DAggerCommand, "sqil": SQILCommand, "density": DensityCommand,
            "gail": GAILCommand, "airl": AIRLCommand,
            "mce_irl": MCEIRLCommand, "maxent_irl": MaxEntIRLCommand,
            "preferences": PreferencesCommand}


def file_sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def prepare(command):
    """Everything that can fail on bad input, before any compilation or output:
    (algorithm, env, env_params, data, settings, output folder, data files)."""
    from jaxrl_align.runtime.outputs import check_output_folder
    from jaxrl_align.runtime.runner import num_updates_of

    try:
        command.run.validate()
    except ValueError as e:
        raise flag_error(e) from None
    check_process_flags(command.process)
    env, env_params = make_env(command.process.env)
    algo = command.build(env, env_params)
    data = command.load_data(env, env_params) if hasattr(command, "load_data") else None
    settings = replace(command.run, num_updates=num_updates_of(command.run, algo))
    out = command.process.out or Path("runs") / f"{algo.name}-{command.process.env.replace('/', '_')}"
    check_output_folder(out)
    paths = command.data_paths() if hasattr(command, "data_paths") else {}
    data_files = {name: {"path": str(Path(path).absolute()), "sha256": file_sha256(path)}
                  for name, path in paths.items()} or None
    return algo, env, env_params, data, settings, out, data_files


def main(command, sweep=None):
    """Train `command`; with `sweep` (a `jaxrl_align.runtime.sweep.Sweep`) every configuration ×
    seed. Returns the RunResult (None in processes other than 0 of a multi-process run)."""
    from jaxrl_align.runtime import runner
    from jaxrl_align.runtime.checkpoints import ResumeError
    from jaxrl_align.runtime.outputs import OutputError

    init_distributed(command.process)
    try:
        algo, env, env_params, data, settings, out, data_files = prepare(command)
    except ValueError as e:  # UsageError, DataFileError, OutputError, bad settings
        exit_on_usage_error(e)
    setup_jax(command.process)
    try:
        result = runner.run(algo, env, env_params, settings, data, env_id=command.process.env,
                            reference_returns=reference_returns_or_none(command.process.env),
                            out_dir=out, extra_config={"command": type(command).__name__,
                                                       "command_flags": config_to_dict(command)},
                            sweep=sweep, data_files=data_files)
    except (ResumeError, OutputError) as e:
        exit_on_usage_error(e)
    if jax.process_index() != 0:
        return None
    if hasattr(command, "after"):
        command.after(result, out)
    if sweep is None:
        print(results_table(f"{algo.name} on {command.process.env}", result.seeds,
                            result.summary))
    print(f"compile {result.compile_s:.1f}s, run {result.run_s:.1f}s; wrote {out}/")
    return result


if __name__ == "__main__":
    main(parse_command_line(COMMANDS))
