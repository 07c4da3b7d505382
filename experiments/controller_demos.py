"""Demonstrations from the hand-written controllers of `envs.controllers` (cheap, deterministic
experts made inside the project: no downloads, no expert training).

    python -m experiments.controller_demos --env seals/MountainCar-v0 --out runs/mcar_demos.npz
    python -m experiments.controller_demos --env seals/CartPole-v0 --episodes 10 --out demos.npz
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jax

from envs.controllers import CONTROLLERS


def controller_episodes(env_id: str, num_episodes: int, seed: int = 0):
    """`num_episodes` whole episodes (`Trajectories`) of the controller for `env_id`."""
    import envs
    from jaxrl_align.data import rollout

    if env_id not in CONTROLLERS:
        raise ValueError(f"--env: no controller for {env_id!r}; expected one of "
                         f"{sorted(CONTROLLERS)}")
    env, env_params = envs.make(env_id)
    return rollout.collect_episodes(env, env_params, CONTROLLERS[env_id], jax.random.PRNGKey(seed),
                                    num_episodes, rollout.max_episode_steps(env_params))


def save_controller_demos(path: Path, env_id: str, num_episodes: int = 10, seed: int = 0) -> Path:
    from jaxrl_align.data import demonstrations as demos

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    trajs = controller_episodes(env_id, num_episodes, seed)
    return demos.save_demos(path, trajs, env_id=env_id,
                            source=f"hand-written controller (experiments.controller_demos, "
                                   f"seed {seed})")


@dataclass(frozen=True)
class Flags:
    env: str = "seals/MountainCar-v0"
    """environment id with a controller: seals/CartPole-v0 or seals/MountainCar-v0"""
    episodes: int = 10
    """number of episodes to record"""
    seed: int = 0
    """PRNG seed of the initial states"""
    out: Path = Path("runs/controller_demos.npz")
    """demonstrations file to write (.npz, read by --demos of experiments.train)"""


def main(flags: Flags) -> Path:
    from experiments.common import UsageError, exit_on_usage_error
    from jaxrl_align.data import demonstrations as demos

    if flags.episodes <= 0:
        exit_on_usage_error(UsageError(f"--episodes: expected a positive number, "
                                       f"got {flags.episodes}"))
    if flags.env not in CONTROLLERS:
        exit_on_usage_error(UsageError(f"--env: no controller for {flags.env!r}; expected one of "
                                       f"{sorted(CONTROLLERS)}"))
    path = save_controller_demos(flags.out, flags.env, flags.episodes, flags.seed)
    _, meta = demos.load_demos(path, env_id=flags.env)
    print(f"wrote {path}: {meta['num_episodes']} episodes of {flags.env}, "
          f"mean return {meta['mean_return']:.1f}")
    return path


if __name__ == "__main__":
    import tyro

    main(tyro.cli(Flags))
