"""`python -m experiments.benchmark` end to end at the tiny budget (one task, BC and DAgger, two
seeds, a one-update PPO expert in a private cache), and the statistics it reports
(`jaxrl_align.evaluation`: aggregates, stratified bootstrap, probability of improvement) against
hand-computed values and rliable's (in imitation's environment)."""
import json
import math
import time

import numpy as np
import pytest

from experiments import benchmark
from jaxrl_align import evaluation

TASK = "seals/Hopper-v1"
ALGOS = ("bc", "dagger")
SEEDS = 2


# --- statistics ------------------------------------------------------------------------------

def test_aggregate_mean_is_the_mean_of_task_means():
    scores = np.array([[1.0, 10.0], [3.0, 20.0], [5.0, 30.0]])  # 3 runs x 2 tasks
    assert evaluation.aggregate_mean(scores) == pytest.approx((3.0 + 20.0) / 2)


def test_aggregate_iqm_pools_every_run_and_task():
    # 8 scores: int(0.25 * 8) = 2 cut from each end of -50 1 2 3 4 5 6 100: the mean of 2..5.
    scores = np.array([[1.0, 5.0], [100.0, 6.0], [3.0, -50.0], [4.0, 2.0]])
    assert evaluation.aggregate_iqm(scores) == pytest.approx(3.5)


def test_probability_of_improvement_counts_ties_as_half():
    # Task 0: x {1, 3} against y {2, 2}: 3 > 2 twice, 1 < 2 twice: 2/4. Task 1: x {2, 3}
    # against y {2, 1}: tie (0.5), 2 > 1, 3 > 2, 3 > 1: 3.5/4. Average 0.6875.
    x = np.array([[1.0, 2.0], [3.0, 3.0]])
    y = np.array([[2.0, 2.0], [2.0, 1.0]])
    assert evaluation.probability_of_improvement(x, y) == pytest.approx((0.5 + 0.875) / 2)
    assert evaluation.probability_of_improvement(y, x) == pytest.approx(1 - 0.6875)
    assert evaluation.probability_of_improvement(x, x) == pytest.approx(0.5)
    # Different numbers of runs are allowed: 3 runs of X against 1 of Y.
    assert evaluation.probability_of_improvement(np.array([[0.0], [2.0], [3.0]]),
                                                 np.array([[1.0]])) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="same number of tasks"):
        evaluation.probability_of_improvement(x, y[:, :1])


def test_stratified_resample_draws_each_task_from_its_own_runs():
    scores = np.array([[0.0, 10.0, 20.0], [1.0, 11.0, 21.0], [2.0, 12.0, 22.0]])
    rng = np.random.default_rng(0)
    for _ in range(20):
        sample = evaluation.stratified_resample(scores, rng)
        assert sample.shape == scores.shape
        for task in range(3):
            assert set(sample[:, task]) <= set(scores[:, task])


def test_stratified_bootstrap_intervals():
    # Each task's runs identical: every resample is the data, so a zero-width interval.
    constant = np.array([[0.2, 0.9], [0.2, 0.9]])
    assert evaluation.stratified_bootstrap_ci(evaluation.aggregate_mean, constant) == \
        pytest.approx((0.55, 0.55))
    # Stratified: task 0 spans 0..1 and task 1 is constant 5, so the mean's interval is
    # (task 0's interval + 5) / 2, far narrower than an unstratified bootstrap of all 20.
    rng = np.random.default_rng(1)
    scores = np.stack([rng.uniform(size=10), np.full(10, 5.0)], axis=1)
    lo, hi = evaluation.stratified_bootstrap_ci(evaluation.aggregate_mean, scores)
    assert 2.5 < lo < evaluation.aggregate_mean(scores) < hi < 3.0
    lo0, hi0 = evaluation.bootstrap_ci(scores[:, 0], statistic=np.mean)
    assert lo == pytest.approx((lo0 + 5) / 2, abs=0.02) and hi == pytest.approx((hi0 + 5) / 2,
                                                                                 abs=0.02)
    # Two matrices are resampled independently (the probability of improvement's interval).
    x, y = rng.uniform(size=(10, 3)), rng.uniform(size=(10, 3)) + 0.2
    lo, hi = evaluation.stratified_bootstrap_ci(evaluation.probability_of_improvement, x, y)
    assert 0.0 <= lo < evaluation.probability_of_improvement(x, y) < hi <= 1.0
    with pytest.raises(ValueError, match="score matrix"):
        evaluation.stratified_bootstrap_ci(evaluation.aggregate_mean, np.zeros(3))


RLIABLE = """
import json, sys
import numpy as np
from rliable import library, metrics

scores = {k: np.asarray(v) for k, v in json.loads(sys.stdin.read()).items()}
a, b = scores["a"], scores["b"]
out = {"mean": metrics.aggregate_mean(a), "iqm": metrics.aggregate_iqm(a),
       "poi": metrics.probability_of_improvement(a, b)}
np.random.seed(0)  # rliable draws from NumPy's global stream
for name, fn, args in [("iqm", metrics.aggregate_iqm, [a]), ("mean", metrics.aggregate_mean, [a]),
                       ("poi", metrics.probability_of_improvement, [a, b])]:
    _, ci = library.get_interval_estimates({"k": args[0] if len(args) == 1 else args},
                                           lambda *m: np.array([fn(*m)]), reps=2000)
    out[name + "_ci"] = [float(ci["k"][0, 0]), float(ci["k"][1, 0])]
print(json.dumps({k: (float(v) if not isinstance(v, list) else v) for k, v in out.items()}))
"""


def test_against_rliable(imitation_python):
    """Point estimates equal rliable 1.2.0's (run in imitation's environment, where it is
    installed: it needs pandas < 3, this project pins newer); intervals agree to the Monte Carlo
    error of the resampling (different random streams)."""
    import json
    import subprocess

    rng = np.random.default_rng(2)
    scores = {"a": rng.normal(0.8, 0.2, size=(10, 5)), "b": rng.normal(0.7, 0.3, size=(10, 5))}
    proc = subprocess.run([imitation_python, "-c", RLIABLE], capture_output=True, text=True,
                          timeout=300, input=json.dumps({k: v.tolist() for k, v in scores.items()}))
    assert proc.returncode == 0, proc.stderr[-3000:]
    theirs = json.loads(proc.stdout.strip().splitlines()[-1])
    a, b = scores["a"], scores["b"]
    assert evaluation.aggregate_mean(a) == pytest.approx(theirs["mean"])
    assert evaluation.aggregate_iqm(a) == pytest.approx(theirs["iqm"])
    assert evaluation.probability_of_improvement(a, b) == pytest.approx(theirs["poi"])
    for name, ours, args in [("iqm", evaluation.aggregate_iqm, (a,)),
                             ("mean", evaluation.aggregate_mean, (a,)),
                             ("poi", evaluation.probability_of_improvement, (a, b))]:
        lo, hi = evaluation.stratified_bootstrap_ci(ours, *args, num_resamples=2000)
        assert lo == pytest.approx(theirs[name + "_ci"][0], abs=0.01)
        assert hi == pytest.approx(theirs[name + "_ci"][1], abs=0.01)


# --- the command -----------------------------------------------------------------------------

def test_dagger_rounds_follow_imitations_lockstep_collector():
    assert benchmark.dagger_rounds(5, 100_000) == (8, 13)  # 8 episodes a round, 12.5 -> 13
    assert benchmark.dagger_rounds(10, 100_000) == (16, 7)
    assert benchmark.dagger_rounds(5, 60_000) == (8, 8)


def test_every_preset_builds():
    for budget in ("full", "cpu", "tiny"):
        for algo in benchmark.ALGOS:
            for task in benchmark.TASKS:
                benchmark.preset(algo, task, budget)  # configs validate themselves
    gail = benchmark.preset("gail", "seals/HalfCheetah-v1", "full")
    assert gail.ppo.total_timesteps == 10_000_000 and gail.ppo.steps_per_update == 4096
    assert gail.ppo.num_minibatches == 4096 // 64 and gail.demo_batch_size == 8192
    with pytest.raises(ValueError, match="--tasks"):
        benchmark.preset("bc", "seals/CartPole-v0", "full")


@pytest.fixture(scope="module")
def tiny_benchmark(tmp_path_factory):
    """Two calls of the tiny benchmark into one folder, with a private expert cache."""
    experts = tmp_path_factory.mktemp("experts")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JAXRL_ALIGN_EXPERTS", str(experts))
        out = tmp_path_factory.mktemp("benchmark")
        flags = benchmark.BenchmarkFlags(algos=ALGOS, tasks=(TASK,), seeds=SEEDS, budget="tiny",
                                         out=out, progress=False, resamples=200)
        first = benchmark.main(flags)
        mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("results.json")}
        start = time.perf_counter()
        second = benchmark.main(flags)
        second_s = time.perf_counter() - start
    return out, first, second, second_s, mtimes, experts


def finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def test_benchmark_json_schema(tiny_benchmark):
    out, first, *_ = tiny_benchmark
    record = json.loads((out / "benchmark.json").read_text())
    for key in ("command", "budget", "algos", "tasks", "num_seeds", "final_eval_episodes",
                "reference_returns", "presets", "cells", "aggregates",
                "probability_of_improvement", "hardware", "versions", "wall_s"):
        assert key in record, key
    assert record["budget"] == "tiny" and record["algos"] == list(ALGOS)
    assert record["final_eval_episodes"] == 2
    assert set(record["presets"]) == {f"{a}/{TASK}" for a in ALGOS}
    for key in ("platform", "cpu_count", "cpu_model", "jax_backend", "device_kind"):
        assert key in record["hardware"], key
    assert len(record["cells"]) == len(ALGOS)
    for cell in record["cells"]:
        assert cell["task"] == TASK and cell["seeds"] == list(range(SEEDS))
        for key in ("returns", "normalized_scores"):
            assert len(cell[key]) == SEEDS and all(finite(v) for v in cell[key]), key
        for key in ("return_mean", "return_std", "score_mean", "score_std", "wall_s",
                    "compile_s", "run_s"):
            assert finite(cell[key]), key
        assert np.mean(cell["returns"]) == pytest.approx(cell["return_mean"])
        random_return, expert_return = (record["reference_returns"][TASK][k]
                                        for k in ("random", "expert"))
        assert np.allclose(cell["normalized_scores"],
                           (np.array(cell["returns"]) - random_return)
                           / (expert_return - random_return))
    by_algo = {c["algo"]: c for c in record["cells"]}
    assert by_algo["bc"]["env_steps_per_s"] is None  # BC steps no environment
    assert finite(by_algo["dagger"]["env_steps_per_s"]) and by_algo["dagger"]["env_steps_per_s"] > 0
    for algo in ALGOS:
        agg = record["aggregates"][algo]
        for name in ("mean", "iqm"):
            lo, hi = agg[f"{name}_ci95"]
            assert all(finite(v) for v in (agg[name], lo, hi)) and lo <= agg[name] + 1e-12
            assert agg[name] <= hi + 1e-12
        assert agg["mean"] == pytest.approx(by_algo[algo]["score_mean"])
    pairs = record["probability_of_improvement"]
    assert {(p["x"], p["y"]) for p in pairs} == {("bc", "dagger"), ("dagger", "bc")}
    assert sum(p["probability"] for p in pairs) == pytest.approx(1.0)
    assert all(0 <= p["ci95"][0] <= p["probability"] <= p["ci95"][1] <= 1 for p in pairs)


def test_table_has_imitations_layout(tiny_benchmark):
    out, *_ = tiny_benchmark
    lines = (out / "benchmark.md").read_text().splitlines()
    header = lines[0].strip("|").split("|")
    assert [h.strip() for h in header] == ["Env", "BC score (mean/std)", "BC norm (mean/std)",
                                           "DAgger score (mean/std)", "DAgger norm (mean/std)"]
    task_rows = [line for line in lines if line.startswith(f"| {TASK} |")]
    assert len(task_rows) == 1 and len(task_rows[0].strip("|").split("|")) == len(header)
    assert all(" / " in cell for cell in task_rows[0].strip("|").split("|")[1:])
    algo_rows = [line for line in lines if line.startswith(("| BC | 0", "| BC | -",
                                                            "| DAgger | 0", "| DAgger | -"))]
    assert len(algo_rows) == len(ALGOS)  # the aggregate table: Mean and IQM with intervals
    assert all(line.count("[") == 2 for line in algo_rows)


def test_figure_is_written(tiny_benchmark):
    out = tiny_benchmark[0]
    png = out / "benchmark.png"
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for algo in ALGOS:  # every cell has the runner's outputs and checkpoints
        cell = benchmark.cell_folder(out, algo, TASK)
        assert (cell / "results.json").is_file() and (cell / "checkpoints").is_dir()


def test_second_call_reruns_nothing(tiny_benchmark):
    out, first, second, second_s, mtimes, _ = tiny_benchmark
    assert first["cells_run_now"] == len(ALGOS) and second["cells_run_now"] == 0
    assert {p: p.stat().st_mtime_ns for p in out.rglob("results.json")} == mtimes
    assert [c["returns"] for c in second["cells"]] == [c["returns"] for c in first["cells"]]
    assert second["aggregates"] == first["aggregates"]
    assert second_s < 30


def test_a_finished_cell_with_other_seeds_is_refused(tiny_benchmark):
    out = tiny_benchmark[0]
    flags = benchmark.BenchmarkFlags(algos=ALGOS, tasks=(TASK,), seeds=SEEDS + 1, budget="tiny",
                                     out=out, progress=False)
    with pytest.raises(SystemExit, match="other seeds or settings"):
        benchmark.main(flags)


def test_an_interrupted_cell_resumes_from_its_checkpoint(tiny_benchmark, tmp_path, monkeypatch):
    """A cell without results.json but with checkpoints (killed after its last chunk) continues
    from the checkpoint; the finished cell beside it is not rerun."""
    import shutil

    out, first, _, _, _, experts = tiny_benchmark
    monkeypatch.setenv("JAXRL_ALIGN_EXPERTS", str(experts))
    copy = tmp_path / "benchmark"
    shutil.copytree(out, copy)
    cell = benchmark.cell_folder(copy, "bc", TASK)
    (cell / "results.json").unlink()
    (cell / "benchmark_cell.json").unlink()
    record = benchmark.main(benchmark.BenchmarkFlags(algos=ALGOS, tasks=(TASK,), seeds=SEEDS,
                                                     budget="tiny", out=copy, progress=False,
                                                     resamples=200))
    assert record["cells_run_now"] == 1
    assert json.loads((cell / "results.json").read_text())["resumed_from"] == 1
    assert [c["returns"] for c in record["cells"]] == [c["returns"] for c in first["cells"]]


def test_scores_are_normalised_by_the_expert_that_gave_the_demonstrations(tmp_path):
    """As imitation's benchmark: the expert return is the run's own expert's (its best seed's
    final evaluation), the random return the task's; the tiny budget's one-update expert, or a
    folder without its record, falls back to `envs.reference_returns`."""
    import envs

    stored = envs.reference_returns(TASK)
    (tmp_path / "expert.json").write_text(json.dumps({"seed_returns": [1234.5, 99.0],
                                                      "best_seed": 0}))
    assert benchmark.normalising_returns(TASK, "cpu", tmp_path) == (stored[0], 1234.5)
    assert benchmark.normalising_returns(TASK, "tiny", tmp_path) == stored
    assert benchmark.normalising_returns(TASK, "cpu", tmp_path / "missing") == stored


def test_a_finished_cell_keeps_the_returns_that_normalised_it(tiny_benchmark, tmp_path,
                                                               monkeypatch):
    """A finished cell's exported records read alone: on a machine without its expert or
    checkpoints, it is normalised by the returns recorded when it ran, and nothing reruns."""
    out = tiny_benchmark[0]
    monkeypatch.setenv("JAXRL_ALIGN_EXPERTS", str(tmp_path / "no-experts"))
    copy = tmp_path / "benchmark-tiny"
    benchmark.export(out, copy, ALGOS, (TASK,))
    assert (tmp_path / "benchmark-tiny.json").is_file()
    assert (tmp_path / "benchmark-tiny.png").is_file()
    assert not list(copy.rglob("checkpoints"))
    timing_file = benchmark.cell_folder(copy, "bc", TASK) / "benchmark_cell.json"
    timing = json.loads(timing_file.read_text())
    assert {"random_return", "expert_return", "finished_at", "hardware"} <= set(timing)
    timing["expert_return"] = timing["random_return"] + 1000.0
    timing_file.write_text(json.dumps(timing))
    record = benchmark.main(benchmark.BenchmarkFlags(algos=ALGOS, tasks=(TASK,), seeds=SEEDS,
                                                     budget="tiny", out=copy, progress=False,
                                                     resamples=200))
    assert record["cells_run_now"] == 0 and not (tmp_path / "no-experts").exists()
    bc = next(c for c in record["cells"] if c["algo"] == "bc")
    assert np.allclose(bc["normalized_scores"],
                       (np.array(bc["returns"]) - timing["random_return"]) / 1000.0)
