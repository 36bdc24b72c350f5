"""The benchmarks' one way of timing a call: medians of wall and process CPU time after a warm-up."""
from __future__ import annotations

import statistics
import time


def timed(fn, repeats: int) -> tuple[float, float]:
    """(median wall seconds, median process CPU seconds) of fn(), after one untimed call. On a shared machine
    the wall time grows with the load, the CPU time much less."""
    fn()
    walls, cpus = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus)
