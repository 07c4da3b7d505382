"""PPO's pieces as free functions of arrays: generalised advantage estimation and the clipped
surrogate loss (brax's `compute_gae` and PPO loss, with truncation and termination apart)."""
from __future__ import annotations

import jax
import jax.numpy as jnp


def gae(rewards, values, next_values, terminated, truncated, gamma, gae_lambda):
    """Advantages [T, ...] of a time-major rollout (Schulman et al. 2016).

    Only termination zeroes the next value; at a truncation (a time limit) the step bootstraps
    from V(final observation). Both end the GAE trace. `next_values` are the critic's values of
    each step's true next observation. SB3 (and imitation) treat a time limit as a termination.
    """
    not_terminated = 1.0 - terminated.astype(jnp.float32)
    episode_continues = 1.0 - (terminated | truncated).astype(jnp.float32)

    def step(next_advantage, x):
        reward, value, next_value, not_term, continues = x
        delta = reward + gamma * next_value * not_term - value
        advantage = delta + gamma * gae_lambda * continues * next_advantage
        return advantage, advantage

    _, advantages = jax.lax.scan(
        step, jnp.zeros(rewards.shape[1:]),
        (rewards, values, next_values, not_terminated, episode_continues),
        reverse=True, unroll=16)
    return advantages


def ppo_loss(dist, value, actions, old_log_prob, old_value, advantages, targets, *,
             clip_eps, vf_coef, ent_coef, clip_value: bool):
    """The clipped surrogate objective, the (optionally clipped) value loss and the entropy
    bonus on one minibatch; advantages are standardised within it. Returns (loss, metrics)."""
    log_prob = dist.log_prob(actions)
    if clip_value:
        value_clipped = old_value + jnp.clip(value - old_value, -clip_eps, clip_eps)
        value_loss = 0.5 * jnp.mean(jnp.maximum((value - targets) ** 2,
                                                (value_clipped - targets) ** 2))
    else:
        value_loss = 0.5 * jnp.mean((value - targets) ** 2)
    ratio = jnp.exp(log_prob - old_log_prob)
    advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    policy_loss = -jnp.mean(jnp.minimum(
        ratio * advantages, jnp.clip(ratio, 1 - clip_eps, 1 + clip_eps) * advantages))
    entropy = jnp.mean(dist.entropy())
    total = policy_loss + vf_coef * value_loss - ent_coef * entropy
    approx_kl = jnp.mean((ratio - 1) - (log_prob - old_log_prob))
    return total, dict(policy_loss=policy_loss, value_loss=value_loss, entropy=entropy,
                       approx_kl=approx_kl)
