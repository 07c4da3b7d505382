"""Evaluate a trained policy: a run folder, one of its checkpoints, or a saved policy file.

    python -m experiments.evaluate runs/bc-seals_CartPole-v0                   # every seed of a run
    python -m experiments.evaluate runs/bc-seals_CartPole-v0/checkpoints/10    # at that checkpoint
    python -m experiments.evaluate runs/experts/Hopper-v1/policy.msgpack       # a saved policy (experts --out runs/experts)
    python -m experiments.evaluate RUN --episodes 100 --gif episode.gif        # and an animation

A run folder (written by `experiments.train`) is rebuilt from its config.json: the same command,
settings and data files (their checksums must still match), and its newest intact checkpoint
(or the one named) restored; every seed is then evaluated. A saved policy is a `policy.msgpack`
with its `policy.json` beside it (`experiments.train ppo`, `experiments.experts`,
`experiments.convert sb3-policy`). Prints the return and normalised score per seed and the IQM
with its 95% bootstrap interval (over seeds for a run, over episodes for one policy); `--out`
writes the same numbers as JSON; `--gif` draws the first episode of the first seed.
"""
from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import tyro

from experiments.common import UsageError, exit_on_usage_error, results_table


@dataclass(frozen=True)
class EvaluateFlags:
    source: tyro.conf.Positional[Path]
    """a run folder, a checkpoint folder (<run>/checkpoints/<step>) or a policy.msgpack"""
    episodes: int = 50
    """episodes per seed"""
    seed: int = 0
    """seed of the evaluation episodes"""
    stochastic: bool = False
    """sample actions from the policy instead of taking its mode"""
    out: Path | None = None
    """write the numbers to this JSON file"""
    gif: Path | None = None
    """draw the first episode to this GIF (tasks whose state can be drawn)"""
    compile_cache: bool = True
    """use JAX's persistent compilation cache"""


def command_from_dict(cls, values: dict):
    """The command dataclass `cls` rebuilt from its `config_to_dict` record (config.json)."""
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in values:
            continue
        kwargs[f.name] = _value_of(hints[f.name], values[f.name])
    return cls(**kwargs)


def _value_of(hint, value):
    """A JSON value of config.json as the field's type: nested dataclasses, Paths, tuples."""
    if value is None:
        return None
    if typing.get_origin(hint) in (typing.Union, types.UnionType):  # `X | None`
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    if dataclasses.is_dataclass(hint):
        return command_from_dict(hint, value)
    if hint is Path:
        return Path(value)
    if isinstance(value, list):  # config_to_dict writes tuples as lists
        item = next(iter(typing.get_args(hint)), None)
        return tuple(_value_of(item, v) for v in value)
    return value


# --- sources -------------------------------------------------------------------------------------
def _run_folder_and_step(source: Path) -> tuple[Path, int | None]:
    if source.parent.name == "checkpoints" and source.name.isdigit():
        return source.parent.parent, int(source.name)
    return source, None


def _rebuild_run(run_dir: Path):
    """(command, algo, env, env_params, data) of the run in `run_dir`, from its config.json."""
    from experiments import train

    config_path = run_dir / "config.json"
    if not config_path.is_file():
        raise UsageError(f"{run_dir}: expected a run folder with config.json (experiments.train) "
                         "or a policy.msgpack")
    config = json.loads(config_path.read_text())
    name, flags = config.get("command"), config.get("command_flags")
    classes = {cls.__name__: cls for cls in train.COMMANDS.values()}
    if name not in classes or not isinstance(flags, dict):
        raise UsageError(f"{config_path}: command_flags: expected the command's flags (runs "
                         f"written by experiments.train since the evaluate command), found "
                         f"command {name!r} without them")
    command = command_from_dict(classes[name], flags)
    if config.get("sweep"):
        raise UsageError(f"{config_path}: sweep: evaluating a sweep's runs is not supported; "
                         "evaluate a single-configuration run")
    for data_name, record in (config.get("data_files") or {}).items():
        path = Path(record["path"])
        if not path.is_file() or train.file_sha256(path) != record["sha256"]:
            raise UsageError(f"{config_path}: data_files.{data_name}: {path} is missing or no "
                             "longer the file the run trained on (its sha256 differs)")
    env, env_params = train.make_env(command.process.env)
    algo = command.build(env, env_params)
    data = command.load_data(env, env_params) if hasattr(command, "load_data") else None
    return command, algo, env, env_params, data


def _restore_states(run_dir: Path, step: int | None, algo, data) -> tuple[list, list[int], int]:
    """(per-seed states, seeds, step) restored from the run's checkpoints."""
    from jaxrl_align.runtime.checkpoints import RunCheckpoints, completed_steps

    directory = run_dir / "checkpoints"
    steps = completed_steps(directory) if directory.is_dir() else []
    if not steps:
        raise UsageError(f"{run_dir}: checkpoints: none found (the run kept none: "
                         "--checkpoint-every 0)")
    if step is not None and step not in steps:
        raise UsageError(f"{directory}: expected one of the steps {steps}, got {step}")
    ckpt = RunCheckpoints(directory, keep=len(steps))
    try:
        meta = ckpt.restore_meta(step if step is not None else steps[-1])
        slice_size, num_slices = meta["fingerprint"]["layout"]
        seeds = [int(s) for s in meta["fingerprint"]["run_seeds"]]
        one = jax.eval_shape(lambda key: algo.init(key, data), jax.random.PRNGKey(0))
        sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
        batched = jax.tree.map(lambda a: jax.ShapeDtypeStruct((slice_size,) + a.shape, a.dtype,
                                                              sharding=sharding), one)
        if step is None:
            step, meta, slices, skipped = ckpt.restore_latest([batched] * num_slices)
            if step is None:
                raise UsageError(f"{directory}: no intact checkpoint ({'; '.join(skipped)})")
        else:
            slices = ckpt.restore_state(step, [batched] * num_slices, meta)
    finally:
        ckpt.close()
    stacked = jax.tree.map(lambda *xs: jnp.concatenate(xs), *slices)
    states = [jax.tree.map(lambda x: x[i], stacked) for i in range(len(seeds))]
    return states, seeds, int(step)


def _policy_file(path: Path):
    """(env_id, policy(key, obs) -> action, params) of a saved policy.msgpack + .json."""
    from experiments.common import make_env
    from jaxrl_align.algorithms import dagger

    record_path = path.with_suffix(".json")
    if not path.is_file() or not record_path.is_file():
        raise UsageError(f"{path}: expected a policy.msgpack with its .json beside it")
    env_id = json.loads(record_path.read_text()).get("env_id")
    env, env_params = make_env(env_id)
    try:
        expert, params = dagger.load_ppo_expert(path, env, env_params)
    except (ValueError, KeyError) as e:
        raise UsageError(f"{path}: {e}") from None
    return env_id, env, env_params, expert, params


# --- evaluation ----------------------------------------------------------------------------------
def _returns(env, env_params, act, states, key, episodes: int) -> np.ndarray:
    """[seeds, episodes] returns of `act(state, key, obs)` for each state, in one program."""
    from jaxrl_align.evaluation import evaluate_policy

    stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *states)

    @jax.jit
    def run(stacked, key):
        def one(state, key):
            return evaluate_policy(env, env_params, lambda k, obs: act(state, k, obs), key,
                                   episodes)
        return jax.vmap(one)(stacked, jax.random.split(key, len(states)))

    return np.asarray(run(stacked, key), np.float64)


def main(flags: EvaluateFlags) -> dict:
    from experiments.common import reference_returns_or_none
    from jaxrl_align.evaluation import summarize

    if flags.episodes <= 0:
        exit_on_usage_error(UsageError(f"--episodes: expected a positive number, "
                                       f"got {flags.episodes}"))
    if flags.compile_cache:
        from jaxrl_align.platform import compilation_cache

        compilation_cache.enable()
    source = Path(flags.source)
    deterministic = not flags.stochastic
    if flags.gif is not None and flags.gif.suffix != ".gif":
        exit_on_usage_error(UsageError(f"--gif: expected a .gif path, got {flags.gif}"))
    try:
        if source.suffix == ".msgpack":
            env_id, env, env_params, expert, params = _policy_file(source)
            act = lambda p, key, obs: expert(p, key, obs)
            states, seeds, label, step = [params], [0], f"policy {source}", None
        else:
            run_dir, step = _run_folder_and_step(source)
            command, algo, env, env_params, data = _rebuild_run(run_dir)
            env_id = command.process.env
            states, seeds, step = _restore_states(run_dir, step, algo, data)
            act = lambda s, key, obs: algo.act(s, key, obs, deterministic)
            label = f"{algo.name} run {run_dir} at checkpoint {step}"
    except ValueError as e:
        exit_on_usage_error(e)
    if flags.gif is not None:
        from experiments import render

        if not render.drawable(env_id):
            exit_on_usage_error(UsageError(f"--gif: no drawing for {env_id} (drawable: the "
                                           "seals MuJoCo tasks, CartPole, MountainCar)"))
    returns = _returns(env, env_params, act, states, jax.random.PRNGKey(flags.seed), flags.episodes)
    reference = reference_returns_or_none(env_id) or (None, None)
    if len(seeds) == 1:  # one policy: the interval is over its episodes
        summary = summarize(returns[0][:, None], *reference)
        per_seed = summarize(returns, *reference)
        summary = {**summary, "return_mean": per_seed["return_mean"],
                   "normalized_score": per_seed.get("normalized_score")}
    else:
        summary = summarize(returns, *reference)
    print(results_table(f"{label} on {env_id}: {flags.episodes} episodes per seed", seeds, summary))
    record = {"source": str(source), "env_id": env_id, "checkpoint": step, "seeds": seeds,
              "episodes": flags.episodes, "deterministic": deterministic,
              "reference_returns": None if reference[0] is None else list(reference),
              "returns": returns.tolist(), **summary}
    if flags.out is not None:
        from jaxrl_align.data.files import write_atomic

        write_atomic(flags.out, lambda f: f.write(json.dumps(record, indent=2).encode()))
        print(f"wrote {flags.out}")
    if flags.gif is not None:
        from experiments import render
        from jaxrl_align.data import rollout

        trajs = rollout.collect_episodes(env, env_params,
                                         lambda key, obs: act(states[0], key, obs),
                                         jax.random.PRNGKey(flags.seed), 1,
                                         rollout.max_episode_steps(env_params))
        length = int(trajs.lengths[0])
        render.save_gif(flags.gif, render.frames(env_id, np.asarray(trajs.obs[0, :length + 1])))
        print(f"wrote {flags.gif} ({length} steps)")
    return record


if __name__ == "__main__":
    main(tyro.cli(EvaluateFlags))
