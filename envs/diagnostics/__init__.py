"""seals' diagnostic tasks (`seals.diagnostics`) in JAX, with seals' ids and semantics.

Each task isolates one way a reward or imitation learning algorithm can fail:
stochasticity (RiskyPath), termination bias (EarlyTerm), exploration (Branching),
initial-state shift (InitShift), distractors (NoisyObs), continuous actions
(Parabola), high dimension (LargestSum), generalisation (ProcGoal) and combinatorial
actions (Sort). The tabular ones are `TabularEnv`s with their exact model in
`params`; the others are gymnax environments. `DIAGNOSTIC_ENVS` maps each id to its
factory, in seals' order; `envs` registers them all.
"""

from functools import partial

from envs.diagnostics import (
    branching,
    early_term,
    init_shift,
    largest_sum,
    noisy_obs,
    parabola,
    proc_goal,
    risky_path,
    sort,
)

DIAGNOSTIC_ENVS = {
    branching.ENV_ID: branching.make_branching,
    early_term.NEG_ID: partial(early_term.make_early_term, is_reward_positive=False),
    early_term.POS_ID: partial(early_term.make_early_term, is_reward_positive=True),
    init_shift.TRAIN_ID: partial(init_shift.make_init_shift, initial_state=0),
    init_shift.TEST_ID: partial(init_shift.make_init_shift, initial_state=1),
    largest_sum.ENV_ID: largest_sum.make_largest_sum,
    noisy_obs.ENV_ID: noisy_obs.make_noisy_obs,
    parabola.ENV_ID: parabola.make_parabola,
    proc_goal.ENV_ID: proc_goal.make_proc_goal,
    risky_path.ENV_ID: risky_path.make_risky_path,
    sort.ENV_ID: sort.make_sort,
}
