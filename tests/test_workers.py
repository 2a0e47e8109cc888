"""A sweep's workers are forked by a long-lived server, yet start as spawn would start them: with
the supervisor's environment and standard streams as they are when the worker starts."""

import os
import sys
import types

import pytest

from experiments.sweep.workers import supervise

PRELOAD = ["experiments.run.training"]  # the sweep's (the first call in a process sets the server's preload)


def report(job):
    print(f"worker's stderr: {job}", file=sys.stderr, flush=True)
    return {"says": os.environ.get("SUPERVISOR_SAYS")}


def results_of(jobs):
    results = {}
    supervise(jobs, 1, report, (), on_result=results.__setitem__, on_death=lambda job, cause: pytest.fail(cause),
              preload=PRELOAD)
    return results


@pytest.mark.slow(seconds=1)  # the server's start (~7 s of imports), unless a sweep of this process started it
def test_a_worker_starts_with_the_supervisors_environment_and_streams_of_that_moment(monkeypatch, capfd):
    with capfd.disabled():  # the server, if this call starts it, keeps the streams and environment of now
        assert results_of(["first"]) == {"first": {"says": None}}
    monkeypatch.setenv("SUPERVISOR_SAYS", "set since")
    assert results_of(["second"]) == {"second": {"says": "set since"}}
    assert "worker's stderr: second" in capfd.readouterr().err


@pytest.mark.slow(seconds=1)  # with the test above: what starts the server (~7 s of imports) in this process
def test_a_worker_that_dies_before_reading_its_job_is_a_death_not_a_crash():
    """Its target cannot be unpickled in the worker (a module only this process has): the worker exits
    with the job unread in its pipe, and the supervisor's read meets a reset connection."""
    only_here = types.ModuleType("only_in_the_supervisor")
    exec("def target(job):\n    return job", only_here.__dict__)
    only_here.target.__module__ = only_here.__name__
    sys.modules[only_here.__name__] = only_here
    deaths = []
    try:
        supervise(["a job", "another"], 1, only_here.target, (), on_result=lambda job, result: pytest.fail(job),
                  on_death=lambda job, cause: deaths.append((job, cause)), preload=PRELOAD)
    finally:
        del sys.modules[only_here.__name__]
    assert deaths == [(job, "worker exited with code 1 without a result") for job in ("a job", "another")]
