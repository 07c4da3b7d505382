"""Maximum causal entropy IRL (Ziebart 2010, thesis ch. 9–10), as imitation's `MCEIRL`.

Occupancy matching (`occupancy_matching`) with the MCE policy: soft value iteration gives
π_θ[t, s, a] of the reward r_θ, and the forward pass its discounted state occupancy.

The final state (deviation, deliberate): imitation's occupancies count s_H (they sum to H + 1),
but its soft value iteration never plans for r(s_H) (Q[H−1] = r). The gradient direction with
s_H counted is then not the gradient of any objective, and Adam drifts along it: on the 5-state
test MDP the occupancy L∞ error of a linear reward stalls near 5e-3 and a [32, 32] reward
diverges. Here the occupancies in the gradient are over the decision steps t < H, which makes it
the exact gradient of the demonstrations' causal log-likelihood (concave in a linear reward's
weights); the planner and the occupancy that the stopping rule and `state.occupancy` report are
imitation's, final state included. That is why demonstrations come as `tabular.StateVisits`,
which keep the final state apart.

Discount (deviation, deliberate): imitation's `_train_step` calls `mce_occupancy_measures(...,
discount=γ)` without a policy, which plans with discount 1, so it fits the γ-discounted
occupancy of an *undiscounted* policy, and then returns the γ-discounted policy. Here γ is used
consistently: the training occupancy and the final policy both come from the γ-discounted soft
value iteration. With γ = 1 (the default) the two agree exactly.
"""
from __future__ import annotations

from flax import struct

from jaxrl_align import tabular
from jaxrl_align.algorithm import Algorithm
from jaxrl_align.algorithms.irl import occupancy_matching
from jaxrl_align.algorithms.irl.occupancy_matching import (TabularIRLData, expert_data,  # noqa: F401
                                                           has_fixed_horizon)


@struct.dataclass
class MCEIRLConfig(occupancy_matching.OccupancyMatchingConfig):
    discount: float = 1.0
    """γ of the soft value iteration and of the occupancies"""


def causal_policy_and_occupancy(model, reward, hparams):
    policy = tabular.soft_value_iteration(model, reward, hparams.discount).policy
    occupancy = tabular.occupancy_measures(model, policy, hparams.discount)
    return policy, occupancy.per_step, tabular.visits_from_occupancy(occupancy, hparams.discount)


def make(config: MCEIRLConfig, env, env_params) -> Algorithm:
    return occupancy_matching.make("mce_irl", config, causal_policy_and_occupancy, env_params)
