"""Named settings, kept apart from the algorithms (imitation's `scripts/config/tuned_hps`).
docs/algorithms/ says how each was found and what it reaches.

Algorithm presets: `PUREJAXRL_CARTPOLE`, `PPO_PENDULUM`, `AIRL_MOUNTAIN_CAR`,
`PREFERENCES_PENDULUM`, `DAGGER_PENDULUM`, `DQN_CARTPOLE`, `SQIL_CARTPOLE`, `SAC_PENDULUM`,
`SQIL_SAC_PENDULUM`, `BC_MUJOCO`. DERAIL's per-task PPO settings: `derail_ppo(task_id, budget)`.
"""
from __future__ import annotations

from dataclasses import replace

from jaxrl_align.algorithms import bc, dagger
from jaxrl_align.algorithms import preference_comparisons as pc
from jaxrl_align.algorithms.adversarial import airl
from jaxrl_align.rl import dqn, ppo, sac

# PureJaxRL's CartPole configuration (the speed benchmark's reference point).
PUREJAXRL_CARTPOLE = ppo.PPOConfig(num_envs=4, lr=2.5e-4, ent_coef=0.01)

# Pendulum-v1 (gymnax): rewards scaled to -1.6..0 and an unclipped value loss. Unscaled, the
# critic's gradients (returns of hundreds) dominate the global-norm clip and starve the actor;
# clipped, the critic moves only clip_eps per update.
PPO_PENDULUM = ppo.PPOConfig(update_epochs=10, num_minibatches=8, gamma=0.99, clip_value=False,
                             reward_scale=0.1, total_timesteps=300_000)

# seals/MountainCar-v0: AIRL's defaults, but the generator's actor and critic see observations
# rescaled to [-1, 1] by the observation space's bounds (the velocity lies within ±0.07; on raw
# observations every seed stays at −200).
AIRL_MOUNTAIN_CAR = airl.AIRLConfig(ppo=replace(airl.AIRLConfig().ppo, obs_normalization="box"))

# Pendulum-v1 with 1,000 comparisons: the CartPole-tuned preference defaults with PPO's Pendulum
# settings for 97 rounds (250,368 agent steps with the query rollouts).
PREFERENCES_PENDULUM = pc.PreferenceComparisonsConfig(
    total_comparisons=1000, ppo=replace(PPO_PENDULUM, total_timesteps=200_000))

# seals/CartPole-v0: rl-zoo's CartPole-v1 DQN with batches of 256, a 64-64 tanh network (ReLU
# Q-values diverge on seals' unbounded cart position) and the learning rate decayed to 0
# (docs/algorithms/dqn.md). SB3's defaults stay far below 500 there.
DQN_CARTPOLE = dqn.DQNConfig(lr=2.3e-3, batch_size=256, buffer_size=100_000, learning_starts=1000,
                             target_update_interval=10, train_freq=256, gradient_steps=128,
                             exploration_fraction=0.16, exploration_final_eps=0.04,
                             hidden=(64, 64), activation="tanh", anneal_lr=True,
                             total_timesteps=100_000)

# SQIL on seals/CartPole-v0 from 10 expert episodes: the DQN preset at lr 1e-3, 15,000 steps.
SQIL_CARTPOLE = replace(DQN_CARTPOLE, lr=1e-3, total_timesteps=15_000)

# Pendulum-v1: SB3's SAC defaults with rl-zoo's Pendulum learning rate (1e-3) and 64-64
# networks, which learn in the same steps at a fraction of the CPU time (docs/algorithms/sac.md).
SAC_PENDULUM = sac.SACConfig(lr=1e-3, hidden=(64, 64), total_timesteps=10_000)

# SQIL with SAC on Pendulum-v1: imitation's own test settings (γ 0.95, learning_starts 500) and a
# fixed temperature of 0.01: with the learned one, α rises as SQIL's 0/1-reward critics flatten
# and the runs peak and collapse (docs/algorithms/sac.md).
SQIL_SAC_PENDULUM = replace(SAC_PENDULUM, gamma=0.95, learning_starts=500, learn_ent_coef=False,
                            ent_coef_init=0.01)

# The seals MuJoCo tasks: a 64-64 policy behind imitation's running observation normaliser (the
# observation includes positions that grow to hundreds; docs/algorithms/bc.md).
BC_MUJOCO = bc.BCConfig(hidden=(64, 64), obs_normalization="running")

# Pendulum-v1 with a PPO expert, 5 rounds: β by LinearBetaSchedule(1), the schedule of
# imitation's own Pendulum test (all expert in round 0, all learner after), and 10 BC epochs a
# round. With imitation's defaults (15 rampdown rounds, 4 epochs) β stays ≥ 11/15 over 5 rounds
# and the data is nearly expert-only (docs/algorithms/dagger.md has the grid).
DAGGER_PENDULUM = dagger.DAggerConfig(rounds=5, rampdown_rounds=1, bc_epochs=10)

# DERAIL (experiments.derail): PPO on the diagnostic tasks. `ppo.PPOConfig()` is tuned for
# seals/CartPole-v0; these tasks are short and small, so a 32-32 network, a higher learning rate
# and an entropy bonus (for the sparse rewards) learn them in a fraction of CartPole's budget.
DERAIL_PPO = dict(num_envs=16, num_steps=64, lr=3e-3, ent_coef=0.01, hidden=(32, 32),
                  total_timesteps=20_000)
DERAIL_PPO_BY_TASK: dict[str, dict] = {
    # 64 environments: more episodes per update, so more chances to hit the one path.
    "seals/Branching-v0": dict(num_envs=64, ent_coef=0.05, total_timesteps=150_000),
    "seals/LargestSum-v0": dict(ent_coef=0.0, total_timesteps=100_000),
    "seals/NoisyObs-v0": dict(total_timesteps=100_000),
    # The untrained policy's mean action (about 0) is already within 1% of the expert.
    "seals/Parabola-v0": dict(lr=1e-3, ent_coef=0.0),
    # Coordinates reach +-110, so returns and value errors are in the hundreds: clipping the
    # global gradient norm (critic included) would freeze the actor. Adam scales each
    # parameter's step anyway, so the clipping is switched off.
    "seals/ProcGoal-v0": dict(max_grad_norm=1e9, total_timesteps=200_000),
    "seals/Sort-v0": dict(total_timesteps=150_000),
}


def scaled(steps: int, budget: float, minimum: int) -> int:
    return max(minimum, int(round(steps * budget)))


def derail_ppo(task_id: str, budget: float = 1.0, **overrides) -> ppo.PPOConfig:
    """DERAIL's PPO for `task_id`, its steps scaled by `budget` (at least one update), with
    `overrides` (an outer algorithm's own settings, such as AIRL's discount) on top."""
    settings = {**DERAIL_PPO, **DERAIL_PPO_BY_TASK.get(task_id, {}), **overrides}
    config = ppo.PPOConfig(**{**settings, "total_timesteps": 1})
    return replace(config, total_timesteps=scaled(settings["total_timesteps"], budget,
                                                  config.steps_per_update))


def derail_total_timesteps(task_id: str) -> int:
    """DERAIL's PPO budget for `task_id` at budget 1 (workers take the longest tasks first)."""
    return {**DERAIL_PPO, **DERAIL_PPO_BY_TASK.get(task_id, {})}["total_timesteps"]
