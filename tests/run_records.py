"""The one factory of run records for the analysis tests: real ``catalog.record.RunRecord``s,
validated as a results folder's are, so a test cannot build a record the runs never write."""
import json
from pathlib import Path

from analysis.records import row_of, to_frame
from catalog.record import RunRecord

METRICS = {"sst2": ("accuracy",), "rte": ("accuracy",), "mrpc": ("accuracy", "f1"), "cola": ("mcc",),
           "cb": ("macro_f1", "accuracy"), "stsb": ("pearson", "spearman")}


def run_record(method: str = "compacter", task: str = "sst2", seed: int = 1, score: float = 80.0, *,
               train_size: int | None = None, status: str = "ok", backbone: str = "minilm", profile: str = "cpu",
               **fields) -> RunRecord:
    """One run: ``score`` on every metric of ``task`` (accuracy for a task not listed; a failed run:
    none, and an error); ``fields`` set or override any other field of the record."""
    failed = status != "ok"
    record = {"run_id": f"{backbone}-{method}-{task}-n{train_size or 'full'}-s{seed}", "profile": profile,
              "backbone": backbone, "method": method, "task": task, "train_size": train_size, "seed": seed,
              "status": status, "error": "diverged" if failed else None,
              "test": {} if failed else {metric: score for metric in METRICS.get(task, ("accuracy",))},
              "trainable_params": 1000, "total_params": 100000, "trainable_percent": 1.0}
    return RunRecord.parse({**record, **fields}, "tests/run_records.py")


def raw(record: RunRecord) -> dict:
    """The record as its JSON file holds it (for tests that break it on purpose)."""
    return json.loads(record.to_json())


def frame(*records: RunRecord):
    """The records as the analysis reads them (``analysis.records``)."""
    return to_frame(row_of(record, record.run_id) for record in records)


def write(directory: Path, *records: RunRecord | dict) -> Path:
    """A results folder of ``<run_id>.json`` files (a dict is written as it is)."""
    directory.mkdir(parents=True, exist_ok=True)
    for record in records:
        data = record if isinstance(record, dict) else raw(record)
        (directory / f"{data['run_id']}.json").write_text(json.dumps(data))
    return directory
