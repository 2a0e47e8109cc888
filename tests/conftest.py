"""Shared fixtures. The real GLUE/SuperGLUE files live outside the repo (../shared/data,
never copied in); a run that lacks them skips those tests locally but fails in CI, where
a silent skip would hide that nothing was checked."""

import os
import pickle
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from filelock import FileLock

# torch & co. are imported in the fixtures that use them: the xdist controller, which loads this
# file but runs no test, starts ~8 s sooner without them
REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of the shared real data (env ``COMPACTER_SHARED_DATA`` overrides ../shared/data)."""
    path = Path(os.environ.get("COMPACTER_SHARED_DATA", REPO.parent / "shared" / "data"))
    if not (path / "glue").is_dir() or not (path / "superglue").is_dir():
        missing(f"shared GLUE/SuperGLUE data not found at {path} (set COMPACTER_SHARED_DATA)")
    return path


@pytest.fixture
def local_data(shared_data, monkeypatch):
    """The training code reads the shared GLUE / SuperGLUE files (its env variables set to them)."""
    monkeypatch.setenv("GLUE_DIR", str(shared_data / "glue"))
    monkeypatch.setenv("SUPERGLUE_DIR", str(shared_data / "superglue"))


def assert_session_ends(sid: int, within_s: float = 20) -> None:
    """Every process of the session ``sid`` (a sweep started in a session of its own, and all it
    started) is gone within ``within_s`` seconds."""
    deadline = time.monotonic() + within_s
    while _alive_in_session(sid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _alive_in_session(sid) == [], "no process the sweep started outlives it"


def _alive_in_session(sid: int) -> list[int]:
    import psutil

    alive = []
    for process in psutil.process_iter():
        try:
            if os.getsid(process.pid) == sid and process.status() != psutil.STATUS_ZOMBIE:
                alive.append(process.pid)
        except (ProcessLookupError, psutil.Error):
            pass
    return alive


def missing(message: str) -> None:
    """Something a test needs is not installed: fail on CI (env CI set), where a silent skip would
    hide that nothing was checked; skip elsewhere."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """Tiny task files written for this project, in the original release formats."""
    return FIXTURES


def once_per_session(tmp_path_factory, name: str, make):
    """``make(folder)``, computed once however many xdist workers ask (a session fixture runs once per
    worker): the first computes it under a lock, in a folder every worker sees, and pickles it for the
    others (each waits on the lock instead of computing it again beside the one that does)."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the workers' basetemps share this folder
    folder, value = root / name, root / f"{name}.pickle"
    with FileLock(f"{folder}.lock"):
        if not value.is_file():
            folder.mkdir(exist_ok=True)
            value.write_bytes(pickle.dumps(make(folder)))
        return pickle.loads(value.read_bytes())


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory) -> dict[str, str]:
    """Tiny random BERT and T5 checkpoints on disk ({"bert": path, "t5": path})."""
    from tests.tiny_models import save_tiny_backbones

    return save_tiny_backbones(tmp_path_factory.mktemp("tiny"))


@dataclass(frozen=True)
class Pretraining:
    config: object      # the fine-tuning run's RunConfig
    record: dict        # its record
    trained: Path       # its save_trained directory
    checkpoint: str     # the fine-tuned model saved as a checkpoint: the PEFT tests' backbone


@pytest.fixture(scope="session")
def pretrained(tiny_checkpoints, tmp_path_factory) -> dict[str, Pretraining]:
    """Full fine-tuning of each tiny random model on ``synthetic_count`` (a regression, as
    STS-B: an encoder regression head for BERT, generated floats for T5), saved as a new
    checkpoint. PEFT methods train a few parameters on top of a *pretrained* backbone; on
    a random frozen one bitfit cannot make T5 emit a label at all (measured: 0%, every
    generation unparsable), so these checkpoints play the pretrained model's part."""
    from transformers import AutoTokenizer

    import compacter
    from experiments.backbones import load_model, resolve
    from tests.tiny_runs import tiny_run

    def pretrain(root):
        out = {}
        for arch, path in tiny_checkpoints.items():
            config, record = tiny_run("finetune", path, "synthetic_count", root / "runs", learning_rate=1e-3,
                                      epochs=5, save_trained_weights=True)
            assert record.status == "ok", record.traceback
            trained = root / "runs" / "trained" / config.run_id
            model = compacter.load_trained(load_model(resolve(path), "regression"), trained)
            (model.bert if arch == "bert" else model).save_pretrained(root / arch)
            AutoTokenizer.from_pretrained(path).save_pretrained(root / arch)
            out[arch] = Pretraining(config, record, trained, str(root / arch))
        return out

    return once_per_session(tmp_path_factory, "pretrained", pretrain)


@pytest.fixture(scope="session")
def tiny_berts(tmp_path_factory):
    """Tiny random BERTs with BERT's dropout (resume must restore its RNG) and without (so devices=1
    and devices=2 compute the same gradients)."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from experiments.backbones import minilm_path

    root, paths = tmp_path_factory.mktemp("backbones"), {}
    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    for name, dropout in {"dropout": 0.1, "no_dropout": 0.0}.items():
        torch.manual_seed(0)
        BertForSequenceClassification(BertConfig(
            vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
            intermediate_size=64, hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout,
        )).save_pretrained(root / name)
        tokenizer.save_pretrained(root / name)
        paths[name] = str(root / name)
    return paths


# ---------------------------------------------------------------- the suite's speed on few cores

# One thread per test process: `pytest -n auto` already runs a test per core, and a tiny model on
# two threads beside another busy process loses most of its time to their sync (measured: a 3-epoch
# tiny-BERT run 56 s on two threads, 14 s on one; make test-fast 90 s -> 76 s).
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.fixture(autouse=True)
def one_thread_per_run(monkeypatch):
    """The test trains on one thread, and the subprocesses and sweep workers it starts inherit
    OMP_NUM_THREADS=1 (a sweep's workers take the threads it sets)."""
    import torch

    for name, value in ONE_THREAD.items():
        monkeypatch.setenv(name, value)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


# Slow tests start in the order of the seconds their marker states (`slow(seconds=N)`: the test's time
# in a whole-suite run on the 2-core VM), the longest first, so that the suite's wall time is not one
# long test started last (with --maxschedchunk=1 in pyproject, xdist hands the tests out one by one,
# in this order). The time sits on the test itself, so a renamed test keeps its place.
def pytest_collection_modifyitems(config, items):
    def rank(item):
        slow = item.get_closest_marker("slow")
        return (0, -slow.kwargs.get("seconds", 0)) if slow else (1, 0)

    items.sort(key=rank)  # stable: the order within each rank is pytest's
