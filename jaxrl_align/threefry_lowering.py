"""Lower JAX's threefry PRNG hash unrolled on the CPU, as JAX already does on every other platform.

On the CPU JAX lowers each threefry2x32 call (every `split`, `fold_in`, `bits`, `categorical`,
`normal` ...) as a rolled 5-iteration while loop, to keep compilation small. XLA:CPU's thunk
runtime then runs that loop's ~25 tiny kernels one by one for every iteration: in PPO on
seals/CartPole-v0 (1 seed, 4 envs × 128 steps) about 640 such loops per update, most of the
~48k kernels an update executes. Unrolled, each hash is one fused elementwise kernel. The hash is
the same uint32 arithmetic, so every random number is bit-identical. Measured here (best of 7
calls per process, alternating processes): PPO 1 seed 72–75k → 85–95k env steps/s; one
random-policy environment 0.42M → 2.3–3.0M steps/s.

`JAXRL_ALIGN_ROLLED_THREEFRY=1` keeps JAX's own CPU lowering. The rule lives in a private JAX
module (pinned jax 0.10.2); if a JAX version moves it, JAX's default stays in place.
"""
from __future__ import annotations

import math
import os

ENV_FLAG = "JAXRL_ALIGN_ROLLED_THREEFRY"


# Elements hashed by one call above which the rolled loop stays: on wide arrays its kernels are
# few and vectorised, and the unrolled hash was slower here (4096 random-policy environments:
# 6.1-6.6M -> 3.8-4.3M env steps/s, alternating processes). BC's epoch permutations (5000
# indices per seed) stay rolled too.
MAX_UNROLLED_ELEMENTS = 1024


def use_unrolled_threefry_on_cpu(max_elements: int = MAX_UNROLLED_ELEMENTS) -> bool:
    """Register, for the CPU platform, the unrolled lowering for calls hashing at most
    `max_elements` values (JAX's rolled one above); True if it was registered."""
    if os.environ.get(ENV_FLAG, "") not in ("", "0"):
        return False
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
    return True
