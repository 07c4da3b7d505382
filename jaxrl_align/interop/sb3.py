"""Stable-Baselines3 MLP policies (what imitation's experts are) as this project's policy
parameters, read without pickle.

An SB3 model `.zip` holds `data`, a JSON object of the model's attributes, and `policy.pth`,
the policy's torch state_dict (read by `torch_zip`, never unpickled). Entries of `data` that
are not JSON (spaces, policy class, `policy_kwargs` with an activation class) are cloudpickle
blobs under ":serialized:", which are never decoded; SB3 writes their first-level attributes
beside them as JSON or as `str()`, and only those are read. Layer sizes come from the tensors'
shapes.

What loads (`load_sb3_policy`):
- `ActorCriticPolicy` ("MlpPolicy" of PPO and A2C): `mlp_extractor.policy_net` + `action_net`
  (+ `log_std` for Box actions) become `ActorCritic`'s actor, `mlp_extractor.value_net` +
  `value_net` its critic; the deterministic action is `dagger.ppo_expert`'s (the mean clipped to
  the box, or the argmax), SB3's `predict(deterministic=True)`. `sb3_ppo_to_expert` writes it in
  `dagger.save_ppo_expert`'s format, for `experiments.train dagger --expert-policy`.
- `SACPolicy` ("MlpPolicy" of SAC): `actor.latent_pi` + `actor.mu` and `actor.log_std` (the two
  heads as one Dense of 2·d) become `sac.SquashedGaussianActor`'s parameters; the deterministic
  action is `sac.learner(...).act`'s, tanh(μ) rescaled to the box, as SB3's.

The activation is `policy_kwargs["activation_fn"]` when `data` shows it (Tanh or ReLU), else
SB3's default for the policy (Tanh for ActorCriticPolicy, ReLU for SACPolicy); `activation`
overrides both. Refused, each with an error naming the file and field: CNN, MultiInput and other
policy classes, custom feature extractors, gSDE (`use_sde`), actor and critic of different
widths (one `hidden` here), unknown activations, spaces other than Box or Discrete, and spaces
that differ from the environment's. VecNormalize statistics live in a separate pickle
(`vec_normalize.pkl`) that cannot be read safely, so a policy trained behind VecNormalize
loads but sees unnormalised observations: its actions are wrong (docs/interop.md).
"""
from __future__ import annotations

import json
import math
import re
import zipfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl_align.algorithms import dagger
from jaxrl_align.data.files import DataFileError, fail
from jaxrl_align.interop.torch_zip import read_member, read_state_dict
from jaxrl_align.nn.mlp import ACTIVATIONS
from jaxrl_align.rl import ppo, sac
from jaxrl_align.spaces import space_spec


class SB3PolicyError(DataFileError):
    """An SB3 model that cannot be loaded; the message names the file and the field."""


# torch.nn activation classes with an equivalent in `jaxrl_align.nn.mlp.ACTIVATIONS`.
SB3_ACTIVATIONS = {"Tanh": "tanh", "ReLU": "relu"}
# SB3's default `activation_fn` of each supported policy class.
DEFAULT_ACTIVATION = {"ActorCriticPolicy": "tanh", "SACPolicy": "relu"}


def read_sb3_zip(zip_path) -> tuple[dict, dict[str, np.ndarray], str]:
    """(`data` as JSON, `policy.pth` as NumPy arrays by name, SB3 version) of an SB3 model zip,
    without unpickling anything."""
    label = str(zip_path)
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as err:
        raise SB3PolicyError(f"{label}: is not an SB3 model zip ({err})") from None
    with archive:
        names = set(archive.namelist())
        for member in ("data", "policy.pth"):
            if member not in names:
                fail(SB3PolicyError, label, member, f"is missing; expected an SB3 model zip "
                                                    f"(found {sorted(names)})")
        try:
            data = json.loads(read_member(archive, "data", label))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            fail(SB3PolicyError, label, "data", f"is not valid JSON ({err})")
        if not isinstance(data, dict):
            fail(SB3PolicyError, label, "data", f"is a JSON {type(data).__name__}; expected an "
                                                "object")
        version = "unknown"
        if "_stable_baselines3_version" in names:
            version = read_member(archive, "_stable_baselines3_version", label).decode(
                errors="replace").strip()
        state = read_state_dict(read_member(archive, "policy.pth", label), f"{label}:policy.pth")
    return data, state, version


def _class_name(type_repr) -> str | None:
    """'Box' from "<class 'gymnasium.spaces.box.Box'>"."""
    match = re.fullmatch(r"<class '([\w.]+)'>", str(type_repr))
    return match.group(1).rsplit(".", 1)[-1] if match else None


def _policy_class(data: dict, label: str) -> str:
    entry = data.get("policy_class")
    init = entry.get("__init__", "") if isinstance(entry, dict) else ""
    match = re.match(r"<function (\w+)\.__init__", str(init))
    name = match.group(1) if match else None
    if name not in DEFAULT_ACTIVATION:
        fail(SB3PolicyError, label, "data.policy_class",
             f"is {name or 'not identifiable'}; expected one of {sorted(DEFAULT_ACTIVATION)} "
             "(SB3's MlpPolicy of PPO, A2C or SAC; CNN, MultiInput and custom policies are not "
             "supported)")
    return name


def _activation(data: dict, policy_class: str, override: str | None, label: str):
    """(activation, where it came from)."""
    if override is not None:
        if override not in ACTIVATIONS:
            raise ValueError(f"activation: expected one of {sorted(ACTIVATIONS)}, got "
                             f"{override!r}")
        return override, "override"
    kwargs = data.get("policy_kwargs") or {}
    if not isinstance(kwargs, dict):
        fail(SB3PolicyError, label, "data.policy_kwargs", f"is {kwargs!r}; expected an object")
    extractor = kwargs.get("features_extractor_class")
    if extractor is not None and _class_name(extractor) != "FlattenExtractor":
        fail(SB3PolicyError, label, "data.policy_kwargs.features_extractor_class",
             f"is {extractor!r}; only SB3's FlattenExtractor (the MlpPolicy default) is "
             "supported")
    if kwargs.get("squash_output"):
        fail(SB3PolicyError, label, "data.policy_kwargs.squash_output",
             "is true; expected false (squashed PPO outputs come with gSDE, not supported)")
    if "activation_fn" not in kwargs:
        return DEFAULT_ACTIVATION[policy_class], f"SB3's {policy_class} default"
    name = _class_name(kwargs["activation_fn"])
    if name not in SB3_ACTIVATIONS:
        fail(SB3PolicyError, label, "data.policy_kwargs.activation_fn",
             f"is {kwargs['activation_fn']!r}; expected torch's Tanh or ReLU (or pass "
             "activation= to override)")
    return SB3_ACTIVATIONS[name], "policy_kwargs.activation_fn"


def _shape_of(entry: dict):
    shape = entry.get("_shape", entry.get("shape"))
    return None if shape is None else tuple(int(n) for n in shape)


def _floats(text) -> np.ndarray | None:
    """The numbers of a NumPy array's str() ('[-2.  2.]'), or None when elided ('...')."""
    text = str(text)
    if "..." in text:
        return None
    try:
        return np.array([float(x) for x in text.replace("[", " ").replace("]", " ").split()])
    except ValueError:
        return None


def _space(data: dict, name: str, label: str) -> tuple[str, dict]:
    entry = data.get(name)
    if not isinstance(entry, dict):
        fail(SB3PolicyError, label, f"data.{name}", f"is {entry!r}; expected a serialised "
                                                    "gymnasium space")
    kind = _class_name(entry.get(":type:"))
    if kind not in ("Box", "Discrete"):
        fail(SB3PolicyError, label, f"data.{name}",
             f"is a {kind or entry.get(':type:')}; only Box and Discrete spaces are supported")
    return kind, entry


def _check_spaces(data: dict, spec, label: str, env_label: str) -> None:
    """The zip's observation and action spaces, as far as `data` shows them, are the env's."""
    def mismatch(field, found, expected):
        fail(SB3PolicyError, label, field, f"is {found}; expected {expected} ({env_label})")

    kind, obs = _space(data, "observation_space", label)
    if kind == "Discrete":
        if spec.obs_categories is None:
            mismatch("data.observation_space", "Discrete", f"a Box of shape {spec.obs_shape}")
        if int(obs.get("n", -1)) != spec.obs_categories:
            mismatch("data.observation_space.n", obs.get("n"), spec.obs_categories)
    else:
        if spec.obs_categories is not None:
            mismatch("data.observation_space", "a Box", f"Discrete({spec.obs_categories})")
        if _shape_of(obs) != spec.obs_shape:
            mismatch("data.observation_space._shape", _shape_of(obs), spec.obs_shape)

    kind, act = _space(data, "action_space", label)
    if kind == "Discrete":
        if not spec.discrete_actions:
            mismatch("data.action_space", "Discrete", f"a Box of shape {spec.act_shape}")
        if int(act.get("n", -1)) != spec.num_actions:
            mismatch("data.action_space.n", act.get("n"), spec.num_actions)
        if str(act.get("start", 0)) != "0":
            mismatch("data.action_space.start", act.get("start"), 0)
        return
    if spec.discrete_actions:
        mismatch("data.action_space", "a Box", f"Discrete({spec.num_actions})")
    if _shape_of(act) != spec.act_shape:
        mismatch("data.action_space._shape", _shape_of(act), spec.act_shape)
    # The bounds decide SB3's clipping (PPO) and rescaling (SAC): they must be the env's.
    for bound, env_bound in (("low", spec.act_low), ("high", spec.act_high)):
        values = _floats(act.get(bound))
        if values is not None and not (
                values.size in (1, len(env_bound))
                and np.allclose(values, env_bound, rtol=1e-6, atol=1e-6)):
            mismatch(f"data.action_space.{bound}", values.tolist(), list(env_bound))


def _linear_stack(state: dict, prefix: str, label: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """(weight [out, in], bias [out]) of the Linear layers `prefix.0`, `prefix.2`, ... of an SB3
    `create_mlp` Sequential (activations, which hold no parameters, at the odd indices)."""
    heads = {k[len(prefix) + 1:].split(".")[0] for k in state if k.startswith(prefix + ".")}
    indices = sorted(int(h) for h in heads if h.isdigit())
    if indices != list(range(0, 2 * len(indices), 2)):
        fail(SB3PolicyError, label, prefix, f"has Linear layers at indices {indices}; expected "
                                            "0, 2, 4, ... (Linear and activation alternating)")
    return [_linear(state, f"{prefix}.{i}", label) for i in indices]


def _linear(state: dict, name: str, label: str) -> tuple[np.ndarray, np.ndarray]:
    weight, bias = state.get(f"{name}.weight"), state.get(f"{name}.bias")
    if weight is None or bias is None or weight.ndim != 2 or bias.shape != weight.shape[:1]:
        fail(SB3PolicyError, label, name,
             f"has weight {getattr(weight, 'shape', None)} and bias "
             f"{getattr(bias, 'shape', None)}; expected a Linear layer ([out, in] and [out])")
    return weight.astype(np.float32), bias.astype(np.float32)


def _check_chain(layers, names, in_dim: int, out_dim: int, out_what: str, label: str,
                 env_label: str):
    """Each layer's input width is the previous one's output; the ends are `in_dim`, the
    observation size, and `out_dim` (`out_what`)."""
    width, what = in_dim, f"the observation size of {env_label}"
    for (weight, _), name in zip(layers, names):
        if weight.shape[1] != width:
            fail(SB3PolicyError, label, f"{name}.weight",
                 f"has {weight.shape[1]} inputs; expected {width} ({what})")
        width, what = weight.shape[0], "the outputs of the layer before"
    if width != out_dim:
        fail(SB3PolicyError, label, f"{names[-1]}.weight",
             f"has {width} outputs; expected {out_dim} ({out_what})")


def _dense(layers) -> dict:
    """flax `MLP` parameters ({"Dense_i": {"kernel" [in, out], "bias"}}) of torch Linears."""
    return {f"Dense_{i}": {"kernel": jnp.asarray(w.T), "bias": jnp.asarray(b)}
            for i, (w, b) in enumerate(layers)}


def _check_unused(state: dict, used: set, ignored: tuple[str, ...], label: str) -> None:
    unused = sorted(k for k in state if k not in used and not k.startswith(ignored))
    if unused:
        fail(SB3PolicyError, label, unused[0],
             f"is a parameter this loader does not map (of {unused}); shared layers, custom "
             "feature extractors and other architectures are not supported")


def _check_template(params, template, label: str) -> None:
    shapes = lambda tree: jax.tree.map(lambda x: tuple(x.shape), tree)
    if shapes(params) != shapes(template):
        raise SB3PolicyError(f"{label}: the mapped parameters {shapes(params)} do not match the "
                             f"network's {shapes(template)}")


def _actor_critic(state, spec, obs_dim, act_name, env, env_params, label, env_label):
    """(act_fn, ActorCritic params, PPOConfig) of an ActorCriticPolicy's state_dict."""
    dummy_obs = jnp.zeros((1, obs_dim), jnp.float32)
    act_what = f"the action size of {env_label}"
    pi_name, vf_name = "mlp_extractor.policy_net", "mlp_extractor.value_net"
    pi = _linear_stack(state, pi_name, label)
    vf = _linear_stack(state, vf_name, label)
    pi_names = [f"{pi_name}.{2 * i}" for i in range(len(pi))] + ["action_net"]
    vf_names = [f"{vf_name}.{2 * i}" for i in range(len(vf))] + ["value_net"]
    pi.append(_linear(state, "action_net", label))
    vf.append(_linear(state, "value_net", label))
    _check_chain(pi, pi_names, obs_dim, spec.act_dim, act_what, label, env_label)
    hidden = tuple(w.shape[0] for w, _ in pi[:-1])
    vf_hidden = tuple(w.shape[0] for w, _ in vf[:-1])
    if vf_hidden != hidden:
        fail(SB3PolicyError, label, vf_name,
             f"has widths {vf_hidden}; expected the actor's {hidden} (ActorCritic here has "
             "one `hidden` for both)")
    _check_chain(vf, vf_names, obs_dim, 1, "one value", label, env_label)
    policy = {"actor": _dense(pi)}
    used = {f"{n}.{p}" for n in pi_names + vf_names for p in ("weight", "bias")}
    if not spec.discrete_actions:
        log_std = state.get("log_std")
        if log_std is None or log_std.shape != (spec.act_dim,):
            fail(SB3PolicyError, label, "log_std",
                 f"has shape {getattr(log_std, 'shape', None)}; expected ({spec.act_dim},)")
        policy["log_std"] = jnp.asarray(log_std, jnp.float32)
        used.add("log_std")
    _check_unused(state, used, (), label)
    config = ppo.PPOConfig(hidden=hidden, activation=act_name)
    params = {"params": {"policy": policy, "critic": _dense(vf)}}
    engine = ppo.PPOEngine(config, env, env_params)
    _check_template(params, jax.eval_shape(engine.network.init, jax.random.PRNGKey(0),
                                           dummy_obs), label)
    expert = dagger.ppo_expert(config, env, env_params)

    def act_fn(params, obs):
        return expert(params, None, obs)
    return act_fn, params, config


def _sac_actor(state, spec, obs_dim, act_name, env, env_params, label, env_label):
    """(act_fn, SquashedGaussianActor params, SACConfig) of a SACPolicy's actor."""
    dummy_obs = jnp.zeros((1, obs_dim), jnp.float32)
    act_what = f"the action size of {env_label}"
    latent = _linear_stack(state, "actor.latent_pi", label)
    names = [f"actor.latent_pi.{2 * i}" for i in range(len(latent))]
    mu, log_std = _linear(state, "actor.mu", label), _linear(state, "actor.log_std", label)
    for head_name, head in (("actor.mu", mu), ("actor.log_std", log_std)):
        _check_chain(latent + [head], names + [head_name], obs_dim, spec.act_dim, act_what,
                     label, env_label)
    used = {f"{n}.{p}" for n in names + ["actor.mu", "actor.log_std"]
            for p in ("weight", "bias")}
    _check_unused(state, used, ("critic.", "critic_target."), label)
    hidden = tuple(w.shape[0] for w, _ in latent)
    # SB3's two heads on one latent are SquashedGaussianActor's one Dense of [μ, log σ].
    head = (np.concatenate([mu[0], log_std[0]]), np.concatenate([mu[1], log_std[1]]))
    params = {"params": {"actor": _dense(latent + [head])}}
    config = sac.SACConfig(hidden=hidden, activation=act_name)
    network = sac.SquashedGaussianActor(spec.act_dim, hidden, act_name)
    _check_template(params, jax.eval_shape(network.init, jax.random.PRNGKey(0), dummy_obs),
                    label)
    learner = sac.learner(config, env, env_params)

    def act_fn(params, obs):
        return learner.act(_actor_only(params), None, None, obs)
    return act_fn, params, config


def load_sb3_policy(zip_path, env, env_params, activation: str | None = None,
                    env_id: str | None = None):
    """(act_fn, params, info) of an SB3 `ActorCriticPolicy` (PPO, A2C) or `SACPolicy` model zip,
    checked against `env`: `act_fn(params, obs)` is the deterministic action of observations
    [..., *obs_shape], SB3's `predict(obs, deterministic=True)`. `info` says what was read:
    policy class, `hidden`, `activation` and its source, SB3 version, and `config`, the
    `PPOConfig` or `SACConfig` whose network the parameters fit. `env_id` names the env in
    errors."""
    label = str(zip_path)
    env_label = f"the environment {env_id or getattr(env, 'name', type(env).__name__)}"
    data, state, version = read_sb3_zip(zip_path)
    policy_class = _policy_class(data, label)
    if data.get("use_sde"):
        fail(SB3PolicyError, label, "data.use_sde", "is true; gSDE policies are not supported")
    spec = space_spec(env, env_params)
    _check_spaces(data, spec, label, env_label)
    act_name, act_source = _activation(data, policy_class, activation, label)
    obs_dim = spec.obs_categories or math.prod(spec.obs_shape)
    load = _actor_critic if policy_class == "ActorCriticPolicy" else _sac_actor
    act_fn, params, config = load(state, spec, obs_dim, act_name, env, env_params, label,
                                  env_label)
    info = {"policy_class": policy_class, "hidden": config.hidden, "activation": act_name,
            "activation_source": act_source, "sb3_version": version, "config": config}
    return act_fn, params, info


def _actor_only(actor) -> sac.SACLearnerState:
    """A SAC learner state holding only the actor: all that `learner.act` reads."""
    return sac.SACLearnerState(actor=actor, critic=None, target_critic=None, log_ent_coef=None,
                               actor_opt=None, critic_opt=None, ent_coef_opt=None)


def sb3_ppo_to_expert(zip_path, env, env_params, env_id: str, out_path,
                      activation: str | None = None) -> Path:
    """An SB3 PPO (or A2C) MlpPolicy zip written as `dagger.save_ppo_expert` does
    (`out_path`, msgpack, and its `.json`), for `experiments.train dagger --expert-policy`
    and `experiments.evaluate` (`python -m experiments.convert sb3-policy`)."""
    _, params, info = load_sb3_policy(zip_path, env, env_params, activation, env_id)
    if info["policy_class"] != "ActorCriticPolicy":
        fail(SB3PolicyError, str(zip_path), "data.policy_class",
             f"is {info['policy_class']}; a PPO expert file needs an ActorCriticPolicy (PPO)")
    return dagger.save_ppo_expert(out_path, info["config"], env_id, params)
