"""seals' six MuJoCo tasks: what each observes and pays, written once for both backends.

seals/X-v1 is gymnasium's X-v4 with the current positions kept in the observation
(`exclude_current_positions_from_observation=False`) and no early termination
(`terminate_when_unhealthy=False`; v4 then pays the healthy bonus only while healthy), under a
1000-step time limit that truncates. Reset adds v4's noise to the model's initial state, and one
environment step is `frame_skip` MuJoCo steps with the action as the control.

Every function here takes an array namespace `xp` (numpy for the MuJoCo backend, which computes in
float64 on the host as gymnasium does; jax.numpy for MJX) and a dict of arrays with leading batch
axes: `qpos`, `qvel` and the task's `extra_fields`. Those fields are what MuJoCo leaves in `mjData`
after a step, so, as in gymnasium, position-dependent ones (`xpos`, `xipos`, `cinert`, ...) are
those of the last substep's start.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

HORIZON = 1000
# Where gymnasium keeps its MuJoCo models: read from the installed package, never copied here.
_GYMNASIUM_ASSETS = ("gymnasium", "envs", "mujoco", "assets")

Fields = dict[str, Any]
Getter = Callable[[Any, Any], Any]  # (model, data) -> array: mujoco.MjModel/MjData or mjx's


def model_path(xml_file: str) -> str:
    """Path of one of gymnasium's MuJoCo model files."""
    import importlib.util

    spec = importlib.util.find_spec(_GYMNASIUM_ASSETS[0])
    if spec is None or spec.origin is None:
        raise ImportError("the seals MuJoCo tasks read their models from gymnasium: "
                          "pip install 'gymnasium==1.3.0'")
    root = os.path.dirname(spec.origin)
    return os.path.join(root, *_GYMNASIUM_ASSETS[1:], xml_file)


@dataclass(frozen=True, eq=False)
class MujocoTask:
    env_id: str
    gymnasium_id: str  # the v4 task it changes
    xml_file: str
    frame_skip: int
    reset_noise_scale: float
    qvel_noise: str  # "uniform" (±scale) or "normal" (scale · N(0, 1)), as v4 draws it
    observe: Callable[[Any, Fields], Any]
    # The point whose displacement over a step, divided by dt, is the forward velocity: [..., 2].
    position: Callable[[Any, Fields], Any]
    # (xp, fields after the step, action, forward velocity) -> (reward, healthy)
    reward: Callable[[Any, Fields, Any, Any], tuple[Any, Any]]
    extra_fields: dict[str, Getter] = field(default_factory=dict)
    # Whether an observation needs mj_rnePostConstraint (cfrc_ext), as gymnasium calls it.
    needs_contact_forces: bool = False


def _sum_squares(xp, action):
    return xp.sum(xp.square(action), axis=-1)


def _qpos_qvel(xp, f, clip_qvel: float | None = None):
    qvel = f["qvel"] if clip_qvel is None else xp.clip(f["qvel"], -clip_qvel, clip_qvel)
    return xp.concatenate([f["qpos"], qvel], axis=-1)


def _x_only(xp, f):
    x = f["qpos"][..., 0]
    return xp.stack([x, xp.zeros_like(x)], axis=-1)


def _between(xp, value, low, high):
    return (low < value) & (value < high)


# --- HalfCheetah ---------------------------------------------------------------------------------
def _half_cheetah_reward(xp, f, action, x_velocity):
    reward = x_velocity - 0.1 * _sum_squares(xp, action)
    return reward, xp.ones_like(reward, dtype=bool)


# --- Hopper and Walker2d: planar walkers, healthy while upright ----------------------------------
def _hopper_healthy(xp, f):
    state = xp.concatenate([f["qpos"], f["qvel"]], axis=-1)[..., 2:]
    healthy_state = xp.all((-100.0 < state) & (state < 100.0), axis=-1)
    z, angle = f["qpos"][..., 1], f["qpos"][..., 2]
    return healthy_state & (0.7 < z) & _between(xp, angle, -0.2, 0.2)


def _walker_healthy(xp, f):
    z, angle = f["qpos"][..., 1], f["qpos"][..., 2]
    return _between(xp, z, 0.8, 2.0) & _between(xp, angle, -1.0, 1.0)


def _walker_reward(healthy_fn):
    def reward(xp, f, action, x_velocity):
        healthy = healthy_fn(xp, f)
        return x_velocity + healthy * 1.0 - 1e-3 * _sum_squares(xp, action), healthy
    return reward


# --- Swimmer -------------------------------------------------------------------------------------
def _swimmer_reward(xp, f, action, x_velocity):
    reward = x_velocity - 1e-4 * _sum_squares(xp, action)
    return reward, xp.ones_like(reward, dtype=bool)


# --- Ant: forward velocity of the torso's frame --------------------------------------------------
def _ant_reward(xp, f, action, x_velocity):
    state = xp.concatenate([f["qpos"], f["qvel"]], axis=-1)
    z = f["qpos"][..., 2]
    healthy = xp.all(xp.isfinite(state), axis=-1) & (0.2 <= z) & (z <= 1.0)
    return x_velocity + healthy * 1.0 - 0.5 * _sum_squares(xp, action), healthy


def _torso_xy(model, data):
    del model
    return data.xpos[..., 1, :2]  # body 1 is the torso (body 0 is the world)


# --- Humanoid: forward velocity of the centre of mass; com-based inertia and velocity observed ---
def _mass_center_xy(model, data):
    masses = model.body_mass
    return (masses @ data.xipos / masses.sum())[..., :2]


def _humanoid_observe(xp, f):
    batch = f["qpos"].shape[:-1]
    flat = lambda name: f[name].reshape(batch + (-1,))
    return xp.concatenate([f["qpos"], f["qvel"], flat("cinert"), flat("cvel"),
                           f["qfrc_actuator"], flat("cfrc_ext")], axis=-1)


def _humanoid_reward(xp, f, action, x_velocity):
    healthy = _between(xp, f["qpos"][..., 2], 1.0, 2.0)
    # v4 charges data.ctrl, which is the action as given (MuJoCo clamps it internally).
    reward = 1.25 * x_velocity + healthy * 5.0 - 0.1 * _sum_squares(xp, action)
    return reward, healthy


TASKS: dict[str, MujocoTask] = {task.env_id: task for task in (
    MujocoTask("seals/Ant-v1", "Ant-v4", "ant.xml", 5, 0.1, "normal",
               observe=lambda xp, f: _qpos_qvel(xp, f), position=lambda xp, f: f["torso_xy"],
               reward=_ant_reward, extra_fields={"torso_xy": _torso_xy}),
    MujocoTask("seals/HalfCheetah-v1", "HalfCheetah-v4", "half_cheetah.xml", 5, 0.1, "normal",
               observe=lambda xp, f: _qpos_qvel(xp, f), position=_x_only,
               reward=_half_cheetah_reward),
    MujocoTask("seals/Hopper-v1", "Hopper-v4", "hopper.xml", 4, 5e-3, "uniform",
               observe=lambda xp, f: _qpos_qvel(xp, f, clip_qvel=10.0), position=_x_only,
               reward=_walker_reward(_hopper_healthy)),
    MujocoTask("seals/Humanoid-v1", "Humanoid-v4", "humanoid.xml", 5, 1e-2, "uniform",
               observe=_humanoid_observe, position=lambda xp, f: f["mass_center_xy"],
               reward=_humanoid_reward,
               extra_fields={
                   "mass_center_xy": _mass_center_xy,
                   "cinert": lambda model, data: data.cinert,
                   "cvel": lambda model, data: data.cvel,
                   "qfrc_actuator": lambda model, data: data.qfrc_actuator,
                   "cfrc_ext": lambda model, data: data.cfrc_ext,
               }, needs_contact_forces=True),
    MujocoTask("seals/Swimmer-v1", "Swimmer-v4", "swimmer.xml", 4, 0.1, "uniform",
               observe=lambda xp, f: _qpos_qvel(xp, f), position=lambda xp, f: f["qpos"][..., :2],
               reward=_swimmer_reward),
    MujocoTask("seals/Walker2d-v1", "Walker2d-v4", "walker2d.xml", 4, 5e-3, "uniform",
               observe=lambda xp, f: _qpos_qvel(xp, f, clip_qvel=10.0), position=_x_only,
               reward=_walker_reward(_walker_healthy)),
)}


def forward_velocity(xp, position_before, position_after, dt: float):
    """Velocity of the task's forward point along x over one step (the reward's progress term)."""
    return (position_after[..., 0] - position_before[..., 0]) / dt


def reset_noise(rng_uniform, rng_normal, task: MujocoTask, nq: int, nv: int):
    """(qpos noise, qvel noise) as v4 draws them, from `rng_uniform(n, low, high)` and
    `rng_normal(n)` (numpy's or JAX's sampler: the backends differ in their generators only)."""
    scale = task.reset_noise_scale
    qpos_noise = rng_uniform(nq, -scale, scale)
    qvel_noise = (scale * rng_normal(nv) if task.qvel_noise == "normal"
                  else rng_uniform(nv, -scale, scale))
    return qpos_noise, qvel_noise


def field_getters(task: MujocoTask) -> dict:
    """`name -> getter(model, data)` of every array the task functions read."""
    return {"qpos": lambda model, data: data.qpos, "qvel": lambda model, data: data.qvel,
            **task.extra_fields}


def read_fields(xp, task: MujocoTask, model, data) -> Fields:
    """The arrays `observe`, `position` and `reward` read, taken from one (mj|mjx) data."""
    return {name: xp.asarray(getter(model, data))
            for name, getter in field_getters(task).items()}


def observation_size(task: MujocoTask, model) -> int:
    """Width of the observation, from a compiled `mujoco.MjModel`."""
    import mujoco

    fields = read_fields(np, task, model, mujoco.MjData(model))
    return int(np.asarray(task.observe(np, fields)).shape[-1])
