"""The unrolled threefry lowering (jaxrl_align.platform.threefry) is active below its size limit,
absent above it, and changes no random number."""
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np

import jaxrl_align  # noqa: F401  (registers the lowering)
from jaxrl_align.platform import threefry

LIMIT = threefry.MAX_UNROLLED_ELEMENTS
SIZES = (1, 3, LIMIT, 4 * LIMIT)  # bits(n) hashes n counters (jax_threefry_partitionable)

DRAWS = """
import json, jax, jax.numpy as jnp
import jaxrl_align
key = jax.random.PRNGKey(7)
out = {str(n): jax.jit(lambda k: jax.random.bits(k, (n,), jnp.uint32))(key).tolist()
       for n in %r}
out["split"] = jax.jit(lambda k: jax.random.split(k, 5))(key).tolist()
out["vmapped"] = jax.jit(jax.vmap(lambda k: jax.random.normal(k, (3,))))(
    jax.random.split(key, 4)).tolist()
print(json.dumps(out))
""" % (SIZES,)


def _draws(rolled: bool) -> dict:
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop(threefry.OFF_SWITCH, None)
    if rolled:
        env[threefry.OFF_SWITCH] = "1"
    proc = subprocess.run([sys.executable, "-c", DRAWS], env=env, capture_output=True, text=True,
                          timeout=300, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_random_numbers_are_identical_to_jax_rolled_lowering():
    unrolled, rolled = _draws(rolled=False), _draws(rolled=True)
    assert unrolled.keys() == rolled.keys()
    for name in unrolled:
        np.testing.assert_array_equal(np.asarray(unrolled[name]), np.asarray(rolled[name]),
                                      err_msg=name)


def _has_while_loop(n: int) -> bool:
    text = jax.jit(lambda k: jax.random.bits(k, (n,), jnp.uint32)).lower(
        jax.random.PRNGKey(0)).as_text()
    return "stablehlo.while" in text


def test_small_draws_are_unrolled_and_wide_ones_keep_the_loop():
    assert jax.default_backend() == "cpu"  # the rule is registered for the CPU platform
    assert not _has_while_loop(8)
    assert not _has_while_loop(LIMIT)
    assert _has_while_loop(2 * LIMIT)
