"""The Bradley-Terry preference model over a learned reward, its comparison buffer and trainer.

Preference model (imitation's `PreferenceModel`): with `R_k` member k's (discounted) return of a
fragment under the learned reward,

    p_k(1 ≻ 2) = noise_prob · 0.5 + (1 − noise_prob) · σ(clip(R_k(1) − R_k(2), ±threshold)).

Loss (imitation's `CrossEntropyRewardLoss`): binary cross-entropy of p against the labels,
computed in log space. Accuracy: (p > 0.5) == (label > 0.5).

Reward model: a `RewardEnsemble` of K `BasicRewardNet`s (K = 1 is imitation's single model and
its `BasicRewardTrainer`; K > 1 its `EnsembleTrainer`). The agent's reward is the members' mean.

Comparison buffer: preallocated for `capacity` pairs and filled over time as a FIFO ring (the
oldest pairs are overwritten once it is full, as imitation's `PreferenceDataset(max_size)`).
Bootstrap (deviation, deliberate): imitation resamples each member's training set with
replacement at every call; here each pair gets a Poisson(1) count per member when it enters the
buffer (the online bootstrap of Oza & Russell), which is the same resampling in the limit, fixed
once per pair, and keeps every shape static. A member's loss is its count-weighted mean.

Trainer: AdamW (imitation: torch AdamW, lr 1e-3, weight decay 0.01) on minibatches of
`batch_size` pairs drawn uniformly with replacement from the filled part of the buffer.
"""
from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxrl_align.fragments import Fragments, discounted_sum
from jaxrl_align.rewards import NORM_STATS, BasicRewardNet, RewardEnsemble
from jaxrl_align.spaces import SpaceSpec


@dataclass(frozen=True)
class PreferenceModelConfig:
    ensemble_size: int = 1
    """reward-model members (1: a single model; > 1: an ensemble, needed for active selection)"""
    bootstrap: bool = True
    """with an ensemble, train each member on its own bootstrap resample of the comparisons"""
    hidden: tuple[int, ...] = (32, 32)
    """hidden widths of each member (imitation's BasicRewardNet: 32-32 ReLU)"""
    use_state: bool = True
    use_action: bool = True
    use_next_state: bool = False
    use_done: bool = False
    normalize_input: bool = True
    """running-normalise the reward network's inputs (imitation's default)"""
    noise_prob: float = 0.0
    """probability that a label is a coin flip, in the model (imitation's noise_prob)"""
    discount: float = 1.0
    """discount of the learned fragment returns"""
    threshold: float = 50.0
    """clip of the return difference before the sigmoid"""
    batch_size: int = 32
    """pairs per reward-model gradient step (imitation: 32)"""
    lr: float = 1e-3
    """AdamW learning rate (imitation: 1e-3)"""
    weight_decay: float = 0.01
    """AdamW weight decay (imitation: torch's default 0.01)"""


def reward_network(config: PreferenceModelConfig, spec: SpaceSpec) -> RewardEnsemble:
    member = BasicRewardNet(spec, config.hidden, use_state=config.use_state,
                            use_action=config.use_action, use_next_state=config.use_next_state,
                            use_done=config.use_done, normalize_input=config.normalize_input)
    return RewardEnsemble(member, config.ensemble_size)


def preference_logprobs(return_diff: jax.Array, noise_prob: float, threshold: float):
    """(log p(1 ≻ 2), log p(2 ≻ 1)) for return differences R(1) − R(2)."""
    x = jnp.clip(return_diff, -threshold, threshold)
    log_p1, log_p2 = jax.nn.log_sigmoid(x), jax.nn.log_sigmoid(-x)
    if noise_prob:
        half_noise, keep = jnp.log(noise_prob * 0.5), jnp.log1p(-noise_prob)
        log_p1 = jnp.logaddexp(half_noise, keep + log_p1)
        log_p2 = jnp.logaddexp(half_noise, keep + log_p2)
    return log_p1, log_p2


def preference_probability(return_diff, noise_prob: float = 0.0, threshold: float = 50.0):
    return jnp.exp(preference_logprobs(return_diff, noise_prob, threshold)[0])


def cross_entropy(return_diff, prefs, noise_prob: float, threshold: float):
    """Elementwise BCE of the model's p(1 ≻ 2) against labels `prefs` (imitation's loss)."""
    log_p1, log_p2 = preference_logprobs(return_diff, noise_prob, threshold)
    return -(prefs * log_p1 + (1 - prefs) * log_p2)


def accuracy(return_diff, prefs, noise_prob: float = 0.0, threshold: float = 50.0):
    """Elementwise (p > 0.5) == (label > 0.5), as float32 (imitation's `accuracy`)."""
    p = preference_probability(return_diff, noise_prob, threshold)
    return ((p > 0.5) == (prefs > 0.5)).astype(jnp.float32)


@struct.dataclass
class ComparisonBuffer:
    """Preallocated labelled pairs: frags [C, 2, L, ...], prefs [C], weights [K, C] (bootstrap
    counts), size (pairs filled), next (ring position of the next write)."""

    frags: Fragments
    prefs: jax.Array
    weights: jax.Array
    size: jax.Array
    next: jax.Array

    @property
    def capacity(self) -> int:
        return self.prefs.shape[0]


def empty_buffer(example: Fragments, capacity: int, num_members: int) -> ComparisonBuffer:
    """A buffer for `capacity` pairs shaped like `example` ([P, 2, L, ...] or [2, L, ...])."""
    lead = example.terminated.ndim - 2  # leading axes before (2, L)
    frags = jax.tree.map(lambda x: jnp.zeros((capacity,) + x.shape[lead:], x.dtype), example)
    return ComparisonBuffer(frags=frags, prefs=jnp.zeros(capacity, jnp.float32),
                            weights=jnp.zeros((num_members, capacity), jnp.float32),
                            size=jnp.zeros((), jnp.int32), next=jnp.zeros((), jnp.int32))


def add_pairs(buffer: ComparisonBuffer, key, pairs: Fragments, prefs: jax.Array,
              count, bootstrap: bool) -> ComparisonBuffer:
    """Write the first `count` (traced, ≤ P) of `pairs` [P, 2, L, ...] with labels `prefs` [P],
    overwriting the oldest entries once full. Entries past `count` are dropped."""
    num = prefs.shape[0]
    capacity = buffer.capacity
    i = jnp.arange(num)
    pos = jnp.where(i < count, (buffer.next + i) % capacity, capacity)  # capacity: dropped
    put = lambda buf, new: buf.at[pos].set(new, mode="drop")
    frags = jax.tree.map(put, buffer.frags, pairs)
    num_members = buffer.weights.shape[0]
    if bootstrap and num_members > 1:
        weights = jax.random.poisson(key, 1.0, (num_members, num)).astype(jnp.float32)
    else:
        weights = jnp.ones((num_members, num), jnp.float32)
    count = jnp.minimum(count, num).astype(jnp.int32)
    return buffer.replace(
        frags=frags, prefs=put(buffer.prefs, prefs.astype(jnp.float32)),
        weights=buffer.weights.at[:, pos].set(weights, mode="drop"),
        size=jnp.minimum(buffer.size + count, capacity), next=(buffer.next + count) % capacity)


def buffer_from_pairs(pairs: Fragments, prefs: jax.Array, key, num_members: int,
                      bootstrap: bool) -> ComparisonBuffer:
    """A full buffer holding exactly `pairs` [N, 2, L, ...] (offline datasets)."""
    buffer = empty_buffer(pairs, prefs.shape[0], num_members)
    return add_pairs(buffer, key, pairs, prefs, prefs.shape[0], bootstrap)


class PreferenceModel:
    """Static structure of the reward model and its trainer; every method is pure."""

    def __init__(self, config: PreferenceModelConfig, spec: SpaceSpec):
        if config.ensemble_size < 1:
            raise ValueError(f"ensemble_size: expected at least 1, got {config.ensemble_size}")
        if not 0.0 <= config.noise_prob < 1.0:
            raise ValueError(f"noise_prob: expected a value in [0, 1), got {config.noise_prob}")
        self.config, self.spec = config, spec
        self.net = reward_network(config, spec)
        # The learning rate and weight decay are applied by hand so that they can be traced.
        self.optimizer = optax.scale_by_adam()

    def init(self, key, example: Fragments):
        """(variables, optimiser state) for fragments shaped like `example` (any leading axes)."""
        flat = jax.tree.map(lambda x: x.reshape((-1,) + x.shape[example.terminated.ndim:]),
                            example)
        variables = self.net.init(key, *flat.inputs)
        return variables, self.optimizer.init(variables["params"])

    def rewards(self, variables, obs, acts, next_obs, terminated):
        """[K, ...] per-member rewards of transitions (norm statistics frozen)."""
        return self.net.apply(variables, obs, acts, next_obs, terminated)

    def agent_reward(self, variables, obs, acts, next_obs, terminated):
        """The reward the agent is trained on: the members' mean."""
        return self.rewards(variables, obs, acts, next_obs, terminated).mean(axis=0)

    def return_diff(self, variables, pairs: Fragments, mutable: bool = False):
        """[K, ...] each member's R(fragment 1) − R(fragment 2) for pairs [..., 2, L, ...];
        with `mutable`, also the variables with updated input-normalisation statistics."""
        if mutable:
            rews, updated = self.net.apply(variables, *pairs.inputs, mutable=[NORM_STATS])
        else:
            rews, updated = self.net.apply(variables, *pairs.inputs), {}
        returns = discounted_sum(rews, self.config.discount)  # [K, ..., 2]
        return returns[..., 0] - returns[..., 1], updated

    def evaluate(self, variables, pairs: Fragments, prefs, mask=None):
        """Loss and accuracy on labelled pairs [N, 2, L, ...], each member's averaged over the
        members (`mask` [N] selects which pairs count)."""
        cfg = self.config
        diff, _ = self.return_diff(variables, pairs)
        mask = jnp.ones(prefs.shape, jnp.float32) if mask is None else mask.astype(jnp.float32)
        denom = jnp.maximum(mask.sum(), 1.0)
        loss = (cross_entropy(diff, prefs, cfg.noise_prob, cfg.threshold) * mask).sum(-1) / denom
        acc = (accuracy(diff, prefs, cfg.noise_prob, cfg.threshold) * mask).sum(-1) / denom
        return loss.mean(), acc.mean()

    def train(self, variables, opt_state, buffer: ComparisonBuffer, key, num_steps: int,
              lr, weight_decay):
        """`num_steps` AdamW steps on minibatches of the buffer. Returns (variables, opt_state,
        metrics averaged over the steps)."""
        cfg = self.config

        def loss_fn(params, other, pairs, prefs, weights):
            diff, updated = self.return_diff({"params": params, **other}, pairs, mutable=True)
            ce = cross_entropy(diff, prefs, cfg.noise_prob, cfg.threshold)  # [K, B]
            per_member = (weights * ce).sum(-1) / jnp.maximum(weights.sum(-1), 1.0)
            acc = accuracy(diff, prefs, cfg.noise_prob, cfg.threshold).mean()
            return per_member.sum(), (per_member.mean(), acc, updated)

        def step(carry, key):
            variables, opt_state = carry
            idx = jax.random.randint(key, (cfg.batch_size,), 0, jnp.maximum(buffer.size, 1))
            pairs = jax.tree.map(lambda x: x[idx], buffer.frags)
            params = variables["params"]
            other = {k: v for k, v in variables.items() if k != "params"}
            grads, (loss, acc, updated) = jax.grad(loss_fn, has_aux=True)(
                params, other, pairs, buffer.prefs[idx], buffer.weights[:, idx])
            updates, opt_state = self.optimizer.update(grads, opt_state, params)
            params = jax.tree.map(lambda p, u: p - lr * (u + weight_decay * p), params, updates)
            return ({**other, **updated, "params": params}, opt_state), dict(
                reward_loss=loss, reward_train_acc=acc)

        (variables, opt_state), metrics = jax.lax.scan(
            step, (variables, opt_state), jax.random.split(key, num_steps))
        return variables, opt_state, jax.tree.map(jnp.mean, metrics)
