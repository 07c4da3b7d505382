"""Fragments (`jaxrl_align.preferences.fragments`): imitation's `RandomFragmenter` on a
time-major rollout; every fragment stays inside one episode."""
import jax
import jax.numpy as jnp
import numpy as np

from jaxrl_align.preferences import fragments as frag
from jaxrl_align.types import Transitions


def test_fragments_stay_inside_one_episode():
    # 2 envs, 10 steps; env 0 ends episodes on steps 3 and 7, env 1 never.
    done = np.zeros((10, 2), bool)
    done[[3, 7], 0] = True
    valid = np.asarray(frag.valid_starts(jnp.asarray(done), 4))
    # env 0: start t is valid iff no episode ends on t..t+2: t = 0 (its end at 3 is the
    # fragment's last step) and t = 4 (ends at 7); t = 5, 6 contain the end at 7 inside.
    np.testing.assert_array_equal(valid[:, 0], [True, False, False, False, True, False, False])
    assert valid[:, 1].all()
    t, e = np.meshgrid(np.arange(10), np.arange(2), indexing="ij")
    steps = Transitions(obs=jnp.asarray(t * 10 + e, jnp.float32)[..., None], acts=jnp.asarray(e),
                        next_obs=jnp.asarray(t * 10 + e + 10, jnp.float32)[..., None],
                        terminated=jnp.asarray(done), truncated=jnp.zeros((10, 2), bool),
                        rews=jnp.asarray(t, jnp.float32))
    pairs, returns = frag.random_pairs(jax.random.PRNGKey(0), steps, 200, 4, discount=0.5)
    obs = np.asarray(pairs.obs)[..., 0]  # [200, 2, 4]
    start, env = obs[..., 0] // 10, obs[..., 0] % 10
    np.testing.assert_array_equal(obs, (start[..., None] + np.arange(4)) * 10 + env[..., None])
    assert valid[start.astype(int), env.astype(int)].all()
    # terminal flag only on the last step, and only where the episode really ended there.
    term = np.asarray(pairs.terminated)
    assert not term[..., :-1].any()
    np.testing.assert_array_equal(term[..., -1], done[(start + 3).astype(int), env.astype(int)])
    expected = sum(0.5**k * (start + k) for k in range(4))
    np.testing.assert_allclose(returns, expected, rtol=1e-6)
