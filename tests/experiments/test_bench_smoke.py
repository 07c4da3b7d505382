"""Smoke test of the throughput benchmark: `--quick` mode in-process, tiny sizes. It checks that
the JSON names every measurement with its numbers filled in; speed is never asserted in tests
(it is measured by `python -m experiments.bench.throughput`)."""
import json
import math

import pytest

from experiments.bench import throughput


# Over a minute, almost all of it the deliberately uncached cold start-up compile: `make test-all`.
@pytest.mark.slow
def test_quick_bench_writes_every_measurement(tmp_path):
    out = tmp_path / "bench" / "throughput.json"
    record = throughput.main(throughput.BenchFlags(out=out, quick=True, repeats=1,
                                                   cache_dir=tmp_path / "cache"))

    data = json.loads(out.read_text())
    assert data["quick"] is True
    assert set(data["measurements"]) == set(throughput.MEASUREMENTS)
    assert set(record["measurements"]) == set(throughput.MEASUREMENTS)
    for key in ("cpu_count", "jax_backend", "device_kind", "jax_version"):
        assert data["machine"][key] is not None, key
    assert data["timestamp"]

    for key, row in data["measurements"].items():
        for field in ("name", "sizes", "unit", "compile_s", "run_s", "run_s_median", "target",
                      "passed"):
            assert field in row, (key, field)
        assert math.isfinite(row["compile_s"]) and row["compile_s"] >= 0, key
        assert math.isfinite(row["run_s"]) and row["run_s"] > 0, key
        assert row["passed"] is None, key  # --quick never checks targets
        if key.startswith("startup"):
            assert row["to_first_update_s"] >= row["compile_s"], key
        else:
            assert row["throughput_total"] > 0, key
            assert row["calls_per_timing"] >= 1, key
    for key in ("ppo_1_seed", "ppo_16_seeds", "bc_1_seed", "bc_16_seeds"):
        row = data["measurements"][key]
        assert math.isclose(row["throughput_per_seed"] * row["seeds"], row["throughput_total"])
    # The warm start-up process found what the cold one wrote, in a folder under --cache-dir.
    warm = data["measurements"]["startup_warm_cache"]
    assert warm["cache_files_after"] > 0
    assert warm["cache_dir"].startswith(str(tmp_path / "cache"))


def test_benchmarks_page_is_generated_from_the_result_files():
    """docs/benchmarks.md is exactly what `python -m experiments.bench.report` makes of the JSON
    files in docs/results/ (rerun it after adding a result)."""
    from experiments.bench import report

    assert list(report.RESULTS.glob("*.json")), "no result files"
    assert report.main(["--check"]) == 0
