"""jaxrl_align: reward learning and imitation learning in JAX."""
import os

# XLA:CPU's concurrency-optimised scheduler deadlocks on some vmapped programs here (jax 0.10.2):
# every worker thread sleeps and the result never materialises. Seen deterministically with
# `jit(vmap(train))` of PPO over 2 seeds and with vmapped orthogonal initialisation over 15 seeds.
# Turning the scheduler off fixes both. It must be set before JAX creates its CPU client, hence
# at package import; a user's own setting of the flag wins.
_SCHEDULER_FLAG = "xla_cpu_enable_concurrency_optimized_scheduler"
if _SCHEDULER_FLAG not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --{_SCHEDULER_FLAG}=false".strip()

from jaxrl_align.threefry_lowering import use_unrolled_threefry_on_cpu  # noqa: E402

use_unrolled_threefry_on_cpu()
