"""The Bradley–Terry preference model over a learned reward, its comparison buffer and trainer.

Preference model (imitation's `PreferenceModel`): with `R_k` member k's (discounted) return of a
fragment under the learned reward, `p_k(1 ≻ 2)` is `bradley_terry.probability(R_k(1) − R_k(2),
noise_prob, threshold)`; the loss is its cross-entropy against the labels (imitation's
`CrossEntropyRewardLoss`) and the accuracy `(p > 0.5) == (label > 0.5)`.

Reward model: a `RewardEnsemble` of K `BasicRewardNet`s (K = 1 is imitation's single model and
its `BasicRewardTrainer`; K > 1 its `EnsembleTrainer`). The agent's reward is the members' mean.

Comparison buffer: a ring buffer (`jaxrl_align.data.ring_buffer`) of `Comparisons`, filled over
time as a FIFO (the oldest pairs are overwritten once it is full, as imitation's
`PreferenceDataset(max_size)`). Bootstrap (deviation, deliberate): imitation resamples each
member's training set with replacement at every call; here each pair gets a Poisson(1) count per
member when it enters the buffer (the online bootstrap of Oza & Russell), which is the same
resampling in the limit, fixed once per pair, and keeps every shape static. A member's loss is
its count-weighted mean.

Trainer: AdamW (imitation: torch AdamW, lr 1e-3, weight decay 0.01) on minibatches of
`batch_size` pairs drawn uniformly with replacement from the filled part of the buffer.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxrl_align.data import ring_buffer
from jaxrl_align.hparams import check_positive, check_widths, concrete, static
from jaxrl_align.nn import optim
from jaxrl_align.nn.normalization import NORM_STATS
from jaxrl_align.nn.rewards import BasicRewardNet, RewardEnsemble
from jaxrl_align.preferences import bradley_terry
from jaxrl_align.preferences.fragments import discounted_sum
from jaxrl_align.spaces import SpaceSpec
from jaxrl_align.types import Transitions


@struct.dataclass
class PreferenceModelConfig:
    ensemble_size: int = static(1)
    """reward-model members (1: a single model; > 1: an ensemble, needed for active selection)"""
    bootstrap: bool = static(True)
    """with an ensemble, train each member on its own bootstrap resample of the comparisons"""
    hidden: tuple[int, ...] = static((32, 32))
    """hidden widths of each member (imitation's BasicRewardNet: 32-32 ReLU)"""
    use_state: bool = static(True)
    use_action: bool = static(True)
    use_next_state: bool = static(False)
    use_done: bool = static(False)
    normalize_input: bool = static(True)
    """running-normalise the reward network's inputs (imitation's default)"""
    noise_prob: float = static(0.0)
    """probability that a label is a coin flip, in the model (imitation's noise_prob)"""
    discount: float = static(1.0)
    """discount of the learned fragment returns"""
    threshold: float = static(50.0)
    """clip of the return difference before the sigmoid"""
    batch_size: int = static(32)
    """pairs per reward-model gradient step (imitation: 32)"""
    lr: float = 1e-3
    """AdamW learning rate (imitation: 1e-3)"""
    weight_decay: float = 0.01
    """AdamW weight decay (imitation: torch's default 0.01)"""

    def __post_init__(self):
        check_positive("ensemble_size", self.ensemble_size)
        check_positive("batch_size", self.batch_size)
        check_widths("hidden", self.hidden)
        if not 0.0 <= self.noise_prob < 1.0:
            raise ValueError(f"noise_prob: expected a value in [0, 1), got {self.noise_prob}")
        if concrete(self.lr) and not self.lr >= 0:
            raise ValueError(f"lr: expected a learning rate >= 0, got {self.lr}")


def reward_network(config: PreferenceModelConfig, spec: SpaceSpec) -> RewardEnsemble:
    member = BasicRewardNet(spec, config.hidden, use_state=config.use_state,
                            use_action=config.use_action, use_next_state=config.use_next_state,
                            use_done=config.use_done, normalize_input=config.normalize_input)
    return RewardEnsemble(member, config.ensemble_size)


@struct.dataclass
class Comparisons:
    """Labelled pairs: frags [N, 2, L, ...], prefs [N] (the target p(1 ≻ 2)), weights [N, K]
    (each member's bootstrap count of the pair)."""

    frags: Transitions
    prefs: jax.Array
    weights: jax.Array


def empty_buffer(example: Transitions, capacity: int, num_members: int) -> ring_buffer.RingBuffer:
    """A comparison buffer for `capacity` pairs shaped like `example` [P, 2, L, ...]."""
    item = Comparisons(example, jnp.zeros(example.terminated.shape[:1], jnp.float32),
                       jnp.zeros(example.terminated.shape[:1] + (num_members,), jnp.float32))
    return ring_buffer.init(item, capacity)


def add_pairs(buffer: ring_buffer.RingBuffer, key, pairs: Transitions, prefs: jax.Array, count,
              bootstrap: bool) -> ring_buffer.RingBuffer:
    """Append the first `count` (traced, ≤ P) of `pairs` [P, 2, L, ...] with labels `prefs` [P];
    each gets a Poisson(1) bootstrap count per member (1 without bootstrap)."""
    num = prefs.shape[0]
    num_members = buffer.items.weights.shape[-1]
    if bootstrap and num_members > 1:
        weights = jax.random.poisson(key, 1.0, (num_members, num)).astype(jnp.float32)
    else:
        weights = jnp.ones((num_members, num), jnp.float32)
    return ring_buffer.add(buffer, Comparisons(pairs, prefs.astype(jnp.float32), weights.T),
                           count)


class PreferenceModel:
    """Static structure of the reward model and its trainer; every method is pure."""

    def __init__(self, config: PreferenceModelConfig, spec: SpaceSpec):
        self.config, self.spec = config, spec
        self.net = reward_network(config, spec)

    @staticmethod
    def optimizer(hparams: PreferenceModelConfig) -> optax.GradientTransformation:
        return optim.adamw(hparams.lr, hparams.weight_decay)

    def init(self, key, example: Transitions, hparams: PreferenceModelConfig):
        """(variables, optimiser state) for fragments shaped like `example` (any leading axes)."""
        flat = jax.tree.map(lambda x: x.reshape((-1,) + x.shape[example.terminated.ndim:]),
                            example)
        variables = self.net.init(key, *flat.reward_inputs)
        return variables, self.optimizer(hparams).init(variables["params"])

    def rewards(self, variables, obs, acts, next_obs, terminated):
        """[K, ...] per-member rewards of transitions (norm statistics frozen)."""
        return self.net.apply(variables, obs, acts, next_obs, terminated)

    def agent_reward(self, variables, obs, acts, next_obs, terminated):
        """The reward the agent is trained on: the members' mean."""
        return self.rewards(variables, obs, acts, next_obs, terminated).mean(axis=0)

    def return_diff(self, variables, pairs: Transitions, mutable: bool = False):
        """[K, ...] each member's R(fragment 1) − R(fragment 2) for pairs [..., 2, L, ...];
        with `mutable`, also the variables with updated input-normalisation statistics."""
        if mutable:
            rews, updated = self.net.apply(variables, *pairs.reward_inputs, mutable=[NORM_STATS])
        else:
            rews, updated = self.net.apply(variables, *pairs.reward_inputs), {}
        returns = discounted_sum(rews, self.config.discount)  # [K, ..., 2]
        return returns[..., 0] - returns[..., 1], updated

    def evaluate(self, variables, pairs: Transitions, prefs, mask=None):
        """Loss and accuracy on labelled pairs [N, 2, L, ...], each member's averaged over the
        members (`mask` [N] selects which pairs count)."""
        cfg = self.config
        diff, _ = self.return_diff(variables, pairs)
        mask = jnp.ones(prefs.shape, jnp.float32) if mask is None else mask.astype(jnp.float32)
        denom = jnp.maximum(mask.sum(), 1.0)
        loss = (bradley_terry.cross_entropy(diff, prefs, cfg.noise_prob, cfg.threshold)
                * mask).sum(-1) / denom
        acc = (bradley_terry.accuracy(diff, prefs, cfg.noise_prob, cfg.threshold)
               * mask).sum(-1) / denom
        return loss.mean(), acc.mean()

    def train(self, variables, opt_state, buffer: ring_buffer.RingBuffer, key, num_steps: int,
              hparams: PreferenceModelConfig):
        """`num_steps` AdamW steps on minibatches of the comparison buffer. Returns (variables,
        opt_state, metrics averaged over the steps)."""
        cfg = self.config
        optimizer = self.optimizer(hparams)

        def loss_fn(params, other, pairs, prefs, weights):
            diff, updated = self.return_diff({"params": params, **other}, pairs, mutable=True)
            ce = bradley_terry.cross_entropy(diff, prefs, cfg.noise_prob, cfg.threshold)  # [K, B]
            per_member = (weights * ce).sum(-1) / jnp.maximum(weights.sum(-1), 1.0)
            acc = bradley_terry.accuracy(diff, prefs, cfg.noise_prob, cfg.threshold).mean()
            return per_member.sum(), (per_member.mean(), acc, updated)

        def step(carry, key):
            variables, opt_state = carry
            batch = ring_buffer.sample(buffer, key, cfg.batch_size)
            params = variables["params"]
            other = {k: v for k, v in variables.items() if k != "params"}
            grads, (loss, acc, updated) = jax.grad(loss_fn, has_aux=True)(
                params, other, batch.frags, batch.prefs, batch.weights.T)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
            return ({**other, **updated, "params": params}, opt_state), dict(
                reward_loss=loss, reward_train_acc=acc)

        (variables, opt_state), metrics = jax.lax.scan(
            step, (variables, opt_state), jax.random.split(key, num_steps))
        return variables, opt_state, jax.tree.map(jnp.mean, metrics)
