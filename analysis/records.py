"""Run records -> one pandas DataFrame, from a results folder or from W&B.

The analysis reads nothing but these records (never the training code), so the tables can
be rebuilt on any machine from a copied results folder or a W&B project. Every record is
validated here, and a bad one stops the analysis with its source named: a silently skipped
run would otherwise turn into a silently smaller table.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from analysis import names

log = logging.getLogger(__name__)

REQUIRED = ("run_id", "backbone", "method", "task", "seed", "status")
NUMERIC = (
    "trainable_params", "total_params", "trainable_percent", "val_score", "test_score",
    "epochs", "wall_time_s", "time_per_epoch_s", "peak_mem_mb", "checkpoint_bytes", "step_time_s",
)
SPLITS = ("val", "test")
STATUSES = ("ok", "failed")
# One experiment; several records of it mean it was re-run (profile kept apart on purpose).
RUN_KEY = ("profile", "backbone", "method", "task", "train_size", "seed")
BASE_COLUMNS = (
    "run_id", "profile", "backbone", "method", "task", "benchmark", "train_size", "seed",
    "data_seed", "status", "error", "started_at", "finished_at", "machine", "config", "provenance", "source",
    "chance_score", *NUMERIC,
)
# W&B run states that carry no final record yet.
WANDB_UNFINISHED = ("running", "pending", "preempting")


class RecordError(ValueError):
    """An input the analysis cannot use; the message names the file or W&B run."""


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
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise RecordError(f"{path}: corrupt run record, not valid JSON ({err})") from err
        rows.append(normalise(raw, source=str(path)))
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
        rows.append(normalise(wandb_record(run), source=f"wandb:{path}/{run.id}"))
    return to_frame(rows)


def wandb_record(run: Any) -> dict[str, Any]:
    """Rebuild a record from a W&B run: fields from ``run.summary`` (final values) over
    ``run.config``. Scores may be logged nested (``test: {accuracy: ..}``) or flat
    (``test/accuracy``, ``test.accuracy``). The run's group, job type and id stand in for
    profile, task and run id when the logged fields lack them (DESIGN.md's W&B layout)."""
    config = _plain(run.config)
    record = {**config, **_plain(run.summary)}
    for split in SPLITS:
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
    return record


def _plain(value: Any) -> Any:
    """W&B summaries are dict-like objects, nested; turn them into plain dicts."""
    if hasattr(value, "items"):
        return {key: _plain(item) for key, item in value.items()}
    return value


def normalise(raw: Any, source: str) -> dict[str, Any]:
    """One flat row: identity, numbers, and per-metric scores as ``test.<metric>``."""
    if not isinstance(raw, Mapping):
        raise RecordError(f"{source}: a run record must be a JSON object")
    missing = [field for field in REQUIRED if raw.get(field) is None]
    if missing:
        raise RecordError(f"{source}: run record lacks {', '.join(missing)}")
    if raw["status"] not in STATUSES:
        raise RecordError(f"{source}: status {raw['status']!r} is not one of {STATUSES}")
    task = str(raw["task"])
    row: dict[str, Any] = {
        "run_id": str(raw["run_id"]),
        "profile": raw.get("profile"),
        "backbone": str(raw["backbone"]),
        "method": str(raw["method"]),
        "task": task,
        "benchmark": raw.get("benchmark") or names.benchmark_of(task),
        "train_size": _integer(raw.get("train_size"), "train_size", source),
        "seed": _integer(raw["seed"], "seed", source),
        # records written before data_seed existed have none: left empty, never guessed
        "data_seed": _integer(raw.get("data_seed", (raw.get("config") or {}).get("data_seed")), "data_seed", source),
        "status": raw["status"],
        "error": raw.get("error"),
        "started_at": raw.get("started_at"),
        "finished_at": raw.get("finished_at"),
        "machine": describe_machine(raw.get("machine")),
        "config": dict(raw.get("config") or {}),
        "provenance": dict(raw.get("provenance") or {}),
        "source": source,
    }
    for field in NUMERIC:
        row[field] = _number(raw.get(field), field, source)
    # chance_test: the majority class (mean for regression) of the run's training examples,
    # scored by the run on its test split; older records have none
    for field, prefix in (*((split, split) for split in SPLITS), ("chance_test", "chance")):
        scores = raw.get(field) or {}
        if not isinstance(scores, Mapping):
            raise RecordError(f"{source}: {field!r} must map metric names to scores")
        for metric, value in scores.items():
            row[f"{prefix}.{metric}"] = _number(value, f"{field}.{metric}", source)
    chance = raw.get("chance_test") or {}
    row["chance_score"] = sum(row[f"chance.{m}"] for m in chance) / len(chance) if chance else float("nan")
    if pd.isna(row["test_score"]):  # the record's own score wins; else the task's mean
        metrics = [row.get(f"test.{m}") for m in names.task_metrics(task, raw.get("test") or {})]
        if metrics and not any(m is None or pd.isna(m) for m in metrics):
            row["test_score"] = sum(metrics) / len(metrics)
    return row


def _number(value: Any, field: str, source: str) -> float:
    if value is None:
        return float("nan")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RecordError(f"{source}: {field} must be a number, got {value!r}")
    return float(value)


def _integer(value: Any, field: str, source: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise RecordError(f"{source}: {field} must be an integer, got {value!r}")
    return int(value)


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
            "full" if pd.isna(row.train_size) else row.train_size, row.seed, row.source,
        )
    return ordered[~stale].sort_index().reset_index(drop=True)
