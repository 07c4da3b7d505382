"""Returns of reference policies for normalised scores (x - random) / (expert - random).

"random" is the uniformly random policy, "expert" an optimal (or, where no optimum is
known, a trained) policy. `python -m experiments.reference_returns` prints this table,
and with `--measure` derives every value again the way it was derived here:

- tabular tasks: exactly, on the model (the expert by finite-horizon value iteration);
- closed forms (`envs.diagnostics.experts.CLOSED_FORM_RETURNS`), where they exist;
- otherwise a Monte Carlo mean, rounded to 2 decimals: 10^5 episodes for CartPole,
  10^6 (seed 0) for the diagnostic tasks, whose 95% half-widths are noted below.

tests/envs/test_envs.py and tests/envs/test_diagnostics.py check them against fresh derivations.
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
    # The diagnostic tasks (envs.diagnostics). Exact unless marked "MC +-".
    "seals/Branching-v0": {"random": 2.0**-10, "expert": 1.0},
    "seals/EarlyTermNeg-v0": {"random": -3.875, "expert": -2.0},
    "seals/EarlyTermPos-v0": {"random": 3.875, "expert": 10.0},
    "seals/InitShiftTrain-v0": {"random": 0.25, "expert": 2.0},
    "seals/InitShiftTest-v0": {"random": 0.0, "expert": 2.0},
    "seals/LargestSum-v0": {"random": 0.5, "expert": 1.0},
    "seals/NoisyObs-v0": {"random": 0.32, "expert": 11.0},  # random: MC +-0.0015
    "seals/Parabola-v0": {"random": -325.54, "expert": 0.0},  # random: MC +-0.12
    "seals/ProcGoal-v0": {"random": -207.58, "expert": -55.0},  # random: MC +-0.08
    "seals/RiskyPath-v0": {"random": -97.9375, "expert": 3.0},
    "seals/Sort-v0": {"random": 0.25, "expert": 193 / 24},  # random: MC +-0.0032
    # The MuJoCo tasks. random: uniformly random actions, MC over 100 episodes (seed 0), whose
    # 95% half-widths are noted. expert: the final 50-episode return of this project's PPO
    # expert (`python -m experiments.experts`, docs/environments.md).
    "seals/HalfCheetah-v1": {"random": -278.09, "expert": 3798.43},  # random: MC +-14.77
    "seals/Hopper-v1": {"random": -57.80, "expert": 3475.10},  # random: MC +-25.94
    "seals/Swimmer-v1": {"random": 1.80, "expert": 360.08},  # random: MC +-2.11
    "seals/Ant-v1": {"random": -353.98, "expert": 3873.98},  # random: MC +-9.75
    "seals/Walker2d-v1": {"random": -20.84, "expert": 2264.14},  # random: MC +-28.51
    # Humanoid's expert is weak (1M steps, one seed: the most this CPU session could afford).
    "seals/Humanoid-v1": {"random": -45.51, "expert": 441.35},  # random: MC +-15.09
}


def reference_returns(env_id: str) -> tuple[float, float]:
    """(random, expert) returns of `env_id` from the stored table (tabular tasks without an
    entry get exact ones from `experiments.reference_returns.reference_returns`)."""
    try:
        returns = REFERENCE_RETURNS[env_id]
    except KeyError:
        raise ValueError(
            f"no reference returns for env id {env_id!r}; "
            f"known: {', '.join(REFERENCE_RETURNS)}"
        ) from None
    return returns["random"], returns["expert"]


def policy_returns(env, params, policy, key: jax.Array, n_episodes: int) -> jax.Array:
    """[n_episodes] undiscounted returns of `policy(key, obs) -> action`, each summed
    until its episode ends (terminated or truncated; the time limit bounds it).
    Traceable: jit it around the call. Average the returns on the host in float64:
    a float32 sum of 10^5 returns loses the decimals."""

    def episode_return(key):
        key_reset, key_steps = jax.random.split(key)
        obs, state = env.reset(key_reset, params)

        def step(carry, key):
            obs, state, ret, running = carry
            key_action, key_step = jax.random.split(key)
            action = policy(key_action, obs)
            obs, state, reward, terminated, truncated, _ = env.step(
                key_step, state, action, params
            )
            ret = ret + jnp.where(running, reward, 0.0)
            running = running & ~(terminated | truncated)
            return (obs, state, ret, running), None

        keys = jax.random.split(key_steps, params.max_steps_in_episode)
        carry = (obs, state, jnp.float32(0.0), jnp.array(True))
        (_, _, ret, _), _ = jax.lax.scan(step, carry, keys)
        return ret

    return jax.vmap(episode_return)(jax.random.split(key, n_episodes))


@partial(jax.jit, static_argnames=("env", "n_episodes"))
def random_policy_returns(env, params, key: jax.Array, n_episodes: int) -> jax.Array:
    """[n_episodes] returns of the uniformly random policy (see `policy_returns`)."""
    space = env.action_space(params)
    return policy_returns(
        env, params, lambda key, obs: space.sample(key), key, n_episodes
    )
