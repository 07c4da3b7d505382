"""The MJX backend: MuJoCo XLA, the same physics written in JAX, stepped inside the program.

An environment's physics state is one float32 array `[qpos (nq), qvel (nv), qacc_warmstart (nv),
position (2)]`: what the next step's forward pass needs (the warm start too, as the C backend keeps
MuJoCo's), and the task's forward-velocity point after the last step. Every other `mjx.Data` field
is recomputed by the step's forward pass, so it is rebuilt from a zero `mjx.Data` each step rather
than carried. Observation and reward come from the same `tasks` functions as the C backend's, in
float32 (x64 off) where that one computes in float64.

Where MJX differs from MuJoCo's C engine: it computes in float32, and has no PGS solver, so
Humanoid (whose model asks for PGS) is solved with Newton here (the constraint problem is convex,
so both approach the same forces; they differ in how far they get in the model's 50 iterations).
"""
from __future__ import annotations

import contextlib
import io

import jax
import jax.numpy as jnp
import numpy as np

from envs.mujoco import tasks as task_lib
from envs.mujoco.host_physics import load_model

# mujoco.mjx prints "Failed to import warp" to stdout when MuJoCo Warp (a GPU backend this project
# does not use) is missing: keep it out of users' output.
with contextlib.redirect_stdout(io.StringIO()):
    from mujoco import mjx


class _Fields:
    """An mjx.Model or mjx.Data read by MuJoCo's field names. MJX keeps some fields the tasks read
    (`cinert`, `cfrc_ext`) in its implementation part and warns on each public access."""

    def __init__(self, mjx_object):
        self._object = mjx_object

    def __getattr__(self, name):
        try:
            return object.__getattribute__(self._object, name)
        except AttributeError:
            return getattr(self._object._impl, name)


def _mjx_model(task: task_lib.MujocoTask):
    import mujoco

    model = load_model(task)
    if model.opt.solver == mujoco.mjtSolver.mjSOL_PGS:  # MJX solves with CG or Newton only
        model.opt.solver = mujoco.mjtSolver.mjSOL_NEWTON
    return model, mjx.put_model(model, impl="jax")


class MjxPhysics:
    """`reset` and `step` of one environment of a task in MJX; the environment class vmaps them."""

    backend = "mjx"

    def __init__(self, task: task_lib.MujocoTask):
        self.task = task
        host_model, self.model = _mjx_model(task)
        self.nq, self.nv, self.nu = host_model.nq, host_model.nv, host_model.nu
        self.obs_size = task_lib.observation_size(task, host_model)
        self.action_low = np.asarray(host_model.actuator_ctrlrange[:, 0], np.float32)
        self.action_high = np.asarray(host_model.actuator_ctrlrange[:, 1], np.float32)
        self.dt = float(host_model.opt.timestep) * task.frame_skip
        self._init_qpos = np.asarray(host_model.qpos0, np.float32)
        self._blank = mjx.make_data(self.model, impl="jax")
        self._start_jit = jax.jit(self._start)

    def __repr__(self):
        return f"MjxPhysics({self.task.env_id})"

    # --- the physics state array -----------------------------------------------------------------
    def _split(self, physics):
        nq, nv = self.nq, self.nv
        return (physics[:nq], physics[nq:nq + nv], physics[nq + nv:nq + 2 * nv],
                physics[nq + 2 * nv:])

    def _data(self, physics):
        qpos, qvel, warmstart, _ = self._split(physics)
        return self._blank.replace(qpos=qpos, qvel=qvel, qacc_warmstart=warmstart)

    def _fields(self, data):
        return task_lib.read_fields(jnp, self.task, _Fields(self.model), _Fields(data))

    def _pack(self, data, fields):
        position = jnp.asarray(self.task.position(jnp, fields), jnp.float32)
        return jnp.concatenate([data.qpos, data.qvel, data.qacc_warmstart, position])

    def _observe(self, fields):
        return jnp.asarray(self.task.observe(jnp, fields), jnp.float32)

    # --- reset and step --------------------------------------------------------------------------
    def _start(self, qpos, qvel):
        """(physics, observation) of the state (qpos, qvel) with no warm start, after a forward
        pass: gymnasium's mj_resetData then set_state."""
        data = self._blank.replace(qpos=jnp.asarray(qpos, jnp.float32),
                                   qvel=jnp.asarray(qvel, jnp.float32))
        data = mjx.forward(self.model, data)
        fields = self._fields(data)
        return self._pack(data, fields), self._observe(fields)

    def reset(self, qpos_noise: jax.Array, qvel_noise: jax.Array):
        """(physics state, observation) of a new episode from v4's noise draws."""
        return self._start(self._init_qpos + qpos_noise, qvel_noise)

    def step(self, physics, action, qpos_noise, qvel_noise, reset):
        """(physics, final observation, reward, healthy, observation): the observation the step
        ended in, and the one the next step starts from (a new episode's where `reset`)."""
        action = jnp.asarray(action, jnp.float32)
        data = self._data(physics).replace(ctrl=action)
        data = jax.lax.fori_loop(0, self.task.frame_skip,
                                 lambda _, d: mjx.step(self.model, d), data)
        if self.task.needs_contact_forces:  # gymnasium computes cfrc_ext after every step
            data = mjx.rne_postconstraint(self.model, data)
        fields = self._fields(data)
        velocity = task_lib.forward_velocity(jnp, self._split(physics)[3],
                                             self.task.position(jnp, fields), self.dt)
        reward, healthy = self.task.reward(jnp, fields, action, velocity)
        final_obs = self._observe(fields)
        stepped = self._pack(data, fields)
        fresh, fresh_obs = self.reset(qpos_noise, qvel_noise)
        return (jnp.where(reset, fresh, stepped), final_obs, jnp.asarray(reward, jnp.float32),
                jnp.asarray(healthy, jnp.bool_), jnp.where(reset, fresh_obs, final_obs))

    # --- host helpers, for tests and tools --------------------------------------------------------
    def qpos_qvel(self, physics) -> tuple[np.ndarray, np.ndarray]:
        """(qpos, qvel) float64 of one physics state, on the host."""
        qpos, qvel, _, _ = self._split(np.asarray(physics, np.float64))
        return qpos.copy(), qvel.copy()

    def physics_from(self, qpos, qvel) -> np.ndarray:
        """A physics state set to (qpos, qvel) (rounded to float32) with a forward pass run, as
        gymnasium's `set_state` leaves it."""
        physics, _ = self._start_jit(np.asarray(qpos, np.float32), np.asarray(qvel, np.float32))
        return np.asarray(physics)
