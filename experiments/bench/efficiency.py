"""`make bench`: training-step time, peak memory and eval latency of every method, × finetune.

For each round, backbone and method a FRESH child process (``--child``) builds the
backbone, applies the method's recipe (``experiments.run.recipe``: its YAML's options, completed
and checked, and its learning rate) and, on one fixed batch of seeded random token ids, runs

1. in the first ``--memory-rounds`` round(s) only, a memory phase: two training steps (the
   second is the first to hold AdamW state) and one eval forward; its peak is ``peak_mem_mb``;
2. ``warmup`` discarded training steps, then ``steps`` timed ones — forward with loss,
   backward, AdamW step over the trainable parameters only, ``zero_grad(set_to_none=True)``;
3. one warm-up and ``steps`` timed eval forwards — ``model.eval()`` under ``torch.no_grad()``
   (teacher-forced for T5; also what lets PHMLinear reuse its cached W).

Memory on CUDA: ``torch.cuda.max_memory_allocated``. On CPU: the child's peak RSS
(``ru_maxrss``: interpreter, torch, weights, activations, gradients, optimizer state; nothing
subtracted). glibc's default heap keeps freed tensor memory mapped, so peak RSS would measure
heap fragmentation as much as the method; the memory phase therefore runs in glibc's exact mode
(``measure.FRESH_ENV``: RSS follows the live tensors as ``max_memory_allocated`` does), and the
timed phases with freed memory kept for reuse (``measure.keep_freed_memory``: no page faults per
step — as a caching allocator does). ``peak_rss_total_mb`` is the whole-life peak. Memory is
deterministic between processes (reports/budgets.md), so one round measures it.

Rounds. Step times vary between fresh processes on a shared machine by more than the
differences between methods (reports/budgets.md), so every round runs every method again,
finetune included, and a ratio divides by finetune of the same backbone in the same round.
Even rounds run the methods forward (finetune first), odd ones reversed (finetune last): a
drift in machine speed over the invocation cancels out of the ratios (``schedule``). Per
method (``experiments.bench.report``): medians over the rounds, and each time ratio's range
(min–max) over the rounds, flagged faster / slower than finetune where the range excludes 1.0
and indistinguishable where it includes it; methods whose ranges overlap are indistinguishable
from each other. The range, not an IQR: the range of n independent rounds contains the median
ratio with probability 1 − 2^(1−n) (2: 50 %, 3: 75 %, 5: 94 %), an IQR of 5 rounds only with
62.5 % — too little to call a difference; and n stays small, see the budget.
efficiency_rounds.csv keeps every round's values.

Time budget. A process costs its interpreter start (import torch + transformers, build the
backbone) plus its steps: (memory phase) + warmup + steps training steps and 1 + steps eval
forwards. A round costs the sum over backbones and methods; on the 2-core CPU the interpreter
starts are most of it, so more rounds cost more than fewer steps save, and the spread that
matters is between processes, not between steps. Hence 3 rounds (forward, reversed, forward:
a range that holds the median ratio with probability 75 %), 1 timed step per process, and
t5-base Intrinsic-SAID (whose step re-projects all weights) in the first round only. The
per-step and per-process costs, and what ``make bench`` and each further round take:
reports/budgets.md; ``process_s`` in efficiency_rounds.csv gives each process's actual cost.

    python -m experiments.bench
    python -m experiments.bench --rounds 5          # ranges with 94 % coverage
    python -m experiments.bench --backbones minilm --methods adapter compacter --rounds 3
    python -m experiments.bench --profile --backbones minilm --methods compacter   # where the time goes
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

import torch

import catalog
import compacter
from experiments.bench.measure import (in_fresh_process, keep_freed_memory, peak_rss_mb, pick_device, report_to_parent,
                                 set_threads, timed, wait_until_quiet)
from experiments.bench.report import write_outputs
from experiments.run.backbones import load_model, resolve, t5_base_from_config
from experiments.run.recipe import Recipe, method_recipe

ROUNDS = 3  # of fresh processes per method: the docstring's time budget
MEMORY_STEPS = 2  # the second training step is the first with AdamW state: the steady-state peak


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
# is between processes, and the rounds repeat processes (see the docstring's time budget). One
# warm-up step: the first step creates AdamW's state, so the timed one is the first to hold it (the
# memory phase's reason for two steps).
WORKLOADS = {
    ("minilm", "cpu"): Workload(32, 128, 0, steps=1, warmup=1),
    ("t5-base", "cpu"): Workload(4, 128, 8, steps=1, warmup=1),
    ("minilm", "cuda"): Workload(32, 128, 0, steps=10, warmup=3),
    ("t5-base", "cuda"): Workload(32, 128, 8, steps=10, warmup=3),
}
# Intrinsic-SAID re-projects all 223M T5-base weights through the Fastfood transform on every
# forward: on CPU its training step costs many times finetune's (reports/budgets.md), a difference
# that needs no interval. It runs in the first round only, with the memory phase (its warm-up) and
# one timed step.
MINIMAL_ON_CPU = {("t5-base", "intrinsic")}


def default_workload(backbone: str, method: str, device: torch.device) -> Workload:
    """The fixed batch for a backbone on a device (a checkpoint path gets minilm's)."""
    base = WORKLOADS.get((backbone, device.type), WORKLOADS[("minilm", device.type)])
    if minimal(backbone, method, device):
        return replace(base, steps=1, warmup=0)
    return base


def minimal(backbone: str, method: str, device: torch.device) -> bool:
    return device.type == "cpu" and (backbone, method) in MINIMAL_ON_CPU


def single_round(rows: list[dict]) -> list[str]:
    """The (backbone, method)s of ``rows`` that run in the first round only, as ``"`backbone` method"``."""
    return [f"`{backbone}` {method}" for (backbone, method), device in
            {(row["backbone"], row["method"]): row["device"] for row in rows}.items()
            if minimal(backbone, method, torch.device(device))]


def schedule(backbones: list[str], methods: list[str], rounds: int, device: torch.device) -> list[tuple[int, str, str]]:
    """(round, backbone, method) in run order. Every round runs every backbone's methods, forward
    in even rounds and reversed in odd ones: a method measured after finetune in one round is
    measured before it in the next, so a drift in machine speed over the invocation cancels out of
    the ratios (ABBA counterbalancing). ``MINIMAL_ON_CPU`` methods run in round 0 only."""
    return [(round_, backbone, method) for round_ in range(rounds) for backbone in backbones
            for method in (methods if round_ % 2 == 0 else methods[::-1])
            if round_ == 0 or not minimal(backbone, method, device)]


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


def make_train_step(model: torch.nn.Module, batch: dict, learning_rate: float) -> Callable[[], None]:
    """Forward with loss, backward, AdamW step over the trainable parameters only (frozen
    weights get no gradient and no optimizer state), gradients freed."""
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=learning_rate)

    def train_step() -> None:
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return train_step


def measure(model: torch.nn.Module, recipe: Recipe, workload: Workload, device: torch.device,
            switch_allocator: bool = False, memory_phase: bool = True) -> dict:
    """Apply the method ``recipe`` to ``model``, run the phases at its learning rate; one result row
    without the ratios.

    ``memory_phase`` False: none, ``peak_mem_mb`` NaN (the benchmark measures memory in its first
    round only). ``switch_allocator``: the process started in glibc's exact mode (``FRESH_ENV``);
    switch to keeping freed memory for the timed phases. In-process (tests) peak RSS is the
    process's peak so far: only a fresh process gives the method's own peak."""
    if workload.steps < 1 or workload.warmup + memory_phase * MEMORY_STEPS < 1:
        raise ValueError(f"need steps ≥ 1 and a training step before the timed ones (warmup ≥ 1 without the "
                         f"memory phase: the first step creates AdamW's state), got {workload}")
    recipe.apply(model)
    model.to(device)
    batch = make_batch(model, workload, device)
    train_step, inputs = make_train_step(model, batch, recipe.learning_rate), eval_inputs(model, batch)

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
    return {"method": recipe.name, "device": device.type, "threads": torch.get_num_threads(),
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


def build_backbone(name: str) -> torch.nn.Module:
    if name == "t5-base":
        return t5_base_from_config()
    backbone = resolve(name)
    return load_model(backbone, None if backbone.kind == "seq2seq" else "classification", 2)


# the paper's rows (prompt_r: the same layers as prompt) and LoRA, what reports/efficiency.md measures
DEFAULT_METHODS = ("finetune", "adapter", "pfeiffer", "adapterdrop", "lowrank", "phm", "compacter", "compacterpp",
                   "bitfit", "prompt", "intrinsic", "lora")


def child(backbone: str, method: str, workload: Workload, memory_phase: bool) -> dict:
    """The body of one fresh process: seed, build, measure."""
    set_threads()
    torch.manual_seed(0)
    row = measure(build_backbone(backbone), method_recipe(method), workload, pick_device(), switch_allocator=True,
                  memory_phase=memory_phase)
    return {"backbone": backbone, **row}


def profile_table(backbone: str, method: str, workload: Workload, rows: int = 25) -> str:
    """torch.profiler's operators of two training steps (after the warm-up), by self time."""
    from torch.profiler import ProfilerActivity, profile

    set_threads()
    torch.manual_seed(0)
    device = pick_device()
    recipe = method_recipe(method)
    model = recipe.apply(build_backbone(backbone)).to(device).train()
    batch = make_batch(model, workload, device)
    train_step = make_train_step(model, batch, recipe.learning_rate)

    timed(train_step, MEMORY_STEPS + workload.warmup, device)  # as many steps as precede a measurement's
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        timed(train_step, 2, device)
    sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    table = prof.key_averages().table(sort_by=sort, row_limit=rows)
    return f"{backbone} {method}, {workload}, 2 training steps\n{table}"


def run_child(backbone: str, method: str, workload: Workload, memory_phase: bool) -> dict:
    """One (backbone, method) in a fresh interpreter (``child``); a failure becomes a row with status 'failed: …'.

    ``other_load``: cores kept busy by *other* processes while the child ran; ``process_s``: the
    child's wall time, interpreter start included (what a round costs)."""
    args = ["--child", "--backbones", backbone, "--methods", method, "--steps", str(workload.steps),
            "--warmup", str(workload.warmup)] + ["--memory-phase"] * memory_phase
    fresh = in_fresh_process("experiments.bench", args)
    if fresh.result is not None:
        return {**fresh.result, "other_load": fresh.other_load, "process_s": fresh.process_s}
    return {"backbone": backbone, "method": method, "device": pick_device().type, **asdict(workload),
            "process_s": fresh.process_s, "status": f"failed: {fresh.error}"[:200]}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", nargs="+", default=["minilm", "t5-base"], help="minilm, t5-base or a checkpoint")
    parser.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS),
                        help="method configs (catalog/configs/methods/); finetune is always measured too")
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
        report_to_parent(child(backbone, method, workload(backbone, method), args.memory_phase))
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
        write_outputs(args.out, rows, argv, time.perf_counter() - start, args.rounds, args.memory_rounds,
                      MEMORY_STEPS, single_round(rows))
        print(f"[bench] round {round_} {backbone} {method} ({row['process_s']:.0f} s): " + (
            f"train {row['train_step_s']:.3f} s, peak {row['peak_mem_mb']:.0f} MB, infer {row['infer_s']:.3f} s, "
            f"other load {row['other_load']:.2f}" if row["status"] == "ok" else row["status"]),
            file=sys.stderr, flush=True)
    print(f"[bench] wrote {args.out / 'efficiency.csv'}, {args.out / 'efficiency_rounds.csv'} and "
          f"{args.out / 'efficiency.md'}", file=sys.stderr)

