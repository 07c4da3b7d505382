"""imitation's trajectory datasets: fixtures written by imitation 1.0.1 itself load exactly, infos
are never decoded, our writer round-trips and imitation reads what it writes, the convert CLI."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pyarrow as pa
import pytest

import envs
from experiments import convert
from experiments.common import parse_command_line
from jaxrl_align.data import imitation_datasets
from jaxrl_align.data.demonstrations import ARRAY_FIELDS, load_demos, save_demos
from jaxrl_align.data.imitation_datasets import (ImitationDatasetError, load_imitation_dataset,
                                                 save_imitation_dataset)
from jaxrl_align.types import Trajectories

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"  # make_imitation_fixture.py wrote them
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())
ENV_ID = "seals/CartPole-v0"


@pytest.fixture(scope="module")
def cartpole_env():
    return envs.make(ENV_ID)


def hand_built(obs_shape=(4,), act_shape=(), discrete=True, seed=0) -> Trajectories:
    """3 episodes of lengths 5, 2 and 4 (one terminated, two truncated), zeros as padding."""
    rng = np.random.default_rng(seed)
    lengths = np.array([5, 2, 4], np.int32)
    n, t = len(lengths), int(lengths.max())
    obs = rng.normal(size=(n, t + 1, *obs_shape)).astype(np.float32)
    acts = (rng.integers(0, 2, size=(n, t, *act_shape)).astype(np.int32) if discrete
            else rng.uniform(-1, 1, size=(n, t, *act_shape)).astype(np.float32))
    rews = rng.normal(size=(n, t)).astype(np.float32)
    steps = np.arange(t)[None, :]
    obs[np.arange(t + 1)[None, :] > lengths[:, None]] = 0
    acts[steps >= lengths[:, None]] = 0
    rews[steps >= lengths[:, None]] = 0
    last = steps == lengths[:, None] - 1
    ended_terminal = np.array([True, False, False])[:, None]
    return Trajectories(obs=jnp.asarray(obs), acts=jnp.asarray(acts), rews=jnp.asarray(rews),
                        terminated=jnp.asarray(last & ended_terminal),
                        truncated=jnp.asarray(last & ~ended_terminal),
                        lengths=jnp.asarray(lengths))


def assert_same(a: Trajectories, b: Trajectories) -> None:
    for name in ARRAY_FIELDS:
        x, y = np.asarray(getattr(a, name)), np.asarray(getattr(b, name))
        assert x.dtype == y.dtype and x.shape == y.shape, (name, x.dtype, y.dtype, x.shape, y.shape)
        np.testing.assert_array_equal(x, y, err_msg=name)


def assert_error(err: pytest.ExceptionInfo, label, field: str | None, *fragments) -> str:
    message = str(err.value)
    assert "\n" not in message and message.startswith(str(label)), message
    if field is not None:
        assert f"field '{field}'" in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message


# --- (1) datasets written by imitation 1.0.1 --------------------------------------------------
def test_imitation_fixture_loads_every_value():
    trajs, metadata = load_imitation_dataset(FIXTURES / "imitation_cartpole")
    episodes = EXPECTED["episodes"]
    lengths = [len(e["acts"]) for e in episodes]
    assert lengths == [18, 6, 3]
    n, t = len(lengths), max(lengths)
    assert trajs.obs.shape == (n, t + 1, 4) and trajs.obs.dtype == jnp.float32
    assert trajs.acts.shape == (n, t) and trajs.acts.dtype == jnp.int32  # int64 in the file
    assert trajs.rews.shape == (n, t) and trajs.rews.dtype == jnp.float32
    np.testing.assert_array_equal(trajs.lengths, lengths)
    for i, e in enumerate(episodes):
        length = lengths[i]
        np.testing.assert_array_equal(trajs.obs[i, :length + 1], np.float32(e["obs"]))
        np.testing.assert_array_equal(trajs.acts[i, :length], e["acts"])
        np.testing.assert_array_equal(trajs.rews[i, :length], np.float32(e["rews"]))
        # terminal=True is a terminal state; False, a cut-off: on the last step only.
        assert bool(trajs.terminated[i, length - 1]) == e["terminal"]
        assert bool(trajs.truncated[i, length - 1]) == (not e["terminal"])
        assert not np.any(trajs.terminated[i, :length - 1] | trajs.truncated[i, :length - 1])
        # Padding is zeros.
        assert not np.any(trajs.obs[i, length + 1:]) and not np.any(trajs.acts[i, length:])
        assert not np.any(trajs.terminated[i, length:] | trajs.truncated[i, length:])
    assert metadata["num_episodes"] == 3 and metadata["rews_missing"] is False
    assert "jsonpickle" in metadata["skipped"]["infos"]
    assert metadata["columns"]["acts"] == "list<item: int64>"


def test_dataset_without_rews_loads_zero_rewards_and_says_so():
    with_rews, _ = load_imitation_dataset(FIXTURES / "imitation_cartpole")
    trajs, metadata = load_imitation_dataset(FIXTURES / "imitation_cartpole_norews")
    assert metadata["rews_missing"] is True and "rews" not in metadata["columns"]
    assert trajs.rews.dtype == jnp.float32 and not np.any(trajs.rews)
    assert_same(trajs.replace(rews=with_rews.rews), with_rews)


def test_fixture_fits_the_env_spaces_and_a_wrong_env_names_the_field(cartpole_env):
    env, params = cartpole_env
    load_imitation_dataset(FIXTURES / "imitation_cartpole", env=env, env_params=params,
                           env_id=ENV_ID)
    env, params = envs.make("seals/MountainCar-v0")  # observations of 2 numbers, not 4
    with pytest.raises(ImitationDatasetError) as err:
        load_imitation_dataset(FIXTURES / "imitation_cartpole", env=env, env_params=params,
                               env_id="seals/MountainCar-v0")
    assert_error(err, FIXTURES / "imitation_cartpole", "obs", "(3, 19, 4)", "(N=3, T+1=19, 2)",
                 "seals/MountainCar-v0")


# --- (2) infos are never decoded -----------------------------------------------------------------
def test_malicious_infos_are_never_decoded():
    marker = Path(EXPECTED["marker"])
    marker.unlink(missing_ok=True)
    folder = FIXTURES / "imitation_malicious"
    raw = pa.ipc.open_stream(pa.OSFile(str(folder / "data-00000-of-00001.arrow"))).read_all()
    assert "py/reduce" in raw.column("infos")[0][0].as_py()  # the payload is there
    trajs, metadata = load_imitation_dataset(folder)
    assert not marker.exists()
    assert metadata["skipped"]["infos"].startswith("not decoded")
    expected = EXPECTED["episodes"][EXPECTED["malicious_episode"]]
    np.testing.assert_array_equal(trajs.obs[0], np.float32(expected["obs"]))
    assert not marker.exists()


# --- (3) our writer ------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["discrete", "continuous", "state-indices"])
def test_round_trip_is_exact(tmp_path, kind):
    if kind == "discrete":
        trajs = hand_built()
    elif kind == "continuous":
        trajs = hand_built(obs_shape=(2, 3), act_shape=(2,), discrete=False)
    else:  # tabular tasks: integer observations of shape ()
        base = hand_built(obs_shape=())
        trajs = base.replace(obs=jnp.abs(base.obs * 10).astype(jnp.int32))
    path = save_imitation_dataset(tmp_path / "ds", trajs, description="hand built")
    assert sorted(p.name for p in path.iterdir()) == [
        "data-00000-of-00001.arrow", "dataset_info.json", "state.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]  # no temporary folder left
    loaded, metadata = load_imitation_dataset(path)
    assert_same(loaded, trajs)
    assert metadata["description"] == "hand built" and metadata["rews_missing"] is False


def test_flags_imitation_cannot_hold(tmp_path):
    """imitation has one bit per episode: neither flag (cut off by the collection window) reads
    back truncated; both read back terminated."""
    trajs = hand_built()
    last = (np.arange(3), np.asarray(trajs.lengths) - 1)
    terminated, truncated = np.asarray(trajs.terminated).copy(), np.asarray(trajs.truncated).copy()
    truncated[last[0][1], last[1][1]] = False  # episode 1: neither
    truncated[last[0][0], last[1][0]] = True  # episode 0: both
    odd = trajs.replace(terminated=jnp.asarray(terminated), truncated=jnp.asarray(truncated))
    loaded, _ = load_imitation_dataset(save_imitation_dataset(tmp_path / "ds", odd))
    np.testing.assert_array_equal(np.asarray(loaded.terminated)[last], [True, False, False])
    np.testing.assert_array_equal(np.asarray(loaded.truncated)[last], [False, True, True])


def test_save_refuses_invalid_data_and_existing_paths(tmp_path):
    trajs = hand_built()
    bad = trajs.replace(rews=trajs.rews.at[0, 0].set(jnp.nan))
    with pytest.raises(ImitationDatasetError) as err:
        save_imitation_dataset(tmp_path / "ds", bad)
    assert_error(err, tmp_path / "ds", "rews", "non-finite")
    assert list(tmp_path.iterdir()) == []

    path = save_imitation_dataset(tmp_path / "ds", trajs)
    with pytest.raises(ImitationDatasetError, match="exists"):
        save_imitation_dataset(path, trajs)
    save_imitation_dataset(path, hand_built(seed=1), overwrite=True)
    assert_same(load_imitation_dataset(path)[0], hand_built(seed=1))
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(ImitationDatasetError, match="notes.txt"):
        save_imitation_dataset(tmp_path / "mine", trajs, overwrite=True)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "mine"]


def test_failed_save_keeps_the_old_folder_and_leaves_nothing(tmp_path, monkeypatch):
    path = save_imitation_dataset(tmp_path / "ds", hand_built())
    writes = []

    def crash_on_second_file(file, data):
        writes.append(file)
        if len(writes) == 2:
            raise OSError("disk full")
        file.write_bytes(data)

    monkeypatch.setattr(imitation_datasets, "_write_synced", crash_on_second_file)
    with pytest.raises(OSError, match="disk full"):
        save_imitation_dataset(path, hand_built(seed=1), overwrite=True)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]
    assert_same(load_imitation_dataset(path)[0], hand_built())


# --- bad folders ---------------------------------------------------------------------------------
def fixture_copy(tmp_path: Path, change=None) -> Path:
    """The imitation fixture copied to tmp_path, its table passed through `change`."""
    folder = tmp_path / "ds"
    shutil.copytree(FIXTURES / "imitation_cartpole", folder)
    if change is not None:
        data = folder / "data-00000-of-00001.arrow"
        with pa.OSFile(str(data)) as f:
            table = change(pa.ipc.open_stream(f).read_all())
        with pa.OSFile(str(data), "wb") as f, pa.ipc.new_stream(f, table.schema) as writer:
            writer.write_table(table)
    return folder


def set_column(name, values, kind=None):
    def change(table):
        array = pa.array(values, type=kind)
        if name in table.column_names:
            return table.set_column(table.column_names.index(name), name, array)
        return table.append_column(name, array)
    return change


def drop_column(name):
    return lambda table: table.drop_columns([name])


OBS = [e["obs"] for e in EXPECTED["episodes"]]
ACTS = [e["acts"] for e in EXPECTED["episodes"]]


@pytest.mark.parametrize("change, field, fragment", [
    (drop_column("acts"), "acts", "is missing"),
    (drop_column("terminal"), "terminal", "is missing"),
    (set_column("obs", [o[:-1] for o in OBS]), "obs", "len(acts) + 1 = 19"),
    (set_column("rews", [[1.0] * 2] * 3), "rews", "expected len(acts) = 18"),
    (set_column("acts", [[]] + ACTS[1:]), "acts", "at least one action"),
    (set_column("obs", [[dict(zip("abcd", s)) for s in o] for o in OBS]), "obs",
     "dict observations"),
    (set_column("obs", [[s[:3] if i == 2 else s for i, s in enumerate(o)] for o in OBS]), "obs",
     "the same shape"),
    (set_column("acts", [a if i else None for i, a in enumerate(ACTS)]), "acts", "null"),
    (set_column("terminal", [1, 0, 0]), "terminal", "expected bool"),
    (set_column("acts", [[str(x) for x in a] for a in ACTS]), "acts", "numbers"),
    (set_column("obs", [[[float("nan")] * 4] + o[1:] for o in OBS]), "obs", "non-finite"),
])
def test_bad_dataset_names_the_field(tmp_path, change, field, fragment):
    folder = fixture_copy(tmp_path, change)
    with pytest.raises(ImitationDatasetError) as err:
        load_imitation_dataset(folder)
    assert_error(err, folder, field, fragment)


def test_action_outside_the_env_space_names_the_field(tmp_path, cartpole_env):
    env, params = cartpole_env
    folder = fixture_copy(tmp_path, set_column("acts", [a[:-1] + [5] for a in ACTS]))
    with pytest.raises(ImitationDatasetError) as err:
        load_imitation_dataset(folder, env=env, env_params=params, env_id=ENV_ID)
    assert_error(err, folder, "acts", "5", ENV_ID)


def test_shards_are_read_in_state_json_order(tmp_path):
    """Large datasets are saved as several data-*.arrow shards, listed in state.json."""
    folder = fixture_copy(tmp_path)
    data = folder / "data-00000-of-00001.arrow"
    with pa.OSFile(str(data)) as f:
        table = pa.ipc.open_stream(f).read_all()
    data.unlink()
    names = ["data-00000-of-00002.arrow", "data-00001-of-00002.arrow"]
    for name, part in zip(names, (table.slice(0, 2), table.slice(2))):
        with pa.OSFile(str(folder / name), "wb") as f, pa.ipc.new_stream(f, table.schema) as w:
            w.write_table(part)
    state = json.loads((folder / "state.json").read_text())
    state["_data_files"] = [{"filename": name} for name in names]
    (folder / "state.json").write_text(json.dumps(state))
    assert_same(load_imitation_dataset(folder)[0],
                load_imitation_dataset(FIXTURES / "imitation_cartpole")[0])


def test_bad_folders(tmp_path):
    with pytest.raises(ImitationDatasetError, match="no such folder"):
        load_imitation_dataset(tmp_path / "absent")
    (tmp_path / "file.npz").write_bytes(b"x")
    with pytest.raises(ImitationDatasetError, match="is a file"):
        load_imitation_dataset(tmp_path / "file.npz")

    folder = fixture_copy(tmp_path)
    state = folder / "state.json"
    state.write_text(json.dumps({"_data_files": [{"filename": "../../etc/passwd"}]}))
    with pytest.raises(ImitationDatasetError) as err:
        load_imitation_dataset(folder)
    assert_error(err, state, "_data_files", "../../etc/passwd")
    state.unlink()
    with pytest.raises(ImitationDatasetError, match="state.json: no such file"):
        load_imitation_dataset(folder)

    folder = fixture_copy(tmp_path / "truncated")
    data = folder / "data-00000-of-00001.arrow"
    data.write_bytes(data.read_bytes()[:300])
    with pytest.raises(ImitationDatasetError) as err:
        load_imitation_dataset(folder)
    assert_error(err, data, None, "cannot be read as an Arrow IPC stream")


# --- (4) imitation 1.0.1 reads what we write -----------------------------------------------------
READ_WITH_IMITATION = """
import json, sys
from imitation.data import serialize
print(json.dumps([{"type": type(t).__name__, "obs": t.obs.tolist(), "acts": t.acts.tolist(),
                   "rews": t.rews.tolist(), "terminal": bool(t.terminal),
                   "infos": [dict(i) for i in t.infos]} for t in serialize.load(sys.argv[1])]))
"""


def test_imitation_reads_what_we_write(tmp_path, imitation_python):
    python = imitation_python
    trajs = hand_built()
    path = save_imitation_dataset(tmp_path / "ds", trajs)
    proc = subprocess.run([python, "-c", READ_WITH_IMITATION, str(path)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    episodes = json.loads(proc.stdout.strip().splitlines()[-1])
    lengths = np.asarray(trajs.lengths)
    assert [e["type"] for e in episodes] == ["TrajectoryWithRew"] * 3
    assert [len(e["acts"]) for e in episodes] == lengths.tolist()
    assert [e["terminal"] for e in episodes] == [True, False, False]
    for i, (e, length) in enumerate(zip(episodes, lengths)):
        np.testing.assert_array_equal(np.float32(e["obs"]), trajs.obs[i, :length + 1])
        np.testing.assert_array_equal(e["acts"], trajs.acts[i, :length])
        np.testing.assert_array_equal(np.float32(e["rews"]), trajs.rews[i, :length])
        assert e["infos"] == [{}] * length


# --- (5) the convert command line ----------------------------------------------------------------
def run_convert(*argv):
    convert.main(parse_command_line(convert.COMMANDS, list(map(str, argv))))


def test_convert_both_ways(tmp_path, capsys, cartpole_env):
    npz = tmp_path / "demos.npz"
    run_convert("imitation-to-npz", FIXTURES / "imitation_cartpole", npz, "--env", ENV_ID)
    env, params = cartpole_env
    demos, metadata = load_demos(npz, env=env, env_params=params, env_id=ENV_ID)
    assert_same(demos, load_imitation_dataset(FIXTURES / "imitation_cartpole")[0])
    assert metadata["source"].startswith("imitation dataset")
    assert metadata["extra"]["imitation"]["skipped"]["infos"].startswith("not decoded")

    folder = tmp_path / "back"
    run_convert("npz-to-imitation", npz, folder)
    assert_same(load_imitation_dataset(folder)[0], demos)
    assert "3 episodes" in capsys.readouterr().out


def test_convert_without_rews_notes_it(tmp_path, capsys):
    npz = tmp_path / "demos.npz"
    run_convert("imitation-to-npz", FIXTURES / "imitation_cartpole_norews", npz, "--env", ENV_ID)
    assert "no rews column" in capsys.readouterr().out
    assert load_demos(npz)[1]["extra"]["imitation"]["rews_missing"] is True


def test_convert_errors_name_the_field_and_write_nothing(tmp_path, capsys):
    npz = tmp_path / "demos.npz"
    with pytest.raises(SystemExit) as exit_info:
        run_convert("imitation-to-npz", FIXTURES / "imitation_cartpole", npz,
                    "--env", "seals/MountainCar-v0")
    assert exit_info.value.code == 2
    line = capsys.readouterr().err.strip()
    assert "\n" not in line and "field 'obs'" in line and "seals/MountainCar-v0" in line
    assert list(tmp_path.iterdir()) == []

    demos = save_demos(npz, hand_built(), env_id=ENV_ID, source="hand built")
    (tmp_path / "taken").mkdir()
    with pytest.raises(SystemExit):
        run_convert("npz-to-imitation", demos, tmp_path / "taken")
    assert "--overwrite" in capsys.readouterr().err
