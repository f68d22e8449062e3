"""What the persistent compilation cache saves a restarted server, in one run.

A random-init autoencoder at the full 240x320 is exported once; then fresh
processes each build the server's ``BucketedDecoder`` and compile every bucket
(``warmup``), as ``launch.serve`` does before it accepts a camera, then runs
``warmup`` again: the second call is execution only (decoding 63 frames), so the
first minus the second is what compiling (or reading the cache) cost:
- ``cold``: an empty cache directory (the first start, or no cache at all);
- ``warm``: the same directory again (a restart after a crash).
Each is the median over ``repeats`` processes (the cold ones each get a new
directory). Start-up of the interpreter and imports is left out; the JSON gives
the first ``warmup`` (what a restart waits), its compile part, and the ratios.
"""

import json
import pathlib
import platform
import statistics
import subprocess
import sys
import tempfile

from ppvad_jax.models import autoencoder_io

# Runs in the child: enable the cache, load the export, time two warm-ups.
_CHILD = """
import json, sys, time
from ppvad_jax.serving import compilation_cache, decoding
compilation_cache.enable(sys.argv[2])
start = time.perf_counter()
decoder = decoding.BucketedDecoder(sys.argv[1])
decoder.warmup()
first = time.perf_counter() - start
start = time.perf_counter()
decoder.warmup()
print(json.dumps({"start": first, "compile": first - (time.perf_counter() - start)}))
"""


def _start_seconds(export_dir, cache_dir):
    """``{"start", "compile"}`` seconds of one fresh process: loading and warming the decoder,
    and the part of that which is not execution."""
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(export_dir), str(cache_dir)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(*, repeats=3, height=240, width=320):
    """The JSON-able result: median cold and warm start-up and compile seconds, and ratios."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        params = autoencoder_io.random_params(height=height, width=width)
        export = autoencoder_io.export(tmp / "ae", params, height=height, width=width)
        cold = [_start_seconds(export, tmp / f"cold{i}") for i in range(repeats)]
        warm = [_start_seconds(export, tmp / "cold0") for _ in range(repeats)]
    out = {
        "machine": platform.processor() or platform.machine(),
        "frame": [height, width],
        "repeats": repeats,
    }
    for key in ("start", "compile"):
        cold_s = statistics.median(r[key] for r in cold)
        warm_s = statistics.median(r[key] for r in warm)
        out.update({f"{key}_cold_s": round(cold_s, 2), f"{key}_warm_s": round(warm_s, 2)})
        out[f"{key}_cold_over_warm"] = round(cold_s / max(warm_s, 1e-3), 2)
    return out
