"""rejax 0.1.3's DQN and SAC: the peer side of the `dqn` and `sac` rows (`peer/off_policy.py`).

    .venv-rejax/bin/python experiments/bench/peer/rejax_off_policy.py --algo dqn --seeds 1 \
        --out rec.json

Runs in rejax's own environment (`make rejax-env`) and imports nothing of this repository but
its sibling `rejax_ppo.py` (`FiveTupleStep`: gymnax 1.0.1's six-value `step` as the five values
rejax 0.1.3 unpacks, done = terminated | truncated; the timing and the record). Timed as
`rejax_ppo.py`: the seeds train in one program, `jax.jit(jax.vmap(algo.train))`, compiled
ahead of time (compile_s) and run once (run_s); then each seed's final policy plays
`--eval-episodes` deterministic episodes with rejax's own `evaluate` (greedy Q, where rejax's
`make_act` keeps ε = 0.005; tanh of the Gaussian's mean rescaled to the box, where it samples).
Writes one record (`peer.RECORD_FIELDS`) to `--out`.

Both algorithms: rejax's iteration is one step of each of `num_envs` environments, then
`num_epochs` gradient steps once `global_step > fill_buffer` (checked before the step), then
its target clock. `fill_buffer = learning_starts − 1` gives our count of random or untrained
steps (learning_starts, a multiple of num_envs) and of gradient steps. `--timesteps` is both
`total_timesteps` and `eval_freq` (ceil(T / num_envs) iterations, as our run ends), and
evaluation inside `train` is off: `skip_initial_evaluation` and a no-op `eval_callback`.
Initialisation (flax's default Dense: LeCun normal, zero bias) and Adam's ε (1e-8) are the
same on both sides.

DQN (row `dqn`, CartPole-v1), our config in rejax's terms:
- num_envs 10, train_freq 1, gradient_steps 1: `num_envs=10`, `num_epochs=1`.
- learning_starts 10,000: `fill_buffer=9_999`; uniform random actions until then in both.
- buffer 10,000, batch 128, lr 2.5e-4 constant, γ 0.99: `buffer_size`, `batch_size`,
  `learning_rate`, `gamma`.
- target every 500 env steps, τ 1: `target_update_freq=500` (also env steps), `polyak=0`
  (rejax's polyak is the share kept, 1 − τ).
- ε 1 -> 0.05 over 0.5 of the run: `eps_start`, `eps_end`, `exploration_fraction`, read at
  the step count before each vectorised step (ours: before each update, the same here); one ε
  coin per environment in both.
- 64-64 tanh: `agent_kwargs={"activation": "tanh"}` (64-64 is fixed in rejax's `create_agent`).
- `ddqn=False` (rejax's default is double DQN): max_a' Q_target(s', a') as ours.
Not matched:
- the loss is ½(Q − y)² (optax.l2_loss); ours Huber with δ = 1 (SB3's).
- `max_grad_norm=10` is `optax.clip`, each gradient element clipped to ±10; ours clips the
  global norm to 10.
- the target copy follows the gradient step of the iteration that crosses the clock; ours
  precedes it (SB3's `_on_step` during collection): one gradient step apart.

SAC (row `sac`, Pendulum-v1), `SAC_PENDULUM` in rejax's terms:
- num_envs 1, train_freq 1, gradient_steps 1, learning_starts 100, batch 256, lr 1e-3 (the
  actor's, critics' and temperature's Adam), γ 0.99: `num_envs=1`, `num_epochs=1`,
  `fill_buffer=99`, `batch_size`, `learning_rate`, `gamma`.
- buffer 1e6 (ours allocates min(1e6, the run's steps)): `buffer_size` = the run's steps;
  neither overwrites a transition.
- τ 0.005 every gradient step: `polyak=0.995`, `target_update_freq=1`.
- learned α from 1 towards −dim(A) = −1: rejax's (log α starts at 0, target −action_dim).
- twin critics, 64-64 ReLU for the actor and each critic: `num_critics=2` (default),
  `hidden_layer_sizes=(64, 64)`, `agent_kwargs={"activation": "relu"}`. No gradient clipping
  on either side (rejax's `max_grad_norm` defaults to inf).
Not matched:
- before learning starts rejax acts with the untrained policy; ours samples uniformly.
- order of a gradient step: rejax updates the actor (against the critics before this step),
  then the critics (next actions from the updated actor), then α (from the actor's log π
  before its update); ours α, critics, then the actor against the updated critics.
- the temperature's loss is −α·(log π + H̄) (gradient in log α scaled by α); ours
  −log α·(log π + H̄), SB3's.
- the critics see actions in the environment's box ([−2, 2]); ours rescaled to [−1, 1].
- log σ is clipped to [−10, 2]; ours [−20, 2].
- while the buffer holds fewer than 256 transitions (the first 155 gradient steps) rejax's
  batches, drawn without replacement, include empty (all-zero) slots; ours draws the stored
  ones with replacement.

Both, not matched (neither changes the amount of work):
- a time limit ends the episode like a termination (no bootstrap; Pendulum's episodes end only
  so); ours bootstraps from the true final observation.
- batches are drawn without replacement (Gumbel top-k over the whole buffer); ours uniformly
  with replacement.
"""
from __future__ import annotations

import time

START = time.perf_counter()  # wall_s counts from here: imports, set-up, training, evaluation

import argparse  # noqa: E402
from pathlib import Path  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import rejax  # noqa: E402
from rejax.evaluate import evaluate  # noqa: E402
from rejax_ppo import (FiveTupleStep, compile_and_train,  # noqa: E402  (this script's folder
                       write_record)                      # is on sys.path)

ENV_IDS = {"dqn": "CartPole-v1", "sac": "Pendulum-v1"}
NUM_ENVS = {"dqn": 10, "sac": 1}
ACTIVATIONS = {"dqn": "tanh", "sac": "relu"}


def make_algo(name: str, steps: int):
    import gymnax

    env, env_params = gymnax.make(ENV_IDS[name])
    common = dict(env=FiveTupleStep(env), env_params=env_params, num_envs=NUM_ENVS[name],
                  num_epochs=1, gamma=0.99, agent_kwargs={"activation": ACTIVATIONS[name]},
                  total_timesteps=steps, eval_freq=steps, skip_initial_evaluation=True)
    if name == "dqn":
        algo = rejax.DQN.create(
            **common, buffer_size=10_000, fill_buffer=9_999, batch_size=128,
            learning_rate=2.5e-4, target_update_freq=500, polyak=0.0, eps_start=1.0,
            eps_end=0.05, exploration_fraction=0.5, max_grad_norm=10.0, ddqn=False)
    else:
        algo = rejax.SAC.create(
            **common, buffer_size=steps, fill_buffer=99, batch_size=256, learning_rate=1e-3,
            target_update_freq=1, polyak=0.995, hidden_layer_sizes=(64, 64))
    return algo.replace(eval_callback=lambda algo, ts, rng: ())


def deterministic_returns(name: str, algo, ts, key, num_episodes: int):
    """Mean return of `num_episodes` episodes of the greedy (DQN) or mean (SAC) action."""
    if name == "dqn":
        def act(obs, rng):
            return jnp.argmax(algo.agent.apply(ts.q_ts.params, obs[None]), -1)[0]
    else:
        def mean_action(actor, x):
            return actor.action_loc + jnp.tanh(actor._action_dist(x).mode()) * actor.action_scale

        def act(obs, rng):
            return algo.actor.apply(ts.actor_ts.params, obs[None], method=mean_action)[0]

    _, returns = evaluate(act, key, algo.env, algo.env_params, num_episodes,
                          algo.env_params.max_steps_in_episode)
    return returns.mean()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algo", choices=sorted(ENV_IDS), required=True)
    parser.add_argument("--seeds", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--timesteps", type=int, required=True)
    parser.add_argument("--eval-episodes", type=int, default=20)
    parser.add_argument("--row", default=None, help="the row's name (default: --algo)")
    args = parser.parse_args()

    steps = -(-args.timesteps // NUM_ENVS[args.algo]) * NUM_ENVS[args.algo]
    algo = make_algo(args.algo, steps)
    keys = jax.vmap(jax.random.PRNGKey)(jnp.arange(args.seeds))

    ts, compile_s, run_s = compile_and_train(algo, keys)
    eval_keys = jax.vmap(lambda k: jax.random.fold_in(k, 0x5EED))(keys)
    returns = jax.jit(jax.vmap(lambda ts, k: deterministic_returns(
        args.algo, algo, ts, k, args.eval_episodes)))(ts, eval_keys)
    write_record(args.out, START, row=args.row or args.algo, seeds=args.seeds,
                 work=int(jax.device_get(ts.global_step).reshape(-1)[0]), work_unit="env steps",
                 compile_s=compile_s, run_s=run_s, returns=returns,
                 eval_episodes=args.eval_episodes)

if __name__ == "__main__":
    main()
