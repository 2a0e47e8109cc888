"""A sweep's workers are forked by a long-lived server, yet start as spawn would start them: with
the supervisor's environment and standard streams as they are when the worker starts."""

import os
import sys

import pytest

from experiments.workers import supervise

PRELOAD = ["experiments.training"]  # the sweep's (the first call in a process sets the server's preload)


def report(job):
    print(f"worker's stderr: {job}", file=sys.stderr, flush=True)
    return {"says": os.environ.get("SUPERVISOR_SAYS")}


def results_of(jobs):
    results = {}
    supervise(jobs, 1, report, (), on_result=results.__setitem__, on_death=lambda job, cause: pytest.fail(cause),
              preload=PRELOAD)
    return results


@pytest.mark.slow(seconds=1)
def test_a_worker_starts_with_the_supervisors_environment_and_streams_of_that_moment(monkeypatch, capfd):
    with capfd.disabled():  # the server, if this call starts it, keeps the streams and environment of now
        assert results_of(["first"]) == {"first": {"says": None}}
    monkeypatch.setenv("SUPERVISOR_SAYS", "set since")
    assert results_of(["second"]) == {"second": {"says": "set since"}}
    assert "worker's stderr: second" in capfd.readouterr().err
