"""PPO beside rejax 0.1.3's PPO on gymnax CartPole-v1, 1 seed and 16 seeds (`ROWS`).

Both sides train our `PPOConfig()` (16 envs x 128 steps, 4 epochs x 4 minibatches, lr 1e-3
annealed to 0, 64-64 tanh; `peer/rejax_ppo.py` gives rejax's spelling of each setting and what
it cannot match) for 244 updates, 499,712 environment steps per seed, all seeds in one program.

Our side is `experiments.bench.peer.train_and_evaluate`: the training program compiled ahead
of time and run once, as the peer side times rejax's `train` (`runner.run` is not used: its
run_s also holds the evaluation at every chunk's end and the final one), then `EVAL_EPISODES`
greedy episodes per seed.
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

from experiments.bench.peer import REPO, Row, train_and_evaluate

ENV_ID = "CartPole-v1"
TIMESTEPS = 500_000  # per seed; both sides round down to whole updates of 2,048 steps
EVAL_EPISODES = 20
SETTINGS = ("gymnax CartPole-v1, 244 updates x 16 envs x 128 steps (499,712 steps/seed), "
            "4 epochs x 4 minibatches, Adam lr 1e-3 -> 0, 64-64 tanh, ent 0, "
            f"{EVAL_EPISODES} greedy episodes/seed")


def row_name(seeds: int) -> str:
    return f"ppo_{seeds}_seed" + ("s" if seeds > 1 else "")


def ours(seeds: int) -> dict:
    """Our side of a row: `seeds` seeds of PPO in one program, then the evaluation."""
    import envs
    from jaxrl_align.rl import ppo

    env, env_params = envs.make(ENV_ID)
    algo = ppo.make(ppo.PPOConfig(total_timesteps=TIMESTEPS), env, env_params)
    return train_and_evaluate(row_name(seeds), env, env_params, algo, None, seeds,
                              lambda states: algo.config.num_updates * algo.config.steps_per_update,
                              "env steps", EVAL_EPISODES)


def rejax_command(seeds: int, out: Path) -> list[str]:
    return [str(REPO / ".venv-rejax" / "bin" / "python"),
            str(REPO / "experiments" / "bench" / "peer" / "rejax_ppo.py"),
            "--seeds", str(seeds), "--timesteps", str(TIMESTEPS),
            "--eval-episodes", str(EVAL_EPISODES), "--row", row_name(seeds), "--out", str(out)]


ROWS: dict[str, Row] = {
    row_name(seeds): Row(peer="rejax",
                         settings=f"{seeds} seed{'s' if seeds > 1 else ''}, {SETTINGS}",
                         ours=partial(ours, seeds),
                         peer_command=partial(rejax_command, seeds), pairs=3)
    for seeds in (1, 16)
}
