"""seals-style environments in JAX, behind gymnax's `Environment` API.

`make(env_id)` returns `(env, params)` for our seals ids and for every gymnax id.
Environments keep `terminated` and `truncated` apart; tabular environments carry
their exact model in `params` (see `envs.tabular`).
"""

from collections.abc import Callable
from functools import partial
from typing import Any

# Before gymnax: its import builds arrays, which starts JAX's CPU client, and the platform layer
# sets the XLA flags that client must start with. The only part of jaxrl_align envs depends on.
import jaxrl_align.platform  # noqa: F401, I001
import gymnax

from envs.classic_control import (
    CartPole,
    CartPoleParams,
    CartPoleState,
    MountainCar,
    MountainCarParams,
    MountainCarState,
    make_cartpole,
    make_mountain_car,
)
from envs.cliff_world import SEALS_SIZES, cliff_world_id, make_cliff_world
from envs.diagnostics import DIAGNOSTIC_ENVS
from envs.mujoco import TASKS as MUJOCO_TASKS
from envs.mujoco import make_mujoco
from envs.random_transition import make_random_transition, random_mdp_params
from envs.reference_returns import (
    REFERENCE_RETURNS,
    policy_returns,
    random_policy_returns,
    reference_returns,
)
from envs.tabular import (
    TabularEnv,
    TabularParams,
    TabularState,
    horizon,
    tabular_params,
)

EnvFactory = Callable[..., tuple[Any, Any]]
"""Called with `make`'s keyword arguments; returns `(env, params)`."""

_REGISTRY: dict[str, EnvFactory] = {}


def register(env_id: str, factory: EnvFactory) -> None:
    """Adds `env_id` to `make`; `factory(**kwargs)` must return `(env, params)`."""
    if env_id in _REGISTRY:
        raise ValueError(f"env id {env_id!r} is already registered")
    _REGISTRY[env_id] = factory


def registered_ids() -> list[str]:
    """Our ids, in registration order (gymnax's own ids are not listed)."""
    return list(_REGISTRY)


def make(env_id: str, **kwargs) -> tuple[Any, Any]:
    """`(env, params)` for one of our ids or any gymnax id."""
    if env_id in _REGISTRY:
        return _REGISTRY[env_id](**kwargs)
    if env_id in gymnax.registered_envs:
        return gymnax.make(env_id, **kwargs)
    raise ValueError(
        f"unknown env id {env_id!r}; known: {', '.join(_REGISTRY)}; or any gymnax id"
    )


def is_tabular(env: Any) -> bool:
    """Whether `env` exposes an exact tabular model in its params."""
    return isinstance(env, TabularEnv)


def _register_seals_envs() -> None:
    register("seals/CartPole-v0", make_cartpole)
    register("seals/MountainCar-v0", make_mountain_car)
    for width, height, cliff_horizon in SEALS_SIZES:
        for use_xy_obs in (False, True):
            register(
                cliff_world_id(width, height, use_xy_obs),
                partial(
                    make_cliff_world,
                    width=width,
                    height=height,
                    horizon=cliff_horizon,
                    use_xy_obs=use_xy_obs,
                ),
            )
    register("seals/Random-v0", make_random_transition)
    for env_id, factory in DIAGNOSTIC_ENVS.items():
        register(env_id, factory)
    # The MuJoCo tasks take `backend="mujoco" | "mjx"` (default: by platform).
    for env_id in MUJOCO_TASKS:
        register(env_id, partial(make_mujoco, env_id))


_register_seals_envs()

__all__ = [
    "REFERENCE_RETURNS",
    "CartPole",
    "CartPoleParams",
    "CartPoleState",
    "EnvFactory",
    "MountainCar",
    "MountainCarParams",
    "MountainCarState",
    "TabularEnv",
    "TabularParams",
    "TabularState",
    "horizon",
    "is_tabular",
    "make",
    "policy_returns",
    "random_mdp_params",
    "random_policy_returns",
    "reference_returns",
    "register",
    "registered_ids",
    "tabular_params",
]
