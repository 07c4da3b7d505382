"""Process-wide settings, all in one place. Importing `jaxrl_align` (or `envs`) applies them.

This is the only part of the library that changes the process. Each setting says what it does,
why, what justified it and how to turn it off; `docs/performance.md` has the measurements.

1. XLA flags (`xla_flags.apply`, before JAX's CPU client starts):
   - `--xla_cpu_enable_concurrency_optimized_scheduler=false`: with jax 0.10.2 that scheduler
     deadlocked some vmapped programs on the CPU (`jit(vmap(train))` of PPO over 2 seeds).
   - `--xla_backend_extra_options=xla_cpu_small_while_loop_byte_threshold=100000`: XLA:CPU
     compiles a loop that touches under 100 kB into one function instead of one task per
     operation (64 CartPole environments ran 3-4x faster).
   A flag the user set wins; `JAXRL_ALIGN_XLA_FLAGS=0` applies neither.
2. The unrolled threefry lowering on the CPU (`threefry.use_unrolled_threefry_on_cpu`): every
   random draw of at most 1,024 values is one fused kernel instead of a 5-iteration loop (one
   PPO seed ~20% faster); bit-identical random numbers. `JAXRL_ALIGN_ROLLED_THREEFRY=1` keeps
   JAX's lowering.
3. The gymnax import guard (`gymnax_import`): gymnax's bundled environments import matplotlib
   and seaborn for `render` alone; those modules load on first use instead (~2 s off every
   start-up). `JAXRL_ALIGN_DEFER_PLOTTING=0` imports them eagerly.

The XLA flags only take effect if JAX's backend has not started yet (importing `jax` alone does
not start it; creating an array does). When it has, a `LateSettingsWarning` says so: import
`jaxrl_align` or `envs` before any JAX computation. The compilation cache (`compilation_cache`)
is opt-in: the command line turns it on.
"""
from __future__ import annotations

import os
import sys
import warnings

from jaxrl_align.platform import gymnax_import, threefry, xla_flags


class LateSettingsWarning(UserWarning):
    """jaxrl_align was imported after JAX's backend started: its XLA flags could not apply."""


def _backend_started() -> bool:
    try:
        from jax._src import xla_bridge

        return bool(xla_bridge.backends_are_initialized())
    except (ImportError, AttributeError):
        return False


def _importer_stacklevel() -> int:
    """The `stacklevel` of the first frame outside jaxrl_align, envs and the import system: the
    user's import line."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ours = (package, os.path.join(os.path.dirname(package), "envs"))
    frame, level = sys._getframe(1), 1
    while frame is not None:
        name = frame.f_code.co_filename
        if "importlib" in name and "_bootstrap" in name:
            frame = frame.f_back  # warnings skips the import system's frames itself
            continue
        if not name.startswith(ours):
            break
        frame, level = frame.f_back, level + 1
    return level


def apply() -> None:
    """Apply every setting (idempotent). Called once on import."""
    if _backend_started():
        missing = xla_flags.missing_flags()
        if missing:
            warnings.warn(
                f"jaxrl_align: JAX's backend started before jaxrl_align was imported, so the "
                f"XLA flags {missing} do not apply in this process (see jaxrl_align.platform); "
                "import jaxrl_align or envs before running any JAX computation",
                LateSettingsWarning, stacklevel=_importer_stacklevel())
    else:
        xla_flags.apply()
    threefry.use_unrolled_threefry_on_cpu()
    gymnax_import.install()


apply()

__all__ = ["LateSettingsWarning", "apply", "gymnax_import", "threefry", "xla_flags"]
