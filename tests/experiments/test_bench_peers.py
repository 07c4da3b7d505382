"""The peer benchmark: the ratio table's arithmetic, and one row end to end (MCE IRL, ours and
imitation's, each in its own process), checking both records and the JSON."""
import json

import pytest

from experiments.bench import peers
from experiments.bench.peer import RECORD_FIELDS, all_rows


def record(side, work, seeds, run_s, returns, wall_s=10.0):
    return dict(side=side, row="gail", seeds=seeds, work=work, work_unit="generator env steps",
                compile_s=None if side != "ours" else 5.0, run_s=run_s, wall_s=wall_s,
                returns=returns, eval_episodes=50, versions={})


def test_speedup_is_the_median_throughput_ratio_and_needs_an_equal_or_better_return():
    pairs = [(record("ours", 600, 1, 1.0, [500.0]), record("imitation", 600, 1, 40.0, [480.0])),
             (record("ours", 600, 1, 2.0, [500.0]), record("imitation", 300, 1, 40.0, [480.0])),
             (record("ours", 600, 1, 1.0, [500.0]), record("imitation", 600, 1, 20.0, [480.0]))]
    summary = peers.summarise("gail", pairs)
    assert summary["speedups"] == pytest.approx([40.0, 40.0, 20.0])
    assert summary["speedup"] == pytest.approx(40.0) and summary["target"] == 30.0
    assert summary["meets_target"] is True
    worse = [(record("ours", 600, 1, 1.0, [400.0]), record("imitation", 600, 1, 40.0, [480.0]))]
    assert peers.summarise("gail", worse)["meets_target"] is False
    table = peers.format_table([summary])
    assert table.count("\n") == 2 and "40.00× (3)" in table and "≥ 30× ✓" in table


def test_every_row_has_a_target_and_a_peer_command(tmp_path):
    rows = all_rows()
    assert set(peers.TARGETS) <= set(rows)
    for name in ("bc", "gail", "airl", "mce_irl", "preferences"):
        command = rows[name].peer_command(tmp_path / f"{name}.json")
        assert command[1].endswith("imitation_side.py") and command[2] == name


def test_the_mce_irl_row_end_to_end(tmp_path, imitation_python, monkeypatch):
    from experiments.bench.peer import imitation_rows

    monkeypatch.setattr(imitation_rows, "PEER_PYTHON", imitation_python)
    out = tmp_path / "peers.json"
    record = peers.main(peers.PeerFlags(rows=("mce_irl",), out=out, workdir=tmp_path / "work"))
    assert json.loads(out.read_text())["rows"] == json.loads(json.dumps(record["rows"]))
    ours, theirs = record["records"]
    assert (ours["side"], theirs["side"]) == ("ours", "imitation")
    for side in (ours, theirs):
        assert set(RECORD_FIELDS) <= set(side)
        assert side["work"] == 1000 and side["work_unit"] == "iterations"
    # The same objective on the same CliffWorld: both learned policies come close to the
    # soft-optimal expert's exact return, and to each other.
    assert ours["returns"][0] == pytest.approx(theirs["returns"][0], abs=0.5)
    (summary,) = record["rows"]
    assert summary["row"] == "mce_irl" and summary["speedup"] > 1.0
