"""`make bench`: training-step time, peak memory and eval latency of every method, × finetune.

For each backbone and method a FRESH child process (``--child``) builds the backbone,
applies the method with its default options (``configs/methods/<method>.yaml``) and,
on one fixed batch of seeded random token ids, runs

1. a memory phase: two training steps (the second is the first to hold AdamW state) and
   one eval forward; its peak is ``peak_mem_mb``;
2. the remaining warm-up steps, then ``steps`` timed training steps — forward with loss,
   backward, AdamW step over the trainable parameters only, ``zero_grad(set_to_none=True)``;
3. one warm-up and ``steps`` timed eval forwards — ``model.eval()`` under ``torch.no_grad()``
   (teacher-forced for T5; also what lets PHMLinear reuse its cached W).

Times are medians. Memory on CUDA: ``torch.cuda.max_memory_allocated``. On CPU: the
child's peak RSS (``ru_maxrss``: interpreter, torch, weights, activations, gradients,
optimizer state; nothing subtracted). glibc's default heap keeps freed tensor memory
mapped, so peak RSS would measure heap fragmentation as much as the method; the memory
phase therefore runs with a fixed 1 MiB mmap threshold (freed tensors go back to the OS
at once, RSS follows the live tensors as ``max_memory_allocated`` does), and the timed
phases with freed memory kept for reuse (no page faults per step — as a caching allocator
does). ``peak_rss_total_mb`` is the whole-life peak, timed phases included. Ratios divide
by ``finetune`` of the same backbone in the same invocation (always run, first).

    python -m experiments.bench
    python -m experiments.bench --backbones minilm --methods adapter compacter --steps 3
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

import compacter
from experiments.configs import method_config
from lightning_modules.backbones import load_model, resolve, t5_base_from_config

COLUMNS = ["backbone", "method", "device", "threads", "trainable_params", "train_step_s", "train_step_ratio",
           "peak_mem_mb", "peak_mem_ratio", "infer_s", "infer_ratio", "rss_before_train_mb", "peak_rss_total_mb",
           "batch", "source_len", "target_len", "steps", "warmup", "other_load", "status"]
RATIOS = {"train_step_ratio": "train_step_s", "peak_mem_ratio": "peak_mem_mb", "infer_ratio": "infer_s"}
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
    warmup: int   # discarded training steps, the memory phase's included (≥ MEMORY_STEPS)


# minilm: 32 × 128 tokens. t5-base (223M parameters, random weights) on CPU: 4 × 128 → 8 tokens,
# so that `make bench` (26 fresh processes, each with its memory phase) stays < 30 min on 2 CPU
# cores; on CUDA the paper-sized batch of 32. Medians of 5 steps: on the shared 2-core VM single
# steps vary by ±10%.
WORKLOADS = {
    ("minilm", "cpu"): Workload(32, 128, 0, steps=5, warmup=3),
    ("t5-base", "cpu"): Workload(4, 128, 8, steps=3, warmup=3),
    ("minilm", "cuda"): Workload(32, 128, 0, steps=10, warmup=5),
    ("t5-base", "cuda"): Workload(32, 128, 8, steps=10, warmup=5),
}
# Intrinsic-SAID re-projects all 223M T5-base weights through the Fastfood transform on every
# forward: 75-100 s per training step on the 2-core CPU. It gets the memory phase and one timed step.
MINIMAL_ON_CPU = {("t5-base", "intrinsic")}


def default_workload(backbone: str, method: str, device: torch.device) -> Workload:
    """The fixed batch for a backbone on a device (a checkpoint path gets minilm's)."""
    base = WORKLOADS.get((backbone, device.type), WORKLOADS[("minilm", device.type)])
    if device.type == "cpu" and (backbone, method) in MINIMAL_ON_CPU:
        return replace(base, steps=1, warmup=MEMORY_STEPS)
    return base


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
    """Seconds of each of ``count`` calls of ``fn``."""
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
            learning_rate: float = 3e-4, switch_allocator: bool = False) -> dict:
    """Apply ``method`` to ``model``, run the three phases; one result row without the ratios.

    ``switch_allocator``: the process started in glibc's exact mode (``CHILD_ENV``); switch to
    keeping freed memory after the memory phase. In-process (tests) peak RSS is the process's
    peak so far: only a fresh process gives the method's own peak."""
    if workload.warmup < MEMORY_STEPS or workload.steps < 1:
        raise ValueError(f"need warmup ≥ {MEMORY_STEPS} (the memory phase) and steps ≥ 1, got {workload}")
    compacter.apply(model, method, **options)
    model.to(device)
    batch, inputs = make_batch(model, workload, device), None
    train_step = make_train_step(model, batch, learning_rate)

    def eval_forward() -> None:
        with torch.no_grad():
            model(**inputs)

    rss_before = peak_rss_mb()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    model.train()
    timed(train_step, MEMORY_STEPS, device)
    model.eval()
    inputs = eval_inputs(model, batch)
    timed(eval_forward, 1, device)
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else peak_rss_mb()
    if switch_allocator and device.type == "cpu":
        keep_freed_memory()
    model.train()
    train_times = timed(train_step, workload.warmup - MEMORY_STEPS + workload.steps, device)
    model.eval()
    infer_times = timed(eval_forward, 1 + workload.steps, device)
    return {"method": method, "device": device.type, "threads": torch.get_num_threads(),
            "trainable_params": compacter.count_parameters(model).trainable,
            "train_step_s": statistics.median(train_times[-workload.steps:]), "peak_mem_mb": peak,
            "infer_s": statistics.median(infer_times[1:]), "rss_before_train_mb": rss_before,
            "peak_rss_total_mb": peak_rss_mb(), **asdict(workload), "status": "ok"}


def with_ratios(rows: list[dict]) -> list[dict]:
    """Rows with every column, plus ``<x>_ratio = x / x(finetune)`` of the same backbone (NaN if missing)."""
    finetune = {row["backbone"]: row for row in rows if row["method"] == "finetune" and row["status"] == "ok"}
    out = []
    for row in rows:
        base = finetune.get(row["backbone"], {})
        ratios = {ratio: row[column] / base[column] if row["status"] == "ok" and base else math.nan
                  for ratio, column in RATIOS.items()}
        out.append({column: {**row, **ratios}.get(column, math.nan) for column in COLUMNS})
    return out


def build_backbone(name: str) -> torch.nn.Module:
    if name == "t5-base":
        return t5_base_from_config()
    backbone = resolve(name)
    return load_model(backbone, None if backbone.kind == "seq2seq" else "classification", 2)


def method_settings(method: str) -> tuple[dict, float]:
    """The method's default options and learning rate (``configs/methods/<method>.yaml``)."""
    try:
        config = method_config(method)
    except ValueError:  # a registered method without a YAML config: the library's defaults
        config = {}
    return dict(config.get("method_options") or {}), float(config.get("learning_rate", 3e-4))


def child(backbone: str, method: str, workload: Workload) -> dict:
    """The body of one fresh process: seed, build, measure."""
    set_threads()
    torch.manual_seed(0)
    options, learning_rate = method_settings(method)
    row = measure(build_backbone(backbone), method, options, workload, pick_device(), learning_rate,
                  switch_allocator=True)
    return {"backbone": backbone, **row}


def profile_table(backbone: str, method: str, workload: Workload, rows: int = 25) -> str:
    """torch.profiler's operators of two training steps (after the warm-up), by self time."""
    from torch.profiler import ProfilerActivity, profile

    set_threads()
    torch.manual_seed(0)
    device = pick_device()
    options, learning_rate = method_settings(method)
    model = compacter.apply(build_backbone(backbone), method, **options).to(device).train()
    batch = make_batch(model, workload, device)
    train_step = make_train_step(model, batch, learning_rate)

    timed(train_step, workload.warmup, device)
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


def run_child(backbone: str, method: str, workload: Workload) -> dict:
    """One (backbone, method) in a fresh interpreter; a failure becomes a row with status 'failed: …'.

    ``other_load``: cores kept busy by *other* processes while the child ran (``other_load_meter``)."""
    command = [sys.executable, "-m", "experiments.bench", "--child", "--backbones", backbone, "--methods", method,
               "--steps", str(workload.steps), "--warmup", str(workload.warmup)]
    other_load = other_load_meter(resource.RUSAGE_CHILDREN)
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **CHILD_ENV})
    if done.returncode == 0:
        return {**json.loads(done.stdout.strip().splitlines()[-1]), "other_load": other_load()}
    error = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
    print(f"  {backbone}/{method} failed: {error}\n{done.stderr[-2000:]}", file=sys.stderr)
    return {"backbone": backbone, "method": method, "device": pick_device().type, **asdict(workload),
            "status": f"failed: {error}"[:200]}


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("model name")]
        cpu = f"{names[0]} × {len(names)} logical CPUs" if names else cpu
    except OSError:
        pass
    if torch.cuda.is_available():
        cpu += f"; GPU: {torch.cuda.get_device_name()}"
    return {"cpu": cpu, "torch": torch.__version__, "transformers": transformers.__version__,
            "python": platform.python_version(), "os": platform.platform()}


def write_outputs(out: Path, rows: list[dict], argv: list[str], elapsed: float) -> None:
    """efficiency.csv (every column) and efficiency.md (machine, date, command, table)."""
    from tabulate import tabulate  # parent only: children import nothing they do not measure

    out.mkdir(parents=True, exist_ok=True)
    with open(out / "efficiency.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows({k: f"{v:.4f}" if isinstance(v, float) else v for k, v in row.items()} for row in rows)
    info, shown = machine(), [c for c in COLUMNS if c not in ("batch", "source_len", "target_len", "steps", "warmup")]
    workloads = {row["backbone"]: row for row in rows}.values()
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
        *(f"- `{w['backbone']}`: batch {w['batch']} × {w['source_len']} source tokens"
          + (f" → {w['target_len']} target tokens" if w["target_len"] else "")
          + f"; {w['warmup']} warm-up steps ({MEMORY_STEPS} of them the memory phase), median of {w['steps']} "
          "timed training steps and of as many eval forwards" for w in workloads), "",
        "Each row is a fresh process; ratios are to `finetune` of the same backbone in this invocation. "
        "`train_step_s`: forward + loss + backward + AdamW step over the trainable parameters only. "
        "`infer_s`: one forward of the batch, `model.eval()`, `torch.no_grad()` (teacher-forced for T5). "
        "`peak_mem_mb`: CUDA: `torch.cuda.max_memory_allocated`; CPU: the process's peak RSS (`ru_maxrss`, "
        "nothing subtracted: interpreter, torch, weights, activations, gradients, AdamW state) up to the end of "
        f"the memory phase ({MEMORY_STEPS} training steps + 1 eval forward), run with glibc's mmap threshold "
        "fixed at 1 MiB so that freed tensors are unmapped at once and RSS follows the live tensors. The timed "
        "steps then keep freed memory for reuse (no page faults per step), which grows the heap: "
        "`peak_rss_total_mb` is the whole-life peak RSS including them. `rss_before_train_mb`: peak RSS "
        "with the backbone built and adapted, before the first step. `other_load`: cores used by other "
        "processes while the row ran — wall-clock times are inflated where it is not ≈ 0.", "",
        tabulate([[row[c] for c in shown] for row in rows], headers=shown, tablefmt="github", floatfmt=".3f"), ""]
    (out / "efficiency.md").write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", nargs="+", default=["minilm", "t5-base"], help="minilm, t5-base or a checkpoint")
    parser.add_argument("--methods", nargs="+", default=list(compacter.METHODS),
                        help="finetune is always measured too (ratios need it)")
    parser.add_argument("--steps", type=int,
                        help="timed steps and eval forwards (default: per backbone and device, see WORKLOADS)")
    parser.add_argument("--warmup", type=int,
                        help=f"discarded training steps, ≥ {MEMORY_STEPS} (default: per backbone and device)")
    parser.add_argument("--out", type=Path, default=Path("reports"), help="directory for efficiency.{csv,md}")
    parser.add_argument("--max-wait", type=float, default=10.0,
                        help="seconds to wait before each measurement for other processes to go idle")
    parser.add_argument("--profile", action="store_true",
                        help="instead of the benchmark: torch.profiler's operator table of two training steps of the "
                             "first backbone and method, in this process (where the time goes)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    unknown = sorted(set(args.methods) - set(compacter.METHODS))
    if unknown:
        parser.error(f"unknown method(s) {unknown}; registered: {', '.join(compacter.METHODS)}")

    def workload(backbone: str, method: str) -> Workload:
        base = default_workload(backbone, method, pick_device())
        return replace(base, steps=args.steps or base.steps, warmup=base.warmup if args.warmup is None else args.warmup)

    if args.child:
        print(json.dumps(child(args.backbones[0], args.methods[0], workload(args.backbones[0], args.methods[0]))))
        return
    if args.profile:
        print(profile_table(args.backbones[0], args.methods[0], workload(args.backbones[0], args.methods[0])))
        return
    start = time.perf_counter()
    methods = ["finetune", *[m for m in dict.fromkeys(args.methods) if m != "finetune"]]
    rows = []
    for backbone in args.backbones:
        for method in methods:
            wait_until_quiet(args.max_wait)
            child_start = time.perf_counter()
            row = run_child(backbone, method, workload(backbone, method))
            rows.append(row)
            # rewritten after every row: an interrupted benchmark keeps what it measured
            write_outputs(args.out, with_ratios(rows), argv, time.perf_counter() - start)
            print(f"[bench] {backbone} {method} ({time.perf_counter() - child_start:.0f} s): " + (
                f"train {row['train_step_s']:.3f} s, peak {row['peak_mem_mb']:.0f} MB, infer {row['infer_s']:.3f} s, "
                f"other load {row['other_load']:.2f}" if row["status"] == "ok" else row["status"]),
                file=sys.stderr, flush=True)
    print(f"[bench] wrote {args.out / 'efficiency.csv'} and {args.out / 'efficiency.md'}", file=sys.stderr)


if __name__ == "__main__":
    main()
