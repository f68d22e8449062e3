"""Numbers and pictures about trained models: image quality, AUC and F1, SAS, attacks on privacy.

The module map is in ARCHITECTURE.md.
"""
