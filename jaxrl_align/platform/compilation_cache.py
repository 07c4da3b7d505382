"""JAX's persistent compilation cache, so a configuration is compiled once per machine.

Opt-in (the command line enables it unless `--no-compile-cache`); it changes only where JAX
keeps compiled programs. `JAXRL_ALIGN_CACHE` moves the folder.
"""
from __future__ import annotations

import os
from pathlib import Path

import jax

DEFAULT_DIR = Path(os.environ.get("JAXRL_ALIGN_CACHE", Path.home() / ".cache" / "jaxrl_align" / "xla"))


def enable(cache_dir: Path | str = DEFAULT_DIR) -> Path:
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(cache_dir))
    # Small programs compile in well under the default 1 s threshold yet dominate start-up here.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return cache_dir
