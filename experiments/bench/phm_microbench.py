"""`make bench` (second part): the PHM layer alone — which way of computing it is faster, for which shapes.

For a batch of 32 × 128 tokens, times forward + backward (gradients for the input and
every weight, as in training) of one PHM projection ``x @ sum_i A_i ⊗ B_i`` computed

* ``built``: W = ``kronecker_sum(A, B)`` (in × out), then one matmul — rank-one B = s t^T or full B;
* ``factored``: ``phm_factored`` — rank-one B applied factor by factor, W never formed,
  O(tokens · (n · (in + out) + n⁴)) instead of O(tokens · in · out);
* ``layer``: ``PHMLinear(rank_one=True)`` itself, whichever path it picks for the shape;
  also its eval forward under ``no_grad`` (where a built W is cached).

Sizes: the adapter down-projections of MiniLM (384 → 12) and T5-base (768 → 24), two
intermediate ones (256 → 256, 1024 → 1024) to place the switch between the paths, and
4096 → 4096; n ∈ {2, 4, 8, 12} where n divides both sizes. A dense ``nn.Linear`` of the
same size is the reference (left out at 4096 → 4096: it costs what building W costs).
Median of repeats after warm-up. Writes ``reports/phm_microbench.md``.

    python -m experiments.bench.phm_microbench [--repeats 25] [--out reports]
"""

from __future__ import annotations

import argparse
import math
import resource
import statistics
import sys
from pathlib import Path
from typing import Callable

import torch
from tabulate import tabulate

from compacter.phm import PHMLinear, kronecker_sum, phm_factored
from experiments.bench.measure import (command_line, keep_freed_memory, machine, now, other_load_meter, set_threads, timed,
                                 wait_until_quiet)

TOKENS = (32, 128)
SHAPES = [(384, 12), (768, 24), (256, 256), (1024, 1024), (4096, 4096)]
NS = [2, 4, 8, 12]
CPU = torch.device("cpu")
LARGE = 2**22  # in · out from which a dense (in, out) matmul costs seconds: 3 repeats, no dense reference


def paths(layer: PHMLinear, full: torch.Tensor) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    """The ways of computing the layer (bias left out: it is the same for all), and a dense reference."""
    dense = torch.nn.Linear(layer.in_features, layer.out_features)
    return {
        "nn.Linear (dense reference)": dense,
        "built, rank-one B": lambda x: x @ kronecker_sum(layer.rule, layer.s @ layer.t),
        "factored, rank-one B": lambda x: phm_factored(x, layer.rule, layer.s, layer.t),
        "built, full B": lambda x: x @ kronecker_sum(layer.rule, full),
        "layer (PHMLinear, rank-one)": layer,
    }


def forward_backward_s(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, repeats: int,
                       warmup: int) -> float:
    """Median seconds of forward + backward of ``fn(x)`` after ``warmup`` discarded calls."""
    grad_out = None

    def step() -> None:
        nonlocal grad_out
        x.grad = None
        y = fn(x)
        if grad_out is None:
            grad_out = torch.randn_like(y)
        y.backward(grad_out)

    return statistics.median(timed(step, warmup + repeats, CPU)[warmup:])


def eval_forward_s(layer: PHMLinear, x: torch.Tensor, repeats: int, warmup: int) -> float:
    """Median seconds of the layer's eval forward under no_grad (where it reuses a cached W)."""
    layer.eval()
    with torch.no_grad():
        times = timed(lambda: layer(x), warmup + repeats, CPU)
    layer.train()
    return statistics.median(times[warmup:])


def run(repeats: int, max_wait: float, shapes: list[tuple[int, int]] = SHAPES,
        tokens: tuple[int, int] = TOKENS) -> list[dict]:
    """One row per (in, out) of ``shapes`` and n of ``NS`` dividing both: each path's time in ms."""
    rows = []
    for in_features, out_features in shapes:
        for n in NS:
            if in_features % n or out_features % n:
                continue
            torch.manual_seed(0)
            layer = PHMLinear(in_features, out_features, n, rank_one=True).train()
            full = torch.nn.Parameter(torch.randn(n, in_features // n, out_features // n) * 0.01)
            x = torch.randn(*tokens, in_features, requires_grad=True)
            large = in_features * out_features >= LARGE
            reps, warmup = (3, 0) if large else (repeats, 2)  # a call of seconds needs no warm-up
            wait_until_quiet(max_wait)
            other_load = other_load_meter(resource.RUSAGE_SELF)
            times = {name: math.nan if large and name.startswith("nn.Linear") else forward_backward_s(fn, x, reps, warmup)
                     for name, fn in paths(layer, full).items()}
            times["layer, eval forward (no_grad)"] = eval_forward_s(layer, x.detach(), reps, warmup)
            rows.append({"in → out": f"{in_features} → {out_features}", "n": n, **{k: v * 1e3 for k, v in times.items()},
                         "factored / built (rank-one)": times["factored, rank-one B"] / times["built, rank-one B"],
                         "layer uses": "factored" if layer.uses_factored else "built W",
                         "repeats": reps, "other_load": other_load()})
            print(f"[phm_microbench] {rows[-1]['in → out']} n={n}: built {times['built, rank-one B'] * 1e3:.2f} ms, "
                  f"factored {times['factored, rank-one B'] * 1e3:.2f} ms", file=sys.stderr, flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=25, help="timed repeats per case (4096 → 4096: 3)")
    parser.add_argument("--out", type=Path, default=Path("reports"))
    parser.add_argument("--max-wait", type=float, default=10.0,
                        help="seconds to wait before each case for other processes to go idle")
    args = parser.parse_args(argv)
    threads = set_threads()
    keep_freed_memory()  # as the bench's timed phase: no page faults per call from returning memory
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "phm_microbench.md").write_text(report(run(args.repeats, args.max_wait), argv, threads))
    print(f"[phm_microbench] wrote {args.out / 'phm_microbench.md'}", file=sys.stderr)


def report(rows: list[dict], argv: list[str], threads: int, tokens: tuple[int, int] = TOKENS) -> str:
    """phm_microbench.md: machine, date, command, what was timed, the table (``run``), the verdict."""
    info = machine()
    lines = [
        "# PHM layer micro-benchmark", "",
        f"- Date: {now()}",
        command_line("experiments.bench.phm_microbench", argv),
        f"- Machine: {info['cpu']}; {info['os']}; torch {info['torch']}, {threads} threads, CPU",
        f"- Input: {tokens[0]} × {tokens[1]} tokens; times in ms, median of `repeats` after 2 warm-up calls "
        "(none at 4096 → 4096): forward + backward (input and weight gradients; bias left out but in the layer), "
        "except the last time column (eval forward only). glibc keeps freed memory for reuse, as in the "
        "bench's timed phase. `other_load`: cores used by other processes during the case (times are "
        "inflated where it is not ≈ 0).", "",
        tabulate([list(row.values()) for row in rows], headers=list(rows[0]), tablefmt="github", floatfmt=".3g"), "",
        "**Which path `PHMLinear` uses:** " + verdict(rows), ""]
    return "\n".join(lines)


def verdict(rows: list[dict]) -> str:
    """One sentence from the numbers: the factored / built time ratio where the layer builds W and where not."""
    def span(factored: bool) -> str:
        ratios = [r["factored / built (rank-one)"] for r in rows if (r["layer uses"] == "factored") == factored]
        return f"{min(ratios):.2f}–{max(ratios):.2f}" if ratios else "no case"

    return (f"the rank-one `PHMLinear` applies the factors one by one (`phm_factored`) when the dense matmul "
            f"needs at least {PHMLinear.FACTORED_MIN_FLOP_RATIO}× the factored path's multiply-adds "
            f"(in·out ≥ {PHMLinear.FACTORED_MIN_FLOP_RATIO}·(n·(in+out) + n⁴)), where factored / built measured "
            f"{span(True)}; otherwise (e.g. MiniLM's Compacter projection 384 → 12 with n = 4) it builds W, "
            f"where factored / built measured {span(False)}, and a built W is cached in eval mode so that "
            f"inference is one plain matmul, as in `nn.Linear`.")


if __name__ == "__main__":
    main()
