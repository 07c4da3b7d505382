"""Smoke test of the MuJoCo benchmark: `--quick`, MuJoCo backend only, a few hundred steps. It
checks that the JSON has every row with its numbers filled in; speed is never asserted in tests
(it is measured by `python -m experiments.bench.mujoco`)."""
import json
import math

from experiments.bench import mujoco as bench

TASK = "seals/HalfCheetah-v1"


def test_quick_bench_writes_every_row(tmp_path):
    out = tmp_path / "bench" / "mujoco.json"
    bench.main(bench.BenchFlags(out=out, quick=True, repeats=2, tasks=TASK, backends="mujoco",
                                env_counts="1,16"))

    data = json.loads(out.read_text())
    assert data["quick"] is True and data["backends"] == ["mujoco"]
    assert data["cpu_count"] >= 1 and data["machine"]["cpu_count"] == data["cpu_count"]
    expected = {f"{TASK}|{runner}|{n}" for runner in ("mujoco", "plain_loop", "sync_vector_env")
                for n in (1, 16)}
    assert set(data["measurements"]) == expected
    for key, row in data["measurements"].items():
        assert row["error"] is None, (key, row.get("error"))
        assert row["throughput_total"] > 0 and row["throughput_total_median"] > 0, key
        assert len(row["run_s_all"]) == 2 and min(row["run_s_all"]) == row["run_s"] > 0, key
        assert row["num_envs"] == (1 if row["runner"] == "plain_loop" else
                                   row["beside_env_count"]), key
        if row["runner"] == "mujoco":
            assert math.isfinite(row["compile_s"]) and row["compile_s"] > 0, key
            # The second round reuses the first round's executable.
            assert row["recompile_s"][0] < row["compile_s"], key

    assert set(data["comparisons"]) == {f"{TASK}|mujoco|{n}" for n in (1, 16)}
    for key, c in data["comparisons"].items():
        assert c["vs_plain_loop"] > 0 and c["vs_sync_vector_env"] > 0, key
        assert math.isclose(c["vs_plain_loop"],
                            c["steps_per_s"] / c["plain_loop_steps_per_s"]), key
        # --quick never checks targets; each env count has the target the issue sets for it.
        assert [t["passed"] for t in c["targets"]] == [None], key
