"""DQN and SAC beside rejax 0.1.3's DQN and SAC, 1 seed each (`ROWS`: `dqn`, `sac`).

- `dqn`, gymnax CartPole-v1: PureJaxRL's DQN CartPole settings (10 envs, one gradient step of
  128 per vectorised step, lr 2.5e-4, a hard target copy every 500 steps, ε 1 -> 0.05 over half
  the run, 10,000 random steps first, buffer 10,000), which are rejax's loop as it is (an
  iteration: one step of every env, then `num_epochs` gradient steps), with `DQNConfig()`'s
  γ, τ and clip and `DQN_CARTPOLE`'s 64-64 tanh network (rejax's DQN fixes 64-64; with ReLU
  our Q-values, fitted by the Huber loss, diverged here): 500,000 env steps and 49,000
  gradient steps per seed.
- `sac`, gymnax Pendulum-v1: `experiments.configs.SAC_PENDULUM` (SB3's defaults with lr 1e-3
  and 64-64 ReLU networks): 10,000 env steps, 100 of them before learning, 9,900 gradient
  steps of 256 per seed.

`peer/rejax_off_policy.py` gives rejax's spelling of each setting and what it cannot match.
Our side is `experiments.bench.peer.train_and_evaluate`, as in `peer/ppo.py`: the training
program compiled ahead of time and run once, then `EVAL_EPISODES` deterministic episodes
per seed (greedy Q; the squashed Gaussian's mean).
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

from experiments.bench.peer import REPO, Row, env_steps_per_seed, train_and_evaluate

ENV_IDS = {"dqn": "CartPole-v1", "sac": "Pendulum-v1"}
TIMESTEPS = {"dqn": 500_000, "sac": 10_000}  # env steps per seed, the random ones included
EVAL_EPISODES = 20
SEEDS = 1
SETTINGS = {
    "dqn": ("gymnax CartPole-v1, 500,000 steps/seed (10,000 random, then 49,000 x (10 envs x 1 "
            "step + 1 gradient step of 128)), buffer 10,000, Adam lr 2.5e-4, target copy every "
            "500 steps, ε 1 -> 0.05 over 250,000 steps, 64-64 tanh, "
            f"{EVAL_EPISODES} greedy episodes/seed"),
    "sac": ("gymnax Pendulum-v1, 10,000 steps/seed (100 before learning, then 9,900 x (1 step "
            "+ 1 gradient step of 256)), Adam lr 1e-3, τ 0.005, learned α from 1 towards -1, "
            f"64-64 ReLU, {EVAL_EPISODES} deterministic episodes/seed"),
}


def config(algo: str, timesteps: int):
    """The row's config of our `algo` at `timesteps` env steps per seed."""
    from dataclasses import replace

    from jaxrl_align.rl import dqn

    if algo == "dqn":
        return dqn.DQNConfig(lr=2.5e-4, buffer_size=10_000, learning_starts=10_000,
                             batch_size=128, train_freq=1, gradient_steps=1, num_envs=10,
                             target_update_interval=500, exploration_fraction=0.5,
                             activation="tanh", total_timesteps=timesteps)
    from experiments.configs import SAC_PENDULUM

    return replace(SAC_PENDULUM, total_timesteps=timesteps)


def ours(algo: str, timesteps: int | None = None, eval_episodes: int = EVAL_EPISODES) -> dict:
    """Our side of a row (default: its budget), then the evaluation."""
    import envs
    from jaxrl_align.rl import dqn, sac

    env, env_params = envs.make(ENV_IDS[algo])
    cfg = config(algo, TIMESTEPS[algo] if timesteps is None else timesteps)
    make = {"dqn": dqn.make, "sac": sac.make}[algo]
    return train_and_evaluate(algo, env, env_params, make(cfg, env, env_params), None, SEEDS,
                              env_steps_per_seed, "env steps", eval_episodes)


def rejax_command(algo: str, out: Path) -> list[str]:
    return [str(REPO / ".venv-rejax" / "bin" / "python"),
            str(REPO / "experiments" / "bench" / "peer" / "rejax_off_policy.py"),
            "--algo", algo, "--seeds", str(SEEDS), "--timesteps", str(TIMESTEPS[algo]),
            "--eval-episodes", str(EVAL_EPISODES), "--row", algo, "--out", str(out)]


ROWS: dict[str, Row] = {
    algo: Row(peer="rejax", settings=f"{SEEDS} seed, {SETTINGS[algo]}",
              ours=partial(ours, algo), peer_command=partial(rejax_command, algo), pairs=3)
    for algo in ("dqn", "sac")
}
