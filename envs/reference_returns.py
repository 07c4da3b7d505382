"""Returns of reference policies for normalised scores (x - random) / (expert - random).

"random" is the mean undiscounted return of the uniformly random policy, measured with
`random_policy_returns(env, params, jax.random.key(0), 100_000)` (averaged in float64)
and rounded to 2 decimals; tests/test_envs.py checks it against a fresh measurement.
"""

from functools import partial

import jax
import jax.numpy as jnp

REFERENCE_RETURNS: dict[str, dict[str, float]] = {
    # seals' CartPole pays 1 per step with the pole up, so the optimum is the horizon.
    "seals/CartPole-v0": {"random": 33.33, "expert": 500.0},
    # No random episode out of 10^5 reached the goal. The expert value is provisional:
    # the lead will replace it with the measured return of the PPO expert.
    "seals/MountainCar-v0": {"random": -200.0, "expert": -100.0},
}


def reference_returns(env_id: str) -> tuple[float, float]:
    """(random, expert) returns of `env_id`."""
    try:
        returns = REFERENCE_RETURNS[env_id]
    except KeyError:
        raise ValueError(
            f"no reference returns for env id {env_id!r}; "
            f"known: {', '.join(REFERENCE_RETURNS)}"
        ) from None
    return returns["random"], returns["expert"]


@partial(jax.jit, static_argnames=("env", "n_episodes"))
def random_policy_returns(env, params, key: jax.Array, n_episodes: int) -> jax.Array:
    """[n_episodes] returns of the uniformly random policy, each over
    `params.max_steps_in_episode` steps (our seals envs never end earlier). Average
    them on the host in float64: a float32 sum of 10^5 returns loses the decimals."""
    n_actions = env.action_space(params).n

    def episode_return(key):
        key_reset, key_steps = jax.random.split(key)
        _, state = env.reset(key_reset, params)

        def step(carry, key):
            state, ret = carry
            key_action, key_step = jax.random.split(key)
            action = jax.random.randint(key_action, (), 0, n_actions)
            _, state, reward, _, _, _ = env.step(key_step, state, action, params)
            return (state, ret + reward), None

        keys = jax.random.split(key_steps, params.max_steps_in_episode)
        (_, ret), _ = jax.lax.scan(step, (state, jnp.float32(0.0)), keys)
        return ret

    return jax.vmap(episode_return)(jax.random.split(key, n_episodes))
