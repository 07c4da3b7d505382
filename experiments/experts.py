"""Experts on demand: a recipe per task, trained (or built) once and cached with demonstrations.

    python -m experiments.experts --env seals/HalfCheetah-v1        # one task, into the cache
    python -m experiments.experts --env all                         # every task with a recipe
    python -m experiments.experts --list                            # the recipes and the cache

Every registered task has a recipe (`RECIPES`):
- "controller": the hand-written controller of `envs.controllers` (CartPole, MountainCar);
- "optimal": the task's exact optimal policy (`envs.diagnostics.experts.expert_policy`): value
  iteration on the model for tabular tasks, closed-form controllers for the other diagnostics;
- "ppo": PPO with settings for the task. MuJoCo: 16 environments × 256 steps, 10 epochs of 32
  minibatches, observations standardised by their running statistics (imitation's experts were
  trained behind SB3's VecNormalize), rewards scaled by 0.1 for the critic, an unclipped value
  loss; Swimmer takes imitation's own settings for its expert. Several seeds train in one program
  and the best becomes the expert.

An expert lives in `<cache>/<task>/<recipe key>/` (the cache is $JAXRL_ALIGN_EXPERTS, by
default ~/.cache/jaxrl_align/experts; the key names the recipe and hashes its settings, so a changed
recipe never reuses an old expert): `demos.npz` (`num_demos` episodes of the expert's
deterministic policy: what BC, GAIL, AIRL, SQIL and density read with `--demos`; `experiments.train`
uses it when `--demos` is left out), `expert.json`, and for PPO the run (config.json, results.json,
metrics.jsonl, learning_curve.png) and `policy.msgpack` + `policy.json` (what `dagger
--expert-policy` reads; DAgger uses it when the task has no controller). A folder is written
under a temporary name and renamed when complete: an interrupted training leaves no expert.
`--out DIR` writes `DIR/<task>/` instead, and always trains.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path

import jax
import tyro

from jaxrl_align.rl import ppo

MUJOCO_PPO = ppo.PPOConfig(num_envs=16, num_steps=256, update_epochs=10, num_minibatches=32,
                           lr=3e-4, obs_normalization="running", clip_value=False,
                           reward_scale=0.1, total_timesteps=3_000_000)

# Swimmer's reward is a slow drift that the 16 x 256 rollouts above never find (returns below
# 40 after 2M steps): imitation's own seals/Swimmer-v1 expert settings (one environment, rollouts
# of 2,048 steps, minibatches of 8, 20 epochs, γ 0.999, lr 1.2e-4, clip 0.1), 3M steps.
SWIMMER_PPO = ppo.PPOConfig(num_envs=1, num_steps=2048, update_epochs=20, num_minibatches=256,
                            lr=1.2e-4, anneal_lr=False, gamma=0.999, clip_eps=0.1,
                            max_grad_norm=2.0, obs_normalization="running", clip_value=False,
                            total_timesteps=3_000_000)

DEFAULT_NUM_DEMOS = 10  # imitation's BC benchmark learns from 10 expert episodes


@dataclass(frozen=True)
class ExpertRecipe:
    """How the expert of one task is made."""

    kind: str  # "ppo", "controller" or "optimal"
    ppo: ppo.PPOConfig | None = None
    seeds: int = 1  # PPO seeds trained together; the best is kept
    num_demos: int = DEFAULT_NUM_DEMOS

    def key(self) -> str:
        """`<kind>-<hash of the settings>`: the cache folder of this recipe's expert."""
        from jaxrl_align.hparams import config_to_dict

        settings = {"kind": self.kind, "seeds": self.seeds, "num_demos": self.num_demos,
                    "ppo": None if self.ppo is None else config_to_dict(self.ppo)}
        digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()
        return f"{self.kind}-{digest[:10]}"


def _default_recipes() -> dict[str, ExpertRecipe]:
    import envs
    from envs.controllers import CONTROLLERS

    recipes = {env_id: ExpertRecipe("controller") for env_id in CONTROLLERS}
    mujoco = {
        "seals/HalfCheetah-v1": ExpertRecipe("ppo", MUJOCO_PPO, seeds=2),
        "seals/Hopper-v1": ExpertRecipe("ppo", replace(MUJOCO_PPO, total_timesteps=2_000_000),
                                        seeds=2),
        "seals/Swimmer-v1": ExpertRecipe("ppo", SWIMMER_PPO, seeds=2),
        "seals/Walker2d-v1": ExpertRecipe("ppo", replace(MUJOCO_PPO, total_timesteps=5_000_000),
                                          seeds=2),
        "seals/Ant-v1": ExpertRecipe("ppo", replace(MUJOCO_PPO, total_timesteps=5_000_000),
                                     seeds=2),
        # What was measured (docs/environments.md); more steps would do better.
        "seals/Humanoid-v1": ExpertRecipe("ppo", replace(MUJOCO_PPO, total_timesteps=1_000_000)),
    }
    for env_id in envs.registered_ids():
        recipes.setdefault(env_id, mujoco.get(env_id, ExpertRecipe("optimal")))
    return recipes


RECIPES: dict[str, ExpertRecipe] = _default_recipes()


@dataclass(frozen=True)
class ExpertFlags:
    env: str = "seals/HalfCheetah-v1"
    """a task of RECIPES, or "all" (every PPO recipe)"""
    out: Path | None = None
    """write <out>/<task name>/ (always trains); default: the cache, reused when present"""
    seeds: int | None = None
    """PPO seeds trained together (default: the recipe's); the best is kept"""
    total_timesteps: int | None = None
    """PPO environment steps per seed (default: the recipe's)"""
    num_demos: int | None = None
    """expert episodes saved as demonstrations (default: the recipe's, 10)"""
    backend: str | None = None
    """MuJoCo physics backend: mujoco, mjx or None (the platform's default)"""
    compile_cache: bool = True
    """use JAX's persistent compilation cache"""
    progress: bool = True
    """show a progress bar"""
    final_eval_episodes: int = 50
    """PPO recipes: episodes of the run's final evaluation (expert.json's seed returns)"""
    force: bool = False
    """make the expert again even if the cache holds one"""
    list: bool = False
    """print every recipe and whether its expert is cached, then exit"""


def cache_root() -> Path:
    """Where experts are cached: $JAXRL_ALIGN_EXPERTS, or ~/.cache/jaxrl_align/experts."""
    return Path(os.environ.get("JAXRL_ALIGN_EXPERTS")
                or Path.home() / ".cache" / "jaxrl_align" / "experts")


def task_folder(out: Path, env_id: str) -> Path:
    return out / env_id.split("/")[-1]


def recipe_of(env_id: str, flags: ExpertFlags | None = None) -> ExpertRecipe:
    """The recipe of `env_id` with the flags' overrides; a ValueError naming --env if none."""
    if env_id not in RECIPES:
        raise ValueError(f"--env: no expert recipe for {env_id!r}; expected one of "
                         f"{', '.join(RECIPES)}")
    recipe = RECIPES[env_id]
    if flags is None:
        return recipe
    if flags.seeds is not None:
        recipe = replace(recipe, seeds=flags.seeds)
    if flags.num_demos is not None:
        recipe = replace(recipe, num_demos=flags.num_demos)
    if flags.total_timesteps is not None and recipe.ppo is not None:
        recipe = replace(recipe, ppo=replace(recipe.ppo, total_timesteps=flags.total_timesteps))
    return recipe


def cached_folder(env_id: str, recipe: ExpertRecipe | None = None) -> Path:
    """Where the expert of `env_id` made by `recipe` (default: the task's) is cached."""
    recipe = recipe or recipe_of(env_id)
    return task_folder(cache_root(), env_id) / recipe.key()


def is_complete(folder: Path) -> bool:
    return (folder / "expert.json").is_file() and (folder / "demos.npz").is_file()


def _expert_policy(env_id: str, recipe: ExpertRecipe, env, env_params, folder: Path,
                   flags: ExpertFlags) -> tuple:
    """(policy(key, obs) -> action, record, description) of a freshly made expert."""
    if recipe.kind == "controller":
        from envs.controllers import CONTROLLERS

        return CONTROLLERS[env_id], {}, "hand-written controller (envs.controllers)"
    if recipe.kind == "optimal":
        from envs.diagnostics.experts import expert_policy

        return expert_policy(env, env_params), {}, "optimal policy (envs.diagnostics.experts)"
    from jaxrl_align.algorithms import dagger
    from jaxrl_align.runtime import runner

    config = recipe.ppo
    print(f"PPO expert for {env_id}: {recipe.seeds} seeds x {config.total_timesteps:,} steps"
          + (f" ({env.backend} physics)" if hasattr(env, "backend") else ""))
    algo = ppo.make(config, env, env_params)
    run = runner.run(algo, env, env_params,
                     runner.RunSettings(seeds=recipe.seeds, num_chunks=20,
                                        progress=flags.progress, eval_episodes=4,
                                        final_eval_episodes=flags.final_eval_episodes,
                                        overwrite=True),
                     env_id=env_id, out_dir=folder)
    best = run.best_run()
    state = run.run_state(best)
    dagger.save_ppo_expert(folder / "policy.msgpack", config, env_id, state.params)
    record = {"total_timesteps": config.total_timesteps, "best_seed": int(best),
              "seed_returns": [float(r) for r in run.summary["return_mean"]],
              "compile_s": run.compile_s, "run_s": run.run_s}
    return ((lambda key, obs: algo.act(state, key, obs)), record,
            f"PPO expert (experiments.experts, seed {best})")


def make_expert(env_id: str, recipe: ExpertRecipe, folder: Path, flags: ExpertFlags) -> dict:
    """Make the expert of `recipe` and write it, complete, to `folder` (replacing it)."""
    import envs
    from jaxrl_align.data import demonstrations, rollout

    env, env_params = (envs.make(env_id, backend=flags.backend) if flags.backend
                       else envs.make(env_id))
    folder.parent.mkdir(parents=True, exist_ok=True)
    partial = folder.with_name(f".{folder.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    start = time.perf_counter()
    try:
        policy, record, source = _expert_policy(env_id, recipe, env, env_params, partial, flags)
        trajs = rollout.collect_episodes(env, env_params, policy, jax.random.PRNGKey(12345),
                                         recipe.num_demos, rollout.max_episode_steps(env_params))
        demonstrations.save_demos(partial / "demos.npz", trajs, env_id=env_id, source=source,
                                  extra_metadata={"recipe": recipe.key()})
        _, meta = demonstrations.load_demos(partial / "demos.npz", env=env,
                                            env_params=env_params, env_id=env_id)
        record = {"env_id": env_id, "recipe": recipe.key(), "kind": recipe.kind,
                  "seeds": recipe.seeds, "backend": getattr(env, "backend", None),
                  "source": source, **record, "demo_episodes": recipe.num_demos,
                  "demo_mean_return": float(meta["mean_return"]),
                  "wall_s": time.perf_counter() - start}
        (partial / "expert.json").write_text(json.dumps(record, indent=2))
        shutil.rmtree(folder, ignore_errors=True)
        partial.rename(folder)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    print(f"  {env_id}: demonstrations' mean return {record['demo_mean_return']:.1f} "
          f"({recipe.num_demos} episodes), {record['wall_s']:.0f}s; wrote {folder}/")
    return record


def ensure_expert(env_id: str, flags: ExpertFlags | None = None) -> Path:
    """The cached expert folder of `env_id`, made first (with a one-line notice) if missing."""
    flags = flags or ExpertFlags(env=env_id)
    recipe = recipe_of(env_id, flags)
    folder = cached_folder(env_id, recipe)
    if not is_complete(folder):
        print(f"No cached expert for {env_id}: making one ({recipe.kind} recipe "
              f"{recipe.key()}) in {folder}/")
        make_expert(env_id, recipe, folder, flags)
    return folder


def expert_demos(env_id: str) -> Path:
    """The cached demonstrations of `env_id`'s expert (`experiments.train` without --demos)."""
    folder = cached_folder(env_id)
    if is_complete(folder):
        print(f"Using the cached expert demonstrations {folder / 'demos.npz'}")
    return ensure_expert(env_id) / "demos.npz"


def list_recipes() -> str:
    rows = [f"{'task':<28} {'recipe':<22} cached"]
    for env_id, recipe in RECIPES.items():
        folder = cached_folder(env_id, recipe)
        rows.append(f"{env_id:<28} {recipe.key():<22} {'yes' if is_complete(folder) else '-'}")
    return "\n".join(rows + [f"cache: {cache_root()}"])


def main(flags: ExpertFlags) -> list[dict]:
    from jaxrl_align.platform import compilation_cache

    if flags.list:
        print(list_recipes())
        return []
    env_ids = ([e for e, r in RECIPES.items() if r.kind == "ppo"] if flags.env == "all"
               else [flags.env])
    if flags.env != "all" and flags.env not in RECIPES:
        raise SystemExit(f"error: --env: expected one of {', '.join(RECIPES)} or all, "
                         f"got {flags.env!r}")
    for name in ("seeds", "num_demos", "total_timesteps", "final_eval_episodes"):
        value = getattr(flags, name)
        if value is not None and value <= 0:
            raise SystemExit(f"error: --{name.replace('_', '-')}: expected a positive integer, "
                             f"got {value}")
    if flags.compile_cache:
        compilation_cache.enable()
    records = []
    for env_id in env_ids:
        recipe = recipe_of(env_id, flags)
        if flags.out is not None:
            folder = task_folder(flags.out, env_id)
        else:
            folder = cached_folder(env_id, recipe)
            if is_complete(folder) and not flags.force:
                print(f"{env_id}: cached in {folder}/ (--force makes it again)")
                records.append(json.loads((folder / "expert.json").read_text()))
                continue
        records.append(make_expert(env_id, recipe, folder, flags))
    return records


if __name__ == "__main__":
    main(tyro.cli(ExpertFlags))
