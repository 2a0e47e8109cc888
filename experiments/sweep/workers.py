"""Local worker processes that a sweep supervises: a dead worker is a failed run, a signal stops them all.

``multiprocessing.Pool`` replaces a worker that died (SIGKILL, the OOM killer) but never
finishes the task it held, so a sweep waited forever for its result. Here each worker gets
one job at a time over its own pipe, and the supervisor waits on the pipes and on the
processes' sentinels together: a sentinel without a result is a dead worker, reported as
such, and a new worker takes the next job.

Workers are long-lived and forked by multiprocessing's forkserver, a process that imported the
caller's ``preload`` modules (torch & co., ~7 s per process) once and never computed with them:
a worker starts in a fraction of a second, and inherits no OpenMP pool or CUDA context. The
server lives as long as the process that started it (a sweep's CLI; a test process, for all
the sweeps it runs), so each worker is handed what spawn would give it: the supervisor's
environment and standard streams as they are when the worker starts.

Each worker leads its own process group, so stopping it also stops what it started (W&B's
service process), and a terminal's Ctrl-C reaches the supervisor alone, which stops the
workers: SIGTERM (Lightning ends the fit at the next batch), then SIGKILL after a grace
period. A worker whose supervisor dies without stopping it kills its process group, and one
whose forkserver dies gets SIGKILL from the kernel (``PR_SET_PDEATHSIG``), so nothing outlives
a sweep.
"""

from __future__ import annotations

import collections
import ctypes
import multiprocessing
import multiprocessing.util
import os
import select
import signal
import sys
import threading
import time
from multiprocessing import reduction
from multiprocessing.connection import wait
from typing import Any, Callable, Iterable

GRACE_S = 10.0  # after SIGTERM, before SIGKILL: a batch ends and the process exits well within it


class Interrupted(Exception):
    """The supervisor received SIGTERM or SIGINT; ``running`` jobs were stopped unfinished."""

    def __init__(self, signum: int, running: list) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum, self.running = signum, running


def death_cause(exitcode: int | None) -> str:
    """What a worker that died without a result tells of it: its exit code or signal."""
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name
        return f"worker killed by {name}" + (" — out of memory?" if name == "SIGKILL" else "")
    return f"worker exited with code {exitcode} without a result"


def _serve(conn, target: Callable, args: tuple, supervisor: int, environ: dict, streams: tuple) -> None:
    os.setpgrp()
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: the forkserver's death
        if os.getppid() == 1:  # the forkserver died before prctl took effect
            return
        _die_with(supervisor)
    os.environ.clear(), os.environ.update(environ)
    for fd, stream in zip((1, 2), streams):
        copy = stream.detach()
        os.dup2(copy, fd), os.close(copy)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # only the supervisor decides when to stop
    # SIGTERM ends the worker at once but through Python's exit (Lightning runs its teardown, the
    # run writes no record, finalizers unregister the worker's semaphores), whatever it is doing
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        while (job := conn.recv()) is not None:
            conn.send(target(job, *args))
    except SystemExit as stop:  # SIGTERM, once the run has unwound (Lightning's teardown, its log and lock)
        exit_now(stop.code)


def _die_with(supervisor: int) -> None:
    """SIGKILL to this worker's process group (it, and what it started) once ``supervisor`` exits:
    the kernel's parent-death signal names the forkserver, the worker's parent, not the supervisor."""
    try:
        exited = os.pidfd_open(supervisor)  # readable once the process has exited
    except ProcessLookupError:  # already gone
        os.killpg(0, signal.SIGKILL)
    threading.Thread(target=lambda: (select.select([exited], [], []), os.killpg(0, signal.SIGKILL)),
                     name="supervisor-exit", daemon=True).start()


def exit_now(code: int) -> None:
    """Exit without the interpreter's teardown of torch & co. (seconds on a busy machine, while a
    scheduler counts down to SIGKILL), but with the finalizers that unregister this process's
    semaphores (else the resource tracker reports them leaked)."""
    multiprocessing.util._run_finalizers()
    sys.stdout.flush(), sys.stderr.flush()
    os._exit(code)


class _Worker:
    def __init__(self, context, target: Callable, args: tuple) -> None:
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, daemon=True, args=(
            child, target, args, os.getpid(), dict(os.environ), _Streams()))
        self.process.start()
        child.close()
        self.job: Any = None

    def hand(self, job: Any) -> None:
        self.job = job
        try:
            self.conn.send(job)
        except ConnectionError:  # the worker died (as it started, say): its sentinel tells below
            pass


class _Streams:
    """The supervisor's stdout and stderr as the worker starts, sent with it (pickled as copies of
    the two file descriptors): the forkserver's are the ones its starter had back then."""

    def __reduce__(self):
        return tuple, ((reduction.DupFd(1), reduction.DupFd(2)),)


def supervise(jobs: Iterable, parallel: int, target: Callable, args: tuple,
              on_result: Callable[[Any, dict], None], on_death: Callable[[Any, str], None],
              preload: Iterable[str] = ()) -> None:
    """``target(job, *args)`` for every job in up to ``parallel`` workers (its result never None, which
    reads as no result yet); ``on_result(job, result)`` as each ends, ``on_death(job, cause)`` for a
    job whose worker died. SIGTERM or SIGINT raise ``Interrupted`` once every worker is stopped.
    ``preload``: modules the forkserver imports before it forks the first worker (what ``target``
    imports; later calls in this process share that server)."""
    pending, workers = collections.deque(jobs), []
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(preload))

    def interrupt(signum, frame):
        raise Interrupted(signum, [w.job for w in workers if w.job is not None])

    previous = {s: signal.signal(s, interrupt) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        while pending or any(w.job is not None for w in workers):
            for worker in workers:
                if worker.job is None and pending:
                    worker.hand(pending.popleft())
            while pending and len(workers) < parallel:
                workers.append(_Worker(context, target, args))
                workers[-1].hand(pending.popleft())
            busy = [w for w in workers if w.job is not None]
            wait([w.conn for w in busy] + [w.process.sentinel for w in busy])
            for worker in busy:
                try:
                    result = worker.conn.recv() if worker.conn.poll() else None
                except (EOFError, ConnectionError):  # a worker that died; one that never read its job resets
                    result = None
                if result is not None:
                    job, worker.job = worker.job, None
                    on_result(job, result)
                elif not worker.process.is_alive():
                    worker.process.join()
                    job, worker.job = worker.job, None
                    workers.remove(worker)
                    _kill_group(worker.process)  # what the dead worker started
                    on_death(job, death_cause(worker.process.exitcode))
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        _stop(workers)


def _kill_group(process, signum: int = signal.SIGKILL) -> None:
    """The worker (unless reaped: its pid may be another's by now) and the process group it leads
    (none yet while it starts: it is still in ours)."""
    targets = [(os.killpg, process.pid)]
    if process.exitcode is None:
        targets.append((os.kill, process.pid))
    for send, pid in targets:
        try:
            send(pid, signum)
        except (ProcessLookupError, PermissionError):
            pass


def _stop(workers: list[_Worker]) -> None:
    """Idle workers exit when told; busy ones get SIGTERM, then SIGKILL after ``GRACE_S``."""
    for worker in workers:
        try:
            if worker.job is None:
                worker.conn.send(None)
            else:
                _kill_group(worker.process, signal.SIGTERM)
        except (BrokenPipeError, OSError):
            pass
    deadline = time.monotonic() + GRACE_S
    for worker in workers:
        worker.process.join(max(0.0, deadline - time.monotonic()))
        _kill_group(worker.process)  # the worker if it outlived its grace, and what it started
        worker.process.join()
        worker.conn.close()
