"""ppvad_jax.serving (filled in by later issues)."""
