"""JAX's persistent compilation cache for the long-running serving processes.

Why: a server restarted after a crash is down until it has compiled its
decoder buckets (and flax's parameter templates); the cache removes most of
the compiling, not the first executions (``launch.benchmark_server_start``;
figures in BUILD_NOTES.md, "Measurements"). Cost: a few MB of disk per model
and resolution. JAX's default only caches compilations
longer than 1 s, which misses the many small ones, so the thresholds go to 0.
"""

import os

import jax


def enable(cache_dir):
    """Turns the cache on at ``cache_dir`` ('' leaves it off); ``$JAX_COMPILATION_CACHE_DIR`` wins."""
    cache_dir = os.environ.get("JAX_COMPILATION_CACHE_DIR") or cache_dir
    if not cache_dir:
        return None
    jax.config.update("jax_compilation_cache_dir", cache_dir)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return cache_dir
