"""Trainers: pure jitted steps over frozen states, orbax checkpoints, resumable."""
