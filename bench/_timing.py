"""Helpers shared by the benchmarks: wall-clock best-of, median CPU time, the results file."""

import json
import platform
import statistics
import time
from pathlib import Path


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


def write_results(name: str, rows: list, root: Path) -> Path:
    """``root/results/bench/{name}.json``: the machine, the Python version and ``rows`` (atomic)."""
    from fast2full.common import atomic_output

    out = Path(root) / "results" / "bench" / f"{name}.json"
    with atomic_output(out) as tmp:
        tmp.write_text(
            json.dumps({"machine": platform.platform(), "python": platform.python_version(), "rows": rows}, indent=2)
        )
    print(f"wrote {out}")
    return out
