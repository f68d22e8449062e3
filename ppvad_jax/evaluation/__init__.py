"""ppvad_jax.evaluation (filled in by later issues)."""
