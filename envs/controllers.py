"""Hand-written controllers: cheap, deterministic experts made inside the project (no downloads,
no expert training), for demonstrations in tests, benchmarks and examples.

Each is `policy(key, obs) -> action` for one observation (`CONTROLLERS` by env id):

- seals/CartPole-v0: a linear balancing controller; 500 on every episode.
- seals/MountainCar-v0: energy pumping with a tilted switching line: push right when
  `velocity − 0.014·(position + 0.5) + 0.0005 > 0`, else left (mean return about −107). The
  plain "push in the direction of the velocity" rule averages −120, exactly the 0.8
  normalised-score mark, which leaves an imitator no margin; the slope and offset of the line
  come from a grid search.
"""
from __future__ import annotations

import jax.numpy as jnp


def cartpole_controller(key, obs):
    """Keeps seals/CartPole-v0 upright for all 500 steps."""
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
