"""Demonstrations from hand-written controllers: cheap, deterministic experts made inside the
project (no downloads, no expert training).

    python -m experiments.controller_demos --env seals/MountainCar-v0 --out runs/mcar_demos.npz
    python -m experiments.controller_demos --env seals/CartPole-v0 --episodes 10 --out demos.npz

Controllers (`CONTROLLERS`, `policy(key, obs) -> action` for one observation):

- seals/CartPole-v0: a linear balancing controller (the tests' and benchmarks' expert); 500 on
  every episode.
- seals/MountainCar-v0: energy pumping with a tilted switching line: push right when
  `velocity − 0.014·(position + 0.5) + 0.0005 > 0`, else left. Mean return −107 over 200
  episodes (worst −118). The plain "push in the direction of the velocity" rule averages
  −120, exactly the 0.8 normalised-score mark, which leaves an imitator no margin; the slope
  and offset of the line come from a grid search (21 × 17 values, 200 episodes each).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp



def cartpole_controller(key, obs):
    """A hand-written linear controller that keeps seals/CartPole-v0 upright for all 500 steps
    (the tests' and benchmarks' expert)."""
    del key
    x, x_dot, theta, theta_dot = obs
    return (theta + 0.3 * theta_dot + 0.05 * x + 0.2 * x_dot > 0).astype(jnp.int32)


def mountain_car_controller(key, obs):
    """Energy pumping on seals/MountainCar-v0: 2 (push right) or 0 (push left), never 1."""
    del key
    position, velocity = obs[0], obs[1]
    return jnp.where(velocity - 0.014 * (position + 0.5) + 0.0005 > 0, 2, 0).astype(jnp.int32)


CONTROLLERS = {"seals/CartPole-v0": cartpole_controller,
               "seals/MountainCar-v0": mountain_car_controller}


def controller_episodes(env_id: str, num_episodes: int, seed: int = 0):
    """`num_episodes` whole episodes (`Trajectories`) of the controller for `env_id`."""
    import envs
    from jaxrl_align import rollout

    if env_id not in CONTROLLERS:
        raise ValueError(f"--env: no controller for {env_id!r}; expected one of "
                         f"{sorted(CONTROLLERS)}")
    env, env_params = envs.make(env_id)
    return rollout.collect_episodes(env, env_params, CONTROLLERS[env_id], jax.random.PRNGKey(seed),
                                    num_episodes, rollout.max_episode_steps(env_params))


def save_controller_demos(path: Path, env_id: str, num_episodes: int = 10, seed: int = 0) -> Path:
    from jaxrl_align import demos

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
    from jaxrl_align import demos

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
