"""Median wall times of calls, the way every benchmark here times them."""

import statistics
import time


def median_seconds(fn, repeats):
    """Median seconds of ``repeats`` calls of ``fn`` (no warm-up: the caller warms up when it must)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def first_and_median_seconds(fn, repeats):
    """``(median seconds after the first call, the first call's seconds)``: the first compiles."""
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    return median_seconds(fn, repeats), first


def interleaved_median_seconds(fns, repeats):
    """Median seconds per call of each function, timed in turns (a, b, c, a, b, c, ...) after one
    warm-up each, so that on a shared machine a burst of load hits all of them alike."""
    for fn in fns.values():
        fn()  # warm-up (compilation, OpenCV's first-call setup)
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}
