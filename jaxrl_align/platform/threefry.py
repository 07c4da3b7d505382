"""Lower JAX's threefry PRNG hash unrolled on the CPU, as JAX already does on every other
platform (see `jaxrl_align.platform`).

On the CPU JAX lowers each threefry2x32 call (every `split`, `fold_in`, `bits`, `categorical`,
`normal`, ...) as a rolled 5-iteration while loop, to keep compilation small. XLA:CPU's thunk
runtime then runs that loop's ~25 tiny kernels one by one for every iteration; a PPO update on
CartPole runs hundreds of such loops. Unrolled, each hash is one fused elementwise kernel. The
hash is the same uint32 arithmetic, so every random number is bit-identical
(tests/platform/test_threefry.py compares both lowerings).

`JAXRL_ALIGN_ROLLED_THREEFRY=1` keeps JAX's own CPU lowering. The rule lives in a private JAX
module (pinned jax 0.10.2); if a JAX version moves it, JAX's default stays in place.
"""
from __future__ import annotations

import math
import os

OFF_SWITCH = "JAXRL_ALIGN_ROLLED_THREEFRY"

# Values hashed by one call above which the rolled loop stays: on wide arrays its kernels are
# few and vectorised, and the unrolled hash was slower (4096 random-policy environments ran
# ~35% slower unrolled). BC's epoch permutations (5,000 indices per seed) stay rolled too.
MAX_UNROLLED_ELEMENTS = 1024

_registered = False


def use_unrolled_threefry_on_cpu(max_elements: int = MAX_UNROLLED_ELEMENTS) -> bool:
    """Register, for the CPU platform, the unrolled lowering for calls hashing at most
    `max_elements` values (JAX's rolled one above); True if it is registered."""
    global _registered
    if os.environ.get(OFF_SWITCH, "") not in ("", "0"):
        return False
    if _registered:
        return True
    try:
        from jax._src.interpreters import mlir
        from jax._src.random import threefry2x32
        unrolled = threefry2x32._threefry2x32_lowering_rule
        rolled = threefry2x32._threefry2x32_cpu_lowering_rule
        primitive = threefry2x32.threefry2x32_p
    except (ImportError, AttributeError):
        return False

    def lowering(ctx, *args):
        size = math.prod(ctx.avals_out[0].shape)
        return (unrolled if size <= max_elements else rolled)(ctx, *args)

    mlir.register_lowering(primitive, lowering, platform="cpu", inline=False)
    _registered = True
    return True
