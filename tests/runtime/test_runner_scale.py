"""The runner at scale: a hyperparameter grid × seeds is one compilation, a diverging grid point
is reported and leaves the others unchanged, and the runs axis gives the same results on 1 or 4
devices, in slices, and over two processes joined by jax.distributed (bit for bit across slices;
to float32 rounding across device and process counts, where XLA compiles a partitioned program)."""
import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np
import pytest
from jax import monitoring

import envs
from jaxrl_align import evaluation
from jaxrl_align.algorithms import bc
from jaxrl_align.rl import ppo
from jaxrl_align.runtime import runner
from jaxrl_align.runtime.sweep import Sweep, rank
from jaxrl_align.types import flatten_trajectories

REPO = Path(__file__).resolve().parents[2]
SCHEDULER = "--xla_cpu_enable_concurrency_optimized_scheduler=false"

# Every program JAX lowers to XLA fires this event, whether or not the persistent compilation
# cache then spares the backend compile: it counts compilations requested. The listener keeps
# the name of each lowered module.
LOWERED = "/jax/core/compile/jaxpr_to_mlir_module_duration"
_lowered: list[str] = []
monitoring.register_event_duration_secs_listener(
    lambda event, secs, fun_name="", **kw: _lowered.append(fun_name) if event == LOWERED else None)

# The runner's programs as their modules are named: `init`, the training chunk (`run_chunk`),
# then `evaluate`. A run's other lowerings are small eager operations on the host side (seed
# keys, evaluation keys, ...), lowered once per shape.
INIT_CHUNK_EVALUATE = ["jit(init)", "jit(run_chunk)", "jit(evaluate)"]
EVALUATE = ["jit(evaluate)"]


def settings(seeds, first_seed=0, **kw):
    kw = {"num_updates": 2, "num_chunks": 2, "eval_episodes": 1, "final_eval_episodes": 2,
          "progress": False, **kw}
    return runner.RunSettings(seeds=seeds, first_seed=first_seed, **kw)


def count_run(*args, **kwargs):
    """(result, the runner's programs lowered, every XLA lowering) of one runner.run call."""
    start = len(_lowered)
    result = runner.run(*args, **kwargs)
    lowered = _lowered[start:]
    programs = [name for name in lowered if name in set(INIT_CHUNK_EVALUATE)]
    return result, programs, len(lowered)


def leaves(tree):
    return [np.asarray(x) for x in jax.tree.leaves(tree)]


def test_bc_lr_grid_times_8_seeds_is_one_compilation(cartpole, cartpole_demos):
    env, params = cartpole
    algo = bc.make(bc.BCConfig(batch_size=100), env, params)
    demos = flatten_trajectories(cartpole_demos)
    grid = Sweep.grid({"lr": [0.0, 1e-3, 1e-2, 3e-2]})
    result, programs, lowered = count_run(algo, env, params, settings(8), demos, sweep=grid)
    # One program initialises all 32 runs, one trains them (every chunk), one evaluates them
    # (per chunk, and in repeated calls at the end): never one per grid point, seed or chunk.
    assert programs == INIT_CHUNK_EVALUATE  # exactly 3 programs lowered
    assert result.final_returns.shape == (32, 2) and result.run_config.tolist() == sum(
        ([j] * 8 for j in range(4)), [])
    # The grid values reached the runs: lr = 0 leaves the initial parameters untouched.
    init = jax.vmap(algo.init, in_axes=(0, None))(runner.seed_keys(range(8)), demos)
    for a, b in zip(leaves(init.params), leaves(result.state.params)):
        np.testing.assert_array_equal(a, b[:8])
        assert not np.array_equal(a, b[8:16])
    # New grid values (and other seeds): nothing is traced, lowered or compiled again.
    other = Sweep.grid({"lr": [5e-4, 2e-3, 5e-3, 1e-1]})
    result2, programs, lowered = count_run(algo, env, params, settings(8, first_seed=8), demos,
                                           sweep=other)
    assert programs == [] and lowered == 0
    assert result2.configs == other.config_dicts()


def test_ppo_lr_grid_times_8_seeds_is_one_compilation(cartpole):
    env, params = cartpole
    config = ppo.PPOConfig(num_envs=2, num_steps=8, update_epochs=1, num_minibatches=1,
                           total_timesteps=32, hidden=(8, 8))
    algo = ppo.make(config, env, params)
    grid = Sweep.grid({"lr": [1e-4, 3e-4, 1e-3, 3e-3]})
    result, programs, _ = count_run(algo, env, params, settings(8), sweep=grid)
    assert programs == INIT_CHUNK_EVALUATE
    assert result.final_returns.shape == (32, 2)
    _, programs, lowered = count_run(algo, env, params, settings(8),
                                     sweep=Sweep.grid({"lr": [2e-4, 5e-4, 2e-3, 5e-3]}))
    assert programs == [] and lowered == 0


def test_final_evaluation_reuses_the_chunk_evaluation_program(cartpole):
    """The final evaluation is repeated calls of the per-chunk evaluation program, its episodes
    drawn afresh (not the last chunk's); only past MAX_FINAL_EVAL_CALLS calls does it get a
    program of its own."""
    env, params = cartpole
    config = ppo.PPOConfig(num_envs=2, num_steps=8, update_epochs=1, num_minibatches=1,
                           total_timesteps=32, hidden=(8, 8))
    algo = ppo.make(config, env, params)
    result, programs, _ = count_run(algo, env, params, settings(
        2, eval_episodes=3, final_eval_episodes=5, deterministic_eval=False))
    assert programs == INIT_CHUNK_EVALUATE
    assert result.final_returns.shape == (2, 5)
    assert not np.array_equal(result.final_returns[:, :3].mean(axis=1), result.eval_returns[:, -1])
    many = 3 * runner.MAX_FINAL_EVAL_CALLS + 1
    result, programs, _ = count_run(algo, env, params, settings(
        2, eval_episodes=3, final_eval_episodes=many, deterministic_eval=False))
    assert programs == EVALUATE  # the final one; init, chunk and per-chunk evaluation reused
    assert result.final_returns.shape == (2, many)


def test_planted_nan_is_reported_and_leaves_other_grid_points_unchanged(cartpole, cartpole_demos,
                                                                        tmp_path):
    env, params = cartpole
    algo = bc.make(bc.BCConfig(batch_size=100), env, params)
    demos = flatten_trajectories(cartpole_demos)
    run = lambda lrs, **kw: runner.run(algo, env, params,
                                       settings(2, first_seed=3, num_updates=3, num_chunks=3),
                                       demos, sweep=Sweep.grid({"lr": lrs}), **kw)
    absurd = run([1e-3, 1e38, 1e-2], out_dir=tmp_path / "absurd",
                 reference_returns=envs.reference_returns("seals/CartPole-v0"))
    sane = run([1e-3, 1e-4, 1e-2])
    assert sane.diverged == []
    assert [(d["run"], d["seed"], d["config"], d["chunk"]) for d in absurd.diverged] == [
        (2, 3, 1, 0), (3, 4, 1, 0)]
    assert absurd.diverged[0]["hparams"] == {"lr": 1e38}
    keep = np.array([0, 1, 4, 5])  # the runs of grid points 1e-3 and 1e-2
    for a, b in zip(leaves(absurd.state.params), leaves(sane.state.params)):
        assert not np.isfinite(a[2:4]).all()
        np.testing.assert_array_equal(a[keep], b[keep])
    np.testing.assert_array_equal(absurd.final_returns[keep], sane.final_returns[keep])
    np.testing.assert_array_equal(absurd.chunk_metrics["loss"][keep], sane.chunk_metrics["loss"][keep])
    rows = rank(absurd, envs.reference_returns("seals/CartPole-v0"))
    assert {r["hparams"]["lr"]: r["diverged"] for r in rows} == {1e-3: 0, 1e38: 2, 1e-2: 0}
    # The diverged runs are listed but left out of the aggregates, and the files stay standard
    # JSON (their NaN losses are null, never a bare NaN that strict parsers refuse).
    assert absurd.summary["excluded"] == [2, 3]
    kept_scores = [absurd.summary["normalized_score"][i] for i in keep]
    assert absurd.summary["iqm"] == pytest.approx(evaluation.iqm(kept_scores))

    def strict(text):
        return json.loads(text, parse_constant=lambda name: pytest.fail(f"bare {name} in JSON"))

    lines = [strict(line) for line in (tmp_path / "absurd" / "metrics.jsonl").read_text()
             .splitlines()]
    assert lines[0]["loss"][2] is None and lines[0]["diverged_runs"] == [2, 3]
    record = strict((tmp_path / "absurd" / "results.json").read_text())
    assert record["iqm_excludes"] == [2, 3] and record["iqm"] == absurd.summary["iqm"]
    from experiments.common import results_table

    table = results_table("t", absurd.seeds, absurd.summary).splitlines()
    assert [row.endswith("diverged: not in the IQM") for row in table[2:8]] == [
        False, False, True, True, False, False]
    assert "2 diverged run(s) left out" in table[-1]


# --- several devices and several processes (subprocesses: the device count is fixed when JAX
# --- starts) -----------------------------------------------------------------------------

DEVICES_SCRIPT = textwrap.dedent("""
    import json
    import jax, numpy as np
    import envs
    from envs.controllers import cartpole_controller
    from jaxrl_align.algorithms import bc
    from jaxrl_align.data import rollout
    from jaxrl_align.platform import compilation_cache
    from jaxrl_align.rl import ppo
    from jaxrl_align.runtime import runner
    from jaxrl_align.runtime.sweep import Sweep
    from jaxrl_align.types import flatten_trajectories
    compilation_cache.enable()
    assert jax.device_count() == 4, jax.devices()
    env, params = envs.make("seals/CartPole-v0")
    demos = flatten_trajectories(rollout.collect_episodes(
        env, params, cartpole_controller, jax.random.PRNGKey(0), 4, 500))
    settings = lambda **kw: runner.RunSettings(seeds=3, num_updates=2, num_chunks=2,
        eval_episodes=1, final_eval_episodes=2, progress=False, **kw)
    grid = Sweep.grid({"lr": [1e-3, 1e-2]})   # 6 runs: padded to 8 on 4 devices
    algos = {"bc": (bc.make(bc.BCConfig(batch_size=100), env, params), demos),
             "ppo": (ppo.make(ppo.PPOConfig(num_envs=2, num_steps=8, update_epochs=1,
                     num_minibatches=1, total_timesteps=32, hidden=(8, 8)), env, params), None)}
    out = {}
    for name, (algo, data) in algos.items():
        for layout, kw in [("one", dict(devices=jax.devices()[:1])), ("four", {}),
                           ("four_slices", dict(slice_size=4)),
                           ("one_slices", dict(devices=jax.devices()[:1], slice_size=2))]:
            s = settings(slice_size=kw.pop("slice_size", None))
            r = runner.run(algo, env, params, s, data, sweep=grid, **kw)
            out[f"{name}_{layout}"] = {
                "params": [np.asarray(x).tolist() for x in jax.tree.leaves(r.state.params)],
                "final": r.final_returns.tolist(), "eval": r.eval_returns.tolist(),
                "devices": r.devices, "slices": r.num_slices}
    print("RESULT" + json.dumps(out))
""")


def test_four_devices_and_slices_equal_one_device():
    """Four devices and slices agree with one batch on one device to float32 rounding, not bit
    for bit: XLA:CPU compiles a program for another batch size (a slice, or a device's share)
    with other fusions and vector loops, so the last bits of some parameters can differ (~1e-7
    absolute; seen for PPO with 3 slices of 2 against one batch of 6 on one CI machine and not
    on another). Resuming with the same layout is bit for bit (tests/runtime/test_checkpoints)."""
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count=4 {SCHEDULER}"}
    proc = subprocess.run([sys.executable, "-c", DEVICES_SCRIPT], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.split("RESULT", 1)[1])
    for name in ("bc", "ppo"):
        one, four, sliced, one_sliced = (out[f"{name}_{k}"] for k in
                                         ("one", "four", "four_slices", "one_slices"))
        assert (one["devices"], four["devices"], four["slices"], sliced["slices"],
                one_sliced["slices"]) == (1, 4, 1, 2, 3)
        for other in (four, sliced, one_sliced):
            for a, b in zip(other["params"], one["params"]):
                np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5, err_msg=name)
    # Trained policies: the same returns but for at most one episode per layout, and that one
    # within two steps. Parameters that differ by ~1e-7 can flip one action near a decision
    # boundary, and that episode then ends a step or two apart (seen: 177 against 179 in one of
    # the 24 final and per-chunk BC returns on four devices; the rest equal).
    for other in ("bc_four", "bc_four_slices", "bc_one_slices"):
        differ = [abs(a - b) for when in ("final", "eval")
                  for row, base in zip(out[other][when], out["bc_one"][when])
                  for a, b in zip(row, base) if a != b]
        assert len(differ) <= 1 and all(d <= 2 for d in differ), (other, differ)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bc_cli(demo_file, out, *extra):
    return [sys.executable, "-m", "experiments.train", "bc", "--demos", str(demo_file),
            "--seeds", "4", "--bc.epochs", "4", "--num-chunks", "4", "--eval-episodes", "1",
            "--final-eval-episodes", "2", "--bc.batch-size", "100", "--no-progress",
            "--out", str(out), *extra]


def final_params(out: Path):
    steps = sorted(int(p.name) for p in (out / "checkpoints").iterdir() if p.name.isdigit())
    return steps[-1], restore_on_one_device(out / "checkpoints" / str(steps[-1]) / "state")


def restore_on_one_device(path: Path):
    """The leaves of a saved runner state, whatever devices wrote it."""
    import orbax.checkpoint as ocp

    checkpointer = ocp.StandardCheckpointer()
    path = path.absolute()
    one = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    target = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=one),
                          checkpointer.metadata(path).item_metadata.tree)
    return [np.asarray(x) for x in jax.tree.leaves(checkpointer.restore(path, target))]


def test_two_processes_with_jax_distributed_equal_one_process(tmp_path, demo_file):
    single = subprocess.run(bc_cli(demo_file, tmp_path / "single"), cwd=REPO, capture_output=True,
                            text=True, timeout=600)
    assert single.returncode == 0, single.stderr[-3000:]
    port = free_port()
    procs = [subprocess.Popen(
        bc_cli(demo_file, tmp_path / "multi", "--coordinator-address", f"127.0.0.1:{port}",
               "--num-processes", "2", "--process-id", str(i)),
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    one = json.loads((tmp_path / "single" / "results.json").read_text())
    two = json.loads((tmp_path / "multi" / "results.json").read_text())
    assert (one["devices"], one["processes"], two["devices"], two["processes"]) == (1, 1, 2, 2)
    assert two["return_mean"] == one["return_mean"]
    # Two partitions round like four devices do (see above): equal to float32 rounding.
    lines = lambda out: [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    for a, b in zip(lines(tmp_path / "single"), lines(tmp_path / "multi"), strict=True):
        assert a.keys() == b.keys() and a["eval_return"] == b["eval_return"]
        for key in a:
            np.testing.assert_allclose(a[key], b[key], rtol=1e-5, err_msg=key)
    # Both processes wrote their shards of the orbax checkpoints; process 0 everything else.
    step_one, params_one = final_params(tmp_path / "single")
    step_two, params_two = final_params(tmp_path / "multi")
    assert step_one == step_two == 4
    for a, b in zip(params_one, params_two, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_sweep_command_ranks_configurations(tmp_path, demo_file):
    out = tmp_path / "sweep"
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.sweep", "bc", "--demos", str(demo_file), "--seeds", "3",
         "--bc.epochs", "3", "--num-chunks", "1", "--eval-episodes", "1", "--final-eval-episodes",
         "2", "--bc.batch-size", "100", "--no-progress", "--out", str(out),
         "--grid", "lr=0,1e-2", "ent-weight=1e-3"], cwd=REPO, capture_output=True, text=True,
        timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranking = json.loads((out / "sweep.json").read_text())["ranking"]
    assert [r["hparams"] for r in ranking] == [{"lr": 1e-2, "ent_weight": 1e-3},
                                               {"lr": 0.0, "ent_weight": 1e-3}]
    assert ranking[0]["iqm"] > ranking[1]["iqm"] and len(ranking[0]["per_seed"]) == 3
    assert "IQM normalized_score" in proc.stdout and (out / "sweep.png").stat().st_size > 0
    bad = subprocess.run(
        [sys.executable, "-m", "experiments.sweep", "bc", "--demos", str(demo_file),
         "--out", str(tmp_path / "bad"), "--grid", "batch_size=1,2"], cwd=REPO,
        capture_output=True, text=True, timeout=600)
    assert bad.returncode == 2 and "cannot be swept" in bad.stderr
    assert not (tmp_path / "bad").exists()
