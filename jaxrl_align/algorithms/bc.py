"""Behavioural cloning with imitation's objective.

    loss = −mean log π(a|s) − ent_weight · mean H(π(·|s)) + l2_weight · Σ‖θ‖² / 2

Batches are drawn as imitation's shuffled, drop-last DataLoader draws them: each epoch is a fresh
permutation of the demonstrations, cut into `batch_size` pieces; the remainder is dropped.
One `update` is one such epoch (N // batch_size gradient steps), so the shuffle happens once per
epoch without a data-dependent branch (a `cond` under `vmap` would shuffle at every step).
Defaults are those of `imitation.algorithms.bc.BC` (Adam 1e-3, ent_weight 1e-3, l2_weight 0,
a 32-32 tanh policy like `FeedForward32Policy`). `obs_normalization="running"` is imitation's
`NormalizeFeaturesExtractor` (a `RunningNorm` in front of the policy, which counts every training
batch before normalising it); the statistics live in `BCState.obs_stats`, outside the parameters,
so neither Adam nor the L2 penalty touches them.
imitation's policy also carries an SB3 value head that BC never uses; ours has none, so the L2
penalty covers the actor's parameters only (the value head's weights never affect actions).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxrl_align.algorithm import Algorithm
from jaxrl_align.data.shuffle import permutation
from jaxrl_align.hparams import (as_arrays, check_choice, check_positive, check_widths,
                                 concrete, static)
from jaxrl_align.nn import optim
from jaxrl_align.nn.mlp import ACTIVATIONS
from jaxrl_align.nn.normalization import init_running_stats, standardize, update_running_stats
from jaxrl_align.nn.policies import Policy
from jaxrl_align.spaces import space_spec
from jaxrl_align.types import Transitions


OBS_NORMALIZATIONS = ("none", "running")


@struct.dataclass
class BCConfig:
    batch_size: int = static(32)
    """demonstration transitions per gradient step"""
    lr: float = 1e-3
    """Adam learning rate"""
    ent_weight: float = 1e-3
    """weight of the entropy bonus"""
    l2_weight: float = 0.0
    """weight of the L2 penalty Σ‖θ‖²/2 over all policy parameters"""
    hidden: tuple[int, ...] = static((32, 32))
    """hidden layer widths of the policy"""
    activation: str = static("tanh")
    """tanh or relu"""
    epochs: int = static(40)
    """passes over the demonstrations in a run (each `update` is one)"""
    obs_normalization: str = static("none")
    """"none": raw observations; "running": standardised by the running mean and variance of
    the training batches seen so far, each batch counted before it is used (imitation's
    NormalizeFeaturesExtractor; what its MuJoCo benchmark configurations use)"""

    def __post_init__(self):
        check_choice("obs_normalization", self.obs_normalization, OBS_NORMALIZATIONS)
        check_positive("batch_size", self.batch_size)
        check_positive("epochs", self.epochs)
        check_widths("hidden", self.hidden)
        check_choice("activation", self.activation, ACTIVATIONS)
        if concrete(self.lr) and not self.lr >= 0:
            raise ValueError(f"lr: expected a learning rate >= 0, got {self.lr}")

    @property
    def num_updates(self) -> int:
        return self.epochs


@struct.dataclass
class BCState:
    params: dict
    opt_state: optax.OptState
    key: jax.Array
    hparams: BCConfig
    obs_stats: dict  # running observation statistics (counted only with obs_normalization)

    @property
    def env_steps(self) -> jax.Array:
        return jnp.zeros((), jnp.int32)  # BC never acts in the environment


def make(config: BCConfig, env, env_params) -> Algorithm:
    spec = space_spec(env, env_params)
    network = Policy(spec.act_dim, spec.discrete_actions, config.hidden, config.activation,
                     xnnpack_weight_grads=True)
    batch_size = config.batch_size

    def init(key: jax.Array, demos: Transitions, hparams: BCConfig | None = None) -> BCState:
        hparams = as_arrays(config) if hparams is None else hparams
        num_demos = len(demos)
        if num_demos < batch_size:
            raise ValueError(f"demonstrations: {num_demos} transitions, fewer than "
                             f"batch_size={batch_size}")
        net_key, key = jax.random.split(key)
        x = spec.encode_obs(demos.obs[:1])
        params = network.init(net_key, x)
        return BCState(params=params, opt_state=optim.adam(hparams.lr).init(params), key=key,
                       hparams=hparams, obs_stats=init_running_stats(x.shape[-1]))

    def features(obs_stats, obs):
        x = spec.encode_obs(obs)
        return standardize(obs_stats, x) if config.obs_normalization == "running" else x

    def loss_fn(params, hp: BCConfig, obs_stats, obs, acts):
        dist = network.apply(params, features(obs_stats, obs))
        log_prob = dist.log_prob(acts)
        neglogp = -jnp.mean(log_prob)
        entropy = jnp.mean(dist.entropy())
        l2_norm_sq = sum(jnp.sum(w**2) for w in jax.tree.leaves(params))
        loss = neglogp - hp.ent_weight * entropy + hp.l2_weight * l2_norm_sq / 2
        return loss, dict(loss=loss, neglogp=neglogp, entropy=entropy,
                          prob_true_act=jnp.mean(jnp.exp(log_prob)),
                          l2_norm=jnp.sqrt(l2_norm_sq))

    def update(state: BCState, demos: Transitions, count: jax.Array | None = None):
        """One epoch over the demonstrations (only `demos.obs` and `demos.acts` are read).

        With `count` (a traced number of filled entries, for a preallocated dataset that grows,
        such as DAgger's), the epoch covers `demos[:count]` only: a shuffle of those entries cut
        into count // batch_size batches (the remainder dropped), as a `fori_loop` whose trip
        count is traced, so no shape depends on it."""
        key, order_key = jax.random.split(state.key)
        optimizer = optim.adam(state.hparams.lr)

        def gradient_step(train, idx):
            params, opt_state, obs_stats = train
            obs = demos.obs[idx]
            if config.obs_normalization == "running":
                obs_stats = update_running_stats(obs_stats, spec.encode_obs(obs))
            grads, metrics = jax.grad(loss_fn, has_aux=True)(
                params, state.hparams, obs_stats, obs, demos.acts[idx])
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state, obs_stats), metrics

        if count is not None:
            return _partial_epoch(state, key, permutation(order_key, len(demos)), count,
                                  gradient_step)
        num_batches = len(demos) // batch_size
        batches = permutation(order_key, len(demos))[: num_batches * batch_size]
        (params, opt_state, obs_stats), metrics = jax.lax.scan(
            gradient_step, (state.params, state.opt_state, state.obs_stats),
            batches.reshape(num_batches, batch_size))
        return (state.replace(params=params, opt_state=opt_state, key=key, obs_stats=obs_stats),
                jax.tree.map(jnp.mean, metrics))

    def _partial_epoch(state: BCState, key, order, count, gradient_step):
        # The filled entries in the order a permutation of all of them visits them: a uniform
        # shuffle of the first `count` (compacted by a cumulative sum, not a second sort).
        filled = order < count
        position = jnp.where(filled, jnp.cumsum(filled) - 1, len(order))
        order = jnp.zeros_like(order).at[position].set(order, mode="drop")
        num_batches = count // batch_size
        train = (state.params, state.opt_state, state.obs_stats)
        metric_shapes = jax.eval_shape(gradient_step, train, order[:batch_size])[1]

        def body(i, carry):
            train, sums = carry
            idx = jax.lax.dynamic_slice_in_dim(order, i * batch_size, batch_size)
            train, metrics = gradient_step(train, idx)
            return train, jax.tree.map(jnp.add, sums, metrics)

        sums = jax.tree.map(lambda m: jnp.zeros(m.shape, m.dtype), metric_shapes)
        (params, opt_state, obs_stats), sums = jax.lax.fori_loop(
            0, num_batches, body, (train, sums))
        metrics = jax.tree.map(lambda s: s / jnp.maximum(num_batches, 1), sums)
        return (state.replace(params=params, opt_state=opt_state, key=key, obs_stats=obs_stats),
                metrics)

    def act(state: BCState, key: jax.Array, obs: jax.Array, deterministic: bool = True):
        dist = network.apply(state.params, features(state.obs_stats, obs))
        return spec.clip_action(dist.mode() if deterministic else dist.sample(key))

    return Algorithm(name="bc", config=config, init=init, update=update, act=act)
