"""Measuring on a machine other processes share: what the efficiency benchmark
(``experiments.bench.efficiency``) and the PHM micro-benchmark (``experiments.bench.phm_microbench``)
both rest on.

Threads, glibc's heap (how freed tensor memory is kept), the time of each call, peak RSS, the
load other processes put on the machine (psutil), a measurement in a fresh interpreter (the
protocol: the child prints its result as JSON on its last stdout line) and the machine's
description with the report lines both benchmarks head their reports with.
"""

from __future__ import annotations

import ctypes
import datetime
import json
import math
import os
import platform
import resource
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Callable

import psutil
import torch

from experiments.run.machine import machine_info

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc mallopt(3) parameter numbers
# A fresh process starts quiet and in glibc's exact mode: a fixed 1 MiB mmap threshold unmaps a freed
# tensor at once, so that its peak RSS follows the live tensors (as ``max_memory_allocated`` does)
# rather than the heap's fragmentation; ``keep_freed_memory`` leaves that mode for timing.
FRESH_ENV = {"TRANSFORMERS_VERBOSITY": "error", "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TQDM_DISABLE": "1",
             "MALLOC_MMAP_THRESHOLD_": str(2**20)}


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def set_threads() -> int:
    """All cores this process may run on; recorded in the output."""
    torch.set_num_threads(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count())
    return torch.get_num_threads()


def keep_freed_memory() -> bool:
    """glibc: serve allocations ≤ 32 MiB from the heap and never trim it (True if applied): freed
    memory is reused without page faults per call, as a caching allocator does."""
    if platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(None)
    return libc.mallopt(M_MMAP_THRESHOLD, 32 * 2**20) == 1 and libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1) == 1


def timed(fn: Callable[[], object], count: int, device: torch.device) -> list[float]:
    """Seconds of each of ``count`` calls of ``fn``.

    Not ``torch.utils.benchmark.Timer``: its ``timeit`` adds hidden warm-up calls (extra training
    steps inside the bench's memory phase), ``blocked_autorange`` picks the number of calls itself,
    and neither gives the per-call times whose median the reports state."""
    times = []
    for _ in range(count):
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return times


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def cpu_busy_s() -> float:
    """CPU seconds this machine has spent running processes since boot (idle and I/O wait left out)."""
    times = psutil.cpu_times()
    return sum(getattr(times, field, 0.0) for field in ("user", "nice", "system", "irq", "softirq"))


def other_load_meter(who: int) -> Callable[[], float]:
    """Start measuring; the returned function gives the cores *other* processes kept busy since:
    machine busy time minus the CPU time of ``who`` (``resource.RUSAGE_SELF`` or
    ``RUSAGE_CHILDREN``), over the wall time. Timings are only comparable where it is ≈ 0."""
    def own_cpu_s() -> float:
        usage = resource.getrusage(who)
        return usage.ru_utime + usage.ru_stime

    busy, own, start = cpu_busy_s(), own_cpu_s(), time.monotonic()
    return lambda: max(((cpu_busy_s() - busy) - (own_cpu_s() - own)) / (time.monotonic() - start), 0.0)


def wait_until_quiet(max_wait: float, threshold: float = 0.25) -> float:
    """Wait (≤ max_wait s) until other processes use < threshold cores; returns what they used last."""
    deadline, others = time.monotonic() + max_wait, math.nan
    while True:
        before = cpu_busy_s()
        time.sleep(0.5)
        others = (cpu_busy_s() - before) / 0.5
        if not others >= threshold or time.monotonic() >= deadline:
            return others


def report_to_parent(result: dict) -> None:
    """The child's side of ``in_fresh_process``: its result, the last line of its stdout."""
    print(json.dumps(result))


@dataclass(frozen=True)
class Fresh:
    """What a fresh process gave: its result (None where it failed, then ``error``: its last stderr
    line), the cores other processes kept busy while it ran, its wall time with interpreter start."""

    result: dict | None
    error: str
    other_load: float
    process_s: float


def in_fresh_process(module: str, args: list[str]) -> Fresh:
    """Run ``python -m module *args`` (which ends with ``report_to_parent``) under ``FRESH_ENV``."""
    other_load, start = other_load_meter(resource.RUSAGE_CHILDREN), time.perf_counter()
    done = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True,
                          env={**os.environ, **FRESH_ENV})
    process_s = time.perf_counter() - start
    if done.returncode == 0:
        return Fresh(json.loads(done.stdout.strip().splitlines()[-1]), "", other_load(), process_s)
    error = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
    print(f"  {shlex.join(args)} failed: {error}\n{done.stderr[-2000:]}", file=sys.stderr)
    return Fresh(None, error, math.nan, process_s)


def machine() -> dict[str, str]:
    """The run records' ``machine_info``, with what the benchmark reports add: core count, OS, transformers."""
    import transformers  # parent only: a child's peak RSS holds every module it imports

    info = machine_info()
    gpu = "" if info["device"] == "cpu" else f"; GPU: {info['device']}"
    return {**info, "cpu": f"{info['cpu']} × {os.cpu_count()} logical CPUs{gpu}", "os": platform.platform(),
            "transformers": transformers.__version__}


def now() -> str:
    """A report's date: local time with its offset."""
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def command_line(module: str, argv: list[str]) -> str:
    """A report's command line: how to measure it again."""
    return f"- Command: `{shlex.join(['python', '-m', module, *argv])}` (`make bench` runs it without arguments)"
