"""Train any algorithm on any environment, many seeds in one compiled program.

    python -m experiments.train ppo --env seals/CartPole-v0 --seeds 8 --out runs/ppo
    python -m experiments.train bc --demos runs/quickstart/demos.npz --seeds 8 --out runs/bc

Writes config.json, results.json, metrics.jsonl and learning_curve.png to --out.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import tyro

from experiments.common import (RunFlags, UsageError, check_flags, exit_on_usage_error,
                                reference_returns_or_none, make_env, results_table, seed_list,
                                setup_jax)
from jaxrl_align.algorithms import bc, ppo


@dataclass(frozen=True)
class PPOCommand:
    """PPO on the environment's reward (how experts are made)."""

    run: tyro.conf.OmitArgPrefixes[RunFlags] = field(default_factory=RunFlags)
    ppo: ppo.PPOConfig = field(default_factory=ppo.PPOConfig)


@dataclass(frozen=True)
class BCCommand:
    """Behavioural cloning from a demonstrations file (.npz, see jaxrl_align.demos)."""

    demos: Path
    """demonstrations file written by `jaxrl_align.demos.save_demos` (e.g. by the quickstart)"""
    epochs: int = 40
    """passes over the demonstrations (each pass is N // batch_size gradient steps)"""
    run: tyro.conf.OmitArgPrefixes[RunFlags] = field(default_factory=RunFlags)
    bc: bc.BCConfig = field(default_factory=bc.BCConfig)


def prepare(command):
    """Everything that can fail on bad input, before any compilation or output."""
    from jaxrl_align import demos as demos_io
    from jaxrl_align.runner import RunSettings

    flags = command.run
    check_flags(flags)
    env, env_params = make_env(flags.env)
    if isinstance(command, PPOCommand):
        algo, data, num_updates = ppo.make(command.ppo, env, env_params), None, command.ppo.num_updates
    else:
        if command.epochs <= 0:
            raise UsageError(f"--epochs: expected a positive integer, got {command.epochs}")
        trajs, _ = demos_io.load_demos(command.demos, env=env, env_params=env_params,
                                       env_id=flags.env)
        data = demos_io.demo_transitions(trajs)
        if len(data) < command.bc.batch_size:
            raise UsageError(f"{command.demos}: {len(data)} transitions, fewer than "
                             f"--bc.batch-size={command.bc.batch_size}")
        algo, num_updates = bc.make(command.bc, env, env_params), command.epochs
    settings = RunSettings(seeds=seed_list(flags), num_updates=num_updates,
                           num_chunks=min(flags.num_chunks, num_updates),
                           eval_episodes=flags.eval_episodes,
                           final_eval_episodes=flags.final_eval_episodes, progress=flags.progress)
    out = flags.out or Path("runs") / f"{algo.name}-{flags.env.replace('/', '_')}"
    return algo, env, env_params, data, settings, out


def main(command) -> dict:
    from jaxrl_align import runner

    try:
        algo, env, env_params, data, settings, out = prepare(command)
    except ValueError as e:  # UsageError, DemonstrationError, unknown env id
        exit_on_usage_error(e)
    setup_jax(command.run)
    result = runner.run(algo, env, env_params, settings, data, env_id=command.run.env,
                        reference_returns=reference_returns_or_none(command.run.env), out_dir=out,
                        extra_config={"command": type(command).__name__})
    print(results_table(f"{algo.name} on {command.run.env}", result.seeds, result.summary))
    print(f"compile {result.compile_s:.1f}s, run {result.run_s:.1f}s; wrote {out}/")
    return result.summary


if __name__ == "__main__":
    main(tyro.extras.subcommand_cli_from_dict({"ppo": PPOCommand, "bc": BCCommand}))
