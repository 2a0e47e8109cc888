"""The efficiency benchmark's results: per-round rows → ratios to finetune of the same round,
per-method medians, ranges over rounds and verdicts, and the files ``experiments.bench`` writes
(efficiency_rounds.csv, efficiency.csv, efficiency.md). Pure: no measuring, no processes."""

from __future__ import annotations

import csv
import math
import statistics
from pathlib import Path

from experiments.bench.measure import command_line, machine, now

ROUND_COLUMNS = ["round", "backbone", "method", "device", "threads", "trainable_params", "train_step_s",
                 "train_step_ratio", "peak_mem_mb", "peak_mem_ratio", "infer_s", "infer_ratio", "rss_before_train_mb",
                 "peak_rss_total_mb", "batch", "source_len", "target_len", "steps", "warmup", "other_load",
                 "process_s", "status"]
RATIOS = {"train_step_ratio": "train_step_s", "peak_mem_ratio": "peak_mem_mb", "infer_ratio": "infer_s"}
# the ratios that vary between processes: each gets its range over rounds and a verdict against finetune
SPREAD = {"train_step_ratio": "train_vs_finetune", "infer_ratio": "infer_vs_finetune"}
MEDIANS = ["train_step_s", "train_step_ratio", "peak_mem_mb", "peak_mem_ratio", "infer_s", "infer_ratio",
           "rss_before_train_mb", "peak_rss_total_mb"]
COLUMNS = ["backbone", "method", "device", "threads", "trainable_params", "rounds", "train_step_s",
           "train_step_ratio", "train_step_ratio_lo", "train_step_ratio_hi", "train_vs_finetune", "train_overlaps",
           "peak_mem_mb", "peak_mem_ratio", "infer_s", "infer_ratio", "infer_ratio_lo", "infer_ratio_hi",
           "infer_vs_finetune", "rss_before_train_mb", "peak_rss_total_mb", "batch", "source_len", "target_len",
           "steps", "warmup", "other_load", "status"]
# the claims the README makes about these pairs' train steps (efficiency.md says whether the rounds support them)
PAIRS = [("compacter", "compacterpp"), ("adapter", "compacter"), ("adapter", "compacterpp")]
WORKLOAD_COLUMNS = ("batch", "source_len", "target_len", "steps", "warmup")  # efficiency.md states them once

# A backslash at a line's end joins it with the next: one Markdown line per paragraph.
def report_text(*, command, coverage, cpu, date, devices, memory_rounds, memory_steps, minutes, os, pairs, python, rounds, table, threads, torch, transformers, workloads) -> str:
    """efficiency.md: machine, date, command, the rules the numbers follow, pairs, table."""
    return f"""\
# Efficiency benchmark

- Date: {date}; wall time {minutes} min
{command}
- Machine: {cpu}; {os}; Python {python}, torch {torch}, transformers {transformers}
- Device: {devices}; torch threads: {threads} (all cores of the process)
- Rounds: {rounds}, each running every method in a fresh process, forward (finetune first) in rounds \
0, 2, … and reversed (finetune last) in rounds 1, 3, …, so that a drift in machine speed cancels out of \
the ratios; the memory phase runs in the first {memory_rounds} round(s) (memory is deterministic)
{workloads}

Ratios divide by `finetune` of the same backbone **in the same round**; `train_step_s`, `infer_s`, \
`peak_mem_mb` and every ratio are medians over the `rounds` that measured them. \
`train_step_ratio_lo`–`_hi` and `infer_ratio_lo`–`_hi`: the ratio's range (min–max) over the rounds; \
for n independent rounds it contains the median ratio with probability 1 − 2^(1−n) (here \
{coverage}). `train_vs_finetune` / `infer_vs_finetune`: faster or slower where the \
range lies entirely below or above 1.0, indistinguishable where it includes 1.0. `train_overlaps`: \
the other methods whose train-step ratio range overlaps this one's — indistinguishable from it. \
Per-round values: `efficiency_rounds.csv`.

`train_step_s`: forward + loss + backward + AdamW step over the trainable parameters only. \
`infer_s`: one forward of the batch, `model.eval()`, `torch.no_grad()` (teacher-forced for T5). \
`peak_mem_mb`: CUDA: `torch.cuda.max_memory_allocated`; CPU: the process's peak RSS (`ru_maxrss`, \
nothing subtracted: interpreter, torch, weights, activations, gradients, AdamW state) up to the end of \
the memory phase ({memory_steps} training steps + 1 eval forward), run with glibc's mmap threshold \
fixed at 1 MiB so that freed tensors are unmapped at once and RSS follows the live tensors. The timed \
steps then keep freed memory for reuse (no page faults per step), which grows the heap: \
`peak_rss_total_mb` is the whole-life peak RSS including them. `rss_before_train_mb`: peak RSS \
with the backbone built and adapted, before the first step. `other_load`: the most cores other \
processes used while one of the row's processes ran — wall-clock times are inflated where it is not ≈ 0.

{pairs}## Table

{table}
"""


def with_ratios(rows: list[dict]) -> list[dict]:
    """Rows with every ``ROUND_COLUMNS`` column, plus ``<x>_ratio = x / x(finetune)`` of the same
    round and backbone (NaN where that finetune failed or measured no x)."""
    finetune = {(row["round"], row["backbone"]): row for row in rows
                if row["method"] == "finetune" and row["status"] == "ok"}
    out = []
    for row in rows:
        base = finetune.get((row["round"], row["backbone"]))
        ratios = {ratio: row[column] / base[column] if row["status"] == "ok" and base else math.nan
                  for ratio, column in RATIOS.items()}
        out.append({column: {**row, **ratios}.get(column, math.nan) for column in ROUND_COLUMNS})
    return out


def summarize(rows: list[dict]) -> list[dict]:
    """One ``COLUMNS`` row per (backbone, method) of the per-round rows (``with_ratios``), in run order."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["backbone"], row["method"]), []).append(row)
    summary = [aggregate(group) for group in groups.values()]
    for row in summary:
        row["train_overlaps"] = " ".join(
            other["method"] for other in summary if other["backbone"] == row["backbone"]
            and other["method"] not in ("finetune", row["method"]) and overlap(row, other))
    return summary


def aggregate(rounds: list[dict]) -> dict:
    """One method's rounds: medians over its ok rounds (memory: over those with the memory phase),
    each varying ratio's range (``_lo``, ``_hi``) and verdict; status: the first failure's, if any."""
    ok = [row for row in rounds if row["status"] == "ok"]
    failures = [row["status"] for row in rounds if row["status"] != "ok"]
    summary = {column: (ok or rounds)[0].get(column, math.nan) for column in COLUMNS}
    summary.update({column: median(row[column] for row in ok) for column in MEDIANS})
    for ratio, verdict_column in SPREAD.items():
        ratios = finite(row[ratio] for row in ok)
        summary[f"{ratio}_lo"], summary[f"{ratio}_hi"] = (min(ratios), max(ratios)) if ratios else (math.nan,) * 2
        summary[verdict_column] = "baseline" if summary["method"] == "finetune" else verdict(ratios)
    summary.update(rounds=len(ok), other_load=max(finite(row["other_load"] for row in ok), default=math.nan),
                   status=failures[0] if failures else "ok")
    return summary


def finite(values) -> list[float]:
    return [value for value in values if not math.isnan(value)]


def median(values) -> float:
    values = finite(values)
    return statistics.median(values) if values else math.nan


def verdict(ratios: list[float]) -> str:
    """'faster' / 'slower' than finetune where every round's ratio is below / above 1.0 (the range
    excludes 1.0), 'indistinguishable' where the range includes it; 'single round': no range."""
    if len(ratios) < 2:
        return "single round"
    return "faster" if max(ratios) < 1.0 else "slower" if min(ratios) > 1.0 else "indistinguishable"


def overlap(a: dict, b: dict, ratio: str = "train_step_ratio") -> bool:
    """Whether two summary rows' ranges of ``ratio`` over rounds overlap (False where one is NaN)."""
    return a[f"{ratio}_lo"] <= b[f"{ratio}_hi"] and b[f"{ratio}_lo"] <= a[f"{ratio}_hi"]


def pair_line(a: dict, b: dict) -> str:
    """'compacter vs compacterpp: indistinguishable (…)' — the two train-step ratio ranges compared."""
    ranges = (f"train-step ratio ranges [{a['train_step_ratio_lo']:.3f}, {a['train_step_ratio_hi']:.3f}] and "
              f"[{b['train_step_ratio_lo']:.3f}, {b['train_step_ratio_hi']:.3f}]")
    if "single round" in (a["train_vs_finetune"], b["train_vs_finetune"]) or math.isnan(a["train_step_ratio_lo"] +
                                                                                      b["train_step_ratio_lo"]):
        return f"{a['method']} vs {b['method']}: not comparable ({ranges}: fewer than two rounds)"
    if overlap(a, b):
        return f"{a['method']} vs {b['method']}: indistinguishable ({ranges} overlap)"
    faster, slower = (a, b) if a["train_step_ratio_hi"] < b["train_step_ratio_lo"] else (b, a)
    return f"{a['method']} vs {b['method']}: {faster['method']} faster than {slower['method']} ({ranges} are disjoint)"


def pair_lines(summary: list[dict]) -> list[str]:
    """``PAIRS``' verdicts per backbone, where both methods were measured."""
    rows = {(row["backbone"], row["method"]): row for row in summary}
    return [f"- `{backbone}`: {pair_line(rows[backbone, a], rows[backbone, b])}"
            for backbone in dict.fromkeys(row["backbone"] for row in summary) for a, b in PAIRS
            if (backbone, a) in rows and (backbone, b) in rows]


def workload_line(row: dict) -> str:
    """A backbone's batch and steps per process, from its finetune row."""
    target = f" → {row['target_len']} target tokens" if row["target_len"] else ""
    return (f"- `{row['backbone']}`: batch {row['batch']} × {row['source_len']} source tokens{target}; per process: "
            f"the memory phase where it runs, {row['warmup']} warm-up step(s), median of {row['steps']} timed "
            "training step(s) and of as many eval forwards (after one warm-up forward)")


def write_csv(path: Path, columns: list[str], rows: list[dict]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows({k: f"{v:.4f}" if isinstance(v, float) else v for k, v in row.items()} for row in rows)


def write_outputs(out: Path, rows: list[dict], argv: list[str], elapsed: float, rounds: int, memory_rounds: int,
                  memory_steps: int, single: list[str]) -> None:
    """efficiency_rounds.csv (one row per round, backbone and method), efficiency.csv (one per
    backbone and method: ``summarize``) and efficiency.md (``report_text``: machine, date, command, rules,
    pairs, table). ``single``: the (backbone, method)s measured in the first round only, as
    ``"`backbone` method"``; ``memory_steps``: the training steps of the memory phase."""
    from tabulate import tabulate  # parent only: a child's peak RSS holds every module it imports

    out.mkdir(parents=True, exist_ok=True)
    rows = with_ratios(rows)
    summary = summarize(rows)
    write_csv(out / "efficiency_rounds.csv", ROUND_COLUMNS, rows)
    write_csv(out / "efficiency.csv", COLUMNS, summary)
    shown = [c for c in COLUMNS if c not in WORKLOAD_COLUMNS]
    workloads = [workload_line(row) for row in summary if row["method"] == "finetune"]
    if single:
        workloads.append(f"- In the first round only (memory phase, then one timed step): {', '.join(single)}")
    pairs = pair_lines(summary)
    info = machine()
    (out / "efficiency.md").write_text(report_text(
        date=now(), minutes=f"{elapsed / 60:.1f}", command=command_line("experiments.bench", argv),
        cpu=info["cpu"], os=info["os"], python=info["python"], torch=info["torch"],
        transformers=info["transformers"], devices=", ".join(sorted({row["device"] for row in rows})),
        threads=", ".join(map(str, sorted({row["threads"] for row in rows if row["status"] == "ok"}))),
        rounds=rounds, memory_rounds=memory_rounds, workloads="\n".join(workloads),
        coverage=f"{1 - 2 ** (1 - rounds):.0%}", memory_steps=memory_steps,
        pairs="".join(["## Train step, pairs\n\n", *(line + "\n" for line in pairs), "\n"]) if pairs else "",
        table=tabulate([[row[c] for c in shown] for row in summary], headers=shown, tablefmt="github",
                       floatfmt=".3f")))
