"""Our side of one row, in a fresh process: `python -m experiments.bench.peer.ours ROW OUT`
(what `experiments.bench.peers` runs; the record is written atomically to OUT)."""
import time

START = time.perf_counter()  # wall_s counts from here: imports, set-up, training, evaluation

import sys  # noqa: E402
from pathlib import Path  # noqa: E402

if __name__ == "__main__":
    from experiments.bench.peer import all_rows
    from jaxrl_align.runtime import outputs

    row, out = sys.argv[1], Path(sys.argv[2])  # no persistent cache: compile_s is a cold compile
    record = all_rows()[row].ours()
    record["wall_s"] = time.perf_counter() - START
    outputs.write_json(out, record)
    print(f"ours {row}: returns {', '.join(f'{r:.1f}' for r in record['returns'])}, "
          f"compile {record['compile_s']:.1f} s, run {record['run_s']:.1f} s; wrote {out}")
