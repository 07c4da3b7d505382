"""This package against its peers, side by side in one sitting: imitation 1.0.1 (BC, GAIL, AIRL,
MCE IRL, preference comparisons, DAgger, SQIL, density) and rejax 0.1.3 (PPO, DQN, SAC), the same
settings and data on both sides (`experiments/bench/peer/`), each side a fresh process,
alternating ours, peer, ours, peer, ... for every row.

    make peer-envs                                   # .venv-imitation and .venv-rejax, once
    python -m experiments.bench.peers                # every row (~30 min on a 2-core CPU)
    python -m experiments.bench.peers --rows ppo_1_seed bc --pairs 3

A row's speed-up is the ratio of training throughput (work × seeds / run_s: generator or agent
environment steps, gradient steps, iterations), ours over the peer's, from each pair and its
median over the pairs; `wall ×` is the same ratio of whole processes (imports, compilation,
set-up, training, evaluation), where our side compiles from an empty cache. Returns are each
side's final evaluation (the mean over seeds). The records of every process, the table and the
machine go to `--out` (JSON, atomically); the markdown table is printed.
"""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import jaxrl_align  # noqa: F401  (the platform's XLA settings, before anything starts JAX)
from experiments.bench.harness import finish_report, machine_info
from experiments.bench.peer import REPO, RECORD_FIELDS, all_rows

# What issue 22 asks of each row: our training throughput over the peer's, at equal or better
# return.
TARGETS = {"ppo_1_seed": 1.0, "ppo_16_seeds": 1.1, "dqn": 1.0, "sac": 1.0, "bc": 30.0, "gail": 30.0, "airl": 15.0,
           "gail_tutorial": 30.0, "airl_tutorial": 15.0, "mce_irl": 30.0, "preferences": 5.0}


@dataclass(frozen=True)
class PeerFlags:
    rows: tuple[str, ...] = ()
    """rows to run (default: every row)"""
    pairs: int | None = None
    """alternating pairs per row (default: each row's own, 3 for PPO and 1 for the others)"""
    out: Path = Path("bench_results/peers.json")
    """the JSON record (atomically)"""
    workdir: Path = Path("runs/peers")
    """where each process writes its record (and the demonstrations the peers read)"""
    timeout_s: int = 3600
    """the longest one side may run"""


def run_side(command: list[str], record_path: Path, timeout_s: int) -> dict:
    record_path.unlink(missing_ok=True)
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=timeout_s)
    if proc.returncode != 0 or not record_path.exists():
        raise RuntimeError(f"{' '.join(command)} failed (exit {proc.returncode}):\n"
                           f"{proc.stderr[-3000:]}")
    record = json.loads(record_path.read_text())
    missing = [k for k in RECORD_FIELDS if k not in record]
    if missing:
        raise RuntimeError(f"{record_path}: the record lacks {', '.join(missing)}")
    record["process_s"] = time.perf_counter() - start
    return record


def throughput(record: dict) -> float:
    return record["work"] * record["seeds"] / record["run_s"]


def mean_return(record: dict) -> float:
    return statistics.fmean(record["returns"])


def summarise(name: str, pairs: list[tuple[dict, dict]]) -> dict:
    speedups = [throughput(ours) / throughput(peer) for ours, peer in pairs]
    walls = [peer["wall_s"] / ours["wall_s"] for ours, peer in pairs]
    ours_return = statistics.fmean(mean_return(o) for o, _ in pairs)
    peer_return = statistics.fmean(mean_return(p) for _, p in pairs)
    target = TARGETS.get(name)
    return dict(row=name, peer=pairs[0][1]["side"], seeds=pairs[0][0]["seeds"],
                work=pairs[0][0]["work"], work_unit=pairs[0][0]["work_unit"],
                speedup=statistics.median(speedups), speedups=speedups,
                wall_speedup=statistics.median(walls),
                ours_throughput=statistics.median(throughput(o) for o, _ in pairs),
                peer_throughput=statistics.median(throughput(p) for _, p in pairs),
                ours_compile_s=statistics.median(o["compile_s"] for o, _ in pairs),
                ours_run_s=statistics.median(o["run_s"] for o, _ in pairs),
                peer_run_s=statistics.median(p["run_s"] for _, p in pairs),
                ours_return=ours_return, peer_return=peer_return, target=target,
                meets_target=None if target is None else bool(
                    statistics.median(speedups) >= target and ours_return >= peer_return))


def format_table(summaries: list[dict]) -> str:
    header = ("row", "peer", "seeds", "work/seed", "ours /s", "peer /s", "speed-up", "target",
              "wall ×", "ours compile s", "ours run s", "peer run s", "return ours", "return peer")
    rows = [(s["row"], s["peer"], s["seeds"], f"{s['work']:,} {s['work_unit']}",
             f"{s['ours_throughput']:,.0f}", f"{s['peer_throughput']:,.0f}",
             f"{s['speedup']:.2f}× ({len(s['speedups'])})",
             "-" if s["target"] is None else f"≥ {s['target']:g}×" + (
                 " ✓" if s["meets_target"] else " ✗"),
             f"{s['wall_speedup']:.1f}×", f"{s['ours_compile_s']:.1f}", f"{s['ours_run_s']:.1f}",
             f"{s['peer_run_s']:.1f}", f"{s['ours_return']:.2f}", f"{s['peer_return']:.2f}")
            for s in summaries]
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                     + ["| " + " | ".join(map(str, r)) + " |" for r in rows])


def main(flags: PeerFlags) -> dict:
    rows = all_rows()
    unknown = [r for r in flags.rows if r not in rows]
    if unknown:
        raise SystemExit(f"--rows: unknown {', '.join(unknown)}; known: {', '.join(rows)}")
    if flags.pairs is not None and flags.pairs < 1:
        raise SystemExit(f"--pairs: expected a positive integer, got {flags.pairs}")
    names = list(flags.rows or rows)
    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    flags.workdir.mkdir(parents=True, exist_ok=True)
    records, summaries = [], []
    for name in names:
        row, pairs = rows[name], []
        for i in range(flags.pairs or row.pairs):
            sides = []
            for side in ("ours", row.peer):
                out = (flags.workdir / f"{name}-{side}-{i}.json").resolve()
                command = ([sys.executable, "-m", "experiments.bench.peer.ours", name, str(out)]
                           if side == "ours" else row.peer_command(out))
                print(f"[{time.perf_counter() - t0:7.1f}s] {name}, pair {i + 1}: {side} ...",
                      flush=True)
                sides.append(run_side(command, out, flags.timeout_s))
            pairs.append(tuple(sides))
            records.extend(sides)
        summaries.append(summarise(name, pairs))
        print(format_table(summaries[-1:]), flush=True)
    table = format_table(summaries)
    record = dict(benchmark="peers", timestamp=started.isoformat(), machine=machine_info(),
                  bench_wall_s=time.perf_counter() - t0, rows=summaries, records=records,
                  settings={n: rows[n].settings for n in names}, table=table)
    print(table)
    finish_report(record, flags.out)
    return record


def cli() -> None:
    import tyro

    main(tyro.cli(PeerFlags))


if __name__ == "__main__":
    cli()
