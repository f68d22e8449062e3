"""Differential privacy for any loss: batch selection, per-example clipping,
Gaussian noise, accounting. Never imports training, serving or launch."""
