"""Many seeds: wall time and peak memory of BC on seals/CartPole-v0 for 1, 16, 256 and 1024 seeds.

    python -m experiments.bench.seeds                          # 1, 16, 256, 1024 seeds
    python -m experiments.bench.seeds --seeds 1 16 --slice-size 256

Each size runs `python -m experiments.train bc` in a fresh process under `/usr/bin/time -v`
(wall time and peak resident memory of the whole process: Python, XLA, compiled programs and
every run's state), on 10 episodes (5,000 transitions) of a hand-written CartPole controller,
with the command line's defaults (40 epochs, 20 chunks, 10 evaluation episodes per run per
chunk, 50 final) unless --epochs etc. are given. The persistent compilation cache is on, as for
a user's second run. Prints a table and writes JSON to --out.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import tyro


@dataclass(frozen=True)
class SeedsBench:
    seeds: tuple[int, ...] = (1, 16, 256, 1024)
    """numbers of seeds to time, each in its own process"""
    slice_size: int | None = None
    """--slice-size passed to every run (None: all runs in one program call)"""
    epochs: int = 40
    num_chunks: int = 20
    eval_episodes: int = 10
    final_eval_episodes: int = 50
    out: Path = Path("runs/bench/seeds.json")


def make_demos(path: Path) -> Path:
    from experiments.controller_demos import save_controller_demos

    return save_controller_demos(path, "seals/CartPole-v0", 10)


def measure(flags: SeedsBench, n: int, demo_file: Path, out_dir: Path) -> dict:
    cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "experiments.train", "bc",
           "--demos", str(demo_file), "--seeds", str(n), "--bc.epochs", str(flags.epochs),
           "--num-chunks", str(flags.num_chunks), "--eval-episodes", str(flags.eval_episodes),
           "--final-eval-episodes", str(flags.final_eval_episodes), "--no-progress",
           "--out", str(out_dir / f"bc-{n}")]
    if flags.slice_size:
        cmd += ["--slice-size", str(flags.slice_size)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{n} seeds failed:\n{proc.stderr[-3000:]}")
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", proc.stderr)
    h, m, s = (float(g) if g else 0.0 for g in wall.groups())
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
    results = json.loads((out_dir / f"bc-{n}" / "results.json").read_text())
    return {"seeds": n, "wall_s": 3600 * h + 60 * m + s, "peak_rss_mib": rss_kb / 1024,
            "compile_s": results["compile_s"], "run_s": results["run_s"],
            "iqm": results["iqm"], "slice_size": results["slice_size"],
            "num_slices": results["num_slices"], "devices": results["devices"]}


def main(flags: SeedsBench) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        demo_file = make_demos(Path(tmp) / "demos.npz")
        for n in flags.seeds:
            rows.append(row := measure(flags, n, demo_file, Path(tmp)))
            print(f"{row['seeds']:>6} seeds: wall {row['wall_s']:7.1f}s (compile "
                  f"{row['compile_s']:.1f}s, run {row['run_s']:.1f}s), peak RSS "
                  f"{row['peak_rss_mib']:7.0f} MiB, IQM {row['iqm']:.3f}", flush=True)
    flags.out.parent.mkdir(parents=True, exist_ok=True)
    flags.out.write_text(json.dumps({"settings": {k: (str(v) if isinstance(v, Path) else v)
                                                  for k, v in flags.__dict__.items()},
                                     "rows": rows}, indent=2) + "\n")
    print(f"wrote {flags.out}")
    return rows


if __name__ == "__main__":
    main(tyro.cli(SeedsBench))
