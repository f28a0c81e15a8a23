"""Timing helpers shared by the benchmarks (wall-clock best-of and median CPU time)."""

import statistics
import time


def best_of(fn, repeats: int) -> float:
    """The fastest wall-clock time of ``repeats`` calls of ``fn`` (seconds)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def cpu_time(fn, repeats: int) -> float:
    """The median CPU time of this process over ``repeats`` calls of ``fn`` (seconds)."""
    times = []
    for _ in range(repeats):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return statistics.median(times)
