"""DQN (Mnih et al. 2015) as Stable-Baselines3's `DQN` computes it, on the shared off-policy loop
(`rl/off_policy.py`: replay buffer, random steps before `learning_starts`, `train_freq`
environment steps then `gradient_steps` gradient steps per update).

    y    = r + γ · (1 − terminated) · max_a' Q_target(s', a')
    loss = mean Huber(Q(s, a) − y)            (δ = 1: torch's smooth_l1_loss)

Adam on the loss with the global gradient norm clipped to `max_grad_norm`. The target network
is moved toward the online one, `target ← τ·online + (1 − τ)·target`, every
`target_update_interval` environment steps (SB3: every `max(target_update_interval //
num_envs, 1)` vectorised steps; τ = 1, the default, is a hard copy). Exploration is ε-greedy
with ε falling linearly from `exploration_initial_eps` to `exploration_final_eps` over the first
`exploration_fraction` of `total_timesteps`. Defaults are SB3's (`DQN(...)` of SB3 2.x, its
MlpPolicy: a 64-64 ReLU Q-network); docs/algorithms/dqn.md has the seals/CartPole-v0 preset
(rl-zoo's settings with a tanh network: ReLU Q-values diverge on seals' unbounded positions).

Deviations from SB3 (deliberate, see also off_policy.py): a time limit bootstraps and a
termination does not (SB3 does the same with its default `handle_timeout_termination`); each
environment draws its own ε coin (SB3 draws one coin for the whole vector of environments);
when one update's environment steps cross the target clock k times, the k Polyak steps are
applied at once (τ_eff = 1 − (1 − τ)^k, the same result, since no gradient step lies between
them); ε is read at the step count at the start of each update; the Q-network's kernels are
initialised LeCun-normal (torch: uniform with the same fan-in scaling, a third of the variance).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxrl_align.hparams import check_choice, check_positive, check_widths, concrete, static
from jaxrl_align.nn import optim
from jaxrl_align.nn.mlp import ACTIVATIONS, MLP
from jaxrl_align.rl import off_policy
from jaxrl_align.spaces import space_spec
from jaxrl_align.types import Transitions


@struct.dataclass
class DQNConfig:
    """SB3's DQN defaults. Traced (sweepable): lr, gamma, tau, the three exploration values."""

    lr: float = 1e-4
    """Adam learning rate"""
    buffer_size: int = static(1_000_000)
    """replay buffer capacity (transitions)"""
    learning_starts: int = static(100)
    """environment steps of uniformly random actions before learning"""
    batch_size: int = static(32)
    """transitions per gradient step"""
    tau: float = 1.0
    """target update coefficient (1: hard copy)"""
    gamma: float = 0.99
    """discount"""
    train_freq: int = static(4)
    """vectorised environment steps per update"""
    gradient_steps: int = static(1)
    """gradient steps per update"""
    num_envs: int = static(1)
    """parallel environments per seed"""
    target_update_interval: int = static(10_000)
    """environment steps between target updates"""
    exploration_fraction: float = 0.1
    """fraction of total_timesteps over which ε falls"""
    exploration_initial_eps: float = 1.0
    """ε at the start"""
    exploration_final_eps: float = 0.05
    """ε after exploration_fraction of the run"""
    max_grad_norm: float = static(10.0)
    """global gradient norm clip"""
    anneal_lr: bool = static(False)
    """decay the learning rate linearly to 0 over the run's updates (SB3's `learning_rate` as
    a linear schedule, rl-zoo's `lin_<lr>`); False: constant, SB3's default"""
    hidden: tuple[int, ...] = static((64, 64))
    """hidden layer widths of the Q-network"""
    activation: str = static("relu")
    """relu or tanh"""
    total_timesteps: int = static(100_000)
    """environment steps per seed in a run (the random ones included); ε's schedule spans it"""

    def __post_init__(self):
        off_policy.check_config(self)
        check_positive("target_update_interval", self.target_update_interval)
        check_widths("hidden", self.hidden)
        check_choice("activation", self.activation, ACTIVATIONS)
        if concrete(self.lr) and not self.lr >= 0:
            raise ValueError(f"lr: expected a learning rate >= 0, got {self.lr}")
        for name in ("exploration_initial_eps", "exploration_final_eps"):
            value = getattr(self, name)
            if concrete(value) and not 0 <= value <= 1:
                raise ValueError(f"{name}: expected a probability in [0, 1], got {value}")
        if concrete(self.exploration_fraction) and not 0 <= self.exploration_fraction <= 1:
            raise ValueError(f"exploration_fraction: expected a fraction in [0, 1], got "
                             f"{self.exploration_fraction}")
        if not self.max_grad_norm > 0:
            raise ValueError(f"max_grad_norm: expected a value > 0, got {self.max_grad_norm}")

    @property
    def num_updates(self) -> int:
        return off_policy.num_updates(self)


@struct.dataclass
class DQNLearnerState:
    params: dict
    target_params: dict
    opt_state: optax.OptState


def epsilon(hp: DQNConfig, env_steps, total_timesteps: int):
    """ε after `env_steps` of a run of `total_timesteps` (SB3's linear exploration schedule)."""
    return off_policy.linear_schedule(hp.exploration_initial_eps, hp.exploration_final_eps,
                                      hp.exploration_fraction, env_steps / total_timesteps)


def td_targets(rews, terminated, next_q_target, gamma):
    """r + γ·(1 − terminated)·max_a' Q_target(s', a'): only a termination stops the bootstrap."""
    return rews + gamma * (1.0 - terminated.astype(jnp.float32)) * jnp.max(next_q_target, -1)


def target_update(ls: DQNLearnerState, tau, before, after, interval: int, num_envs: int):
    """The target network after the environment steps (before, after]: SB3's Polyak step every
    `max(interval // num_envs, 1)` vectorised steps, the k steps that fell in between at once."""
    k = off_policy.updates_crossed(before // num_envs, after // num_envs,
                                   max(interval // num_envs, 1))
    tau_eff = 1.0 - (1.0 - tau) ** k.astype(jnp.float32)
    moved = off_policy.polyak(ls.target_params, ls.params, tau_eff)
    target = jax.tree.map(lambda m, t: jnp.where(k > 0, m, t), moved, ls.target_params)
    return ls.replace(target_params=target)


def learner(config: DQNConfig, env, env_params) -> off_policy.Learner:
    """DQN's pieces for the off-policy loop (SQIL uses them too)."""
    spec = space_spec(env, env_params)
    if not spec.discrete_actions:
        raise ValueError(f"action space: DQN needs Discrete actions, got a Box of shape "
                         f"{spec.act_shape} (use SAC for continuous actions)")
    num_actions = spec.num_actions
    network = MLP(config.hidden, num_actions, config.activation, initializer="lecun_normal")
    schedule = (optim.linear_decay_per_update(config.gradient_steps, config.num_updates)
                if config.anneal_lr else None)
    optimizer = lambda lr: optim.adam(lr, max_grad_norm=config.max_grad_norm, schedule=schedule)
    q_values = lambda params, obs: network.apply(params, spec.encode_obs(obs))

    def init(key, hp: DQNConfig) -> DQNLearnerState:
        params = network.init(key, spec.encode_obs(jnp.zeros((1,) + spec.obs_shape,
                                                             spec.obs_dtype)))
        return DQNLearnerState(params, params, optimizer(hp.lr).init(params))

    def epsilon_greedy(params, key, obs, eps):
        greedy = jnp.argmax(q_values(params, obs), -1).astype(jnp.int32)
        coin_key, act_key = jax.random.split(key)
        shape = greedy.shape
        random = jax.random.randint(act_key, shape, 0, num_actions, jnp.int32)
        return jnp.where(jax.random.uniform(coin_key, shape) < eps, random, greedy)

    def explore(ls, hp, key, obs, env_steps):
        return epsilon_greedy(ls.params, key, obs, epsilon(hp, env_steps, config.total_timesteps))

    def loss_fn(params, target_params, hp, batch: Transitions):
        next_q = jax.lax.stop_gradient(q_values(target_params, batch.next_obs))
        y = td_targets(batch.rews, batch.terminated, next_q, hp.gamma)
        q = jnp.take_along_axis(q_values(params, batch.obs),
                                batch.acts.astype(jnp.int32)[:, None], -1)[:, 0]
        loss = jnp.mean(optax.huber_loss(q, y, delta=1.0))
        return loss, dict(loss=loss, q=jnp.mean(q))

    def train_step(ls: DQNLearnerState, hp, key, batch: Transitions, env_steps):
        del key
        grads, metrics = jax.grad(loss_fn, has_aux=True)(ls.params, ls.target_params, hp, batch)
        updates, opt_state = optimizer(hp.lr).update(grads, ls.opt_state, ls.params)
        metrics["epsilon"] = epsilon(hp, env_steps, config.total_timesteps)
        return ls.replace(params=optax.apply_updates(ls.params, updates),
                          opt_state=opt_state), metrics

    def after_collect(ls, hp, before, after):
        return target_update(ls, hp.tau, before, after, config.target_update_interval,
                             config.num_envs)

    def act(ls, hp, key, obs, deterministic=True, env_steps=0):
        # SB3's predict: greedy when deterministic, else ε-greedy with the current ε.
        eps = jnp.where(deterministic, 0.0, epsilon(hp, env_steps, config.total_timesteps))
        return epsilon_greedy(ls.params, key, obs, eps)

    return off_policy.Learner(init, explore, train_step, act, after_collect)


def make(config: DQNConfig, env, env_params):
    """DQN on the environment's reward as an `Algorithm` (data: None)."""
    return off_policy.make("dqn", learner(config, env, env_params), config, env, env_params)
