"""Benchmark: a server's decoder start-up with and without the compilation cache; prints JSON.

  python -m launch.benchmark_server_start [--repeats=3]

What each entry means: ``ppvad_jax/pipelines/benchmarks/server_start.py``.
"""

import json

from absl import app, flags

from ppvad_jax.pipelines.benchmarks import server_start

_REPEATS = flags.DEFINE_integer("repeats", 3, "Fresh processes per case (median).")


def main(argv):
    del argv
    print(json.dumps(server_start.run(repeats=_REPEATS.value), indent=2))


if __name__ == "__main__":
    app.run(main)
