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

# XLA:CPU runs each operation of a loop body as its own task, ~0.3-1 µs apiece, which dominates
# small loops (a rollout step of a few environments, a soft Bellman backup). A loop that accesses
# fewer bytes than this is compiled into one function instead (XLA's default limit is 1 kB).
# Such a function runs on one core, so wide loops must stay out: at 1 MB the 4096-environment
# rollout fell from ~6.3M to 3.8M env steps/s. At 100 kB, 64 environments ran at 6.5M env
# steps/s instead of 1.8M, one PPO seed (PureJaxRL's CartPole settings) at 90-110k instead of
# 75-99k, and 4096 environments stayed at 6.1M (experiments/bench/throughput.py, alternating
# processes). A user's own xla_backend_extra_options win.
SMALL_LOOP_BYTES = 100_000
if "xla_backend_extra_options" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (f"{os.environ['XLA_FLAGS']} --xla_backend_extra_options="
                               f"xla_cpu_small_while_loop_byte_threshold={SMALL_LOOP_BYTES}")

from jaxrl_align.threefry_lowering import use_unrolled_threefry_on_cpu  # noqa: E402

use_unrolled_threefry_on_cpu()
