"""ppvad_jax.training (filled in by later issues)."""
