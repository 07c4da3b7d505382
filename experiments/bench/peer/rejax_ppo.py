"""rejax 0.1.3's PPO on gymnax CartPole-v1: the peer side of the `ppo_*` rows (`peer/ppo.py`).

    .venv-rejax/bin/python experiments/bench/peer/rejax_ppo.py --seeds 16 --out rec.json

Runs in rejax's own environment (`make rejax-env`) and imports nothing of this repository. The
seeds train in one program, `jax.jit(jax.vmap(algo.train))`, compiled ahead of time (compile_s)
and then run once (run_s); then each seed's final policy plays `--eval-episodes` greedy episodes
with rejax's own `evaluate`. Writes one record (`peer.RECORD_FIELDS`) to `--out`.

Our `PPOConfig()` in rejax's terms:
- 16 envs x 128 steps, 4 epochs x 4 minibatches: `num_envs`, `num_steps`, `num_epochs`,
  `num_minibatches` (a count in both: 4 minibatches of 512).
- γ 0.99, λ 0.95, clip 0.2, vf 0.5: same names; `ent_coef=0` (rejax's default is 0.01).
  Advantages standardised per minibatch and the value loss clipped by clip_eps: in both.
- lr 1e-3 decayed linearly to 0: rejax has no annealing flag, but hands `learning_rate` to
  `optax.adam` as it is, so it gets our schedule (1 − u/num_updates during update u). Each of
  its two Adams counts one step per minibatch, as ours does.
- 64-64 tanh: `agent_kwargs` (rejax's default is swish). Observation and reward normalisation
  off (rejax's defaults).
- Length: rejax trains ceil(eval_freq / 2048) updates per evaluation, ours
  total_timesteps // 2048; `--timesteps` is rounded down to whole updates and is both
  `total_timesteps` and `eval_freq` here (500,000 -> 244 updates, 499,712 steps on both sides).
- Evaluation inside `train` is off: `skip_initial_evaluation` and a no-op `eval_callback`
  (rejax's default plays 128 episodes every 4,096 steps, inside the timed program).

Differences rejax's `create` cannot express (none changes the amount of work):
- `max_grad_norm=0.5` is `optax.clip`, each gradient element clipped to ±0.5, per network;
  ours clips the global norm of the actor's and critic's gradients together.
- Adam ε is optax's 1e-8 (ours 1e-5).
- Two losses, two backward passes and two Adams (actor, critic); ours one summed loss. The
  gradients are the same, as the networks share no parameter.
- Initialisation: flax's default Dense (LeCun normal, zero bias); ours orthogonal, gain √2 in
  the hidden layers, 0.01 on the actor's head and 1 on the critic's.
- A time limit ends the episode like a termination (no bootstrap); ours bootstraps from
  V(final observation) at truncation.
- gymnax 1.0.1's `step` returns (obs, state, reward, terminated, truncated, info); rejax 0.1.3
  unpacks five values. `FiveTupleStep` gives it the older API, done = terminated | truncated.
"""
from __future__ import annotations

import time

START = time.perf_counter()  # wall_s counts from here: imports, set-up, training, evaluation

import argparse  # noqa: E402
import json  # noqa: E402
from importlib import metadata  # noqa: E402
from pathlib import Path  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import rejax  # noqa: E402
from rejax.evaluate import evaluate  # noqa: E402

ENV_ID = "CartPole-v1"
NUM_ENVS, NUM_STEPS, EPOCHS, MINIBATCHES = 16, 128, 4, 4
LR = 1e-3


class FiveTupleStep:
    """gymnax 1.0.1's environment with the five-value `step` rejax 0.1.3 unpacks."""

    def __init__(self, env):
        self.env = env

    def __getattr__(self, name):
        if name == "env":  # not set yet (copy.deepcopy builds the object without __init__)
            raise AttributeError(name)
        return getattr(self.env, name)

    def reset(self, key, params=None):
        return self.env.reset(key, params)

    def step(self, key, state, action, params=None):
        obs, state, reward, terminated, truncated, info = self.env.step(key, state, action, params)
        return obs, state, reward, terminated | truncated, info


def linear_decay(num_updates: int):
    """lr · (1 − u / num_updates) during update u (PureJaxRL's annealing, ours)."""
    def schedule(count):
        fraction = (count // (EPOCHS * MINIBATCHES)).astype(jnp.float32) / num_updates
        return LR * jnp.maximum(1.0 - fraction, 0.0)
    return schedule


def make_algo(num_updates: int):
    import gymnax

    env, env_params = gymnax.make(ENV_ID)
    steps = num_updates * NUM_ENVS * NUM_STEPS
    algo = rejax.PPO.create(
        env=FiveTupleStep(env), env_params=env_params, num_envs=NUM_ENVS, num_steps=NUM_STEPS,
        num_epochs=EPOCHS, num_minibatches=MINIBATCHES, learning_rate=linear_decay(num_updates),
        gamma=0.99, gae_lambda=0.95, clip_eps=0.2, vf_coef=0.5, ent_coef=0.0,
        max_grad_norm=0.5, agent_kwargs={"hidden_layer_sizes": (64, 64), "activation": "tanh"},
        total_timesteps=steps, eval_freq=steps, skip_initial_evaluation=True)
    return algo.replace(eval_callback=lambda algo, ts, rng: ())


def greedy_returns(algo, ts, key, num_episodes: int):
    """Mean return of `num_episodes` episodes of the policy's most likely action."""
    def act(obs, rng):
        logits_mode = lambda actor, x: actor._action_dist(x).mode()
        return jnp.squeeze(algo.actor.apply(ts.actor_ts.params, obs[None], method=logits_mode))

    _, returns = evaluate(act, key, algo.env, algo.env_params, num_episodes,
                          algo.env_params.max_steps_in_episode)
    return returns.mean()


def compile_and_train(algo, keys):
    """Every seed's `algo.train` in one program, `jax.jit(jax.vmap(...))`, compiled ahead of
    time and run once: (final train states, compile_s, run_s)."""
    t = time.perf_counter()
    train = jax.jit(jax.vmap(lambda key: algo.train(key)[0])).lower(keys).compile()
    compile_s = time.perf_counter() - t
    t = time.perf_counter()
    ts = jax.block_until_ready(train(keys))
    return ts, compile_s, time.perf_counter() - t


def write_record(out: Path, start: float, **fields) -> None:
    """The rejax side's record (`peer.RECORD_FIELDS`): `fields`, the library versions and the
    wall time since `start` (the process's), written atomically to `out` and printed."""
    versions = {}
    for name in ("rejax", "jax", "jaxlib", "flax", "optax", "gymnax", "distrax"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    record = {"side": "rejax", **fields,
              "returns": [float(r) for r in jax.device_get(fields["returns"])],
              "wall_s": time.perf_counter() - start, "versions": versions}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(out)
    print(json.dumps(record))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--timesteps", type=int, default=500_000)
    parser.add_argument("--eval-episodes", type=int, default=20)
    parser.add_argument("--row", default=None, help="the row's name (default ppo_<N>_seed[s])")
    args = parser.parse_args()

    num_updates = max(1, args.timesteps // (NUM_ENVS * NUM_STEPS))
    algo = make_algo(num_updates)
    keys = jax.vmap(jax.random.PRNGKey)(jnp.arange(args.seeds))

    ts, compile_s, run_s = compile_and_train(algo, keys)
    eval_keys = jax.vmap(lambda k: jax.random.fold_in(k, 0x5EED))(keys)
    returns = jax.jit(jax.vmap(lambda ts, k: greedy_returns(algo, ts, k, args.eval_episodes)))(
        ts, eval_keys)
    write_record(args.out, START, row=args.row or (f"ppo_{args.seeds}_seed" + ("s" if args.seeds > 1
                                                                        else "")),
                 seeds=args.seeds, work=num_updates * NUM_ENVS * NUM_STEPS,
                 work_unit="env steps", compile_s=compile_s, run_s=run_s, returns=returns,
                 eval_episodes=args.eval_episodes)

if __name__ == "__main__":
    main()
