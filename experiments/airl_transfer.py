"""Reward transfer check for AIRL: train AIRL on several seeds in one program, then train a
fresh PPO agent on each seed's exported reward g alone (no shaping, no discriminator, no
demonstrations) and score it by the true reward.

    python -m experiments.airl_transfer --seeds 8
    python -m experiments.airl_transfer --seeds 8 --airl.no-reward-use-action   # state-only g
    python -m experiments.airl_transfer --seeds 8 --no-normalize-reward         # raw g

Demonstrations are 10 episodes of the hand-written CartPole controller (return 500). Prints,
per seed, AIRL's own normalised score and the transferred agent's, and writes them to
`--out`/airl_transfer.json.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import jax
import numpy as np
import tyro

from jaxrl_align.algorithms.adversarial import airl
from jaxrl_align.rl import ppo

ENV_ID = "seals/CartPole-v0"


@dataclass(frozen=True)
class TransferFlags:
    seeds: int = 8
    """AIRL seeds (and transferred agents), each trained together in one program"""
    airl: airl.AIRLConfig = field(default_factory=airl.AIRLConfig)
    """AIRL settings"""
    transfer: ppo.PPOConfig = field(
        default_factory=lambda: ppo.PPOConfig(total_timesteps=1_000_000))
    """the fresh PPO agent trained on g (1M steps; docs/algorithms/adversarial.md)"""
    normalize_reward: bool = True
    """standardise g by its running mean and variance while the fresh agent trains (imitation's
    `NormalizedRewardNet`); without it PPO on g fails on most seeds (g is ~-100 per step where
    the expert never goes, and the critic's gradients swamp the actor's)"""
    eval_episodes: int = 20
    """deterministic evaluation episodes per seed"""
    out: Path = Path("runs/airl_transfer")
    """output folder"""


def main(flags: TransferFlags) -> dict:
    import envs
    from envs.controllers import cartpole_controller
    from jaxrl_align import algorithm, evaluation
    from jaxrl_align.data import rollout
    from jaxrl_align.platform import compilation_cache
    from jaxrl_align.runtime import outputs, runner
    from jaxrl_align.types import flatten_trajectories

    if flags.seeds <= 0 or flags.eval_episodes <= 0:
        raise SystemExit("error: --seeds and --eval-episodes: expected positive integers")
    compilation_cache.enable()
    env, params = envs.make(ENV_ID)
    reference = envs.reference_returns(ENV_ID)
    demos = flatten_trajectories(rollout.collect_episodes(
        env, params, cartpole_controller, jax.random.PRNGKey(0), 10, 500))
    seeds = tuple(range(flags.seeds))
    airl_algo = airl.make(flags.airl, env, params)
    airl_run = runner.run(airl_algo, env, params, runner.RunSettings(
        seeds=flags.seeds, num_chunks=4, final_eval_episodes=flags.eval_episodes), demos,
        reference_returns=reference)

    g = airl.learned_reward(flags.airl, env, params)
    learner = ppo.make(flags.transfer, env, params, reward_apply=g,
                       normalize_reward=flags.normalize_reward)

    def train_and_evaluate(key, reward_vars):
        state, _ = algorithm.train(learner, key, reward_vars, flags.transfer.num_updates)
        policy = lambda k, obs: learner.act(state, k, obs, True)
        return rollout.rollout_episodes(env, params, policy, jax.random.fold_in(key, 1),
                                        flags.eval_episodes, 500).returns

    start = time.perf_counter()
    keys = runner.seed_keys([1000 + s for s in seeds])
    returns = np.asarray(jax.jit(jax.vmap(train_and_evaluate))(keys, airl_run.state.disc_vars))
    transfer_s = time.perf_counter() - start
    transfer = evaluation.summarize(returns, *reference)

    print(f"\n{'seed':>5} {'AIRL score':>11} {'PPO-on-g score':>15}")
    for s, a, t in zip(seeds, airl_run.summary["normalized_score"], transfer["normalized_score"]):
        print(f"{s:>5} {a:>11.3f} {t:>15.3f}")
    print(f"transfer: {sum(x >= 0.8 for x in transfer['normalized_score'])}/{len(seeds)} seeds "
          f">= 0.8; AIRL run {airl_run.run_s:.0f}s, transfer {transfer_s:.0f}s (compile included)")
    record = {"env": ENV_ID, "seeds": list(seeds), "airl": airl_run.summary,
              "transfer": transfer, "transfer_s": transfer_s,
              "reward_use_action": flags.airl.reward_use_action,
              "normalize_reward": flags.normalize_reward,
              "transfer_steps": flags.transfer.num_updates * flags.transfer.steps_per_update}
    print(f"wrote {outputs.write_json(flags.out / 'airl_transfer.json', record)}")
    return record


if __name__ == "__main__":
    main(tyro.cli(TransferFlags))
