"""SB3 model zips read without pickle (`jaxrl_align.interop`): the same deterministic actions as
SB3's `predict` on the fixtures' observations, the DAgger expert file, and refusals.

Fixtures: tests/interop/fixtures/make_sb3_fixtures.py (run with .venv-imitation)."""
import io
import json
import pickle
import zipfile
from pathlib import Path

import jax
import numpy as np
import pytest

import envs
from jaxrl_align.algorithms import dagger
from jaxrl_align.interop import sb3
from jaxrl_align.interop.torch_zip import TorchFileError, read_state_dict

FIXTURES = Path(__file__).parent / "fixtures"
MODELS = {"ppo_cartpole": "seals/CartPole-v0", "ppo_pendulum": "Pendulum-v1",
          "sac_pendulum": "Pendulum-v1"}


def sb3_actions(name):
    with np.load(FIXTURES / f"{name}.npz", allow_pickle=False) as f:
        return f["obs"], f["actions"]


def rewrite_zip(src: Path, dst: Path, edit_data=None, members: dict | None = None) -> Path:
    """A copy of an SB3 zip with its `data` JSON edited and members replaced."""
    members = members or {}
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for name in zin.namelist():
            content = members.get(name, zin.read(name))
            if name == "data" and edit_data is not None:
                data = json.loads(content)
                edit_data(data)
                content = json.dumps(data)
            zout.writestr(name, content)
    return dst


def torch_file(data_pkl: bytes) -> bytes:
    """A torch.save-shaped zip around `data_pkl`."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("archive/data.pkl", data_pkl)
        z.writestr("archive/byteorder", "little")
        z.writestr("archive/version", "3\n")
    return buffer.getvalue()


def test_reader_matches_torch_tensors():
    state = read_state_dict(FIXTURES / "tensors.pth")
    with np.load(FIXTURES / "tensors.npz", allow_pickle=False) as expected:
        assert sorted(state) == sorted(expected.files)
        for name in expected.files:
            assert state[name].dtype == expected[name].dtype, name
            np.testing.assert_array_equal(state[name], expected[name], err_msg=name)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_actions_match_sb3_predict(name):
    env, env_params = envs.make(MODELS[name])
    act_fn, params, info = sb3.load_sb3_policy(FIXTURES / f"{name}.zip", env, env_params)
    obs, expected = sb3_actions(name)
    actions = np.asarray(jax.jit(act_fn)(params, obs))
    assert actions.shape == expected.shape
    if name == "ppo_cartpole":
        np.testing.assert_array_equal(actions, expected)
    else:
        np.testing.assert_allclose(actions, expected, rtol=1e-5, atol=1e-5)
        assert np.unique(expected).size > 50  # not all clipped to a bound
    assert info["hidden"] == {"ppo_pendulum": (32, 32)}.get(name, (64, 64))
    if name == "ppo_pendulum":  # a trained, non-zero state-independent log σ was read
        assert abs(float(params["params"]["policy"]["log_std"][0])) > 0.1


def test_activation_read_from_zip_and_overridden():
    env, env_params = envs.make("Pendulum-v1")
    path = FIXTURES / "ppo_pendulum.zip"
    _, _, info = sb3.load_sb3_policy(path, env, env_params)
    assert (info["activation"], info["activation_source"]) == (
        "relu", "policy_kwargs.activation_fn")
    act_fn, params, info = sb3.load_sb3_policy(path, env, env_params, activation="tanh")
    assert info["activation_source"] == "override"
    obs, expected = sb3_actions("ppo_pendulum")
    assert np.max(np.abs(np.asarray(jax.jit(act_fn)(params, obs)) - expected)) > 1e-3


@pytest.mark.parametrize("name", ["ppo_cartpole", "ppo_pendulum"])
def test_ppo_expert_file_acts_as_sb3(name, tmp_path):
    env_id = MODELS[name]
    out = tmp_path / "policy.msgpack"
    env, env_params = envs.make(env_id)
    if name == "ppo_cartpole":  # the command line
        from experiments import convert

        convert.main(convert.Sb3Policy(FIXTURES / f"{name}.zip", out, env=env_id))
    else:
        sb3.sb3_ppo_to_expert(FIXTURES / f"{name}.zip", env, env_params, env_id, out)
    expert, params = dagger.load_ppo_expert(out, env, env_params, env_id=env_id)
    obs, expected = sb3_actions(name)
    actions = jax.jit(jax.vmap(expert, in_axes=(None, None, 0)))(
        params, jax.random.PRNGKey(0), obs)
    np.testing.assert_allclose(np.asarray(actions), expected, rtol=1e-5, atol=1e-5)


def test_sac_is_no_ppo_expert(tmp_path):
    with pytest.raises(sb3.SB3PolicyError, match="data.policy_class.*ActorCriticPolicy"):
        env, env_params = envs.make("Pendulum-v1")
        sb3.sb3_ppo_to_expert(FIXTURES / "sac_pendulum.zip", env, env_params, "Pendulum-v1",
                              tmp_path / "policy.msgpack")


class _Eval:
    def __init__(self, code):
        self.code = code

    def __reduce__(self):
        return eval, (self.code,)


def _payloads(marker: Path) -> dict[str, tuple[bytes, str]]:
    """Pickles that, unpickled, would create `marker`; and the global each names."""
    code = f"open({str(marker)!r}, 'w').close()"
    return {
        "os.system": (f"cos\nsystem\n(Vtouch {marker}\ntR.".encode(), "global os.system"),
        # Protocol 2 names Python 2's module, which pickle maps to builtins.
        "eval-protocol-2": (pickle.dumps(_Eval(code), protocol=2), "global __builtin__.eval"),
        "eval-protocol-4": (pickle.dumps(_Eval(code), protocol=4), "global builtins.eval"),
    }


@pytest.mark.parametrize("payload", ["os.system", "eval-protocol-2", "eval-protocol-4"])
def test_malicious_policy_pth_is_refused(payload, tmp_path):
    marker = tmp_path / "marker"
    data_pkl, names = _payloads(marker)[payload]
    path = rewrite_zip(FIXTURES / "ppo_cartpole.zip", tmp_path / "evil.zip",
                       members={"policy.pth": torch_file(data_pkl)})
    env, env_params = envs.make("seals/CartPole-v0")
    with pytest.raises(TorchFileError) as err:
        sb3.load_sb3_policy(path, env, env_params)
    message = str(err.value)
    assert f"{path}:policy.pth" in message and names in message and "not allowed" in message
    assert not marker.exists()


@pytest.mark.parametrize("data_pkl, problem", [
    (b"\x80\x02I1\n.", "opcode INT is not supported"),
    # A tuple of strings that looks like the OrderedDict global is not that global.
    (b"\x80\x02X\x0b\x00\x00\x00collectionsX\x0b\x00\x00\x00OrderedDict\x86)R.",
     "REDUCE calls a tuple"),
    (b"\x80\x02}X\x01\x00\x00\x00aK\x01s", "not a readable .*exhausted before seeing STOP"),
])
def test_unexpected_pickles_are_refused(data_pkl, problem):
    with pytest.raises(TorchFileError, match=problem):
        read_state_dict(torch_file(data_pkl), "x.pth")


def _pendulum_spaces(data):
    with zipfile.ZipFile(FIXTURES / "ppo_pendulum.zip") as z:
        pendulum = json.loads(z.read("data"))
    data["observation_space"] = pendulum["observation_space"]
    data["action_space"] = pendulum["action_space"]


def _set(*path_and_value):
    *path, value = path_and_value

    def edit(data):
        for key in path[:-1]:
            data = data[key]
        data[path[-1]] = value
    return edit


@pytest.mark.parametrize("model, env_id, edit, field", [
    ("ppo_cartpole", "Pendulum-v1", None, "'data.observation_space._shape' is (4,); expected (3,)"),
    ("sac_pendulum", "seals/CartPole-v0", None, "'data.observation_space._shape'"),
    ("ppo_pendulum", "Pendulum-v1", _set("action_space", "low", "[-1.]"),
     "'data.action_space.low' is [-1.0]; expected [-2.0]"),
    # Spaces that claim Pendulum's sizes on CartPole's tensors: the tensors are checked too.
    ("ppo_cartpole", "Pendulum-v1", _pendulum_spaces,
     "'mlp_extractor.policy_net.0.weight' has 4 inputs; expected 3"),
    ("ppo_cartpole", "seals/CartPole-v0",
     _set("policy_class", "__init__", "<function ActorCriticCnnPolicy.__init__ at 0x1>"),
     "'data.policy_class' is ActorCriticCnnPolicy"),
    ("ppo_cartpole", "seals/CartPole-v0", _set("use_sde", True), "'data.use_sde'"),
])
def test_mismatch_names_the_field(model, env_id, edit, field, tmp_path):
    path = FIXTURES / f"{model}.zip"
    if edit is not None:
        path = rewrite_zip(path, tmp_path / "edited.zip", edit_data=edit)
    env, env_params = envs.make(env_id)
    with pytest.raises(sb3.SB3PolicyError) as err:
        sb3.load_sb3_policy(path, env, env_params, env_id=env_id)
    assert str(err.value).startswith(str(path)) and field in str(err.value)
