"""The DQN and SAC peer rows (`experiments/bench/peer/off_policy.py`): both rows and their rejax
commands, the step counts both sides train, and our side's record at a tiny budget (the rejax
side needs `.venv-rejax`, which CI may not have)."""
from experiments.bench.peer import RECORD_FIELDS, off_policy


def test_both_rows_run_rejax_off_policy_at_the_rows_budget(tmp_path):
    out = tmp_path / "peer.json"
    for algo in ("dqn", "sac"):
        row = off_policy.ROWS[algo]
        assert (row.peer, row.pairs) == ("rejax", 3)
        command = row.peer_command(out)
        assert command[0].endswith(".venv-rejax/bin/python")
        assert command[1].endswith("experiments/bench/peer/rejax_off_policy.py")
        assert dict(zip(command[2::2], command[3::2])) == {
            "--algo": algo, "--seeds": "1", "--timesteps": str(off_policy.TIMESTEPS[algo]),
            "--eval-episodes": str(off_policy.EVAL_EPISODES), "--row": algo, "--out": str(out)}


def test_the_configs_take_the_steps_rejax_takes():
    # rejax: ceil(T / num_envs) iterations, a gradient step in each once global_step >
    # fill_buffer = learning_starts - 1; ours: learning_starts random steps in init, then
    # num_updates updates of num_envs steps and one gradient step.
    for algo, gradient_steps in (("dqn", 49_000), ("sac", 9_900)):
        config = off_policy.config(algo, off_policy.TIMESTEPS[algo])
        assert (config.train_freq, config.gradient_steps) == (1, 1)
        assert config.learning_starts % config.num_envs == 0
        assert config.num_updates == gradient_steps
        assert (config.learning_starts + config.num_updates * config.num_envs
                == off_policy.TIMESTEPS[algo])


def test_our_side_writes_every_record_field_at_a_tiny_budget():
    record = off_policy.ours("dqn", timesteps=10_020, eval_episodes=1)
    assert set(RECORD_FIELDS) - {"wall_s"} <= set(record)  # wall_s: added by peer/ours.py
    assert (record["side"], record["row"], record["seeds"]) == ("ours", "dqn", 1)
    assert (record["work"], record["work_unit"]) == (10_020, "env steps")
    assert len(record["returns"]) == 1 and record["compile_s"] > 0 and record["run_s"] > 0
