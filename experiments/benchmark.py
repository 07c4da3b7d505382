"""imitation's benchmark in one command: BC, DAgger, GAIL and AIRL × the seals MuJoCo tasks ×
seeds, with imitation's table, aggregates and probability of improvement.

    python -m experiments.benchmark                                  # the cpu budget, all cells
    python -m experiments.benchmark --budget full --algos gail --tasks seals/HalfCheetah-v1
    python -m experiments.benchmark --budget tiny --algos bc dagger --seeds 2   # all 5 tasks

Each cell (algorithm, task) is one `experiments.train` command built here and run by
`experiments.train.main`: every seed in one compiled program, written to
`<out>/<algo>/<task>/` with the runner's checkpoints. A cell whose results.json exists is read,
not rerun; any other cell runs with `--resume`, so a killed benchmark continues from the
latest checkpoint of the cell it was in. The expert and its demonstrations come from
`experiments.experts` (the task's recipe; at `--budget tiny` a one-update PPO expert). Scores
are normalised as imitation's: (return − random) / (expert − random), random being
`envs.reference_returns`' uniformly random actions and expert the final return (50 episodes)
of the very expert whose demonstrations the cell learnt from (`normalising_returns`; at the
tiny budget, whose expert is one PPO update, `envs.reference_returns`' stored expert). So 1.0
is this project's expert of that run, not imitation's.

Outputs: `<out>/benchmark.json` (every number), `<out>/benchmark.md` (the tables printed) and
`<out>/benchmark.png` (per-task score distributions and the aggregate intervals).
Aggregates follow rliable as imitation's `benchmarking/` scripts use it: mean and IQM over all
(task, seed) scores with 95% stratified-bootstrap intervals, and the probability of improvement
of each algorithm over each other (`jaxrl_align.evaluation`).

Presets (`preset`), with imitation's tuned settings (`scripts/config/tuned_hps/
*_seals_*_best_hp_eval.json` of imitation 1.0.1) in the tables below and translated thus:
- demonstrations: imitation loads every episode of its Hugging Face `ppo-seals-<task>` dataset
  (`n_expert_demos=None`); here the expert recipe's 10 episodes (`experts.DEFAULT_NUM_DEMOS`,
  10,000 transitions), at every budget. BC's epochs are passes over these 10 episodes, so a pass
  is as many gradient steps as imitation's only if its dataset also held 10 episodes.
- BC and DAgger: batch size, L2 weight, Adam learning rate and epochs as tuned; a 32-32 tanh
  policy (imitation's FeedForward32Policy) behind running observation normalisation. imitation's
  BC/DAgger benchmark runs lacked the normaliser its configs name (a bug in
  `make_or_load_policy`, see the reference notes); here it is kept, because BC on these tasks
  needs it (docs/algorithms/bc.md).
- DAgger: imitation's collector is 8 environments (`num_vec=8`) stepped together; a round ends
  at the first step with at least `rollout_round_min_episodes` finished episodes, and seals
  episodes all last 1,000 steps, so a round is ceil(min_episodes / 8) × 8 whole episodes, and the
  run has ceil(total_timesteps / round steps) rounds. Here: `num_envs` = those episodes (one per
  environment and round) and `rounds` = that count; β's schedule as tuned.
- GAIL and AIRL: SB3 PPO's `batch_size` (the rollout, over 8 environments) is `num_envs=8` ×
  `num_steps`; its minibatch size gives `num_minibatches` = rollout / minibatch; `n_epochs`,
  learning rate, γ, λ, clip range, entropy and value coefficients and the gradient clip as tuned;
  SB3 keeps the learning rate constant and does not clip the value loss (`anneal_lr=False`,
  `clip_value=False`). The policy is FeedForward32Policy (32-32 tanh) or SB3's MlpPolicy with
  ReLU (64-64) as the config names, behind running observation normalisation (their
  NormalizeFeaturesExtractor); the reward net's RunningNorm output layer is
  `normalize_reward=True`. Discriminator batch, replay capacity and updates per round as tuned.
- budgets: `full` is all of the above with 10M generator steps (imitation's); `cpu` cuts GAIL
  and AIRL to 500k generator steps a seed and evaluates 5 episodes a chunk over 10 chunks,
  nothing else (BC and DAgger are cheap); `tiny` is for the tests: seconds a cell, 2 final
  evaluation episodes a seed instead of 50 (seals MuJoCo episodes cannot be shortened).
"""
from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np
import tyro

ALGOS = ("bc", "dagger", "gail", "airl")
TASKS = ("seals/Ant-v1", "seals/HalfCheetah-v1", "seals/Hopper-v1", "seals/Swimmer-v1",
         "seals/Walker2d-v1")
ALGO_LABELS = {"bc": "BC", "dagger": "DAgger", "gail": "GAIL", "airl": "AIRL"}
FINAL_EVAL_EPISODES = 50  # imitation's policy_evaluation.n_episodes_eval

# imitation's tuned BC: (batch size, L2 weight, Adam learning rate, epochs).
BC_TUNED = {
    "seals/Ant-v1": (16, 2.350251568550711e-05, 1.7601048183920826e-3, 5),
    "seals/HalfCheetah-v1": (64, 5.728455628518169e-3, 8.056922426724927e-3, 20),
    "seals/Hopper-v1": (64, 1.3610189916104634e-06, 7.172435323620212e-4, 20),
    "seals/Swimmer-v1": (16, 4.37857842825771e-05, 1.6370547173923296e-3, 10),
    "seals/Walker2d-v1": (32, 1.4680228143404998e-3, 3.034620018780926e-4, 20),
}
# imitation's tuned DAgger (its BC: batch 16, L2 1e-4, lr 1e-3): (BC epochs a round, β
# schedule, its parameter, rollout_round_min_episodes, total_timesteps).
DAGGER_BC = (16, 1e-4, 1e-3)
DAGGER_TUNED = {
    "seals/Ant-v1": (10, "linear", 15, 5, 100_000),
    "seals/HalfCheetah-v1": (5, "exponential", 0.7, 5, 60_000),
    "seals/Hopper-v1": (1, "exponential", 0.7, 10, 100_000),
    "seals/Swimmer-v1": (1, "linear", 15, 3, 100_000),
    "seals/Walker2d-v1": (5, "exponential", 0.7, 5, 100_000),
}
IMITATION_NUM_VEC = 8
EPISODE_STEPS = 1000  # every seals MuJoCo episode
# imitation's tuned GAIL and AIRL: discriminator (demo_batch_size, gen_replay_buffer_capacity,
# n_disc_updates_per_round), then SB3 PPO (rollout, minibatch, n_epochs, lr, γ, λ, clip,
# ent_coef, vf_coef, max_grad_norm) and the policy ("ff32" or "mlp_relu").
ADVERSARIAL_TUNED = {
    "gail": {
        "seals/Ant-v1": ((32, 16384, 8), (16384, 16, 10, 2.428297806883194e-05, 0.995, 0.8, 0.3,
                                          8.871887607426377e-3, 0.4351450387648799, 0.9), "ff32"),
        "seals/HalfCheetah-v1": ((8192, 512, 8), (4096, 64, 5, 2.6250519057717037e-4, 0.95, 0.95,
                                                  0.1, 3.992371122209408e-06, 0.11483689492120866,
                                                  0.8), "ff32"),
        "seals/Hopper-v1": ((128, 4096, 8), (4096, 512, 20, 4.3984856156897565e-05, 0.995, 0.98,
                                             0.1, 1.255299425412744e-3, 0.20315938606555833, 0.9),
                            "mlp_relu"),
        "seals/Swimmer-v1": ((32, 4096, 16), (4096, 64, 5, 2.0190030388504567e-05, 0.999, 0.95,
                                              0.1, 2.257758693006348e-06, 0.6162112311062333, 2.0),
                             "mlp_relu"),
        "seals/Walker2d-v1": ((512, 16384, 16), (16384, 128, 20, 1.943992487657563e-05, 0.98,
                                                 0.92, 0.4, 7.566389899529574e-4,
                                                 0.6167177795726859, 0.6), "mlp_relu"),
    },
    "airl": {
        "seals/Ant-v1": ((8192, 8192, 16), (8192, 16, 10, 3.249429831179079e-05, 0.995, 0.8, 0.3,
                                            3.27750078482474e-06, 0.4351450387648799, 0.9), "ff32"),
        "seals/HalfCheetah-v1": ((2048, 512, 16), (8192, 64, 5, 4.7248619386801587e-4, 0.95, 0.95,
                                                   0.1, 5.544771755195421e-4, 0.11483689492120866,
                                                   0.8), "ff32"),
        "seals/Hopper-v1": ((2048, 8192, 16), (8192, 512, 20, 5.807211840258373e-4, 0.995, 0.98,
                                               0.1, 9.709494745755033e-3, 0.20315938606555833,
                                               0.9), "mlp_relu"),
        "seals/Swimmer-v1": ((128, 16384, 16), (16384, 64, 5, 1.3390060486393868e-3, 0.999, 0.95,
                                                0.1, 6.137718463434523e-3, 0.6162112311062333,
                                                2.0), "mlp_relu"),
        "seals/Walker2d-v1": ((512, 16384, 16), (16384, 128, 20, 3.052170958603811e-05, 0.98,
                                                 0.92, 0.4, 2.003867232707145e-3,
                                                 0.6167177795726859, 0.6), "mlp_relu"),
    },
}
POLICIES = {"ff32": ((32, 32), "tanh"), "mlp_relu": ((64, 64), "relu")}
# imitation's published table (docs/main-concepts/benchmark_summary.md, imitation 1.0.1; 10
# seeds, 50 episodes): per (algorithm, task) (return mean, std, normalised mean, std), then its
# aggregate mean and IQM with 95% intervals over all five tasks. Shown beside ours (the report),
# never used to score ours.
IMITATION_PUBLISHED = {
    "airl": {"seals/Ant-v1": (2485.889, 533.471, 0.981, 0.184),
             "seals/HalfCheetah-v1": (938.450, 804.871, 0.627, 0.412),
             "seals/Hopper-v1": (183.780, 93.295, 0.921, 0.373),
             "seals/Swimmer-v1": (286.699, 7.763, 0.970, 0.027),
             "seals/Walker2d-v1": (1154.921, 659.564, 0.461, 0.264)},
    "bc": {"seals/Ant-v1": (2090.551, 180.340, 0.844, 0.062),
           "seals/HalfCheetah-v1": (1516.476, 37.487, 0.923, 0.019),
           "seals/Hopper-v1": (204.271, 0.609, 1.003, 0.002),
           "seals/Swimmer-v1": (276.242, 9.328, 0.935, 0.032),
           "seals/Walker2d-v1": (2393.254, 37.641, 0.956, 0.015)},
    "dagger": {"seals/Ant-v1": (2302.527, 108.315, 0.957, 0.052),
               "seals/HalfCheetah-v1": (1615.004, 8.262, 1.017, 0.008),
               "seals/Hopper-v1": (204.789, 1.599, 1.011, 0.012),
               "seals/Swimmer-v1": (283.776, 6.524, 0.988, 0.024),
               "seals/Walker2d-v1": (2419.748, 52.215, 1.002, 0.026)},
    "gail": {"seals/Ant-v1": (2527.566, 148.034, 0.995, 0.051),
             "seals/HalfCheetah-v1": (1595.129, 37.374, 0.963, 0.019),
             "seals/Hopper-v1": (187.105, 14.298, 0.935, 0.057),
             "seals/Swimmer-v1": (249.949, 74.295, 0.845, 0.254),
             "seals/Walker2d-v1": (2399.196, 89.949, 0.959, 0.036)},
}
IMITATION_PUBLISHED_AGGREGATES = {  # (mean, its 95% CI, IQM, its 95% CI)
    "airl": (0.792, (0.709, 0.792), 0.918, (0.871, 0.974)),
    "bc": (0.932, (0.922, 0.932), 0.941, (0.941, 0.949)),
    "dagger": (0.995, (0.987, 0.998), 1.004, (1.003, 1.008)),
    "gail": (0.939, (0.900, 0.944), 0.957, (0.965, 0.970)),
}
# imitation's expert returns, back-solved from its table (score = random + norm·(expert −
# random), least squares; ±~2%): its seals experts are weak on Hopper (≈ 203).
IMITATION_EXPERT_RETURNS = {"seals/Ant-v1": 2507, "seals/HalfCheetah-v1": 1631,
                            "seals/Hopper-v1": 203, "seals/Swimmer-v1": 291,
                            "seals/Walker2d-v1": 2470}
GENERATOR_STEPS = {"full": 10_000_000, "cpu": 500_000, "tiny": 256}  # per seed
# The tiny budget's expert: one PPO update of the task's recipe (16 × 256 steps), one seed.
TINY_EXPERT_STEPS = 4096


@dataclass(frozen=True)
class BenchmarkFlags:
    algos: tuple[Literal["bc", "dagger", "gail", "airl"], ...] = ALGOS
    """algorithms, in the table's column order"""
    tasks: tuple[str, ...] = TASKS
    """seals MuJoCo tasks"""
    seeds: int = 10
    """seeds per cell, trained together in one program"""
    budget: Literal["full", "cpu", "tiny"] = "cpu"
    """full: imitation's settings (10M generator steps for GAIL/AIRL, for an accelerator); cpu:
    GAIL/AIRL cut to 500k steps a seed; tiny: seconds a cell, for the tests"""
    out: Path = Path("runs/benchmark")
    """output folder: <out>/<algo>/<task>/ per cell, benchmark.json/.md/.png"""
    resamples: int = 2000
    """bootstrap resamples of every interval"""
    progress: bool = True
    """show progress bars"""
    compile_cache: bool = True
    """use JAX's persistent compilation cache"""
    export: Path | None = None
    """also copy each finished cell's records (no checkpoints) to <export>/<algo>/<task>/, and
    benchmark.json and .png to <export>.json and <export>.png: small enough to commit, and a
    grid continues from them elsewhere (copy <export>/ to --out)"""


def task_name(env_id: str) -> str:
    return env_id.split("/")[-1]


def cell_folder(out: Path, algo: str, env_id: str) -> Path:
    return Path(out) / algo / task_name(env_id)


def expert_flags(env_id: str, budget: str, progress: bool = True):
    """The `experiments.experts` flags of the cell's expert: the task's recipe, or at the tiny
    budget one PPO update of it (one seed); 10 demonstration episodes either way."""
    from experiments import experts

    if budget == "tiny":
        return experts.ExpertFlags(env=env_id, seeds=1, total_timesteps=TINY_EXPERT_STEPS,
                                   final_eval_episodes=2, progress=progress)
    return experts.ExpertFlags(env=env_id, progress=progress)


def run_settings(budget: str, seeds: int, progress: bool):
    """The runner's settings of every cell: 50 final evaluation episodes a seed (tiny: 2)."""
    from jaxrl_align.runtime.runner import RunSettings

    chunks, episodes, final = {"full": (20, 10, FINAL_EVAL_EPISODES),
                               "cpu": (10, 5, FINAL_EVAL_EPISODES),
                               "tiny": (1, 1, 2)}[budget]
    return RunSettings(seeds=seeds, num_chunks=chunks, eval_episodes=episodes,
                       final_eval_episodes=final, progress=progress, resume=True,
                       checkpoint_every=1)


def bc_preset(env_id: str, budget: str):
    from jaxrl_align.algorithms import bc

    batch, l2, lr, epochs = BC_TUNED[env_id]
    config = bc.BCConfig(batch_size=batch, l2_weight=l2, lr=lr, epochs=epochs,
                         hidden=(32, 32), activation="tanh", obs_normalization="running")
    return replace(config, epochs=1) if budget == "tiny" else config


def dagger_rounds(min_episodes: int, total_timesteps: int) -> tuple[int, int]:
    """(episodes a round, rounds) of imitation's DAgger with 8 lock-step environments."""
    episodes = IMITATION_NUM_VEC * math.ceil(min_episodes / IMITATION_NUM_VEC)
    return episodes, math.ceil(total_timesteps / (episodes * EPISODE_STEPS))


def dagger_preset(env_id: str, budget: str):
    from jaxrl_align.algorithms import bc, dagger

    epochs, schedule, parameter, min_episodes, total = DAGGER_TUNED[env_id]
    batch, l2, lr = DAGGER_BC
    episodes, rounds = dagger_rounds(min_episodes, total)
    learner = bc.BCConfig(batch_size=batch, l2_weight=l2, lr=lr, hidden=(32, 32),
                          activation="tanh", obs_normalization="running")
    schedule_args = ({"rampdown_rounds": int(parameter)} if schedule == "linear"
                     else {"decay_probability": float(parameter)})
    config = dagger.DAggerConfig(rounds=rounds, beta_schedule=schedule, bc_epochs=epochs,
                                 num_envs=episodes, bc=learner, **schedule_args)
    if budget == "tiny":
        config = replace(config, rounds=1, num_envs=1, bc_epochs=1)
    return config


def adversarial_preset(algo: str, env_id: str, budget: str):
    from jaxrl_align.algorithms.adversarial import airl, gail
    from jaxrl_align.rl import ppo

    (demo_batch, capacity, disc_updates), rl, policy = ADVERSARIAL_TUNED[algo][env_id]
    rollout, minibatch, epochs, lr, gamma, lam, clip, ent, vf, grad_norm = rl
    hidden, activation = POLICIES[policy]
    generator = ppo.PPOConfig(
        num_envs=IMITATION_NUM_VEC, num_steps=rollout // IMITATION_NUM_VEC,
        update_epochs=epochs, num_minibatches=rollout // minibatch, lr=lr, anneal_lr=False,
        gamma=gamma, gae_lambda=lam, clip_eps=clip, ent_coef=ent, vf_coef=vf,
        max_grad_norm=grad_norm, clip_value=False, hidden=hidden, activation=activation,
        obs_normalization="running", total_timesteps=GENERATOR_STEPS[budget])
    settings = dict(demo_batch_size=demo_batch, gen_replay_buffer_capacity=capacity,
                    n_disc_updates_per_round=disc_updates, normalize_reward=True)
    if budget == "tiny":  # two rounds of 128 steps, small batches: the shape, not the learning
        generator = replace(generator, num_envs=2, num_steps=64, update_epochs=1,
                            num_minibatches=2)
        settings.update(demo_batch_size=64, gen_replay_buffer_capacity=None,
                        n_disc_updates_per_round=1)
    config_class = gail.GAILConfig if algo == "gail" else airl.AIRLConfig
    return config_class(ppo=generator, **settings)


def preset(algo: str, env_id: str, budget: str):
    """The algorithm's config for one cell (see the module docstring for the translation)."""
    if env_id not in BC_TUNED:
        raise ValueError(f"--tasks: no imitation settings for {env_id!r}; expected some of "
                         f"{', '.join(TASKS)}")
    if algo == "bc":
        return bc_preset(env_id, budget)
    if algo == "dagger":
        return dagger_preset(env_id, budget)
    if algo in ("gail", "airl"):
        return adversarial_preset(algo, env_id, budget)
    raise ValueError(f"--algos: expected some of {', '.join(ALGOS)}, got {algo!r}")


def command_for(algo: str, env_id: str, flags: BenchmarkFlags, expert: Path):
    """The `experiments.train` command of one cell, its expert and demonstrations from the
    expert folder `expert` (demos.npz, policy.msgpack)."""
    from experiments import train
    from experiments.common import ProcessFlags

    common = dict(run=run_settings(flags.budget, flags.seeds, flags.progress),
                  process=ProcessFlags(env=env_id, out=cell_folder(flags.out, algo, env_id),
                                       compile_cache=flags.compile_cache))
    config = preset(algo, env_id, flags.budget)
    if algo == "dagger":
        return train.DAggerCommand(expert_policy=expert / "policy.msgpack", dagger=config,
                                   **common)
    command = {"bc": train.BCCommand, "gail": train.GAILCommand, "airl": train.AIRLCommand}[algo]
    return command(demos=expert / "demos.npz", **{algo: config}, **common)


def _check_same_cell(folder: Path, seeds: list[int], config) -> None:
    """Refuse to reuse a finished cell that ran other seeds or other settings."""
    from jaxrl_align.hparams import config_to_dict

    results = json.loads((folder / "results.json").read_text())
    saved = json.loads((folder / "config.json").read_text())
    wanted = json.loads(json.dumps(config_to_dict(config)))
    if results["seeds"] != seeds or saved.get("algo_config") != wanted:
        raise SystemExit(f"error: --out: {folder} holds a finished run with other seeds or "
                         f"settings (seeds {results['seeds']}); use another --out or delete it")


def normalising_returns(env_id: str, budget: str, expert: Path | None) -> tuple[float, float]:
    """(random, expert) returns that normalise a cell's scores: the task's random return, and
    the final return of the expert folder `expert` (its best seed's, over its final evaluation
    episodes); at the tiny budget, or without that record, `envs.reference_returns`' expert."""
    import envs

    random_return, stored_expert = envs.reference_returns(env_id)
    record_file = None if expert is None else expert / "expert.json"
    if budget == "tiny" or record_file is None or not record_file.is_file():
        return random_return, stored_expert
    record = json.loads(record_file.read_text())
    if "seed_returns" not in record:
        return random_return, stored_expert
    return random_return, float(record["seed_returns"][record.get("best_seed", 0)])


def run_cell(algo: str, env_id: str, flags: BenchmarkFlags) -> dict:
    """Run (or, when its results.json exists, read) one cell; returns its record."""
    from experiments import experts, train
    from jaxrl_align.runtime import outputs

    folder = cell_folder(flags.out, algo, env_id)
    if (folder / "results.json").is_file():
        seeds = run_settings(flags.budget, flags.seeds, False).seed_list
        _check_same_cell(folder, seeds, preset(algo, env_id, flags.budget))
        print(f"== {ALGO_LABELS[algo]} on {env_id}: done in {folder}/ (not rerun)")
        return cell_record(algo, env_id, folder, ran=False, budget=flags.budget)
    expert = experts.ensure_expert(env_id, expert_flags(env_id, flags.budget, flags.progress))
    print(f"\n== {ALGO_LABELS[algo]} on {env_id}: {flags.seeds} seeds ({flags.budget} budget) "
          f"-> {folder}/")
    start = time.perf_counter()
    train.main(command_for(algo, env_id, flags, expert))
    random_return, expert_return = normalising_returns(env_id, flags.budget, expert)
    # The normalising returns and the sitting travel with the cell, so a finished cell's
    # folder (e.g. one copied from another machine, whose expert cache is gone) reads alone.
    outputs.write_json(folder / "benchmark_cell.json", {
        "wall_s": time.perf_counter() - start, "budget": flags.budget, "expert": str(expert),
        "random_return": random_return, "expert_return": expert_return,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "hardware": hardware()})
    return cell_record(algo, env_id, folder, ran=True, budget=flags.budget)


def cell_record(algo: str, env_id: str, folder: Path, ran: bool, budget: str) -> dict:
    """A cell's numbers from its results.json (and the benchmark's record of the cell: wall
    time, expert and the returns that normalised it when it ran, see `normalising_returns`)."""
    from jaxrl_align import evaluation

    results = json.loads((folder / "results.json").read_text())
    timing_file = folder / "benchmark_cell.json"
    timing = json.loads(timing_file.read_text()) if timing_file.is_file() else {}
    returns = np.asarray(results["return_mean"], dtype=np.float64)
    if "expert_return" in timing:
        random_return, expert_return = timing["random_return"], timing["expert_return"]
    else:  # a cell finished before its record kept them
        random_return, expert_return = normalising_returns(
            env_id, budget, Path(timing["expert"]) if "expert" in timing else None)
    scores = np.asarray(evaluation.normalized_score(returns, random_return, expert_return),
                        dtype=np.float64)
    seeds = results["seeds"]
    run_s = results["run_s"]
    steps_total = results["env_steps"] * len(seeds)
    return {
        "algo": algo, "task": env_id, "folder": str(folder), "ran_now": ran,
        "seeds": seeds, "returns": returns.tolist(), "normalized_scores": scores.tolist(),
        "random_return": random_return, "expert_return": expert_return,
        "return_mean": float(returns.mean()), "return_std": float(returns.std()),
        "score_mean": float(scores.mean()), "score_std": float(scores.std()),
        "diverged": results.get("diverged", []),
        "wall_s": timing.get("wall_s"), "compile_s": results["compile_s"], "run_s": run_s,
        "finished_at": timing.get("finished_at"),
        "cpu_model": timing.get("hardware", {}).get("cpu_model"),
        "env_steps_per_seed": results["env_steps"],
        # None for BC, which steps no environment while training.
        "env_steps_per_s": steps_total / run_s if steps_total and run_s > 0 else None,
    }


def aggregate(cells: list[dict], algos, tasks, resamples: int) -> dict:
    """Per algorithm the mean and IQM of every (task, seed) score with stratified-bootstrap 95%
    intervals, and the probability of improvement of each algorithm over each other."""
    from jaxrl_align import evaluation

    by_key = {(c["algo"], c["task"]): c for c in cells}
    matrices = {a: np.array([by_key[(a, t)]["normalized_scores"] for t in tasks]).T
                for a in algos}  # [seeds, tasks]
    ci = lambda statistic, *m: list(evaluation.stratified_bootstrap_ci(
        statistic, *m, num_resamples=resamples))
    per_algo = {a: {"mean": evaluation.aggregate_mean(m),
                    "mean_ci95": ci(evaluation.aggregate_mean, m),
                    "iqm": evaluation.aggregate_iqm(m),
                    "iqm_ci95": ci(evaluation.aggregate_iqm, m)}
                for a, m in matrices.items()}
    improvement = [{"x": x, "y": y,
                    "probability": evaluation.probability_of_improvement(matrices[x], matrices[y]),
                    "ci95": ci(evaluation.probability_of_improvement, matrices[x], matrices[y])}
                   for x in algos for y in algos if x != y]
    return {"aggregates": per_algo, "probability_of_improvement": improvement}


def tables(cells: list[dict], summary: dict, algos, tasks) -> str:
    """imitation's benchmark_summary.md layout: per task each algorithm's return and normalised
    score as mean / std over seeds; then the aggregates and the probabilities of improvement."""
    by_key = {(c["algo"], c["task"]): c for c in cells}
    header = ["Env"] + [f"{ALGO_LABELS[a]} {what}" for a in algos
                        for what in ("score (mean/std)", "norm (mean/std)")]
    rows = [header, ["---"] * len(header)]
    for t in tasks:
        row = [t]
        for a in algos:
            c = by_key[(a, t)]
            row += [f"{c['return_mean']:.3f} / {c['return_std']:.3f}",
                    f"{c['score_mean']:.3f} / {c['score_std']:.3f}"]
        rows.append(row)
    text = ["| " + " | ".join(r) + " |" for r in rows]
    text += ["", "Aggregate normalized scores (value [95% CI]):", "",
             "| Algo | Mean | IQM |", "|---|---|---|"]
    fmt = lambda v, ci: f"{v:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"
    for a in algos:
        s = summary["aggregates"][a]
        text.append(f"| {ALGO_LABELS[a]} | {fmt(s['mean'], s['mean_ci95'])} | "
                    f"{fmt(s['iqm'], s['iqm_ci95'])} |")
    if summary["probability_of_improvement"]:
        text += ["", "Probability of improvement P(X > Y) [95% CI]:", "",
                 "| X | Y | P(X > Y) |", "|---|---|---|"]
        for p in summary["probability_of_improvement"]:
            text.append(f"| {ALGO_LABELS[p['x']]} | {ALGO_LABELS[p['y']]} | "
                        f"{fmt(p['probability'], p['ci95'])} |")
    return "\n".join(text)


def plot(path: Path, cells: list[dict], summary: dict, algos, tasks, title: str) -> Path:
    """Per-task normalised scores (a dot per seed, a bar at the mean) beside each algorithm's
    aggregate mean and IQM with their 95% intervals."""
    from jaxrl_align.runtime.plots import _pyplot, save_figure

    plt = _pyplot()
    by_key = {(c["algo"], c["task"]): c for c in cells}
    colours = {a: f"C{i}" for i, a in enumerate(algos)}
    fig, axes = plt.subplots(1, 3, figsize=(max(8, 1.6 * len(tasks) + 7), 4),
                             gridspec_kw={"width_ratios": [max(2, len(tasks)), 1, 1]})
    width = 0.8 / len(algos)
    rng = np.random.default_rng(0)
    for i, a in enumerate(algos):
        for j, t in enumerate(tasks):
            scores = np.asarray(by_key[(a, t)]["normalized_scores"])
            x = j - 0.4 + width * (i + 0.5)
            axes[0].scatter(x + rng.uniform(-0.25, 0.25, scores.size) * width, scores, s=10,
                            color=colours[a], alpha=0.7, label=ALGO_LABELS[a] if j == 0 else None)
            axes[0].hlines(scores.mean(), x - width / 2, x + width / 2, color=colours[a])
    axes[0].set_xticks(range(len(tasks)), [task_name(t) for t in tasks], rotation=20)
    axes[0].set_ylabel("normalised score (0 random, 1 expert)")
    axes[0].legend(loc="best", fontsize=8)
    axes[0].set_title("per task, a dot per seed")
    for ax, name in zip(axes[1:], ("mean", "iqm")):
        for i, a in enumerate(algos):
            s = summary["aggregates"][a]
            lo, hi = s[f"{name}_ci95"]
            ax.barh(i, hi - lo, left=lo, height=0.6, color=colours[a], alpha=0.6)
            ax.vlines(s[name], i - 0.3, i + 0.3, color="black")
        ax.set_yticks(range(len(algos)), [ALGO_LABELS[a] for a in algos])
        ax.invert_yaxis()  # the first algorithm on top, as in the tables
        ax.set_title(f"{name.upper() if name == 'iqm' else 'Mean'} (95% CI)")
        ax.set_xlabel("normalised score")
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


def hardware() -> dict:
    """The machine (platform, CPU model and count, JAX backend and device), as the bench
    scripts record it."""
    from experiments.bench.harness import machine_info

    return machine_info()


def check_flags(flags: BenchmarkFlags) -> None:
    if flags.seeds <= 0:
        raise SystemExit(f"error: --seeds: expected a positive integer, got {flags.seeds}")
    if flags.resamples <= 0:
        raise SystemExit(f"error: --resamples: expected a positive integer, got {flags.resamples}")
    unknown = [t for t in flags.tasks if t not in BC_TUNED]
    if unknown:
        raise SystemExit(f"error: --tasks: no imitation settings for {', '.join(unknown)}; "
                         f"expected some of {', '.join(TASKS)}")
    for name in ("algos", "tasks"):
        values = getattr(flags, name)
        if not values or len(set(values)) != len(values):
            raise SystemExit(f"error: --{name}: expected distinct values, got {list(values)}")


def main(flags: BenchmarkFlags) -> dict:
    """Run every cell not yet done, then write and print the benchmark; returns the record."""
    from jaxrl_align.data.files import write_atomic
    from jaxrl_align.runtime import outputs

    check_flags(flags)
    if flags.compile_cache:
        from jaxrl_align.platform import compilation_cache

        compilation_cache.enable()
    start = time.perf_counter()
    cells = [run_cell(a, t, flags) for t in flags.tasks for a in flags.algos]
    summary = aggregate(cells, flags.algos, flags.tasks, flags.resamples)
    record = {
        "command": " ".join(["python -m experiments.benchmark", *sys.argv[1:]]),
        "budget": flags.budget, "algos": list(flags.algos), "tasks": list(flags.tasks),
        "num_seeds": flags.seeds, "bootstrap_resamples": flags.resamples,
        "final_eval_episodes": run_settings(flags.budget, 1, False).final_eval_episodes,
        # What normalised each task's scores (every cell of a task shares its expert).
        "reference_returns": {c["task"]: {"random": c["random_return"],
                                          "expert": c["expert_return"]} for c in cells},
        "presets": {f"{a}/{t}": dataclasses.asdict(preset(a, t, flags.budget))
                    for a in flags.algos for t in flags.tasks},
        "cells": cells, **summary, "hardware": hardware(),
        "versions": outputs.package_versions(),
        "wall_s": time.perf_counter() - start,
        # Cells read back may come from other sittings: each cell's wall and run time is its own.
        "cells_wall_s": sum(c["wall_s"] or 0.0 for c in cells),
        "cells_run_now": sum(c["ran_now"] for c in cells),
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    out = Path(flags.out)
    outputs.write_json(out / "benchmark.json", record)
    text = tables(cells, summary, flags.algos, flags.tasks)
    write_atomic(out / "benchmark.md", lambda f: f.write((text + "\n").encode()))
    plot(out / "benchmark.png", cells, summary, flags.algos, flags.tasks,
         f"imitation's benchmark here ({flags.budget} budget, {flags.seeds} seeds)")
    print(f"\n{text}\n\n{record['cells_run_now']} of {len(cells)} cells run now, "
          f"{record['wall_s']:.0f}s; wrote {out}/benchmark.json, benchmark.md, benchmark.png")
    if flags.export is not None:
        export(out, Path(flags.export), flags.algos, flags.tasks)
    return record


CELL_RECORDS = ("config.json", "results.json", "benchmark_cell.json", "metrics.jsonl")


def export(out: Path, dest: Path, algos, tasks) -> None:
    """Copy the cells' records (CELL_RECORDS, not checkpoints) and the benchmark's JSON and
    figure from `out` to `dest`/, `dest`.json and `dest`.png."""
    import shutil

    for algo in algos:
        for task in tasks:
            source, target = cell_folder(out, algo, task), cell_folder(dest, algo, task)
            target.mkdir(parents=True, exist_ok=True)
            for name in CELL_RECORDS:
                if (source / name).is_file():
                    shutil.copy2(source / name, target / name)
    for suffix in (".json", ".png"):
        shutil.copy2(out / f"benchmark{suffix}", dest.with_name(dest.name + suffix))
    print(f"exported the cells' records to {dest}/ and the benchmark to {dest}.json, .png")


if __name__ == "__main__":
    main(tyro.cli(BenchmarkFlags))
