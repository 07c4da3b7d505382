"""The MuJoCo backend: MuJoCo's C engine stepped from inside the compiled program.

Each environment's physics state lives in the JAX environment state as an array: MuJoCo's
`mjSTATE_QPOS | QVEL | ACT | WARMSTART` (the warm start too, so that a step gives the same numbers
as gymnasium's env, which keeps its `mjData` between steps) and the task's forward-velocity point,
all float64, carried bit for bit as uint32 (JAX computes in float32). One `jax.pure_callback`
per environment step sets every environment's state into an `mjData`, steps it, reads it back and
computes observation and reward in float64 with numpy, as gymnasium does; under `vmap` the
callback is called once with the whole batch (`vmap_method="broadcast_all"`), which it splits over
a thread pool (MuJoCo releases the GIL while it steps). Every environment starts its step from its
own full state, so results do not depend on threads or batch order.
"""
from __future__ import annotations

import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import jax
import jax.numpy as jnp
import numpy as np

from envs.mujoco import tasks as task_lib


@contextlib.contextmanager
def quiet_mujoco_log():
    """gymnasium's models trip a deprecation warning in MuJoCo 4 ('settotalmass'), which MuJoCo
    prints and appends to MUJOCO_LOG.TXT in the working directory: keep both out of users' way."""
    import mujoco

    config = mujoco.MjLogConfig.get()
    previous = (config.logto_console, config.logto_file)
    config.logto_console, config.logto_file = False, False
    config.set()
    try:
        yield
    finally:
        config = mujoco.MjLogConfig.get()
        config.logto_console, config.logto_file = previous
        config.set()


def load_model(task: task_lib.MujocoTask):
    import mujoco

    with quiet_mujoco_log():
        return mujoco.MjModel.from_xml_path(task_lib.model_path(task.xml_file))


def _as_f64(bits: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(bits, dtype=np.uint32).view(np.float64)


def _as_bits(values: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(values, dtype=np.float64).view(np.uint32)


def _floats(words: jax.Array) -> jax.Array:
    return jax.lax.bitcast_convert_type(words, jnp.float32)


class HostPhysics:
    """Batched reset and step of one task on MuJoCo's C engine, on numpy arrays (the host side
    of the callbacks). A state row is `[mjSTATE (state_size), position (2)]` in float64; a fields
    row is what the task reads (`qpos`, `qvel`, its extra fields), flat."""

    def __init__(self, task: task_lib.MujocoTask, num_threads: int | None = None):
        import mujoco

        self.task = task
        self.model = load_model(task)
        self.spec = (mujoco.mjtState.mjSTATE_QPOS | mujoco.mjtState.mjSTATE_QVEL
                     | mujoco.mjtState.mjSTATE_ACT | mujoco.mjtState.mjSTATE_WARMSTART)
        self.state_size = mujoco.mj_stateSize(self.model, self.spec)
        self.row_size = self.state_size + 2
        self.dt = float(self.model.opt.timestep) * task.frame_skip
        self.init_qpos = np.array(self.model.qpos0, dtype=np.float64)
        self.init_qvel = np.zeros(self.model.nv, dtype=np.float64)
        self.obs_size = task_lib.observation_size(task, self.model)
        self.num_threads = num_threads or os.cpu_count() or 1
        self._datas = [mujoco.MjData(self.model) for _ in range(self.num_threads)]
        self._pool = (ThreadPoolExecutor(self.num_threads, thread_name_prefix="mujoco")
                      if self.num_threads > 1 else None)
        # Two compiled programs may call back at once; each call owns the mjData while it runs.
        self._lock = threading.Lock()
        getters = task_lib.field_getters(task)
        self.field_shapes = {name: np.shape(getter(self.model, self._datas[0]))
                             for name, getter in getters.items()}
        self._readers, start = [], 0
        for name, getter in getters.items():
            size = int(np.prod(self.field_shapes[name], dtype=int))
            self._readers.append((slice(start, start + size), getter))
            start += size
        self.fields_size = start

    def unflatten(self, xp, flat) -> task_lib.Fields:
        """A fields row [..., fields_size] as the dict the task functions read."""
        fields, start = {}, 0
        for name, shape in self.field_shapes.items():
            size = int(np.prod(shape, dtype=int))
            fields[name] = flat[..., start:start + size].reshape(flat.shape[:-1] + shape)
            start += size
        return fields

    # --- per-environment work (run in the worker threads) ---------------------------------------
    def _read(self, data, i: int, rows: np.ndarray, fields: np.ndarray):
        import mujoco

        mujoco.mj_getState(self.model, data, rows[i, :self.state_size], self.spec)
        for where, getter in self._readers:
            fields[i, where] = np.ravel(getter(self.model, data))

    def _reset_one(self, data, qpos_noise, qvel_noise):
        import mujoco

        # gymnasium: mj_resetData, then set_state(init + noise), which runs mj_forward.
        mujoco.mj_resetData(self.model, data)
        data.qpos[:] = self.init_qpos + qpos_noise
        data.qvel[:] = self.init_qvel + qvel_noise
        mujoco.mj_forward(self.model, data)

    def _work(self, job):
        import mujoco

        data, lo, hi, kind, args = job
        if kind == "reset":
            qpos_noise, qvel_noise, rows, fields = args
            for i in range(lo, hi):
                self._reset_one(data, qpos_noise[i], qvel_noise[i])
                self._read(data, i, rows, fields)
            return
        rows_in, actions, qpos_noise, qvel_noise, reset, rows, fields, next_rows, next_fields = args
        m, skip, contact = self.model, self.task.frame_skip, self.task.needs_contact_forces
        for i in range(lo, hi):
            mujoco.mj_setState(m, data, rows_in[i, :self.state_size], self.spec)
            data.ctrl[:] = actions[i]
            mujoco.mj_step(m, data, nstep=skip)
            if contact:  # gymnasium computes cfrc_ext after every step
                mujoco.mj_rnePostConstraint(m, data)
            self._read(data, i, rows, fields)
            if reset[i]:
                self._reset_one(data, qpos_noise[i], qvel_noise[i])
                self._read(data, i, next_rows, next_fields)

    def _run(self, kind: str, batch: int, args):
        threads = min(self.num_threads, batch)
        bounds = [batch * k // threads for k in range(threads + 1)]
        jobs = [(self._datas[k], bounds[k], bounds[k + 1], kind, args) for k in range(threads)]
        with self._lock:
            if threads == 1:
                self._work(jobs[0])
            else:
                for future in [self._pool.submit(self._work, job) for job in jobs]:
                    future.result()

    def _positions(self, fields: np.ndarray) -> np.ndarray:
        return np.asarray(self.task.position(np, self.unflatten(np, fields)), dtype=np.float64)

    # --- batched entry points, on [B, ...] numpy arrays -------------------------------------------
    def reset(self, qpos_noise: np.ndarray, qvel_noise: np.ndarray):
        """(state rows [B, row_size], fields [B, fields_size]) of new episodes, float64."""
        batch = qpos_noise.shape[0]
        rows, fields = np.zeros((batch, self.row_size)), np.zeros((batch, self.fields_size))
        self._run("reset", batch, (qpos_noise.astype(np.float64), qvel_noise.astype(np.float64),
                                   rows, fields))
        rows[:, self.state_size:] = self._positions(fields)
        return rows, fields

    def step(self, rows_in, actions, qpos_noise, qvel_noise, reset):
        """One environment step of every row; rows with `reset` start a new episode after it.

        Returns (rows, fields, forward velocity, next fields), float64: the fields the step ended
        in, the velocity of the task's forward point over the step (the one number that needs
        float64: a difference of two positions that grow large), and the fields the next step
        starts from (the new episode's where reset)."""
        batch = rows_in.shape[0]
        rows, fields = np.empty((batch, self.row_size)), np.empty((batch, self.fields_size))
        reset = np.asarray(reset, dtype=bool)
        any_reset = bool(reset.any())
        next_rows = np.empty_like(rows) if any_reset else rows
        next_fields = np.empty_like(fields) if any_reset else fields
        self._run("step", batch, (rows_in, actions, qpos_noise, qvel_noise, reset, rows, fields,
                                  next_rows, next_fields))
        positions = self._positions(fields)
        rows[:, self.state_size:] = positions
        velocity = task_lib.forward_velocity(np, rows_in[:, self.state_size:], positions, self.dt)
        if any_reset:
            next_rows[:, self.state_size:] = self._positions(next_fields)
            keep = ~reset
            next_rows[keep], next_fields[keep] = rows[keep], fields[keep]
        return next_rows, fields, velocity, next_fields


class MujocoPhysics:
    """The JAX side: `reset` and `step` as `pure_callback`s into a `HostPhysics`.

    The physics state is a uint32 array [2 · row_size] (float64 bits). The host returns the
    task's fields rounded to float32 once, and the forward velocity computed in float64;
    observation and reward are the task's functions in JAX (as on MJX)."""

    backend = "mujoco"

    def __init__(self, task: task_lib.MujocoTask, num_threads: int | None = None):
        self.task = task
        self.host = HostPhysics(task, num_threads)
        model = self.host.model
        self.nq, self.nv, self.nu = model.nq, model.nv, model.nu
        self.obs_size = self.host.obs_size
        self.action_low = np.asarray(model.actuator_ctrlrange[:, 0], np.float32)
        self.action_high = np.asarray(model.actuator_ctrlrange[:, 1], np.float32)
        self.dt = self.host.dt

    def __repr__(self):
        return f"MujocoPhysics({self.task.env_id})"

    # One array in and one out per callback: each extra argument of a `pure_callback` costs
    # about as much as the callback itself. Floats travel bit-cast into the uint32 stream.
    def _host_reset(self, packed):
        packed = np.asarray(packed)
        batch_shape = packed.shape[:-1]
        noise = packed.reshape(-1, packed.shape[-1]).view(np.float32)
        rows, fields = self.host.reset(noise[:, :self.nq], noise[:, self.nq:])
        out = np.concatenate([_as_bits(rows), fields.astype(np.float32).view(np.uint32)], axis=1)
        return out.reshape(batch_shape + (-1,))

    def _host_step(self, packed):
        packed = np.asarray(packed)
        batch_shape = packed.shape[:-1]
        packed = packed.reshape(-1, packed.shape[-1])
        bits, floats = packed[:, :self._state_words], packed[:, self._state_words:]
        floats = floats.view(np.float32)
        nu, nq, nv = self.nu, self.nq, self.nv
        rows, fields, velocity, next_fields = self.host.step(
            _as_f64(bits), floats[:, :nu], floats[:, nu:nu + nq].astype(np.float64),
            floats[:, nu + nq:nu + nq + nv].astype(np.float64), floats[:, nu + nq + nv] > 0.5)
        out_floats = np.concatenate([fields, velocity[:, None], next_fields],
                                    axis=1).astype(np.float32)
        out = np.concatenate([_as_bits(rows), out_floats.view(np.uint32)], axis=1)
        return out.reshape(batch_shape + (-1,))

    @property
    def _state_words(self) -> int:
        return 2 * self.host.row_size

    def reset(self, qpos_noise: jax.Array, qvel_noise: jax.Array):
        """(physics state, observation) of a new episode from v4's noise draws."""
        packed = jax.lax.bitcast_convert_type(
            jnp.concatenate([qpos_noise, qvel_noise]).astype(jnp.float32), jnp.uint32)
        out = jax.pure_callback(
            self._host_reset,
            jax.ShapeDtypeStruct((self._state_words + self.host.fields_size,), jnp.uint32),
            packed, vmap_method="broadcast_all")
        fields = self.host.unflatten(jnp, _floats(out[self._state_words:]))
        return out[:self._state_words], self.task.observe(jnp, fields)

    def step(self, physics, action, qpos_noise, qvel_noise, reset):
        """(physics, final observation, reward, healthy, observation); see `HostPhysics.step`."""
        action = jnp.asarray(action, jnp.float32).reshape(-1)
        floats = jnp.concatenate([action, qpos_noise, qvel_noise,
                                  jnp.asarray(reset, jnp.float32).reshape(1)])
        packed = jnp.concatenate([physics, jax.lax.bitcast_convert_type(floats, jnp.uint32)])
        n = self.host.fields_size
        out = jax.pure_callback(
            self._host_step, jax.ShapeDtypeStruct((self._state_words + 2 * n + 1,), jnp.uint32),
            packed, vmap_method="broadcast_all")
        physics, rest = out[:self._state_words], _floats(out[self._state_words:])
        fields = self.host.unflatten(jnp, rest[:n])
        reward, healthy = self.task.reward(jnp, fields, action, rest[n])
        next_obs = self.task.observe(jnp, self.host.unflatten(jnp, rest[n + 1:]))
        return physics, self.task.observe(jnp, fields), reward, healthy, next_obs

    def qpos_qvel(self, physics) -> tuple[np.ndarray, np.ndarray]:
        """(qpos, qvel) float64 of one physics state, on the host (for tests and tools)."""
        row = _as_f64(np.asarray(physics))
        return row[:self.nq].copy(), row[self.nq:self.nq + self.nv].copy()

    def physics_from(self, qpos, qvel) -> np.ndarray:
        """A physics state set exactly to (qpos, qvel) with mj_forward run, as gymnasium's
        `set_state` leaves it (for tests that start both from one state)."""
        import mujoco

        data = mujoco.MjData(self.host.model)
        data.qpos[:], data.qvel[:] = qpos, qvel
        mujoco.mj_forward(self.host.model, data)
        row = np.zeros(self.host.row_size)
        fields = np.zeros((1, self.host.fields_size))
        self.host._read(data, 0, row[None], fields)
        row[self.host.state_size:] = self.host._positions(fields)[0]
        return _as_bits(row)
