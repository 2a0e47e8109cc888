"""What a run record says it was made with (provenance), and how the reports' README summarises it."""
import hashlib
import subprocess


from analysis.readme import describe_provenance
from analysis.records import normalise, to_frame
from experiments.run.provenance import data_provenance, git_state, provenance
from experiments.run.config import make_run_config


def git(root, *args):
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


def test_git_state_names_the_commit_and_sees_uncommitted_changes(tmp_path):
    git(tmp_path, "init", "-q")
    (tmp_path / "a.py").write_text("x = 1\n")
    git(tmp_path, "add", "a.py")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    head = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    assert git_state(tmp_path) == {"commit": head.strip(), "dirty": False}
    (tmp_path / "a.py").write_text("x = 2\n")
    assert git_state(tmp_path)["dirty"] is True
    state = git_state(tmp_path / "missing")  # not a checkout: recorded as unknown, the run goes on
    assert state["commit"] is None and "error" in state


def test_data_provenance_hashes_the_files_the_run_reads(tmp_path, monkeypatch):
    monkeypatch.delenv("GLUE_DIR", raising=False)  # `make test` exports the shared data folders;
    monkeypatch.delenv("SUPERGLUE_DIR", raising=False)  # without them BoolQ comes from the Hub
    (tmp_path / "RTE").mkdir()
    contents = {"train.tsv": b"index\tsentence1\tsentence2\tlabel\n", "dev.tsv": b"other\n"}
    for name, data in contents.items():
        (tmp_path / "RTE" / name).write_bytes(data)
    (tmp_path / "RTE" / "test.tsv").write_bytes(b"unlabelled, never read\n")
    data = data_provenance(make_run_config("compacter", task="rte", glue_dir=str(tmp_path)))
    assert data == {"kind": "local", "sha256": {
        str(tmp_path / "RTE" / name): hashlib.sha256(content).hexdigest() for name, content in contents.items()}}
    hub = data_provenance(make_run_config("compacter", task="boolq"))
    assert (hub["kind"], hub["repo"], hub["config"]) == ("hub", "aps/super_glue", "boolq")


def test_provenance_of_a_run_reaches_the_reports_readme(tmp_path):
    config = make_run_config("compacter", task="synthetic")
    recorded = provenance(config)
    assert set(recorded["packages"]) == {"torch", "transformers", "lightning", "peft", "datasets"}
    assert recorded["packages"]["torch"].startswith("2.13")
    assert recorded["data"] == {"kind": "synthetic"}
    base = {"profile": "cpu", "backbone": "minilm", "method": "compacter", "task": "sst2", "status": "ok"}
    clean = {**recorded, "git": {"commit": "a" * 40, "dirty": False},
             "data": {"kind": "local", "sha256": {"/d/SST-2/train.tsv": "1" * 64}}}
    dirty = {**recorded, "git": {"commit": "b" * 40, "dirty": True},
             "data": {"kind": "local", "sha256": {"/d/SST-2/train.tsv": "2" * 64}}}
    records = to_frame(normalise({**base, "run_id": f"r{seed}", "seed": seed, "provenance": p}, f"r{seed}")
                       for seed, p in ((1, clean), (2, dirty), (3, dirty), (4, None)))
    lines = describe_provenance(records)
    assert "- no provenance: 1 run(s) (records written before it was recorded)" in lines
    assert f"- code: commit {'b' * 12} (2 runs, 2 from a tree with uncommitted changes)" in lines
    assert f"- code: commit {'a' * 12} (1 runs, clean tree)" in lines
    assert any(line.startswith("- packages: datasets ") and line.endswith("(3 runs)") for line in lines)
    assert "- data files: 1 read, sha256 in each record; with different contents across runs: /d/SST-2/train.tsv" in lines


def test_a_record_names_the_commit_its_process_loaded_not_the_one_checked_out_when_it_runs(monkeypatch):
    from experiments.run import provenance as module

    loaded = subprocess.run(["git", "-C", str(module.PROJECT_ROOT), "rev-parse", "HEAD"],
                            capture_output=True, text=True, check=True).stdout.strip()
    assert module.LOADED_GIT_STATE["commit"] == loaded
    # HEAD moves after the code was loaded (a commit during a sweep): git now answers another commit
    monkeypatch.setattr(module, "_git", lambda root, *args: "f" * 40 if args[0] == "rev-parse" else "")
    assert module.git_state(module.PROJECT_ROOT)["commit"] == "f" * 40
    assert provenance(make_run_config("compacter", task="synthetic"))["git"]["commit"] == loaded
