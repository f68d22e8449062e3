"""Models. A model knows nothing of how it is trained (no DP, no optimizer here)."""
