"""What every bench script shares: ahead-of-time compilation timed apart from execution, rows
of throughput per seed and in total, the machine's description and the report footer.

Every measurement compiles its program ahead of time (`jax.jit(f).lower(...).compile()`, timed
apart), runs it once untimed, then times the compiled executable `repeats` times
(`jax.block_until_ready` after each) and reports the best and the median. When one call is
shorter than `min_time`, a timing chains several calls (each continuing from the last one's
state) and divides.
"""
from __future__ import annotations

import math
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import jax


def time_program(fn: Callable, carry: Any, *consts: Any, repeats: int, min_time: float) -> dict:
    """Compile `fn(carry, *consts) -> (carry, aux)` ahead of time, then time calls of the compiled
    executable. Each call continues from the previous call's carry (a training run goes on);
    `aux` (metrics) is kept as an output so that XLA cannot drop its computation."""
    t0 = time.perf_counter()
    lowered = jax.jit(fn).lower(carry, *consts)
    t1 = time.perf_counter()
    compiled = lowered.compile()
    t2 = time.perf_counter()

    call = lambda carry: compiled(carry, *consts)
    t = time.perf_counter()  # warm-up: the first execution also allocates
    carry, aux = call(carry)
    jax.block_until_ready((carry, aux))
    warmup_s = time.perf_counter() - t
    calls = 1
    if warmup_s < min_time:  # calibrate on a steady-state call
        t = time.perf_counter()
        carry, aux = call(carry)
        jax.block_until_ready((carry, aux))
        calls = max(1, math.ceil(min_time / max(time.perf_counter() - t, 1e-9)))

    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(calls):
            carry, aux = call(carry)
        jax.block_until_ready((carry, aux))
        times.append((time.perf_counter() - t) / calls)
    return dict(trace_lower_s=t1 - t0, xla_compile_s=t2 - t1, compile_s=t2 - t0,
                first_call_s=warmup_s, calls_per_timing=calls, run_s_all=times,
                run_s=min(times), run_s_median=statistics.median(times))


def measurement(name: str, sizes: str, timing: dict, work_per_call: float, seeds: int | None,
                unit: str) -> dict:
    """A row: throughput per seed and in total, from the best and from the median time."""
    total = work_per_call / timing["run_s"]
    total_median = work_per_call / timing["run_s_median"]
    return dict(name=name, sizes=sizes, unit=unit, seeds=seeds, work_per_call=work_per_call,
                throughput_total=total, throughput_total_median=total_median,
                throughput_per_seed=total / seeds if seeds else None,
                throughput_per_seed_median=total_median / seeds if seeds else None, **timing)


def text_table(header, lines, left=(0,)) -> str:
    """The aligned plain-text table every bench prints: columns `left` (indices, or a predicate
    of the index) flush left, the rest flush right, a rule under the header."""
    is_left = left if callable(left) else (lambda i: i in left)
    widths = [max(len(str(cell)) for cell in col) for col in zip(header, *lines)]
    fmt = lambda cells: "  ".join(str(cell).ljust(w) if is_left(i) else str(cell).rjust(w)
                                  for i, (cell, w) in enumerate(zip(cells, widths)))
    return "\n".join([fmt(header), "  ".join("-" * w for w in widths)]
                     + [fmt(line) for line in lines])


def finish_report(record: dict, out: Path, note: str = "") -> Path:
    """The footer every bench script prints under its table (machine, load, note, wall time),
    then the record written atomically to `out`."""
    from jaxrl_align.runtime import outputs

    m = record["machine"]
    load = ", ".join(f"{x:.1f}" for x in m["load_average"] or [])
    print(f"{m['jax_backend']} ({m['device_kind']}), {m['cpu_count']} CPUs, jax "
          f"{m['jax_version']}, load average {load}; " + (f"{note}; " if note else "")
          + f"{record['bench_wall_s']:.0f} s in all")
    path = outputs.write_json(out, record)
    print(f"wrote {path}")
    return path


def machine_info() -> dict:
    model = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    device = jax.devices()[0]
    return dict(
        cpu_count=os.cpu_count(),
        cpus_usable=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        cpu_model=model, platform=platform.platform(), python=platform.python_version(),
        jax_backend=jax.default_backend(), device_kind=device.device_kind,
        device_count=jax.device_count(), jax_version=jax.__version__,
        jaxlib_version=getattr(jax.lib, "__version__", None) or _version("jaxlib"),
        xla_flags=os.environ.get("XLA_FLAGS"),
        load_average=list(os.getloadavg()) if hasattr(os, "getloadavg") else None)


def _version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
