"""The DAgger, SQIL and density rows of the peer benchmark: their peer commands carry our configs'
settings, imitation's side parses them as meant, and its DAgger expert acts as our CartPole
controller. The rows' training runs are minutes; they are checked from the bench, not here."""
import json
import subprocess

import jax
import numpy as np
import pytest

from experiments.bench.peer import all_rows, imitation_rows

ROWS = ("dagger", "sqil", "density")

# Runs in imitation's interpreter: parses each command with the peer's own parser and asks the
# peer's controller policy for its actions on the observations in a file.
PEER_CHECK = r"""
import importlib.util, json, sys
import numpy as np
spec = importlib.util.spec_from_file_location("imitation_side", sys.argv[1])
side = importlib.util.module_from_spec(spec)
spec.loader.exec_module(side)
parsed = {row: vars(side.parse_args(argv)) for row, argv in json.loads(sys.argv[2]).items()}
import gymnasium as gym
import seals  # noqa: F401
env = gym.make("seals/CartPole-v0")
expert = side.cartpole_controller(env.observation_space, env.action_space)
acts = expert.predict(np.load(sys.argv[3]), deterministic=True)[0]
print(json.dumps(dict(parsed=parsed, acts=acts.tolist()), default=str))
"""


def flags(command: list[str]) -> dict[str, str]:
    """The flags after `imitation_side.py ALGO`, each with its values ("" for a switch)."""
    out: dict[str, list[str]] = {}
    for word in command[3:]:
        if word.startswith("--"):
            name = word
            out[name] = []
        else:
            out[name].append(word)
    return {k: " ".join(v) for k, v in out.items()}


@pytest.fixture(scope="module")
def commands(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("peers")
    rows = all_rows()
    return workdir, {name: rows[name].peer_command(workdir / f"{name}-imitation.json")
                     for name in ROWS}


def test_the_rows_are_registered_one_seed_one_pair(commands):
    workdir, by_row = commands
    rows = all_rows()
    for name in ROWS:
        assert rows[name].peer == "imitation" and rows[name].pairs == 1
        command = by_row[name]
        assert command[0] == str(imitation_rows.PEER_PYTHON)
        assert command[1].endswith("imitation_side.py") and command[2] == name
        f = flags(command)
        assert f["--row"] == name and f["--demos"] == str(workdir / "demos.npz")
    assert (workdir / "demos.npz").exists()  # exported for the peer, once


def test_the_peer_flags_are_our_configs_settings(commands):
    from experiments.configs import SQIL_CARTPOLE
    from jaxrl_align.algorithms import dagger, density

    _, by_row = commands
    d, f = dagger.DAggerConfig(), flags(by_row["dagger"])
    assert {k: v for k, v in f.items() if k not in ("--row", "--demos", "--out")} == {
        "--timesteps": str(d.rounds * 3 * 500), "--epochs": str(d.bc_epochs),
        "--rampdown-rounds": str(d.rampdown_rounds), "--n-envs": str(d.num_envs)}

    q, f = SQIL_CARTPOLE, flags(by_row["sqil"])
    assert "--constant-lr" not in f and q.anneal_lr  # annealed on both sides
    assert {k: float(f[k]) for k in ("--learning-rate", "--tau", "--gamma",
                                     "--exploration-fraction", "--exploration-initial-eps",
                                     "--exploration-final-eps", "--max-grad-norm")} == {
        "--learning-rate": q.lr, "--tau": q.tau, "--gamma": q.gamma,
        "--exploration-fraction": q.exploration_fraction,
        "--exploration-initial-eps": q.exploration_initial_eps,
        "--exploration-final-eps": q.exploration_final_eps, "--max-grad-norm": q.max_grad_norm}
    assert {k: int(f[k]) for k in ("--timesteps", "--n-envs", "--buffer-size",
                                   "--learning-starts", "--batch-size", "--train-freq",
                                   "--gradient-steps", "--target-update-interval")} == {
        "--timesteps": q.total_timesteps, "--n-envs": q.num_envs, "--buffer-size": q.buffer_size,
        "--learning-starts": q.learning_starts, "--batch-size": q.batch_size,
        "--train-freq": q.train_freq, "--gradient-steps": q.gradient_steps,
        "--target-update-interval": q.target_update_interval}
    assert f["--q-hidden"] == " ".join(map(str, q.hidden)) and f["--q-activation"] == "tanh"

    c, f = density.DensityConfig(), flags(by_row["density"])
    p = c.ppo
    assert int(f["--timesteps"]) == p.num_updates * p.steps_per_update == 499_712
    assert (f["--kernel"], float(f["--bandwidth"])) == (c.kernel, c.kernel_bandwidth)
    assert "--no-value-clip" in f and not p.clip_value and "--constant-lr" not in f
    assert (int(f["--n-envs"]), int(f["--n-steps"]), int(f["--batch-size"]),
            int(f["--n-epochs"])) == (p.num_envs, p.num_steps,
                                      p.steps_per_update // p.num_minibatches, p.update_epochs)


def test_imitation_side_parses_the_commands_and_its_expert_is_the_controller(
        commands, imitation_python, tmp_path):
    from envs.controllers import cartpole_controller

    _, by_row = commands
    # The demonstrations' states (the controller's own actions there), and states far from them.
    with np.load(by_row["dagger"][by_row["dagger"].index("--demos") + 1]) as demos:
        obs, acts = demos["obs"], demos["acts"]
    wide = np.random.default_rng(0).uniform(-3, 3, (2000, 4)).astype(np.float32)
    wide_acts = np.asarray(jax.vmap(lambda o: cartpole_controller(None, o))(wide))
    np.save(tmp_path / "obs.npy", np.concatenate([obs, wide]))
    proc = subprocess.run(
        [imitation_python, "-c", PEER_CHECK, by_row["dagger"][1],
         json.dumps({name: command[2:] for name, command in by_row.items()}),
         str(tmp_path / "obs.npy")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.splitlines()[-1])
    np.testing.assert_array_equal(result["acts"], np.concatenate([acts, wide_acts]))

    parsed = result["parsed"]
    assert (parsed["dagger"]["timesteps"], parsed["dagger"]["epochs"],
            parsed["dagger"]["rampdown_rounds"], parsed["dagger"]["n_envs"]) == (22_500, 4, 15, 3)
    sqil = parsed["sqil"]
    assert (sqil["q_hidden"], sqil["q_activation"], sqil["batch_size"], sqil["train_freq"],
            sqil["constant_lr"]) == ([64, 64], "tanh", 256, 256, False)
    assert parsed["density"]["no_value_clip"] and parsed["density"]["timesteps"] == 499_712
