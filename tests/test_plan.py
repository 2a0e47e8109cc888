"""``make plan`` (``python -m experiments.sweep --dry-run``, text or JSON lines): every shipped
profile listed by a process that imports none of the training libraries (~7 s per process to
import; the sweep's workers import them). peft rows complete their options in a child process
(``experiments.run.recipe``), so the lister stays free of them too."""

import json
import subprocess
import sys

import pytest

from catalog.profile import profile_names
from tests.conftest import REPO

TRAINING_LIBRARIES = {"torch", "transformers", "lightning", "peft", "datasets", "scipy", "sklearn"}


@pytest.mark.parametrize("form", [[], ["--json"]], ids=["text", "json"])
def test_the_sweep_cli_lists_a_profiles_runs_without_running_them_or_importing_torch(form):
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "experiments.sweep", "--profile", "smoke",
                             "--dry-run", *form], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    if form:
        assert [json.loads(line)["backbone"] for line in lines] == ["minilm"] * 6
    else:
        assert lines[-1].startswith("6 runs in profile smoke")
        assert sum(" minilm-" in line for line in lines) == 6
    imported = {line.rpartition("|")[2].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    assert "experiments.run.config" in imported and imported.isdisjoint(TRAINING_LIBRARIES), imported & TRAINING_LIBRARIES


# Every profile in one process (one per profile would cost a minute of interpreter starts): the CLI's
# main writes each JSON plan, then the process names the packages it has imported. The JSON form
# builds every run's config as the text form does (the same checked_configs) and imports more.
EVERY_PLAN = """
import contextlib, io, json, sys
from experiments.sweep.cli import main
plans = {}
for profile in sys.argv[1:]:
    with contextlib.redirect_stdout(io.StringIO()) as out:
        assert main(["--profile", profile, "--dry-run", "--json"]) == 0, profile
    plans[profile] = [json.loads(line) for line in out.getvalue().splitlines()]
print(json.dumps({"imported": sorted({name.split(".")[0] for name in sys.modules}), "plans": plans}))
"""


@pytest.mark.slow(seconds=70)
def test_every_profiles_plan_imports_no_training_library_peft_rows_included():
    profiles = profile_names()
    result = subprocess.run([sys.executable, "-c", EVERY_PLAN, *profiles], cwd=REPO, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert TRAINING_LIBRARIES.isdisjoint(answer["imported"]), TRAINING_LIBRARIES & set(answer["imported"])
    plans = answer["plans"]
    assert all(plans[profile] and {run["profile"] for run in plans[profile]} == {profile} for profile in profiles)
    peft_rows = {profile for profile, runs in plans.items() if any(run["peft_method"] == "peft" for run in runs)}
    assert {"cpu-full", "paper"} <= peft_rows  # their peft rows imported torch, through peft, before
