"""Where points run: in this process one by one, or in spawned processes, pinned one per GPU.

A point is a whole training run, so points are independent processes at best.
``worker_slots`` decides from the flag and the devices a spawned process sees;
``run_in_process`` and ``run_in_processes`` run the pending points and return
each one's wall time and worker. A crashed worker process is a failed point
(its ``error.json`` says so), never a failed sweep.
"""

import importlib.metadata
import math
import multiprocessing
import multiprocessing.connection
import os
import pathlib
import sys
import time

import jax

from ppvad_jax.pipelines.sweep import execute, store

CACHE_SETTINGS = (
    "jax_compilation_cache_dir",
    "jax_persistent_cache_min_compile_time_secs",
    "jax_persistent_cache_min_entry_size_bytes",
)
IN_PROCESS = "in-process, one point at a time"


# --- What the machine has ---------------------------------------------------------------------


def _probe_devices(connection):
    """Sends (platform, local device count) from a throwaway process: this one never grabs a GPU."""
    connection.send((jax.default_backend(), jax.local_device_count()))
    connection.close()


def probe_devices(timeout=300):
    """``(platform, device count)`` as a spawned process sees them, or a clear error.

    A plain Process, not a Pool: a Pool respawns a worker that dies at start
    (e.g. a calling script without ``if __name__ == "__main__"``) forever.
    """
    ctx = multiprocessing.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_probe_devices, args=(send,), name="sweep-probe-devices")
    proc.start()
    send.close()
    try:
        if receive.poll(timeout):
            return receive.recv()
    except EOFError:
        pass
    finally:
        proc.join(5)
        if proc.is_alive():
            proc.terminate()
            proc.join()
    raise RuntimeError(
        f"a spawned process could not report its JAX devices (exit code {proc.exitcode}); worker "
        "processes need the calling script to guard its entry point with if __name__ == '__main__', "
        "or run with parallel=1"
    )


def accelerator_plugins():
    """Installed JAX accelerator plugins (jax-cuda*-plugin, jax-rocm*-plugin, libtpu)."""
    names = {(d.metadata["Name"] or "").lower().replace("_", "-") for d in importlib.metadata.distributions()}
    return sorted(n for n in names if n.startswith(("jax-cuda", "jax-rocm", "libtpu")))


def _gpu_slots(workers, platform, count):
    """One environment per worker, round-robin over the visible GPUs."""
    variable = "HIP_VISIBLE_DEVICES" if platform == "rocm" else "CUDA_VISIBLE_DEVICES"
    visible = os.environ.get(variable)
    ids = visible.split(",") if visible else [str(i) for i in range(count)]
    per_device = math.ceil(workers / count)
    slots = []
    for w in range(workers):
        env = {variable: ids[w % count]}
        if per_device > 1:  # several processes on one GPU: split its memory instead of preallocating 75% each
            env["XLA_PYTHON_CLIENT_MEM_FRACTION"] = f"{0.9 / per_device:.3f}"
        slots.append(env)
    return slots


def worker_slots(parallel):
    """How points run: ``{"mode", "slots", "platform", "devices"}``; ``slots`` is None (in-process)
    or one environment per worker process (e.g. ``{"CUDA_VISIBLE_DEVICES": "1"}``).

    Args:
      parallel: None: one process per GPU when there are several, else in-process;
        1: in-process; N > 1: N processes (pinned round-robin to GPUs if any).
    """
    if parallel is not None and parallel < 1:
        raise ValueError(f"parallel must be >= 1, got {parallel}")
    if parallel == 1:
        return {"mode": IN_PROCESS, "slots": None, "platform": None}
    if accelerator_plugins() and os.environ.get("JAX_PLATFORMS", "").lower() != "cpu":
        platform, count = probe_devices()
    else:  # a CPU-only JAX: no need to pay a process start and a JAX import to learn that
        platform, count = "cpu", 1
    gpu = platform in ("gpu", "cuda", "rocm")
    if parallel is None and not (gpu and count > 1):
        return {"mode": IN_PROCESS, "slots": None, "platform": platform, "devices": count}
    workers = parallel or count
    if not gpu:
        return {"mode": f"{workers} CPU processes", "slots": [{}] * workers, "platform": platform,
                "devices": count}  # fmt: skip
    slots = _gpu_slots(workers, platform, count)
    return {"mode": f"{workers} processes pinned to {count} GPUs", "slots": slots, "platform": platform,
            "devices": count}  # fmt: skip


# --- Running the points -----------------------------------------------------------------------


def _worker_main(point, config, point_dir, plan, env, jax_settings):
    """A spawned worker: pins its device, logs to the point's log.txt, runs one point."""
    os.environ.update(env)  # before JAX's first backend use, which reads these
    point_dir = pathlib.Path(point_dir)
    point_dir.mkdir(parents=True, exist_ok=True)
    log = open(point_dir / "log.txt", "a", buffering=1)  # open for the life of the process
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    sys.stdout, sys.stderr = log, log
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {point.name}: worker pid {os.getpid()}, environment {env}")
    for name, value in jax_settings.items():  # the parent's persistent compilation cache
        jax.config.update(name, value)
    execute.execute_point(point, config, point_dir, plan)


def run_in_process(pending, config, workdir, plans, log):
    walls = {}
    for i, point in enumerate(pending):
        log(f"[{i + 1}/{len(pending)}] {point.name}: training and measuring")
        t = time.perf_counter()
        result = execute.execute_point(
            point, config, store.point_dir(workdir, point.name), plans[point.name], log=log
        )
        walls[point.name] = {"wall_seconds": time.perf_counter() - t, "worker": 0}
        log(f"[{i + 1}/{len(pending)}] {point.name}: {result['status']} in {result['seconds']:.1f} s")
    return walls


def _record_crash(point, point_dir, exitcode):
    """A worker that exited without DONE or error.json (killed, out of memory): a failed point."""
    store.write_json(point_dir / store.ERROR, {
        "status": "failed", "point": point.name, "stage": "worker process",
        "error": f"worker process exited with code {exitcode} before recording a "
        f"result (killed, out of memory, or crashed; see {point_dir / 'log.txt'})",
    })  # fmt: skip


def run_in_processes(pending, config, workdir, plans, slots, log):
    """Runs points in spawned processes, one per slot at a time; a crashed process is a failed point."""
    ctx = multiprocessing.get_context("spawn")
    jax_settings = {}
    if jax.config.jax_compilation_cache_dir:  # workers share it: a program compiled once is reused
        jax_settings = {name: getattr(jax.config, name) for name in CACHE_SETTINGS}
    queue, free, running, walls = list(pending), list(range(len(slots))), {}, {}
    try:
        while queue or running:
            while queue and free:
                slot, point = free.pop(0), queue.pop(0)
                point_dir = store.point_dir(workdir, point.name)
                args = (point, config, str(point_dir), plans[point.name], slots[slot], jax_settings)
                proc = ctx.Process(target=_worker_main, args=args, name=f"sweep-{point.name}")
                proc.start()
                running[proc.sentinel] = (proc, point, slot, time.perf_counter())
                log(f"{point.name}: worker {slot} {slots[slot] or ''}, log in {point_dir / 'log.txt'}")
            for sentinel in multiprocessing.connection.wait(list(running)):
                proc, point, slot, started = running.pop(sentinel)
                proc.join()
                free.append(slot)
                point_dir = store.point_dir(workdir, point.name)
                walls[point.name] = {"wall_seconds": time.perf_counter() - started, "worker": slot}
                if not (point_dir / store.DONE).is_file() and not (point_dir / store.ERROR).is_file():
                    _record_crash(point, point_dir, proc.exitcode)
                status = "done" if (point_dir / store.DONE).is_file() else "failed"
                log(f"{point.name}: {status} after {walls[point.name]['wall_seconds']:.1f} s")
    except BaseException:
        for proc, *_ in running.values():  # only the processes this sweep started
            proc.terminate()
            proc.join()
        raise
    return walls


def run_points(pending, config, workdir, plans, workers, log):
    """The pending points, in this process or in ``workers["slots"]``: ``{name: wall time, worker}``."""
    if workers["slots"] is None:
        return run_in_process(pending, config, workdir, plans, log)
    return run_in_processes(pending, config, workdir, plans, workers["slots"], log)
