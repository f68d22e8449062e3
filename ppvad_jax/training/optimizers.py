"""The four optimizers of the paper: plain Adam, and the DP privatizer followed by SGD, Adam or Adagrad."""

import optax

PRIVATE = {"dpsgd": optax.sgd, "dpadam": optax.adam, "dpadagrad": optax.adagrad}


def is_private(name):
    if name not in ("adam", *PRIVATE):
        raise ValueError(f"unknown optimizer {name!r}; use adam, dpsgd, dpadam or dpadagrad")
    return name in PRIVATE


def make(name, learning_rate, weight_decay=0.0):
    """The optax transformation applied AFTER the privatizer (for DP ones).

    ``weight_decay`` is decoupled (AdamW-style: each step also subtracts learning_rate *
    weight_decay * param). It reads only the parameters, never the data, so under DP it costs no
    privacy and needs no clipping.
    """
    base = optax.adam(learning_rate) if not is_private(name) else PRIVATE[name](learning_rate)
    if not weight_decay:
        return base
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    return optax.chain(base, optax.add_decayed_weights(-learning_rate * weight_decay))
