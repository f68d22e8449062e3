"""Thin absl entry points: ``python -m launch.NAME``."""
