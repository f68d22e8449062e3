"""The four optimizers of the paper: plain Adam, and the DP privatizer followed by SGD, Adam or Adagrad."""

import optax

PRIVATE = {"dpsgd": optax.sgd, "dpadam": optax.adam, "dpadagrad": optax.adagrad}


def is_private(name):
    if name not in ("adam", *PRIVATE):
        raise ValueError(f"unknown optimizer {name!r}; use adam, dpsgd, dpadam or dpadagrad")
    return name in PRIVATE


def make(name, learning_rate):
    """The optax transformation applied AFTER the privatizer (for DP ones)."""
    return optax.adam(learning_rate) if not is_private(name) else PRIVATE[name](learning_rate)
