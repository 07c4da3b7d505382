"""Exact computations on tabular models (`envs.TabularParams`): soft value iteration
(`planning`), occupancy measures, exact returns and demonstration visits (`occupancy`), and
episodes drawn from the model (`sampling`)."""
from jaxrl_align.tabular.occupancy import (Occupancy, StateVisits, exact_expected_return,
                                           occupancy_measures, state_indices,
                                           time_marginal_policy, visits_from_occupancy,
                                           visits_from_trajectories, visits_from_transitions)
from jaxrl_align.tabular.planning import (MAX_COLUMN_ACTIONS, SoftValues, float_dtype,
                                          soft_max_over_actions, soft_value_iteration)
from jaxrl_align.tabular.sampling import sample_trajectories

__all__ = ["MAX_COLUMN_ACTIONS", "Occupancy", "SoftValues", "StateVisits",
           "exact_expected_return", "float_dtype", "occupancy_measures", "sample_trajectories",
           "soft_max_over_actions", "soft_value_iteration", "state_indices",
           "time_marginal_policy", "visits_from_occupancy", "visits_from_trajectories",
           "visits_from_transitions"]
