"""ppvad_jax.privacy (filled in by later issues)."""
