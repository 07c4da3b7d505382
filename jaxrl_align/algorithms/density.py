"""Density-based reward (imitation's `DensityAlgorithm`): a kernel density estimate of the
demonstrations, and PPO trained on its log density.

    x = (s) | (s, a) | (s, s')          density_type "state" | "state_action" | "state_state"
    z = (x − mean) / scale              StandardScaler over the demonstration inputs
    r(s, a, s') = log p̂(z) = logsumexp_i K_h(‖z − z_i‖) + log_norm(kernel, D, h) − log n

exactly as scikit-learn's `KernelDensity(kernel, bandwidth=h).score_samples` computes it,
normalisation constant included (`log_kernel_norm`). Inputs are flattened as gymnasium's
`spaces.utils.flatten` flattens them for imitation: Box values as they are, Discrete ones (a
CartPole action, a tabular state) one-hot. `scale` is the population standard deviation, 1
where a feature is constant (StandardScaler's `_handle_zeros_in_scale`); with
`standardise_inputs=False`, mean 0 and scale 1. The scaler is fitted on every demonstration
input, also when there is one model per timestep.

Stationary (`is_stationary=True`): one model over all demonstration transitions. Per-timestep:
model t holds the demonstrations' t-th transitions (one per episode at least t+1 steps long),
and the agent's transition at step t of its episode is scored by model t.

One `update` is one PPO round through the engine, as GAIL and AIRL train their generator:
rollout, the log density of each transition as its reward, one learning phase.

The log density is batched: a scan over chunks of `chunk_size` demonstration points, each a
`[queries, chunk_size]` block of kernel values reduced by log-sum-exp into a running total, so
memory is bounded by that block whatever the number of demonstrations. The fitted model is
rebuilt from `data` in every `update` (a mean, a scale and a subtraction: cheap next to the
scoring), so demonstrations are never closed-over constants and seeds share one copy.

Deviations from imitation (deliberate):
- The log density reaches PPO running-normalised (`normalize_reward`: the engine's running
  normalisation, imitation's `NormalizedRewardNet`) and PPO's value loss
  is unclipped (as SB3's). imitation feeds the raw log density: away from the demonstrations
  it is about −‖z − z_i‖²/(2h²), below −10⁵ on CartPole once the pole has fallen (the
  demonstrations' pole angle spreads 0.005 rad, so z is in units of that), and the critic's
  gradients then swamp the actor's under the shared gradient-norm clip.
  `normalize_reward=False` with `ppo.clip_value=True` is imitation's reward with PureJaxRL's PPO.
- Per-timestep models work while training: the density state counts each environment's steps
  into its episode (reset on termination or truncation). imitation's reward wrapper never passes
  the timesteps, so its `train_policy` raises with `is_stationary=False`.
- Past the longest demonstration, a per-timestep model would not exist (imitation raises); here
  those steps are scored by the last timestep's model (metric `past_demo_horizon`: the fraction
  of rollout steps that were).
- Compact kernels (tophat, epanechnikov, linear, cosine) are refused for training: their log
  density is −∞ off the demonstrations' support, which turns PPO's returns into NaN (imitation
  accepts them and fails the same way). `log_density` computes all six of scikit-learn's.
- Where a compact kernel's density is exactly 0, scikit-learn's tree traversal leaves rounding
  residues (log density −35 to −45); `log_density` returns −∞ there.
- float32: values agree with scikit-learn's float64 to about 1e-5 relative.
"""
from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
from flax import struct

from jaxrl_align.algorithm import Algorithm
from jaxrl_align.hparams import as_arrays, check_choice, check_positive, concrete, static
from jaxrl_align.rl import ppo
from jaxrl_align.spaces import SpaceSpec
from jaxrl_align.types import Trajectories, Transitions

DENSITY_TYPES = ("state", "state_action", "state_state")
# scikit-learn's KernelDensity kernels; all six in `log_density`, those of full support in training.
KERNELS = ("gaussian", "tophat", "epanechnikov", "exponential", "linear", "cosine")
TRAINING_KERNELS = ("gaussian", "exponential")


# ---------------------------------------------------------------- the kernel density estimate

def log_kernel_norm(kernel: str, dim: int, bandwidth) -> jax.Array:
    """log of the constant that makes the kernel with bandwidth h a density on R^dim: the
    formulas of scikit-learn's `kernel_norm` (sklearn/neighbors/_binary_tree.pxi)."""
    log_pi, log_2pi = math.log(math.pi), math.log(2 * math.pi)
    log_vn = lambda n: 0.5 * n * log_pi - math.lgamma(0.5 * n + 1)  # volume of the unit n-ball
    log_sn = lambda n: log_2pi + log_vn(n - 1)  # sklearn's surface term
    if kernel == "gaussian":
        factor = 0.5 * dim * log_2pi
    elif kernel == "tophat":
        factor = log_vn(dim)
    elif kernel == "epanechnikov":
        factor = log_vn(dim) + math.log(2.0 / (dim + 2.0))
    elif kernel == "exponential":
        factor = log_sn(dim - 1) + math.lgamma(dim)
    elif kernel == "linear":
        factor = log_vn(dim) - math.log(dim + 1.0)
    elif kernel == "cosine":
        total, term = 0.0, 2.0 / math.pi
        for k in range(1, dim + 1, 2):
            total += term
            term *= -(dim - k) * (dim - k - 1) * (2.0 / math.pi) ** 2
        factor = math.log(total) + log_sn(dim - 1)
    else:
        raise ValueError(f"kernel: expected one of {KERNELS}, got {kernel!r}")
    return -factor - dim * jnp.log(bandwidth)


def log_kernel(kernel: str, sq_dist: jax.Array, bandwidth) -> jax.Array:
    """Unnormalised log kernel of squared distances (scikit-learn's `compute_log_kernel`)."""
    h = bandwidth
    if kernel == "gaussian":
        return -0.5 * sq_dist / (h * h)
    dist = jnp.sqrt(jnp.maximum(sq_dist, 0.0))
    if kernel == "exponential":
        return -dist / h
    inside = dist < h
    safe = jnp.where(inside, dist, 0.0) / h  # keeps the log finite where it is masked out
    value = {"tophat": jnp.zeros_like(safe), "epanechnikov": jnp.log1p(-safe * safe),
             "linear": jnp.log1p(-safe), "cosine": jnp.log(jnp.cos(0.5 * jnp.pi * safe))}
    if kernel not in value:
        raise ValueError(f"kernel: expected one of {KERNELS}, got {kernel!r}")
    return jnp.where(inside, value[kernel], -jnp.inf)


@struct.dataclass
class KernelDensity:
    """A fitted estimate: standardised demonstration points and the scaler.

    Stationary: `points` [M, D], `mask` [M]. Per timestep: `points` [T, N, D] and `mask` [T, N]
    (model t is the masked rows of points[t]). Masked-out rows are padding."""

    points: jax.Array
    mask: jax.Array
    mean: jax.Array  # [D]
    scale: jax.Array  # [D]

    @property
    def stationary(self) -> bool:
        return self.points.ndim == 2

    def standardise(self, x: jax.Array) -> jax.Array:
        return (x - self.mean) / self.scale


def fit(inputs: jax.Array, mask: jax.Array | None = None, standardise: bool = True
        ) -> KernelDensity:
    """Fit the scaler on the masked rows of `inputs` ([M, D]: one model; [T, N, D]: one per
    timestep) and keep the standardised points. StandardScaler's statistics: the mean and the
    population standard deviation, a constant feature's scale 1 (its test of constancy:
    var <= (n·eps·|mean|)² + n·eps·var, in float32's eps)."""
    inputs = jnp.asarray(inputs, jnp.float32)
    mask = jnp.ones(inputs.shape[:-1], bool) if mask is None else jnp.asarray(mask, bool)
    dim = inputs.shape[-1]
    if standardise:
        flat, weights = inputs.reshape(-1, dim), mask.reshape(-1, 1).astype(jnp.float32)
        n = jnp.maximum(jnp.sum(weights), 1.0)
        mean = jnp.sum(flat * weights, axis=0) / n
        var = jnp.sum(weights * (flat - mean) ** 2, axis=0) / n
        eps = jnp.finfo(jnp.float32).eps
        constant = var <= (n * eps * jnp.abs(mean)) ** 2 + n * eps * var
        scale = jnp.where(constant, 1.0, jnp.sqrt(var))
    else:
        mean, scale = jnp.zeros(dim), jnp.ones(dim)
    points = jnp.where(mask[..., None], (inputs - mean) / scale, 0.0)
    return KernelDensity(points, mask, mean, scale)


def log_density(kde: KernelDensity, x: jax.Array, bandwidth, kernel: str = "gaussian",
                timesteps: jax.Array | None = None, chunk_size: int = 1024) -> jax.Array:
    """log p̂(x) of raw (unstandardised) inputs x [B, D], as `KernelDensity.score_samples` of
    the standardised inputs. Per-timestep estimates need `timesteps` [B] (clipped to the last
    timestep that has a model). Demonstration points are visited in chunks of `chunk_size`."""
    x = kde.standardise(jnp.asarray(x, jnp.float32))
    dim = x.shape[-1]
    if kde.stationary:
        points, mask = kde.points[None], kde.mask[None]  # one model: timestep 0
        timesteps = jnp.zeros(x.shape[:1], jnp.int32)
    else:
        if timesteps is None:
            raise ValueError("timesteps: a per-timestep density needs each input's timestep")
        points, mask = kde.points, kde.mask
        timesteps = jnp.minimum(timesteps, last_model(kde))
    num_points = points.shape[1]
    chunk = min(chunk_size, num_points)
    num_chunks = -(-num_points // chunk)
    pad = num_chunks * chunk - num_points
    count = jnp.sum(mask, axis=-1)[timesteps]  # points in each input's model
    points = jnp.pad(points, ((0, 0), (0, pad), (0, 0)))
    mask = jnp.pad(mask, ((0, 0), (0, pad)))
    # [K, T, C, ...]: the scan visits one chunk of every model at a time.
    chunks = (points.reshape(points.shape[0], num_chunks, chunk, dim).swapaxes(0, 1),
              mask.reshape(mask.shape[0], num_chunks, chunk).swapaxes(0, 1))
    x_sq = jnp.sum(x * x, axis=-1)

    def add_chunk(total, chunk_data):
        pts, valid = chunk_data
        if kde.stationary:  # ‖x‖² + ‖p‖² − 2x·p: one matrix product for the whole block
            pts, valid = pts[0], valid[0]
            cross = jnp.dot(x, pts.T, precision=jax.lax.Precision.HIGHEST)
            sq = x_sq[:, None] + jnp.sum(pts * pts, axis=-1)[None] - 2.0 * cross
            valid = valid[None]
        else:  # each input has its own timestep's points
            pts, valid = pts[timesteps], valid[timesteps]
            sq = jnp.sum((x[:, None] - pts) ** 2, axis=-1)
        logk = jnp.where(valid, log_kernel(kernel, sq, bandwidth), -jnp.inf)
        return jnp.logaddexp(total, jax.nn.logsumexp(logk, axis=-1)), None

    total, _ = jax.lax.scan(add_chunk, jnp.full(x.shape[:1], -jnp.inf), chunks)
    return total + log_kernel_norm(kernel, dim, bandwidth) - jnp.log(count)


def last_model(kde: KernelDensity) -> jax.Array:
    """Index of the last timestep whose model holds a demonstration (0 when stationary)."""
    if kde.stationary:
        return jnp.zeros((), jnp.int32)
    has_points = jnp.any(kde.mask, axis=-1)
    return (has_points.shape[0] - 1 - jnp.argmax(has_points[::-1])).astype(jnp.int32)


# ---------------------------------------------------------------- inputs, as imitation flattens

def density_inputs(spec: SpaceSpec, density_type: str, obs, acts, next_obs) -> jax.Array:
    """The vector the density is over, batched over leading axes: the flattened observation,
    then the one-hot (discrete) or flattened (Box) action, or the flattened next observation
    (imitation's `_preprocess_transition` through gymnasium's `flatten`)."""
    parts = [spec.encode_obs(obs)]
    if density_type == "state_action":
        parts.append(spec.encode_act(acts))
    elif density_type == "state_state":
        parts.append(spec.encode_obs(next_obs))
    elif density_type != "state":
        raise ValueError(f"density_type: expected one of {DENSITY_TYPES}, got {density_type!r}")
    return jnp.concatenate([p.astype(jnp.float32) for p in parts], axis=-1)


def demo_inputs(spec: SpaceSpec, density_type: str, demos, stationary: bool
                ) -> tuple[jax.Array, jax.Array]:
    """(inputs, mask) of demonstrations for `fit`: [M, D] and [M] when stationary, [T, N, D]
    and [T, N] per timestep. `Trajectories` give every real step (padding masked out); flat
    `Transitions` have no timesteps, so only a stationary model can use them (as imitation)."""
    if isinstance(demos, Trajectories):
        inputs = density_inputs(spec, density_type, demos.obs[:, :-1], demos.acts,
                                demos.obs[:, 1:])  # [N, T, D]
        inputs, mask = inputs.swapaxes(0, 1), demos.mask.swapaxes(0, 1)
        if stationary:
            return inputs.reshape(-1, inputs.shape[-1]), mask.reshape(-1)
        return inputs, mask
    if isinstance(demos, Transitions):
        if not stationary:
            raise ValueError("demonstrations: a per-timestep density (is_stationary=False) needs "
                             "Trajectories (whole episodes), got flat Transitions")
        inputs = density_inputs(spec, density_type, demos.obs, demos.acts, demos.next_obs)
        return inputs, jnp.ones(inputs.shape[:1], bool)
    raise ValueError(f"demonstrations: expected Trajectories or Transitions, got "
                     f"{type(demos).__name__}")


def episode_timesteps(start: jax.Array, done: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Steps into its episode of every step of a time-major rollout: (timesteps [T, E], the
    next rollout's start [E]), from each environment's start and the `done` flags [T, E]."""
    def step(t, d):
        return jnp.where(d, 0, t + 1), t

    end, timesteps = jax.lax.scan(step, start, done)
    return timesteps, end


# ---------------------------------------------------------------- the algorithm

@struct.dataclass
class DensityConfig:
    """imitation's `DensityAlgorithm` defaults for the density; the reward running-normalised and
    PPO's value loss unclipped (docs/algorithms/density.md has the measurements behind both).
    `kernel_bandwidth` and PPO's numeric settings are traced; the rest fixes the program."""

    density_type: str = static("state_action")
    """what the density is over: "state", "state_action" (imitation's default), "state_state\""""
    kernel: str = static("gaussian")
    """scikit-learn kernel: "gaussian" or "exponential" (the compact ones give log 0 = −∞)"""
    kernel_bandwidth: float = 0.5
    """kernel bandwidth h, in standardised units when standardise_inputs"""
    is_stationary: bool = static(True)
    """one model for all timesteps; False: one per timestep (needs Trajectories as data)"""
    standardise_inputs: bool = static(True)
    """standardise inputs by the demonstrations' mean and standard deviation"""
    normalize_reward: bool = static(True)
    """running-normalise the log density before PPO (imitation feeds it raw; see the module
    docstring)"""
    chunk_size: int = static(1024)
    """demonstration points per block of the log-sum-exp (memory: rollout × chunk_size)"""
    ppo: ppo.PPOConfig = dataclasses.field(
        default_factory=lambda: ppo.PPOConfig(clip_value=False))
    """the policy's PPO settings (`PPOConfig()` with SB3's unclipped value loss); its
    total_timesteps sets the number of updates"""

    def __post_init__(self):
        check_choice("density_type", self.density_type, DENSITY_TYPES)
        if self.kernel in KERNELS and self.kernel not in TRAINING_KERNELS:
            raise ValueError(f"kernel: {self.kernel!r} has compact support, so the log density "
                             f"(the reward) is -inf away from the demonstrations and PPO's "
                             f"returns become NaN; expected one of {TRAINING_KERNELS}")
        check_choice("kernel", self.kernel, TRAINING_KERNELS)
        check_positive("chunk_size", self.chunk_size)
        if concrete(self.kernel_bandwidth) and not (
                0 < self.kernel_bandwidth < float("inf")):
            raise ValueError(f"kernel_bandwidth: expected a finite value > 0, got "
                             f"{self.kernel_bandwidth}")

    @property
    def num_updates(self) -> int:
        return self.ppo.num_updates


@struct.dataclass
class DensityState:
    gen: ppo.PPOState
    timestep: jax.Array  # [E] int32: steps into the episode in progress, per environment
    hparams: DensityConfig

    @property
    def env_steps(self) -> jax.Array:
        return self.gen.env_steps


def make(config: DensityConfig, env, env_params) -> Algorithm:
    """PPO on the log density of the demonstrations (`data`: `Trajectories`, or flat
    `Transitions` for a stationary model)."""
    engine = ppo.PPOEngine(config.ppo, env, env_params, normalize_reward=config.normalize_reward)
    spec = engine.spec

    def model(demos) -> KernelDensity:
        inputs, mask = demo_inputs(spec, config.density_type, demos, config.is_stationary)
        return fit(inputs, mask, config.standardise_inputs)

    def check(demos):
        if isinstance(demos, (Trajectories, Transitions)):
            obs = demos.obs[0] if isinstance(demos, Trajectories) else demos.obs
            if obs.shape[1:] != spec.obs_shape:
                raise ValueError(f"demonstrations: observations have shape {obs.shape[1:]}; "
                                 f"expected {spec.obs_shape} for this environment")
            if demos.acts.size == 0:
                raise ValueError("demonstrations: expected at least one transition, got none")
        demo_inputs(spec, config.density_type, demos, config.is_stationary)

    def init(key, demos, hparams: DensityConfig | None = None) -> DensityState:
        hparams = as_arrays(config) if hparams is None else hparams
        check(demos)
        return DensityState(gen=engine.init(key, hparams.ppo),
                            timestep=jnp.zeros((config.ppo.num_envs,), jnp.int32),
                            hparams=hparams)

    def reward(state: DensityState, demos, steps: Transitions):
        """(log density [T, E], next rollout's timesteps, metrics) of a rollout's transitions."""
        kde = model(demos)
        x = density_inputs(spec, config.density_type, steps.obs, steps.acts, steps.next_obs)
        timesteps, next_timestep = episode_timesteps(state.timestep,
                                                     steps.terminated | steps.truncated)
        logp = log_density(kde, x.reshape(-1, x.shape[-1]), state.hparams.kernel_bandwidth,
                           config.kernel, timesteps.reshape(-1), config.chunk_size)
        metrics = {"log_density": jnp.mean(logp)}
        if not config.is_stationary:
            metrics["past_demo_horizon"] = jnp.mean(timesteps > last_model(kde))
        return logp.reshape(timesteps.shape), next_timestep, metrics

    def update(state: DensityState, demos):
        gen, batch = engine.rollout(state.gen)
        rewards, timestep, metrics = reward(state, demos, batch.transitions)
        gen, gen_metrics = engine.learn(gen, batch, rewards)
        return state.replace(gen=gen, timestep=timestep), {**gen_metrics, **metrics}

    def act(state: DensityState, key, obs, deterministic: bool = True):
        return engine.act(state.gen, key, obs, deterministic)

    return Algorithm(name="density", config=config, init=init, update=update, act=act)
