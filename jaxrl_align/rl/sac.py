"""Soft Actor-Critic (Haarnoja et al. 2018) for continuous actions, as Stable-Baselines3's `SAC`
computes it, on the shared off-policy loop.

One gradient step on a replay batch (s, a, r, s', terminated), in SB3's order:

    a~, log π(a~|s) ~ π(·|s)                                    (reparameterised)
    temperature:  L(log α) = −mean(log α · (log π(a~|s) + H̄))   H̄ = −dim(A); α used below is
                                                                 the value before this step
    target:       y = r + γ (1 − terminated) (min_i Q̄_i(s', a') − α log π(a'|s')),  a' ~ π(·|s')
    critics:      L(φ) = ½ Σ_i mean((Q_i(s, a) − y)²)            (twin critics, i = 1, 2)
    actor:        L(θ) = mean(α log π(a~|s) − min_i Q_i(s, a~))  (the critics just updated)
    targets:      φ̄ ← (1 − τ) φ̄ + τ φ                            (Polyak, every gradient step)

The actor is a tanh-squashed diagonal Gaussian: u ~ N(μ(s), σ(s)²), a = tanh(u) ∈ [−1, 1]^d, and
log π(a|s) = log N(u) − Σ_j log(1 − tanh(u_j)²); the environment receives
low + (a + 1)(high − low)/2. Critics see actions in [−1, 1] (replayed actions, which are
the environment's, are rescaled back), as SB3's buffer stores them.

Only `terminated` stops the bootstrap; a time limit (`truncated`) bootstraps from the true final
observation, as SB3's buffer does by default (`handle_timeout_termination`).

Deliberate deviations from SB3 (docs/algorithms/sac.md):
- log(1 − tanh(u)²) is computed exactly, 2(log 2 − u − softplus(−2u)), instead of SB3's
  log(1 − tanh(u)² + 1e-6), which caps the correction near saturation;
- initialisation: flax's lecun-normal kernels and zero biases (torch's default is a uniform
  of the same order); Adam ε 1e-8 as torch's;
- `target_update_interval` is 1 (SB3's default; SB3 counts it within each `train` call);
- SB3's `ent_coef` is two fields, `learn_ent_coef` and `ent_coef_init` (see `SACConfig`).
"""
from __future__ import annotations

import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxrl_align.algorithm import Algorithm
from jaxrl_align.hparams import check_choice, check_widths, concrete, static
from jaxrl_align.nn import optim
from jaxrl_align.nn.distributions import DiagGaussian
from jaxrl_align.nn.mlp import ACTIVATIONS, MLP
from jaxrl_align.rl import off_policy
from jaxrl_align.spaces import MAX_SCALED_BOUND, SpaceSpec, space_spec
from jaxrl_align.types import Transitions

_LOG_2 = math.log(2.0)

# SB3's clamp of the actor's log standard deviation (sac/policies.py: LOG_STD_MIN, LOG_STD_MAX).
LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0


# --- the squashed Gaussian and the networks ---------------------------------------------------

def log1m_tanh_sq(u: jax.Array) -> jax.Array:
    """log(1 − tanh(u)²), exactly and stably: 2(log 2 − u − softplus(−2u))."""
    return 2.0 * (_LOG_2 - u - jax.nn.softplus(-2.0 * u))


@struct.dataclass
class SquashedGaussian:
    """a = tanh(u), u ~ N(mean, exp(log_std)²) per dimension: a distribution on [−1, 1]^d."""

    mean: jax.Array  # [..., d]
    log_std: jax.Array  # [..., d]

    @property
    def gaussian(self) -> DiagGaussian:
        return DiagGaussian(self.mean, self.log_std)

    def log_prob_of_pre_squash(self, u: jax.Array) -> jax.Array:
        """log density of a = tanh(u) at the a that `u` (a Gaussian sample) maps to."""
        return self.gaussian.log_prob(u) - jnp.sum(log1m_tanh_sq(u), axis=-1)

    def sample_and_log_prob(self, key) -> tuple[jax.Array, jax.Array]:
        """(a, log π(a)): a reparameterised sample, differentiable in mean and log_std."""
        u = self.gaussian.sample(key)
        return jnp.tanh(u), self.log_prob_of_pre_squash(u)

    def mode(self) -> jax.Array:
        """tanh(mean): SB3's deterministic action."""
        return jnp.tanh(self.mean)


class SquashedGaussianActor(nn.Module):
    """SB3's SAC actor: an MLP whose last layer gives the mean and the log standard deviation
    (one Dense of 2·d, the same as SB3's two heads on one latent), log σ clamped to
    [LOG_STD_MIN, LOG_STD_MAX]."""

    act_dim: int
    hidden: Sequence[int] = (256, 256)
    activation: str = "relu"

    @nn.compact
    def __call__(self, obs) -> SquashedGaussian:
        out = MLP(self.hidden, 2 * self.act_dim, self.activation, initializer="lecun_normal",
                  name="actor")(obs)
        mean, log_std = jnp.split(out, 2, axis=-1)
        return SquashedGaussian(mean, jnp.clip(log_std, LOG_STD_MIN, LOG_STD_MAX))


class QNetwork(nn.Module):
    """Q(s, a): an MLP over the concatenated observation and action in [−1, 1]."""

    hidden: Sequence[int] = (256, 256)
    activation: str = "relu"

    @nn.compact
    def __call__(self, obs, act):
        x = jnp.concatenate([obs, act], axis=-1)
        return MLP(self.hidden, 1, self.activation, initializer="lecun_normal", squeeze=True,
                   name="q")(x)


def temperature_loss(log_ent_coef, log_prob, target_entropy):
    """SB3's loss of the log temperature: −mean(log α · (log π + H̄)), log π held fixed. Its
    gradient −mean(log π + H̄) is negative when the policy's entropy −mean(log π) is below
    the target H̄, so descent raises α (more entropy bonus), and positive above it."""
    return -jnp.mean(log_ent_coef * jax.lax.stop_gradient(log_prob + target_entropy))




# --- the config ---------------------------------------------------------------------------------

@struct.dataclass
class SACConfig:
    """SB3's `SAC` defaults (lr 3e-4, buffer 1e6, learning_starts 100, batch 256, τ 0.005,
    γ 0.99, train_freq 1, gradient_steps 1, ent_coef "auto", 256-256 ReLU networks); SB3 has no
    default run length, and `total_timesteps` defaults to rl-zoo's Pendulum budget (20k).
    Traced: lr, gamma, tau, ent_coef_init; the rest fixes the program. SB3's
    `ent_coef="auto"` is `learn_ent_coef=True, ent_coef_init=1.0`, `"auto_0.1"` is
    `ent_coef_init=0.1`, and a number c is `learn_ent_coef=False, ent_coef_init=c`."""

    buffer_size: int = static(1_000_000)
    """replay buffer capacity (transitions per seed; at most total_timesteps + num_envs are
    allocated)"""
    learning_starts: int = static(100)
    """environment steps of uniformly random actions before learning starts"""
    batch_size: int = static(256)
    """transitions per gradient step"""
    train_freq: int = static(1)
    """vectorised environment steps per update"""
    gradient_steps: int = static(1)
    """gradient steps per update"""
    num_envs: int = static(1)
    """parallel environments per seed"""
    total_timesteps: int = static(20_000)
    """environment steps per seed in a run (the random ones included)"""
    lr: float = 3e-4
    """Adam learning rate of the actor, the critics and the temperature"""
    gamma: float = 0.99
    """discount"""
    tau: float = 0.005
    """Polyak coefficient of the target critics, per gradient step"""
    ent_coef_init: float = 1.0
    """initial temperature α (learned when learn_ent_coef; else α throughout)"""
    learn_ent_coef: bool = static(True)
    """learn log α towards the target entropy (SB3's ent_coef="auto")"""
    target_entropy: float | None = static(None)
    """entropy the temperature aims for; None: −dim(A) (SB3's "auto")"""
    hidden: tuple[int, ...] = static((256, 256))
    """hidden layer widths of the actor and of each critic"""
    activation: str = static("relu")
    """relu or tanh"""

    def __post_init__(self):
        off_policy.check_config(self)
        check_widths("hidden", self.hidden)
        check_choice("activation", self.activation, ACTIVATIONS)
        if concrete(self.lr) and not self.lr >= 0:
            raise ValueError(f"lr: expected a learning rate >= 0, got {self.lr}")
        if concrete(self.ent_coef_init) and not (0 < self.ent_coef_init < float("inf")):
            raise ValueError(f"ent_coef_init: expected a finite temperature > 0, got "
                             f"{self.ent_coef_init}")
        if self.target_entropy is not None and not math.isfinite(self.target_entropy):
            raise ValueError(f"target_entropy: expected a finite number or None (-dim(A)), "
                             f"got {self.target_entropy}")

    @property
    def num_updates(self) -> int:
        return off_policy.num_updates(self)


# --- the learner: what SAC supplies to the off-policy loop ------------------------------------

@struct.dataclass
class SACLearnerState:
    actor: dict
    critic: dict  # the twin critics' parameters, stacked on a leading axis of 2
    target_critic: dict
    log_ent_coef: jax.Array  # log α (learned, or fixed at log ent_coef_init)
    actor_opt: optax.OptState
    critic_opt: optax.OptState
    ent_coef_opt: optax.OptState


def action_box(spec: SpaceSpec) -> tuple[jax.Array, jax.Array]:
    """(low, high) [d] of a continuous action space with finite bounds, or a ValueError."""
    if spec.discrete_actions:
        raise ValueError(f"action space: SAC needs a continuous (Box) action space, got "
                         f"Discrete({spec.num_actions}); use DQN for discrete actions")
    bounded = all(math.isfinite(lo) and math.isfinite(hi) and hi > lo
                  and hi - lo < 2 * MAX_SCALED_BOUND
                  for lo, hi in zip(spec.act_low, spec.act_high))
    if not bounded:
        raise ValueError(f"action space: SAC squashes actions into the box's bounds, which must "
                         f"be finite; got low={spec.act_low}, high={spec.act_high}")
    return jnp.asarray(spec.act_low, jnp.float32), jnp.asarray(spec.act_high, jnp.float32)


def learner(config: SACConfig, env, env_params) -> off_policy.Learner:
    """SAC's networks, optimisers and gradient step for the off-policy loop (also SQIL's)."""
    spec = space_spec(env, env_params)
    low, high = action_box(spec)
    actor_net = SquashedGaussianActor(spec.act_dim, config.hidden, config.activation)
    q_net = QNetwork(config.hidden, config.activation)
    target_entropy = (-float(spec.act_dim) if config.target_entropy is None
                      else float(config.target_entropy))

    # Actions are in [-1, 1] inside SAC and in the box outside (environment, buffer, demos).
    def to_env_action(a):
        return spec.clip_action(low + 0.5 * (a + 1.0) * (high - low))

    def from_env_action(act):
        return jnp.clip(2.0 * (spec.encode_act(act) - low) / (high - low) - 1.0, -1.0, 1.0)

    def policy(actor, obs) -> SquashedGaussian:
        return actor_net.apply(actor, spec.encode_obs(obs))

    def q_values(critic, x, a):
        """[2, B] both critics' Q(s, a) of encoded observations `x`, actions `a` in [-1, 1]."""
        return jax.vmap(q_net.apply, in_axes=(0, None, None))(critic, x, a)

    def init(key, hp) -> SACLearnerState:
        actor_key, critic_key = jax.random.split(key)
        x = spec.encode_obs(jnp.zeros((1,) + spec.obs_shape, spec.obs_dtype))
        a = jnp.zeros((1, spec.act_dim))
        actor = actor_net.init(actor_key, x)
        critic = jax.vmap(q_net.init, in_axes=(0, None, None))(jax.random.split(critic_key, 2),
                                                               x, a)
        log_ent_coef = jnp.log(jnp.asarray(hp.ent_coef_init, jnp.float32))
        opt = optim.adam(hp.lr)
        return SACLearnerState(actor=actor, critic=critic, target_critic=critic,
                               log_ent_coef=log_ent_coef, actor_opt=opt.init(actor),
                               critic_opt=opt.init(critic), ent_coef_opt=opt.init(log_ent_coef))

    def explore(ls: SACLearnerState, hp, key, obs, env_steps):
        a, _ = policy(ls.actor, obs).sample_and_log_prob(key)
        return to_env_action(a)

    def act(ls: SACLearnerState, hp, key, obs, deterministic=True, env_steps=None):
        dist = policy(ls.actor, obs)
        return to_env_action(dist.mode() if deterministic else dist.sample_and_log_prob(key)[0])

    def train_step(ls: SACLearnerState, hp, key, batch: Transitions, env_steps=None):
        """One gradient step on `batch` [B] (actions as the environment executed them, `rews`
        the rewards to learn from), in SB3's order (module docstring)."""
        pi_key, next_key = jax.random.split(key)
        x, next_x = spec.encode_obs(batch.obs), spec.encode_obs(batch.next_obs)
        acts = from_env_action(batch.acts)
        opt = optim.adam(hp.lr)

        def sample(actor, x, key):
            return actor_net.apply(actor, x).sample_and_log_prob(key)

        # The temperature; the other losses use α from before this step, as SB3's.
        ent_coef = jnp.exp(ls.log_ent_coef)
        _, log_prob = sample(ls.actor, x, pi_key)
        ent_coef_loss, ent_grad = jax.value_and_grad(temperature_loss)(
            ls.log_ent_coef, log_prob, target_entropy)
        log_ent_coef, ent_coef_opt = ls.log_ent_coef, ls.ent_coef_opt
        if config.learn_ent_coef:
            ent_update, ent_coef_opt = opt.update(ent_grad, ent_coef_opt)
            log_ent_coef = optax.apply_updates(log_ent_coef, ent_update)

        # The critics, towards the soft value of the target critics at s'.
        next_a, next_log_prob = sample(ls.actor, next_x, next_key)
        next_q = jnp.min(q_values(ls.target_critic, next_x, next_a), axis=0)
        not_terminal = 1.0 - batch.terminated.astype(jnp.float32)
        target = jax.lax.stop_gradient(
            batch.rews + hp.gamma * not_terminal * (next_q - ent_coef * next_log_prob))

        def critic_loss_fn(critic):
            q = q_values(critic, x, acts)
            return 0.5 * jnp.sum(jnp.mean((q - target) ** 2, axis=-1)), jnp.mean(q)

        (critic_loss, q_mean), grad = jax.value_and_grad(critic_loss_fn, has_aux=True)(ls.critic)
        update, critic_opt = opt.update(grad, ls.critic_opt, ls.critic)
        critic = optax.apply_updates(ls.critic, update)

        # The actor, against the critics just updated, on the temperature's sample (same key).
        def actor_loss_fn(actor):
            a, log_prob = sample(actor, x, pi_key)
            return jnp.mean(ent_coef * log_prob - jnp.min(q_values(critic, x, a), axis=0)), \
                -jnp.mean(log_prob)

        (actor_loss, entropy), grad = jax.value_and_grad(actor_loss_fn, has_aux=True)(ls.actor)
        update, actor_opt = opt.update(grad, ls.actor_opt, ls.actor)
        actor = optax.apply_updates(ls.actor, update)

        ls = SACLearnerState(
            actor=actor, critic=critic,
            target_critic=off_policy.polyak(ls.target_critic, critic, hp.tau),
            log_ent_coef=log_ent_coef, actor_opt=actor_opt, critic_opt=critic_opt,
            ent_coef_opt=ent_coef_opt)
        return ls, dict(critic_loss=critic_loss, actor_loss=actor_loss, ent_coef=ent_coef,
                        ent_coef_loss=ent_coef_loss, entropy=entropy, q=q_mean,
                        target_q=jnp.mean(target))

    return off_policy.Learner(init=init, explore=explore, train_step=train_step, act=act)


def make(config: SACConfig, env, env_params) -> Algorithm:
    """SAC on the environment's reward as an `Algorithm` (data: None)."""
    return off_policy.make("sac", learner(config, env, env_params), config, env, env_params)
