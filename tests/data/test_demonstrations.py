"""Demonstrations on disk: round trip, and one clear error per kind of bad file."""
from __future__ import annotations

import json
from pathlib import Path

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl_align.data import demonstrations as demos
from jaxrl_align.data.demonstrations import (DemonstrationError, demo_transitions, load_demos,
                                             save_demos)
from jaxrl_align.data.rollout import collect_episodes
from jaxrl_align.types import Trajectories

ENV_ID = "CartPole-v1"


def push_left(key, obs):
    return jnp.int32(0)


@pytest.fixture(scope="module")
def cartpole():
    return gymnax.make(ENV_ID)


@pytest.fixture(scope="module")
def cartpole_trajs(cartpole):
    env, params = cartpole
    # Always pushing left ends every episode well inside 30 steps, so padding is exercised.
    return collect_episodes(env, params, push_left, jax.random.key(0), 5, 30)


def write_raw(path: Path, arrays: dict, metadata: dict | None) -> Path:
    """Write an npz exactly as given, bypassing save_demos' own checks."""
    entries = dict(arrays)
    if metadata is not None:
        entries["metadata"] = np.array(json.dumps(metadata))
    np.savez(path, **entries)
    return path


def valid_contents(trajs: Trajectories) -> tuple[dict, dict]:
    arrays = {name: np.array(getattr(trajs, name)) for name in demos.ARRAY_FIELDS}
    metadata = {"schema_version": 1, "env_id": ENV_ID, "source": "push left",
                "num_episodes": int(arrays["lengths"].shape[0])}
    return arrays, metadata


def assert_names(err: pytest.ExceptionInfo, path: Path, field: str | None) -> str:
    message = str(err.value)
    assert isinstance(err.value, ValueError)
    assert "\n" not in message
    assert message.startswith(str(path))
    if field is not None:
        assert f"'{field}'" in message, message
    return message


def test_round_trip_keeps_every_field_and_metadata(tmp_path, cartpole, cartpole_trajs):
    env, params = cartpole
    path = save_demos(tmp_path / "demos.npz", cartpole_trajs, env_id=ENV_ID, source="push left",
                      extra_metadata={"seed": 0})
    loaded, metadata = load_demos(path, env=env, env_params=params, env_id=ENV_ID)

    for name in demos.ARRAY_FIELDS:
        original, restored = getattr(cartpole_trajs, name), getattr(loaded, name)
        assert isinstance(restored, jax.Array)
        assert restored.dtype == original.dtype and restored.shape == original.shape, name
        np.testing.assert_array_equal(restored, original, err_msg=name)
    returns = np.asarray(cartpole_trajs.returns)
    assert metadata["schema_version"] == 1
    assert metadata["env_id"] == ENV_ID and metadata["source"] == "push left"
    assert metadata["num_episodes"] == 5
    np.testing.assert_allclose(metadata["episode_returns"], returns)
    assert metadata["mean_return"] == pytest.approx(returns.mean())
    assert metadata["created"] and metadata["package_version"]
    assert metadata["extra"] == {"seed": 0}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demos.npz"]


def test_demo_transitions_drop_padding(cartpole_trajs):
    transitions = demo_transitions(cartpole_trajs)
    assert len(transitions) == int(cartpole_trajs.lengths.sum())


def corrupt_obs_shape(arrays, metadata):
    arrays["obs"] = arrays["obs"][..., :3]


def corrupt_obs_nan(arrays, metadata):
    arrays["obs"][1, 2, 0] = np.nan


def drop_rews(arrays, metadata):
    del arrays["rews"]


def bad_schema(arrays, metadata):
    metadata["schema_version"] = 99


def action_out_of_range(arrays, metadata):
    arrays["acts"][0, 0] = 2


def zero_length(arrays, metadata):
    arrays["lengths"][3] = 0


def too_long(arrays, metadata):
    arrays["lengths"][0] = arrays["rews"].shape[1] + 1


def float_flags(arrays, metadata):
    arrays["terminated"] = arrays["terminated"].astype(np.float32)


def flag_on_padding(arrays, metadata):
    arrays["truncated"][0, -1] = True


def float_actions_for_discrete_env(arrays, metadata):
    arrays["acts"] = arrays["acts"].astype(np.float32)


@pytest.mark.parametrize("corrupt, field", [
    (corrupt_obs_shape, "obs"),
    (corrupt_obs_nan, "obs"),
    (drop_rews, "rews"),
    (bad_schema, "metadata.schema_version"),
    (action_out_of_range, "acts"),
    (zero_length, "lengths"),
    (too_long, "lengths"),
    (float_flags, "terminated"),
    (flag_on_padding, "truncated"),
    (float_actions_for_discrete_env, "acts"),
])
def test_bad_file_names_the_field(tmp_path, cartpole, cartpole_trajs, corrupt, field):
    env, params = cartpole
    arrays, metadata = valid_contents(cartpole_trajs)
    corrupt(arrays, metadata)
    path = write_raw(tmp_path / "demos.npz", arrays, metadata)
    with pytest.raises(DemonstrationError) as err:
        load_demos(path, env=env, env_params=params)
    assert_names(err, path, field)


def test_wrong_obs_shape_message_says_expected_and_actual(tmp_path, cartpole, cartpole_trajs):
    env, params = cartpole
    arrays, metadata = valid_contents(cartpole_trajs)
    corrupt_obs_shape(arrays, metadata)
    path = write_raw(tmp_path / "demos.npz", arrays, metadata)
    with pytest.raises(DemonstrationError) as err:
        load_demos(path, env=env, env_params=params, env_id=ENV_ID)
    message = assert_names(err, path, "obs")
    assert "(5, 31, 3)" in message and "(N=5, T+1=31, 4)" in message and ENV_ID in message


def test_env_id_mismatch(tmp_path, cartpole_trajs):
    path = save_demos(tmp_path / "demos.npz", cartpole_trajs, env_id=ENV_ID, source="push left")
    with pytest.raises(DemonstrationError) as err:
        load_demos(path, env_id="seals/CartPole-v0")
    message = assert_names(err, path, "metadata.env_id")
    assert "seals/CartPole-v0" in message and ENV_ID in message


def test_continuous_action_outside_box(tmp_path):
    env, params = gymnax.make("Pendulum-v1")  # torque in [-2, 2]
    n, t = 2, 4
    arrays = dict(obs=np.zeros((n, t + 1, 3), np.float32), acts=np.zeros((n, t, 1), np.float32),
                  rews=np.zeros((n, t), np.float32), terminated=np.zeros((n, t), bool),
                  truncated=np.zeros((n, t), bool), lengths=np.full((n,), t, np.int32))
    metadata = {"schema_version": 1, "env_id": "Pendulum-v1", "source": "zeros", "num_episodes": n}
    good = write_raw(tmp_path / "good.npz", arrays, metadata)
    load_demos(good, env=env, env_params=params)
    arrays["acts"][1, 3, 0] = 2.5
    bad = write_raw(tmp_path / "bad.npz", arrays, metadata)
    with pytest.raises(DemonstrationError) as err:
        load_demos(bad, env=env, env_params=params)
    assert "2.5" in assert_names(err, bad, "acts")


def test_truncated_file(tmp_path, cartpole_trajs):
    path = save_demos(tmp_path / "demos.npz", cartpole_trajs, env_id=ENV_ID, source="push left")
    contents = path.read_bytes()
    path.write_bytes(contents[: len(contents) // 2])
    with pytest.raises(DemonstrationError) as err:
        load_demos(path)
    assert_names(err, path, None)


def test_missing_and_non_npz_files(tmp_path):
    with pytest.raises(DemonstrationError) as err:
        load_demos(tmp_path / "absent.npz")
    assert_names(err, tmp_path / "absent.npz", None)
    text = tmp_path / "notes.npz"
    text.write_text("not a zip archive\n")
    with pytest.raises(DemonstrationError) as err:
        load_demos(text)
    assert_names(err, text, None)


def test_object_array_is_rejected_not_unpickled(tmp_path, cartpole_trajs):
    arrays, metadata = valid_contents(cartpole_trajs)
    arrays["acts"] = arrays["acts"].astype(object)  # np.savez pickles object arrays
    path = write_raw(tmp_path / "demos.npz", arrays, metadata)
    with pytest.raises(DemonstrationError) as err:
        load_demos(path)
    assert_names(err, path, "acts")


def test_a_member_that_is_not_npy_is_a_one_line_error_not_unpickled(tmp_path, cartpole_trajs):
    """Pickle bytes stored under a .npy name: NumPy hands back the raw bytes (it used to end in an
    AttributeError traceback); the file is refused, naming the field, and nothing is unpickled."""
    import pickle
    import zipfile

    good = save_demos(tmp_path / "good.npz", cartpole_trajs, env_id="seals/CartPole-v0",
                      source="test")
    bad = tmp_path / "pickled.npz"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as dst:
        for name in src.namelist():
            data = pickle.dumps({"not": "an array"}) if name == "obs.npy" else src.read(name)
            dst.writestr(name, data)
    with pytest.raises(DemonstrationError, match=r"field 'obs' is not a NumPy array"):
        load_demos(bad)


def test_save_refuses_invalid_data_and_writes_nothing(tmp_path, cartpole_trajs):
    bad = cartpole_trajs.replace(rews=cartpole_trajs.rews.at[0, 0].set(jnp.nan))
    with pytest.raises(DemonstrationError) as err:
        save_demos(tmp_path / "demos.npz", bad, env_id=ENV_ID, source="push left")
    assert_names(err, tmp_path / "demos.npz", "rews")
    assert list(tmp_path.iterdir()) == []


def test_failed_save_keeps_existing_file_and_leaves_no_temp_files(tmp_path, monkeypatch,
                                                                   cartpole_trajs):
    path = save_demos(tmp_path / "demos.npz", cartpole_trajs, env_id=ENV_ID, source="first")
    before = path.read_bytes()

    def crash_midway(file, **arrays):
        file.write(b"PK partial archive")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez_compressed", crash_midway)
    with pytest.raises(OSError, match="disk full"):
        save_demos(path, cartpole_trajs, env_id=ENV_ID, source="second")
    monkeypatch.undo()

    assert sorted(p.name for p in tmp_path.iterdir()) == ["demos.npz"]
    assert path.read_bytes() == before
    assert load_demos(path)[1]["source"] == "first"
