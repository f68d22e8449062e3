"""The ``--config=FILE:key=value,...`` argument that every config file accepts."""


def parse(arg, allowed, usage):
    """``"a=1,b=2"`` -> ``{"a": "1", "b": "2"}``; a key outside ``allowed`` is a ValueError
    ending with ``usage`` (what the file does accept)."""
    out = {}
    for item in filter(None, (arg or "").split(",")):
        key, _, value = item.partition("=")
        out[key.strip()] = value.strip()
    unknown = set(out) - set(allowed)
    if unknown:
        raise ValueError(f"unknown config arg(s) {sorted(unknown)}; use {usage}")
    return out


def is_true(value):
    """``runlocal=True`` style booleans: 1, true or yes (any case)."""
    return str(value).lower() in ("1", "true", "yes")
