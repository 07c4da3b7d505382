"""seals' fixed-horizon classic-control tasks as gymnax environments.

seals changes two gymnasium tasks so that every episode lasts exactly the horizon:
an episode that ends early leaks information about the reward through its length
(and imitation's algorithms refuse variable horizons). So neither task ever reports
`terminated`; both are truncated by the time limit only.
"""

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

_F32_MAX = float(jnp.finfo(jnp.float32).max)


@struct.dataclass
class CartPoleState(environment.EnvState):
    x: jax.Array
    x_dot: jax.Array
    theta: jax.Array
    theta_dot: jax.Array
    time: jax.Array


@struct.dataclass
class CartPoleParams(environment.EnvParams):
    # Masses and lengths are kept primitive (total mass etc. are derived in `step_env`)
    # so that a sweep over one constant cannot leave a stale derived value behind.
    gravity: float = 9.8
    masscart: float = 1.0
    masspole: float = 0.1
    length: float = 0.5  # half the pole's length, as in gymnasium
    force_mag: float = 10.0
    tau: float = 0.02
    theta_threshold_radians: float = 12 * 2 * jnp.pi / 360
    x_threshold: float = 2.4
    # The horizon is structure (it fixes the length of a rollout scan), not a number
    # to vmap over, so it is static: it never becomes a traced value under jit.
    max_steps_in_episode: int = struct.field(pytree_node=False, default=500)


class CartPole(environment.Environment[CartPoleState, CartPoleParams]):
    """seals/CartPole-v0 (`FixedHorizonCartPole`).

    gymnasium CartPole-v1 physics (explicit Euler), but the physics keep running after
    the pole falls: reward is 1.0 while the *new* state is "ok" (|x| < 2.4 and
    |theta| < 12 degrees) and 0.0 otherwise, theta is wrapped to [-pi, pi), and the
    episode is only truncated at `max_steps_in_episode`.
    """

    @property
    def default_params(self) -> CartPoleParams:
        return CartPoleParams()

    def step_env(
        self,
        key: jax.Array,
        state: CartPoleState,
        action: int | jax.Array,
        params: CartPoleParams,
    ) -> tuple[jax.Array, CartPoleState, jax.Array, jax.Array, dict[str, Any]]:
        del key
        total_mass = params.masspole + params.masscart
        polemass_length = params.masspole * params.length
        force = jnp.where(action == 1, params.force_mag, -params.force_mag)
        costheta = jnp.cos(state.theta)
        sintheta = jnp.sin(state.theta)
        temp = (force + polemass_length * state.theta_dot**2 * sintheta) / total_mass
        thetaacc = (params.gravity * sintheta - costheta * temp) / (
            params.length * (4.0 / 3.0 - params.masspole * costheta**2 / total_mass)
        )
        xacc = temp - polemass_length * thetaacc * costheta / total_mass

        x = state.x + params.tau * state.x_dot
        x_dot = state.x_dot + params.tau * xacc
        theta = state.theta + params.tau * state.theta_dot
        theta_dot = state.theta_dot + params.tau * thetaacc
        # seals wraps theta after every step, so a pole that has swung over the top
        # counts as upright again when it comes round, and the observation is bounded.
        theta = jnp.mod(theta + jnp.pi, 2 * jnp.pi) - jnp.pi

        new_state = CartPoleState(
            x=x, x_dot=x_dot, theta=theta, theta_dot=theta_dot, time=state.time + 1
        )
        # seals judges the state *after* the step (gymnasium's own CartPole pays for
        # the step that leads into failure; seals does not).
        upright_on_track = jnp.logical_and(
            jnp.abs(x) < params.x_threshold,
            jnp.abs(theta) < params.theta_threshold_radians,
        )
        reward = upright_on_track.astype(jnp.float32)
        return self.get_obs(new_state), new_state, reward, jnp.array(False), {}

    def reset_env(
        self, key: jax.Array, params: CartPoleParams
    ) -> tuple[jax.Array, CartPoleState]:
        del params
        x, x_dot, theta, theta_dot = jax.random.uniform(
            key, (4,), jnp.float32, minval=-0.05, maxval=0.05
        )
        state = CartPoleState(
            x=x, x_dot=x_dot, theta=theta, theta_dot=theta_dot, time=jnp.int32(0)
        )
        return self.get_obs(state), state

    def get_obs(self, state: CartPoleState, params=None, key=None) -> jax.Array:
        del params, key
        return jnp.stack([state.x, state.x_dot, state.theta, state.theta_dot]).astype(
            jnp.float32
        )

    @property
    def name(self) -> str:
        return "seals/CartPole-v0"

    @property
    def num_actions(self) -> int:
        return 2

    def action_space(self, params: CartPoleParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(2)

    def observation_space(self, params: CartPoleParams | None = None) -> spaces.Box:
        high = jnp.array([_F32_MAX, _F32_MAX, jnp.pi, _F32_MAX], jnp.float32)
        return spaces.Box(-high, high, (4,), jnp.float32)


@struct.dataclass
class MountainCarState(environment.EnvState):
    position: jax.Array
    velocity: jax.Array
    time: jax.Array
    # True once the goal has been reached: the car then sits in an absorbing state
    # until the time limit.
    absorbed: jax.Array


@struct.dataclass
class MountainCarParams(environment.EnvParams):
    min_position: float = -1.2
    max_position: float = 0.6
    max_speed: float = 0.07
    goal_position: float = 0.5
    goal_velocity: float = 0.0
    force: float = 0.001
    gravity: float = 0.0025
    max_steps_in_episode: int = struct.field(pytree_node=False, default=200)


class MountainCar(environment.Environment[MountainCarState, MountainCarParams]):
    """seals/MountainCar-v0: gymnasium MountainCar-v0 behind `AbsorbAfterDoneWrapper`.

    The step that reaches the goal is an ordinary step (reward -1, observation of the
    goal state). Every later step ignores the action, repeats that observation and pays
    0, until the episode is truncated at `max_steps_in_episode`. So the return is minus
    the number of steps taken to reach the goal.
    """

    @property
    def default_params(self) -> MountainCarParams:
        return MountainCarParams()

    def step_env(
        self,
        key: jax.Array,
        state: MountainCarState,
        action: int | jax.Array,
        params: MountainCarParams,
    ) -> tuple[jax.Array, MountainCarState, jax.Array, jax.Array, dict[str, Any]]:
        del key
        # Same order of operations as gymnasium, so float32 rounding stays close to it.
        velocity = state.velocity + (
            (action - 1) * params.force
            + jnp.cos(3 * state.position) * (-params.gravity)
        )
        velocity = jnp.clip(velocity, -params.max_speed, params.max_speed)
        position = jnp.clip(
            state.position + velocity, params.min_position, params.max_position
        )
        velocity = jnp.where(
            jnp.logical_and(position == params.min_position, velocity < 0),
            0.0,
            velocity,
        )
        reached_goal = jnp.logical_and(
            position >= params.goal_position, velocity >= params.goal_velocity
        )
        moved = MountainCarState(
            position=position,
            velocity=velocity,
            time=state.time + 1,
            absorbed=reached_goal,
        )
        stayed = state.replace(time=state.time + 1)
        new_state = jax.tree.map(
            lambda a, m: jnp.where(state.absorbed, a, m), stayed, moved
        )
        reward = jnp.where(state.absorbed, 0.0, -1.0).astype(jnp.float32)
        return self.get_obs(new_state), new_state, reward, jnp.array(False), {}

    def reset_env(
        self, key: jax.Array, params: MountainCarParams
    ) -> tuple[jax.Array, MountainCarState]:
        del params
        state = MountainCarState(
            position=jax.random.uniform(key, (), jnp.float32, -0.6, -0.4),
            velocity=jnp.float32(0.0),
            time=jnp.int32(0),
            absorbed=jnp.array(False),
        )
        return self.get_obs(state), state

    def get_obs(self, state: MountainCarState, params=None, key=None) -> jax.Array:
        del params, key
        return jnp.stack([state.position, state.velocity]).astype(jnp.float32)

    @property
    def name(self) -> str:
        return "seals/MountainCar-v0"

    @property
    def num_actions(self) -> int:
        return 3

    def action_space(self, params: MountainCarParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(3)

    def observation_space(self, params: MountainCarParams | None = None) -> spaces.Box:
        params = self.default_params if params is None else params
        low = jnp.array([params.min_position, -params.max_speed], jnp.float32)
        high = jnp.array([params.max_position, params.max_speed], jnp.float32)
        return spaces.Box(low, high, (2,), jnp.float32)


def make_cartpole(**param_overrides) -> tuple[CartPole, CartPoleParams]:
    """seals/CartPole-v0; keyword arguments replace fields of `CartPoleParams`."""
    return CartPole(), CartPoleParams(**param_overrides)


def make_mountain_car(**param_overrides) -> tuple[MountainCar, MountainCarParams]:
    """seals/MountainCar-v0; keyword arguments replace fields of `MountainCarParams`."""
    return MountainCar(), MountainCarParams(**param_overrides)
