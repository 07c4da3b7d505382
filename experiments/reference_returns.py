"""The normalisation constants: expert and random returns of every environment.

    python -m experiments.reference_returns              # the stored table
    python -m experiments.reference_returns --measure    # re-derive each value and compare

Normalised scores are (x - random) / (expert - random) with the returns stored in
`envs/reference_returns.py`. `--measure` derives each one again, as it was derived
for the table: exactly on the model for tabular tasks (the expert by value iteration),
in closed form where one exists (see `envs.diagnostics.experts`), otherwise by Monte
Carlo with a 95% confidence interval.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np
import tyro

BATCH_EPISODES = 100_000


def reference_returns(env_id: str) -> tuple[float, float]:
    """(random, expert) returns of `env_id`: the stored ones (`envs.REFERENCE_RETURNS`), or for
    a tabular task without an entry (CliffWorld, Random-v0) both exact on its model. Every
    normalised score of the command line comes from here."""
    import envs

    if env_id in envs.REFERENCE_RETURNS or env_id not in envs.registered_ids():
        return envs.reference_returns(env_id)
    computed = _exact_reference_returns(env_id)
    if computed is None:
        return envs.reference_returns(env_id)  # raises, naming the known ids
    return computed


@lru_cache(maxsize=None)
def _exact_reference_returns(env_id: str) -> tuple[float, float] | None:
    import envs

    env, params = envs.make(env_id)
    return exact_tabular_returns(env, params) if envs.is_tabular(env) else None


def exact_tabular_returns(env, params) -> tuple[float, float]:
    """(uniform policy's, optimal policy's) expected returns of a tabular task, exactly from its
    model; the optimum by finite-horizon value iteration (time-dependent where that matters)."""
    from envs.diagnostics.experts import optimal_return
    from jaxrl_align.tabular import exact_expected_return

    uniform = jnp.full((env.n_states, env.n_actions), 1.0 / env.n_actions)
    return float(exact_expected_return(params, uniform)), float(optimal_return(params))


@dataclass(frozen=True)
class ReferenceFlags:
    measure: bool = False
    """re-derive every value (exact, closed form or Monte Carlo) next to the stored one"""
    episodes: int = 1_000_000
    """Monte Carlo episodes per (environment, policy)"""
    envs: tuple[str, ...] = ()
    """environment ids (default: every id with stored returns)"""
    seed: int = 0
    """seed of the Monte Carlo episodes"""


@dataclass(frozen=True)
class Estimate:
    value: float
    half_width: float  # of the 95% confidence interval; 0 for an exact value
    method: str

    def contains(self, stored: float, rounding: float = 0.005) -> bool:
        """Whether `stored` (rounded to 2 decimals) agrees with this estimate."""
        return abs(stored - self.value) <= self.half_width + rounding + 1e-9


def monte_carlo(env, params, policy, key: jax.Array, n_episodes: int) -> Estimate:
    from envs.reference_returns import policy_returns

    run = jax.jit(lambda key, n: policy_returns(env, params, policy, key, n),
                  static_argnums=1)
    returns = []
    for start in range(0, n_episodes, BATCH_EPISODES):
        n = min(BATCH_EPISODES, n_episodes - start)
        returns.append(np.asarray(run(jax.random.fold_in(key, start), n), np.float64))
    returns = np.concatenate(returns)
    half_width = 1.96 * returns.std(ddof=1) / np.sqrt(returns.size)
    return Estimate(float(returns.mean()), float(half_width),
                    f"Monte Carlo, {returns.size:,} episodes")


def derive(env_id: str, which: str, n_episodes: int, key: jax.Array) -> Estimate | None:
    """`which` ("random" or "expert") return of `env_id`, derived as for the table; None
    for an expert that is a trained network (its return is stored, not re-derivable)."""
    import envs
    from envs.diagnostics import DIAGNOSTIC_ENVS
    from envs.diagnostics.experts import (CLOSED_FORM_RETURNS, expert_policy,
                                          optimal_return, tabular_expert_actions)
    from jaxrl_align.tabular import exact_expected_return

    env, params = envs.make(env_id)
    if which == "expert" and env_id not in DIAGNOSTIC_ENVS:
        return None
    if envs.is_tabular(env):
        if which == "random":
            return Estimate(exact_tabular_returns(env, params)[0], 0.0, "exact")
        greedy = jax.nn.one_hot(tabular_expert_actions(params), env.n_actions)
        value = float(exact_expected_return(params, greedy))
        if not np.isclose(value, float(optimal_return(params)), rtol=0, atol=1e-5):
            raise AssertionError(f"{env_id}: the stationary expert is not optimal")
        return Estimate(value, 0.0, "exact, value iteration")
    if which in CLOSED_FORM_RETURNS.get(env_id, {}):
        return Estimate(CLOSED_FORM_RETURNS[env_id][which], 0.0, "closed form")
    if which == "random":
        space = env.action_space(params)
        policy = lambda key, obs: space.sample(key)
    else:
        policy = expert_policy(env, params)
    return monte_carlo(env, params, policy, key, n_episodes)


def stored_table(env_ids) -> str:
    import envs

    rows = [f"{'environment':<28} {'random':>12} {'expert':>12}"]
    for env_id in env_ids:
        random_return, expert_return = envs.reference_returns(env_id)
        rows.append(f"{env_id:<28} {random_return:>12.6g} {expert_return:>12.6g}")
    return "\n".join(rows)


def measured_table(env_ids, n_episodes: int, seed: int) -> tuple[str, bool]:
    """The stored values next to fresh derivations; also whether all of them agree."""
    import envs

    rows = [f"{'environment':<28} {'':<7} {'stored':>10} {'derived':>10} {'±95%':>8}  method"]
    all_agree = True
    for env_index, env_id in enumerate(env_ids):
        stored = envs.REFERENCE_RETURNS.get(env_id, {"random": np.nan, "expert": np.nan})
        for which_index, which in enumerate(("random", "expert")):
            key = jax.random.fold_in(jax.random.PRNGKey(seed), 2 * env_index + which_index)
            estimate = derive(env_id, which, n_episodes, key)
            if estimate is None:
                rows.append(f"{env_id:<28} {which:<7} {stored[which]:>10.4f} "
                            f"{'':>10} {'':>8}  stored (trained expert)")
                continue
            agrees = estimate.contains(stored[which])
            all_agree &= agrees
            rows.append(f"{env_id:<28} {which:<7} {stored[which]:>10.4f} "
                        f"{estimate.value:>10.4f} {estimate.half_width:>8.4f}  "
                        f"{estimate.method}{'' if agrees else '  <-- DISAGREES'}")
    return "\n".join(rows), all_agree


def main(flags: ReferenceFlags) -> bool:
    import envs

    env_ids = list(flags.envs) or list(envs.REFERENCE_RETURNS)
    if not flags.measure:
        print(stored_table(env_ids))
        return True
    table, all_agree = measured_table(env_ids, flags.episodes, flags.seed)
    print(table)
    return all_agree


if __name__ == "__main__":
    raise SystemExit(0 if main(tyro.cli(ReferenceFlags)) else 1)
