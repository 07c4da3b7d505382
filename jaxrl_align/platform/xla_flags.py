"""The XLA flags jaxrl_align sets before JAX's CPU client starts (see `jaxrl_align.platform`).

`XLA_FLAGS` is read once, when JAX creates its first backend; setting it later has no effect.
A flag the user already set is left as it is.
"""
from __future__ import annotations

import os

OFF_SWITCH = "JAXRL_ALIGN_XLA_FLAGS"  # "0": set no flag

# XLA:CPU's concurrency-optimised scheduler deadlocked some vmapped programs with jax 0.10.2:
# every worker thread asleep and the result never materialised (`jit(vmap(train))` of PPO over
# 2 seeds; vmapped orthogonal initialisation over 15 seeds). Without it both finish.
SCHEDULER_FLAG = "xla_cpu_enable_concurrency_optimized_scheduler"

# XLA:CPU runs each operation of a loop body as its own task (~0.3-1 µs each), which dominates
# small loops (a rollout step of a few environments, a soft Bellman backup). A loop touching
# fewer bytes than this is compiled into one function instead (XLA's default: 1 kB). Such a
# function runs on one core, so wide loops must stay above it (at 1 MB the 4096-environment
# rollout ran ~40% slower).
SMALL_LOOP_BYTES = 100_000
EXTRA_OPTIONS = "xla_backend_extra_options"


def wanted_flags() -> dict[str, str]:
    """name -> full flag, for the flags jaxrl_align sets."""
    return {
        SCHEDULER_FLAG: f"--{SCHEDULER_FLAG}=false",
        EXTRA_OPTIONS: (f"--{EXTRA_OPTIONS}="
                        f"xla_cpu_small_while_loop_byte_threshold={SMALL_LOOP_BYTES}"),
    }


def missing_flags() -> list[str]:
    """The wanted flags that neither the user nor jaxrl_align put in `XLA_FLAGS`."""
    if os.environ.get(OFF_SWITCH, "") == "0":
        return []
    current = os.environ.get("XLA_FLAGS", "")
    return [flag for name, flag in wanted_flags().items() if name not in current]


def apply() -> None:
    """Append the missing flags to `XLA_FLAGS` (idempotent)."""
    missing = missing_flags()
    if missing:
        os.environ["XLA_FLAGS"] = " ".join([os.environ.get("XLA_FLAGS", "")] + missing).strip()
