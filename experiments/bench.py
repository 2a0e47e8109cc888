"""`make bench`: training-step time, peak memory and eval latency of every method, × finetune.

For each round, backbone and method a FRESH child process (``--child``) builds the
backbone, applies the method with its default options (``configs/methods/<method>.yaml``)
and, on one fixed batch of seeded random token ids, runs

1. in the first ``--memory-rounds`` round(s) only, a memory phase: two training steps (the
   second is the first to hold AdamW state) and one eval forward; its peak is ``peak_mem_mb``;
2. ``warmup`` discarded training steps, then ``steps`` timed ones — forward with loss,
   backward, AdamW step over the trainable parameters only, ``zero_grad(set_to_none=True)``;
3. one warm-up and ``steps`` timed eval forwards — ``model.eval()`` under ``torch.no_grad()``
   (teacher-forced for T5; also what lets PHMLinear reuse its cached W).

Memory on CUDA: ``torch.cuda.max_memory_allocated``. On CPU: the child's peak RSS
(``ru_maxrss``: interpreter, torch, weights, activations, gradients, optimizer state; nothing
subtracted). glibc's default heap keeps freed tensor memory mapped, so peak RSS would measure
heap fragmentation as much as the method; the memory phase therefore runs with a fixed 1 MiB
mmap threshold (freed tensors go back to the OS at once, RSS follows the live tensors as
``max_memory_allocated`` does), and the timed phases with freed memory kept for reuse (no page
faults per step — as a caching allocator does). ``peak_rss_total_mb`` is the whole-life peak.
Memory is deterministic: two rounds of finetune and adapter on minilm gave peaks 0.2 and 1.2 MB
apart (of 1797 and 1479 MB), so one round measures it.

Rounds. Step times vary by ±10-15 % between fresh processes on the shared 2-core VM (one round
once measured Compacter++, with half of Compacter's adapters, slower than Compacter), so every
round runs every method again, finetune included, and a ratio divides by finetune of the same
backbone in the same round. Even rounds run the methods forward (finetune first), odd ones
reversed (finetune last): a drift in machine speed over the invocation cancels out of the
ratios (``schedule``). Per method: medians over the rounds, and each time ratio's range
(min–max) over the rounds, flagged faster / slower than finetune where the range excludes 1.0
and indistinguishable where it includes it; methods whose ranges overlap are indistinguishable
from each other (``train_overlaps``, and efficiency.md's pairs). The range, not an IQR: the
range of n independent rounds contains the median ratio with probability 1 − 2^(1−n) (2: 50 %,
3: 75 %, 5: 94 %), an IQR of 5 rounds only with 62.5 % — too little to call a difference; and
n stays small here, see the budget. efficiency_rounds.csv keeps every round's values.

Time budget of ``make bench`` on the 2-core CPU (per-step costs from the single-round
report of 2026-11-26). A process costs its interpreter start (import torch + transformers
6.3 s; minilm built: 8.2 s, t5-base from config: 12.8 s) plus its steps. Steps per round and
method, summed over the methods: minilm training 39.8 s (finetune 3.1, prompt 5.9, intrinsic
7.2, the others 2.3-2.8), eval 10.8 s; t5-base without intrinsic 34.1 s and 12.6 s. A round
after the first, with 1 warm-up + 1 timed step and 2 eval forwards per process:
12 × 8.7 + 2 × 39.8 + 2 × 10.8 (minilm) + 11 × 13.3 + 2 × 34.1 + 2 × 12.6 (t5-base) ≈ 445 s
(startups and the 0.5 s idle check: 251 s of it — more rounds cost more than fewer steps
save). The first round adds the memory phase (2 steps + 1 forward: 171 s) and t5-base
Intrinsic-SAID (2 + 1 steps of 89 s, ≈ 283 s): ≈ 900 s. ``--rounds 3`` (the default):
≈ 900 + 2 × 445 = 1790 s = 30 min, plus phm_microbench ~2 min. That model explains only 20 of
the single round's measured 24.4 min (first steps, exits, the exact-mode memory phase: ~11 s
per process unaccounted); charged to every process, 3 rounds take ~40 min. ``process_s`` in
efficiency_rounds.csv gives each process's actual cost. Each further round: 7.5-12 min. Hence
3 rounds (forward, reversed, forward: a range that holds the median ratio with probability
75 %), 1 timed step per process (the processes, not the steps, vary), and t5-base
Intrinsic-SAID in the first round only.

    python -m experiments.bench
    python -m experiments.bench --rounds 5          # ranges with 94 % coverage, ~45-65 min
    python -m experiments.bench --backbones minilm --methods adapter compacter --rounds 3
    python -m experiments.bench --profile --backbones minilm --methods compacter   # where the time goes
"""

from __future__ import annotations

import argparse
import csv
import ctypes
import datetime
import json
import math
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

import torch
import transformers

import catalog
import compacter
from experiments.configs import method_config
from lightning_modules.backbones import load_model, resolve, t5_base_from_config

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
ROUNDS = 3  # of fresh processes per method: the docstring's time budget
MEMORY_STEPS = 2  # the second training step is the first with AdamW state: the steady-state peak

# Children start with glibc's mmap threshold fixed at 1 MiB: the memory phase (see the docstring).
CHILD_ENV = {"TRANSFORMERS_VERBOSITY": "error", "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TQDM_DISABLE": "1",
             "MALLOC_MMAP_THRESHOLD_": str(2**20)}
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc mallopt(3) parameter numbers


@dataclass(frozen=True)
class Workload:
    """One fixed batch and how often to run it. target_len 0 = encoder (class labels)."""

    batch: int
    source_len: int
    target_len: int
    steps: int    # timed training steps, and timed eval forwards
    warmup: int   # discarded training steps before the timed ones, after the memory phase where it runs


# minilm: 32 × 128 tokens. t5-base (223M parameters, random weights) on CPU: 4 × 128 → 8 tokens;
# on CUDA the paper-sized batch of 32. On CPU one timed step per process: the spread that matters
# is between processes (±10-15 % on the shared 2-core VM), and the rounds repeat processes (see
# the docstring's time budget). One warm-up step: the first step creates AdamW's state, so the timed
# one is the first to hold it (the memory phase's reason for two steps).
WORKLOADS = {
    ("minilm", "cpu"): Workload(32, 128, 0, steps=1, warmup=1),
    ("t5-base", "cpu"): Workload(4, 128, 8, steps=1, warmup=1),
    ("minilm", "cuda"): Workload(32, 128, 0, steps=10, warmup=3),
    ("t5-base", "cuda"): Workload(32, 128, 8, steps=10, warmup=3),
}
# Intrinsic-SAID re-projects all 223M T5-base weights through the Fastfood transform on every
# forward: 75-100 s per training step on the 2-core CPU. It runs in the first round only, with the
# memory phase (its warm-up) and one timed step: ~21× finetune needs no interval.
MINIMAL_ON_CPU = {("t5-base", "intrinsic")}


def default_workload(backbone: str, method: str, device: torch.device) -> Workload:
    """The fixed batch for a backbone on a device (a checkpoint path gets minilm's)."""
    base = WORKLOADS.get((backbone, device.type), WORKLOADS[("minilm", device.type)])
    if minimal(backbone, method, device):
        return replace(base, steps=1, warmup=0)
    return base


def minimal(backbone: str, method: str, device: torch.device) -> bool:
    return device.type == "cpu" and (backbone, method) in MINIMAL_ON_CPU


def schedule(backbones: list[str], methods: list[str], rounds: int, device: torch.device) -> list[tuple[int, str, str]]:
    """(round, backbone, method) in run order. Every round runs every backbone's methods, forward
    in even rounds and reversed in odd ones: a method measured after finetune in one round is
    measured before it in the next, so a drift in machine speed over the invocation cancels out of
    the ratios (ABBA counterbalancing). ``MINIMAL_ON_CPU`` methods run in round 0 only."""
    return [(round_, backbone, method) for round_ in range(rounds) for backbone in backbones
            for method in (methods if round_ % 2 == 0 else methods[::-1])
            if round_ == 0 or not minimal(backbone, method, device)]


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def set_threads() -> int:
    """All cores this process may run on; recorded in the output."""
    torch.set_num_threads(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count())
    return torch.get_num_threads()


def keep_freed_memory() -> bool:
    """glibc: serve allocations ≤ 32 MiB from the heap and never trim it (True if applied)."""
    if platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(None)
    return libc.mallopt(M_MMAP_THRESHOLD, 32 * 2**20) == 1 and libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1) == 1


def make_batch(model: torch.nn.Module, workload: Workload, device: torch.device) -> dict[str, torch.Tensor]:
    """Seeded random ids (repeatable), labels: class indices (encoders) or target ids (T5)."""
    generator = torch.Generator().manual_seed(0)
    vocab = model.config.vocab_size
    ids = torch.randint(2, vocab, (workload.batch, workload.source_len), generator=generator)
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    if workload.target_len:
        batch["labels"] = torch.randint(2, vocab, (workload.batch, workload.target_len), generator=generator)
    else:
        batch["labels"] = torch.randint(0, model.config.num_labels, (workload.batch,), generator=generator)
    return {k: v.to(device) for k, v in batch.items()}


def eval_inputs(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The batch without labels; seq2seq models get the teacher-forced decoder inputs instead."""
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    if model.config.is_encoder_decoder:
        inputs["decoder_input_ids"] = model.prepare_decoder_input_ids_from_labels(labels=batch["labels"])
    return inputs


def timed(fn: Callable[[], object], count: int, device: torch.device) -> list[float]:
    """Seconds of each of ``count`` calls of ``fn``.

    Not ``torch.utils.benchmark.Timer``: its ``timeit`` adds hidden warm-up calls (extra training
    steps inside the memory phase), ``blocked_autorange`` picks the number of calls itself, and
    neither gives the per-call times whose median the reports state."""
    times = []
    for _ in range(count):
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return times


def make_train_step(model: torch.nn.Module, batch: dict, learning_rate: float) -> Callable[[], None]:
    """Forward with loss, backward, AdamW step over the trainable parameters only (frozen
    weights get no gradient and no optimizer state), gradients freed."""
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=learning_rate)

    def train_step() -> None:
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return train_step


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def measure(model: torch.nn.Module, method: str, options: dict, workload: Workload, device: torch.device,
            learning_rate: float = 3e-4, switch_allocator: bool = False, memory_phase: bool = True,
            library_method: str | None = None) -> dict:
    """Apply ``method`` to ``model``, run the phases; one result row without the ratios.

    ``memory_phase`` False: none, ``peak_mem_mb`` NaN (the benchmark measures memory in its first
    round only). ``switch_allocator``: the process started in glibc's exact mode (``CHILD_ENV``);
    switch to keeping freed memory for the timed phases. In-process (tests) peak RSS is the
    process's peak so far: only a fresh process gives the method's own peak."""
    if workload.steps < 1 or workload.warmup + memory_phase * MEMORY_STEPS < 1:
        raise ValueError(f"need steps ≥ 1 and a training step before the timed ones (warmup ≥ 1 without the "
                         f"memory phase: the first step creates AdamW's state), got {workload}")
    compacter.apply(model, library_method or method, **options)  # a method config may name another (lora: peft)
    model.to(device)
    batch = make_batch(model, workload, device)
    train_step, inputs = make_train_step(model, batch, learning_rate), eval_inputs(model, batch)

    def eval_forward() -> None:
        with torch.no_grad():
            model(**inputs)

    rss_before = peak_rss_mb()
    peak = memory_peak(model, train_step, eval_forward, device) if memory_phase else math.nan
    if switch_allocator and device.type == "cpu":
        keep_freed_memory()
    model.train()
    train_times = timed(train_step, workload.warmup + workload.steps, device)
    model.eval()
    infer_times = timed(eval_forward, 1 + workload.steps, device)
    return {"method": method, "device": device.type, "threads": torch.get_num_threads(),
            "trainable_params": compacter.count_parameters(model).trainable,
            "train_step_s": statistics.median(train_times[-workload.steps:]), "peak_mem_mb": peak,
            "infer_s": statistics.median(infer_times[1:]), "rss_before_train_mb": rss_before,
            "peak_rss_total_mb": peak_rss_mb(), **asdict(workload), "status": "ok"}


def memory_peak(model: torch.nn.Module, train_step: Callable[[], None], eval_forward: Callable[[], None],
                device: torch.device) -> float:
    """The memory phase: ``MEMORY_STEPS`` training steps and one eval forward; their peak in MB."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    model.train()
    timed(train_step, MEMORY_STEPS, device)
    model.eval()
    timed(eval_forward, 1, device)
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else peak_rss_mb()


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


def build_backbone(name: str) -> torch.nn.Module:
    if name == "t5-base":
        return t5_base_from_config()
    backbone = resolve(name)
    return load_model(backbone, None if backbone.kind == "seq2seq" else "classification", 2)


# the paper's rows (prompt_r: the same layers as prompt) and LoRA, what reports/efficiency.md measures
DEFAULT_METHODS = ("finetune", "adapter", "pfeiffer", "adapterdrop", "lowrank", "phm", "compacter", "compacterpp",
                   "bitfit", "prompt", "intrinsic", "lora")


def method_settings(method: str) -> tuple[str, dict, float]:
    """The library method, its options and the learning rate of a method config
    (``configs/methods/<method>.yaml``; ``lora.yaml`` names the library method ``peft``)."""
    config = method_config(method)
    return (config.get("method", method), dict(config.get("method_options") or {}),
            float(config.get("learning_rate", 3e-4)))


def child(backbone: str, method: str, workload: Workload, memory_phase: bool) -> dict:
    """The body of one fresh process: seed, build, measure."""
    set_threads()
    torch.manual_seed(0)
    library, options, learning_rate = method_settings(method)
    row = measure(build_backbone(backbone), method, options, workload, pick_device(), learning_rate,
                  switch_allocator=True, memory_phase=memory_phase, library_method=library)
    return {"backbone": backbone, **row}


def profile_table(backbone: str, method: str, workload: Workload, rows: int = 25) -> str:
    """torch.profiler's operators of two training steps (after the warm-up), by self time."""
    from torch.profiler import ProfilerActivity, profile

    set_threads()
    torch.manual_seed(0)
    device = pick_device()
    library, options, learning_rate = method_settings(method)
    model = compacter.apply(build_backbone(backbone), library, **options).to(device).train()
    batch = make_batch(model, workload, device)
    train_step = make_train_step(model, batch, learning_rate)

    timed(train_step, MEMORY_STEPS + workload.warmup, device)  # as many steps as precede a measurement's
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        timed(train_step, 2, device)
    sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    table = prof.key_averages().table(sort_by=sort, row_limit=rows)
    return f"{backbone} {method}, {workload}, 2 training steps\n{table}"


def cpu_busy_s() -> float:
    """CPU seconds this machine has spent running processes since boot (Linux /proc/stat), NaN elsewhere."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]]
    except OSError:
        return math.nan
    user, nice, system, _idle, _iowait, irq, softirq = fields
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def other_load_meter(who: int) -> Callable[[], float]:
    """Start measuring; the returned function gives the cores *other* processes kept busy since:
    machine busy time minus the CPU time of ``who`` (``resource.RUSAGE_SELF`` or
    ``RUSAGE_CHILDREN``), over the wall time. Timings are only comparable where it is ≈ 0."""
    def own_cpu_s() -> float:
        usage = resource.getrusage(who)
        return usage.ru_utime + usage.ru_stime

    busy, own, start = cpu_busy_s(), own_cpu_s(), time.monotonic()
    return lambda: max(((cpu_busy_s() - busy) - (own_cpu_s() - own)) / (time.monotonic() - start), 0.0)


def wait_until_quiet(max_wait: float, threshold: float = 0.25) -> float:
    """Wait (≤ max_wait s) until other processes use < threshold cores; returns what they used last."""
    deadline, others = time.monotonic() + max_wait, math.nan
    while True:
        before = cpu_busy_s()
        time.sleep(0.5)
        others = (cpu_busy_s() - before) / 0.5
        if not others >= threshold or time.monotonic() >= deadline:
            return others


def run_child(backbone: str, method: str, workload: Workload, memory_phase: bool) -> dict:
    """One (backbone, method) in a fresh interpreter; a failure becomes a row with status 'failed: …'.

    ``other_load``: cores kept busy by *other* processes while the child ran (``other_load_meter``);
    ``process_s``: the child's wall time, interpreter start included (what a round costs)."""
    command = [sys.executable, "-m", "experiments.bench", "--child", "--backbones", backbone, "--methods", method,
               "--steps", str(workload.steps), "--warmup", str(workload.warmup)] + ["--memory-phase"] * memory_phase
    other_load, start = other_load_meter(resource.RUSAGE_CHILDREN), time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **CHILD_ENV})
    process_s = time.perf_counter() - start
    if done.returncode == 0:
        return {**json.loads(done.stdout.strip().splitlines()[-1]), "other_load": other_load(), "process_s": process_s}
    error = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
    print(f"  {backbone}/{method} failed: {error}\n{done.stderr[-2000:]}", file=sys.stderr)
    return {"backbone": backbone, "method": method, "device": pick_device().type, **asdict(workload),
            "process_s": process_s, "status": f"failed: {error}"[:200]}


def machine() -> dict[str, str]:
    """The run records' ``machine_info``, with what the benchmark reports add: core count, OS, transformers."""
    from experiments.run import machine_info  # parent only: children import nothing they do not measure

    info = machine_info()
    gpu = "" if info["device"] == "cpu" else f"; GPU: {info['device']}"
    return {**info, "cpu": f"{info['cpu']} × {os.cpu_count()} logical CPUs{gpu}", "os": platform.platform(),
            "transformers": transformers.__version__}


def write_csv(path: Path, columns: list[str], rows: list[dict]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows({k: f"{v:.4f}" if isinstance(v, float) else v for k, v in row.items()} for row in rows)


def pair_lines(summary: list[dict]) -> list[str]:
    """``PAIRS``' verdicts per backbone, where both methods were measured."""
    rows = {(row["backbone"], row["method"]): row for row in summary}
    return [f"- `{backbone}`: {pair_line(rows[backbone, a], rows[backbone, b])}"
            for backbone in dict.fromkeys(row["backbone"] for row in summary) for a, b in PAIRS
            if (backbone, a) in rows and (backbone, b) in rows]


def write_outputs(out: Path, rows: list[dict], argv: list[str], elapsed: float, rounds: int,
                  memory_rounds: int) -> None:
    """efficiency_rounds.csv (one row per round, backbone and method), efficiency.csv (one per
    backbone and method: ``summarize``) and efficiency.md (machine, date, command, rules, pairs, table)."""
    from tabulate import tabulate  # parent only: children import nothing they do not measure

    out.mkdir(parents=True, exist_ok=True)
    rows = with_ratios(rows)
    summary = summarize(rows)
    write_csv(out / "efficiency_rounds.csv", ROUND_COLUMNS, rows)
    write_csv(out / "efficiency.csv", COLUMNS, summary)
    info, shown = machine(), [c for c in COLUMNS if c not in ("batch", "source_len", "target_len", "steps", "warmup")]
    workloads = [row for row in summary if row["method"] == "finetune"]
    single = [f"`{row['backbone']}` {row['method']}" for row in summary
              if minimal(row["backbone"], row["method"], torch.device(row["device"]))]
    threads = sorted({row["threads"] for row in rows if row["status"] == "ok"})
    devices = sorted({row["device"] for row in rows})
    lines = [
        "# Efficiency benchmark", "",
        f"- Date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}; "
        f"wall time {elapsed / 60:.1f} min",
        f"- Command: `{shlex.join(['python', '-m', 'experiments.bench', *argv])}` "
        "(`make bench` runs it without arguments)",
        f"- Machine: {info['cpu']}; {info['os']}; Python {info['python']}, torch {info['torch']}, "
        f"transformers {info['transformers']}",
        f"- Device: {', '.join(devices)}; torch threads: {', '.join(map(str, threads))} (all cores of the process)",
        f"- Rounds: {rounds}, each running every method in a fresh process, forward (finetune first) in rounds "
        "0, 2, … and reversed (finetune last) in rounds 1, 3, …, so that a drift in machine speed cancels out of "
        f"the ratios; the memory phase runs in the first {memory_rounds} round(s) (memory is deterministic)",
        *(f"- `{w['backbone']}`: batch {w['batch']} × {w['source_len']} source tokens"
          + (f" → {w['target_len']} target tokens" if w["target_len"] else "")
          + f"; per process: the memory phase where it runs, {w['warmup']} warm-up step(s), median of {w['steps']} "
          "timed training step(s) and of as many eval forwards (after one warm-up forward)" for w in workloads),
        *([f"- In the first round only (memory phase, then one timed step): {', '.join(single)}"] if single else []),
        "",
        "Ratios divide by `finetune` of the same backbone **in the same round**; `train_step_s`, `infer_s`, "
        "`peak_mem_mb` and every ratio are medians over the `rounds` that measured them. "
        "`train_step_ratio_lo`–`_hi` and `infer_ratio_lo`–`_hi`: the ratio's range (min–max) over the rounds; "
        f"for n independent rounds it contains the median ratio with probability 1 − 2^(1−n) (here "
        f"{1 - 2 ** (1 - rounds):.0%}). `train_vs_finetune` / `infer_vs_finetune`: faster or slower where the "
        "range lies entirely below or above 1.0, indistinguishable where it includes 1.0. `train_overlaps`: "
        "the other methods whose train-step ratio range overlaps this one's — indistinguishable from it. "
        "Per-round values: `efficiency_rounds.csv`.", "",
        "`train_step_s`: forward + loss + backward + AdamW step over the trainable parameters only. "
        "`infer_s`: one forward of the batch, `model.eval()`, `torch.no_grad()` (teacher-forced for T5). "
        "`peak_mem_mb`: CUDA: `torch.cuda.max_memory_allocated`; CPU: the process's peak RSS (`ru_maxrss`, "
        "nothing subtracted: interpreter, torch, weights, activations, gradients, AdamW state) up to the end of "
        f"the memory phase ({MEMORY_STEPS} training steps + 1 eval forward), run with glibc's mmap threshold "
        "fixed at 1 MiB so that freed tensors are unmapped at once and RSS follows the live tensors. The timed "
        "steps then keep freed memory for reuse (no page faults per step), which grows the heap: "
        "`peak_rss_total_mb` is the whole-life peak RSS including them. `rss_before_train_mb`: peak RSS "
        "with the backbone built and adapted, before the first step. `other_load`: the most cores other "
        "processes used while one of the row's processes ran — wall-clock times are inflated where it is not ≈ 0.",
        "", *(["## Train step, pairs", "", *pairs, ""] if (pairs := pair_lines(summary)) else []), "## Table", "",
        tabulate([[row[c] for c in shown] for row in summary], headers=shown, tablefmt="github", floatfmt=".3f"), ""]
    (out / "efficiency.md").write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", nargs="+", default=["minilm", "t5-base"], help="minilm, t5-base or a checkpoint")
    parser.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS),
                        help="method configs (experiments/configs/methods/); finetune is always measured too")
    parser.add_argument("--rounds", type=int, default=ROUNDS,
                        help=f"rounds of fresh processes, every method in each (default {ROUNDS}; see the docstring)")
    parser.add_argument("--memory-rounds", type=int, default=1,
                        help="rounds (from the first) that run the memory phase (default 1: memory is deterministic)")
    parser.add_argument("--steps", type=int,
                        help="timed steps and eval forwards per process (default: per backbone and device: WORKLOADS)")
    parser.add_argument("--warmup", type=int,
                        help="discarded training steps after the memory phase (default: per backbone and device)")
    parser.add_argument("--out", type=Path, default=Path("reports"),
                        help="directory for efficiency.{csv,md} and efficiency_rounds.csv")
    parser.add_argument("--max-wait", type=float, default=10.0,
                        help="seconds to wait before each measurement for other processes to go idle")
    parser.add_argument("--profile", action="store_true",
                        help="instead of the benchmark: torch.profiler's operator table of two training steps of the "
                             "first backbone and method, in this process (where the time goes)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--memory-phase", action="store_true", help=argparse.SUPPRESS)  # children only
    args = parser.parse_args(argv)
    configs = [m.name for m in catalog.METHODS]
    unknown = sorted(set(args.methods) - set(configs))
    if unknown:
        parser.error(f"unknown method config(s) {unknown}; known: {', '.join(configs)}")
    if not 1 <= args.memory_rounds <= args.rounds:
        parser.error("need 1 ≤ --memory-rounds ≤ --rounds (the first round measures memory)")

    def workload(backbone: str, method: str) -> Workload:
        base = default_workload(backbone, method, pick_device())
        return replace(base, steps=args.steps or base.steps, warmup=base.warmup if args.warmup is None else args.warmup)

    if args.child:
        backbone, method = args.backbones[0], args.methods[0]
        print(json.dumps(child(backbone, method, workload(backbone, method), args.memory_phase)))
        return
    if args.profile:
        print(profile_table(args.backbones[0], args.methods[0], workload(args.backbones[0], args.methods[0])))
        return
    start = time.perf_counter()
    methods = ["finetune", *[m for m in dict.fromkeys(args.methods) if m != "finetune"]]
    rows = []
    for round_, backbone, method in schedule(args.backbones, methods, args.rounds, pick_device()):
        wait_until_quiet(args.max_wait)
        row = {"round": round_, **run_child(backbone, method, workload(backbone, method), round_ < args.memory_rounds)}
        rows.append(row)
        # rewritten after every row: an interrupted benchmark keeps what it measured
        write_outputs(args.out, rows, argv, time.perf_counter() - start, args.rounds, args.memory_rounds)
        print(f"[bench] round {round_} {backbone} {method} ({row['process_s']:.0f} s): " + (
            f"train {row['train_step_s']:.3f} s, peak {row['peak_mem_mb']:.0f} MB, infer {row['infer_s']:.3f} s, "
            f"other load {row['other_load']:.2f}" if row["status"] == "ok" else row["status"]),
            file=sys.stderr, flush=True)
    print(f"[bench] wrote {args.out / 'efficiency.csv'}, {args.out / 'efficiency_rounds.csv'} and "
          f"{args.out / 'efficiency.md'}", file=sys.stderr)


if __name__ == "__main__":
    main()
