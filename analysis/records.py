"""Run records -> one pandas DataFrame, from a results folder or from W&B.

The analysis reads nothing but these records (never the training code), so the tables can
be rebuilt on any machine from a copied results folder or a W&B project. Every record is
validated here, and a bad one stops the analysis with its source named: a silently skipped
run would otherwise turn into a silently smaller table.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from analysis import names
from catalog import task_score
from catalog.curves import still_improving
from catalog.record import RecordError, RunRecord

log = logging.getLogger(__name__)

# the record's numeric fields that become columns as they are (the rest: identity, scores, text)
NUMERIC = tuple(name for name, info in RunRecord.model_fields.items()
                if info.annotation in (float | None, int | None) and name not in ("train_size", "data_seed"))
SCORE_FIELDS = {"val": "val", "test": "test", "chance_test": "chance"}  # record field -> column prefix
# One experiment; several records of it mean it was re-run (profile kept apart on purpose).
RUN_KEY = ("profile", "backbone", "method", "task", "train_size", "seed")
BASE_COLUMNS = (
    "run_id", "profile", "backbone", "method", "task", "benchmark", "train_size", "seed",
    "data_seed", "status", "error", "started_at", "finished_at", "machine", "config", "provenance", "source",
    "chance_score", "step_time_s", "outside_steps_s", "still_improving", "val_curve", "train_loss_curve", *NUMERIC,
)
# W&B run states that carry no final record yet.
WANDB_UNFINISHED = ("running", "pending", "preempting")


def load_records(results_dir: str | Path, keep_reruns: bool = False) -> pd.DataFrame:
    """Read every ``<run_id>.json`` in ``results_dir`` (hidden temp files skipped).

    ``keep_reruns``: keep every record, also several of one (method, task, size, seed) with
    different hyper-parameters, as a search wants; tables keep only the newest."""
    directory = Path(results_dir)
    if not directory.is_dir():
        raise FileNotFoundError(f"results directory not found: {directory}")
    rows = []
    for path in sorted(directory.glob("*.json")):
        if path.name.startswith("."):
            continue
        rows.append(row_of(RunRecord.read(path), source=str(path)))
    return to_frame(rows, keep_reruns)


def load_wandb(path: str, filters: Mapping[str, Any] | None = None, api: Any = None) -> pd.DataFrame:
    """Read the runs of W&B project ``path`` ("entity/project") through the public API.

    ``api`` defaults to ``wandb.Api()``; tests pass a stand-in. Runs still in progress are
    skipped: they have no final scores yet.
    """
    import wandb  # imported here: only this loader needs it, and it is slow to import

    try:
        api = api or wandb.Api()
        runs = list(api.runs(path, filters=dict(filters) if filters else None))
    except wandb.errors.Error as err:  # not logged in, no such project, no network
        raise RecordError(f"W&B project {path}: {err}") from err
    rows = []
    for run in runs:
        if getattr(run, "state", None) in WANDB_UNFINISHED:
            log.info("skipping W&B run %s: still %s", run.id, run.state)
            continue
        source = f"wandb:{path}/{run.id}"
        rows.append(row_of(RunRecord.parse(wandb_record(run), source), source))
    return to_frame(rows)


def wandb_record(run: Any) -> dict[str, Any]:
    """Rebuild a record from a W&B run: fields from ``run.summary`` (final values) over
    ``run.config``. Scores may be logged nested (``test: {accuracy: ..}``) or flat
    (``test/accuracy``, ``test.accuracy``). The run's group, job type and id stand in for
    profile, task and run id when the logged fields lack them (``experiments.run.tracking.make_wandb_logger``)."""
    config = _as_dicts(run.config)
    record = {**config, **_as_dicts(run.summary)}
    for split in SCORE_FIELDS:
        scores = dict(record.get(split) or {})
        for key, value in record.items():
            for sep in ("/", "."):
                if key.startswith(split + sep):
                    scores.setdefault(key[len(split) + 1:], value)
        record[split] = scores
    record.setdefault("run_id", run.id)
    record.setdefault("profile", getattr(run, "group", None))
    record.setdefault("task", getattr(run, "job_type", None))
    record.setdefault("status", "ok" if getattr(run, "state", None) == "finished" else "failed")
    record["config"] = config.get("config", config)
    return {key: value for key, value in record.items() if key in RunRecord.model_fields}  # not W&B's own keys


def _as_dicts(value: Any) -> Any:
    """W&B summaries are dict-like objects, nested; turn them into plain dicts."""
    if hasattr(value, "items"):
        return {key: _as_dicts(item) for key, item in value.items()}
    return value


def normalise(raw: Any, source: str) -> dict[str, Any]:
    """A decoded record (a JSON object) validated, as one flat row."""
    return row_of(RunRecord.parse(raw, source), source)


def row_of(record: RunRecord, source: str) -> dict[str, Any]:
    """One flat row: identity, numbers, and per-metric scores as ``test.<metric>``."""
    row: dict[str, Any] = {
        **record.model_dump(include={"run_id", "profile", "backbone", "method", "task", "train_size", "seed",
                                     "status", "error", "started_at", "finished_at", *NUMERIC}),
        "benchmark": record.benchmark or names.benchmark_of(record.task),
        "data_seed": record.data_seed if record.data_seed is not None else record.config.get("data_seed"),
        "machine": describe_machine(record.machine),
        "config": dict(record.config),
        "provenance": dict(record.provenance),
        "source": source,
    }
    row["step_time_s"] = record.step_time_s  # derived: what the dashboard's Pareto may put on its x axis
    # derived: the run's wall time spent outside its optimizer steps (start-up, data, validation, test)
    row["outside_steps_s"] = (record.wall_time_s - record.train_time_s
                              if record.wall_time_s is not None and record.train_time_s is not None else None)
    for part, seconds in record.seconds.items():  # setup / fit / train / validation / test
        row[f"seconds.{part}"] = seconds
    improving = still_improving(record.val_curve, record.task)
    row["still_improving"] = None if improving is None else float(improving)
    row["val_curve"], row["train_loss_curve"] = [list(p) for p in record.val_curve], [list(p) for p in record.train_loss_curve]
    for field in (*NUMERIC, "step_time_s", "outside_steps_s", "still_improving"):
        row[field] = math.nan if row[field] is None else float(row[field])
    for field, prefix in SCORE_FIELDS.items():
        for metric, value in getattr(record, field).items():
            row[f"{prefix}.{metric}"] = value
    # the majority class (mean for regression) of the run's training examples, scored on its test split
    row["chance_score"] = task_score(record.chance_test)
    if math.isnan(row["test_score"]):  # the record's own score wins; else the task's mean
        metrics = names.task_metrics(record.task, record.test)
        row["test_score"] = task_score({m: record.test.get(m) for m in metrics}) if metrics else math.nan
    return row


def describe_machine(machine: Any) -> str | None:
    """One readable line per machine, so the README can count runs per machine."""
    if not machine:
        return None
    if not isinstance(machine, Mapping):
        return str(machine)
    parts = [f"{key} {value}" for key, value in machine.items() if value not in (None, "")]
    return ", ".join(parts) or None


def to_frame(rows: Iterable[dict[str, Any]], keep_reruns: bool = False) -> pd.DataFrame:
    """Rows -> DataFrame with stable dtypes, duplicates of one experiment resolved
    (unless ``keep_reruns``)."""
    frame = pd.DataFrame(list(rows))
    for column in BASE_COLUMNS:
        if column not in frame.columns:
            frame[column] = pd.Series(dtype=object)
    frame["train_size"] = frame["train_size"].astype("Int64")
    for column in ("seed", "data_seed"):
        frame[column] = frame[column].astype("Int64")
    for column in ("started_at", "finished_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True, errors="coerce", format="ISO8601")
    return frame if keep_reruns else drop_duplicates(frame)


def drop_duplicates(frame: pd.DataFrame) -> pd.DataFrame:
    """Keep the newest ``finished_at`` per experiment: a re-run supersedes the old one.

    The same run seen twice (a local record and its W&B copy) is dropped silently; a true
    re-run is reported, since it means the old result is being discarded.
    """
    frame = frame.drop_duplicates(["run_id", *RUN_KEY], keep="first")
    ordered = frame.sort_values("finished_at", na_position="first", kind="stable")
    stale = ordered.duplicated(list(RUN_KEY), keep="last")
    for _, row in ordered[stale].iterrows():
        log.warning(
            "several records for %s %s %s train_size=%s seed=%s: keeping the newest "
            "(finished_at), ignoring %s", row.backbone, row.method, row.task,
            names.size_label(row.train_size), row.seed, row.source,
        )
    return ordered[~stale].sort_index().reset_index(drop=True)
