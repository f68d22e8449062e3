"""ppvad_jax.models (filled in by later issues)."""
