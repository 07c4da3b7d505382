"""The main job, end to end on CPU in a few minutes:

1. train PPO experts on seals/CartPole-v0 (a few seeds in one program; keep the best),
2. roll out demonstrations from the expert and save them (.npz, validated on load),
3. train BC on 8 seeds in one program from those demonstrations,
4. train AIRL beside it (4 seeds in one program) from the same demonstrations, and save its
   learned reward,
5. print a table (per-seed return, normalised score, IQM with a 95% bootstrap interval) and write
   results, metrics and learning curves under --out (a second quickstart replaces them).

    python -m experiments.quickstart            # or: make quickstart
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import jax
import tyro

ENV_ID = "seals/CartPole-v0"


@dataclass(frozen=True)
class QuickstartFlags:
    out: Path = Path("runs/quickstart")
    """output folder"""
    expert_seeds: int = 4
    """PPO seeds trained together; the best one becomes the expert"""
    num_demos: int = 10
    """expert episodes saved as demonstrations"""
    bc_seeds: int = 8
    """BC seeds trained together"""
    bc_epochs: int = 40
    """passes over the demonstrations"""
    airl_seeds: int = 4
    """AIRL seeds trained together (0 skips AIRL)"""
    airl_timesteps: int = 1_200_000
    """AIRL's generator steps per seed (AIRLConfig's 800,000 leave seed 2 failing from ~1% of
    initial states: 496.2 over 200 episodes; at 1.2M all 4 seeds reach 500 on 200 each)"""
    compile_cache: bool = True
    """use JAX's persistent compilation cache"""
    progress: bool = True
    """show progress bars"""


def main(flags: QuickstartFlags) -> dict:
    import envs
    from experiments.common import results_table
    from jaxrl_align.algorithms import bc
    from jaxrl_align.algorithms.adversarial import airl
    from jaxrl_align.data import demonstrations as demos
    from jaxrl_align.data import rollout
    from jaxrl_align.platform import compilation_cache
    from jaxrl_align.rl import ppo
    from jaxrl_align.runtime import runner

    for name in ("expert_seeds", "num_demos", "bc_seeds", "bc_epochs"):
        if getattr(flags, name) <= 0:
            raise SystemExit(f"error: --{name.replace('_', '-')}: expected a positive integer, "
                             f"got {getattr(flags, name)}")
    if flags.airl_timesteps <= 0:
        raise SystemExit(f"error: --airl-timesteps: expected a positive integer, got "
                         f"{flags.airl_timesteps}")
    if flags.airl_seeds < 0:
        raise SystemExit(f"error: --airl-seeds: expected 0 (skip) or more, got {flags.airl_seeds}")
    if flags.compile_cache:
        compilation_cache.enable()
    start = time.perf_counter()
    env, env_params = envs.make(ENV_ID)
    reference = envs.reference_returns(ENV_ID)

    print(f"[1/4] PPO experts on {ENV_ID}: {flags.expert_seeds} seeds in one program")
    expert_algo = ppo.make(ppo.PPOConfig(), env, env_params)
    expert_run = runner.run(
        expert_algo, env, env_params,
        runner.RunSettings(seeds=flags.expert_seeds, num_chunks=10, progress=flags.progress,
                           overwrite=True),
        env_id=ENV_ID, reference_returns=reference, out_dir=flags.out / "expert")
    best = expert_run.best_run()
    expert_state = expert_run.run_state(best)
    print(results_table("PPO experts", expert_run.seeds, expert_run.summary))

    print(f"[2/4] {flags.num_demos} demonstrations from expert seed {best}")
    expert_policy = lambda key, obs: expert_algo.act(expert_state, key, obs)
    trajs = jax.jit(lambda key: rollout.rollout_episodes(
        env, env_params, expert_policy, key, flags.num_demos,
        rollout.max_episode_steps(env_params)))(jax.random.PRNGKey(12345))
    demo_path = demos.save_demos(flags.out / "demos.npz", trajs, env_id=ENV_ID,
                                 source=f"PPO expert (quickstart, seed {best})")
    trajs, meta = demos.load_demos(demo_path, env=env, env_params=env_params, env_id=ENV_ID)
    print(f"      saved {demo_path}: mean return {meta['mean_return']:.1f}")

    print(f"[3/4] BC on {flags.bc_seeds} seeds in one program")
    bc_algo = bc.make(bc.BCConfig(epochs=flags.bc_epochs), env, env_params)
    bc_run = runner.run(
        bc_algo, env, env_params,
        runner.RunSettings(seeds=flags.bc_seeds, num_chunks=10, progress=flags.progress,
                           overwrite=True),
        data=demos.demo_transitions(trajs), env_id=ENV_ID, reference_returns=reference,
        out_dir=flags.out / "bc")
    summaries = {"expert": expert_run.summary, "bc": bc_run.summary}
    if flags.airl_seeds > 0:
        print(f"[4/4] AIRL on {flags.airl_seeds} seeds in one program")
        airl_config = airl.AIRLConfig()
        airl_config = replace(airl_config, ppo=replace(airl_config.ppo,
                                                       total_timesteps=flags.airl_timesteps))
        airl_algo = airl.make(airl_config, env, env_params)
        airl_run = runner.run(
            airl_algo, env, env_params,
            runner.RunSettings(seeds=flags.airl_seeds, num_chunks=10, progress=flags.progress,
                               overwrite=True),
            data=demos.demo_transitions(trajs), env_id=ENV_ID, reference_returns=reference,
            out_dir=flags.out / "airl")
        reward_path = airl.save_reward(flags.out / "airl" / "reward.msgpack", airl_config, ENV_ID,
                                       airl_run.state.disc_vars)
        summaries["airl"] = airl_run.summary
    print()
    print(results_table(f"BC on {ENV_ID} from {flags.num_demos} expert trajectories",
                        bc_run.seeds, bc_run.summary))
    if flags.airl_seeds > 0:
        print()
        print(results_table(f"AIRL on {ENV_ID} from the same trajectories", airl_run.seeds,
                            airl_run.summary))
    wall = time.perf_counter() - start
    print(f"\nBC: compile {bc_run.compile_s:.1f}s, run {bc_run.run_s:.1f}s." + (
        f" AIRL: compile {airl_run.compile_s:.1f}s, run {airl_run.run_s:.1f}s; learned reward "
        f"(g, every seed) in {reward_path}." if flags.airl_seeds > 0 else ""))
    print(f"Quickstart wall time {wall:.1f}s. Outputs in {flags.out}/ (expert/, demos.npz, bc/"
          f"{', airl/' if flags.airl_seeds > 0 else ''}: config.json, results.json, "
          f"metrics.jsonl, learning_curve.png)")
    from experiments.train import COMMANDS, DemosCommand

    from_demos = [name for name, command in COMMANDS.items() if issubclass(command, DemosCommand)]
    print(f"Available: python -m experiments.train {{{','.join(COMMANDS)}}} --help; from these "
          f"demonstrations: {', '.join(from_demos)} (--demos {flags.out}/demos.npz)")
    return {**summaries, "wall_s": wall}


if __name__ == "__main__":
    main(tyro.cli(QuickstartFlags))
