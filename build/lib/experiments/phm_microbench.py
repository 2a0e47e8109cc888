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

    python -m experiments.phm_microbench [--repeats 25] [--out reports]
"""

from __future__ import annotations

import argparse
import datetime
import math
import resource
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch
from tabulate import tabulate

from compacter.phm import PHMLinear, kronecker_sum, phm_factored
from experiments.bench import keep_freed_memory, machine, other_load_meter, set_threads, wait_until_quiet

TOKENS = (32, 128)
SHAPES = [(384, 12), (768, 24), (256, 256), (1024, 1024), (4096, 4096)]
NS = [2, 4, 8, 12]
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
    times = []
    for _ in range(warmup + repeats):
        x.grad = None
        start = time.perf_counter()
        y = fn(x)
        if grad_out is None:
            grad_out = torch.randn_like(y)
        y.backward(grad_out)
        times.append(time.perf_counter() - start)
    return statistics.median(times[warmup:])


def eval_forward_s(layer: PHMLinear, x: torch.Tensor, repeats: int, warmup: int) -> float:
    """Median seconds of the layer's eval forward under no_grad (where it reuses a cached W)."""
    layer.eval()
    times = []
    with torch.no_grad():
        for _ in range(warmup + repeats):
            start = time.perf_counter()
            layer(x)
            times.append(time.perf_counter() - start)
    layer.train()
    return statistics.median(times[warmup:])


def run(repeats: int, max_wait: float) -> list[dict]:
    rows = []
    for in_features, out_features in SHAPES:
        for n in NS:
            if in_features % n or out_features % n:
                continue
            torch.manual_seed(0)
            layer = PHMLinear(in_features, out_features, n, rank_one=True).train()
            full = torch.nn.Parameter(torch.randn(n, in_features // n, out_features // n) * 0.01)
            x = torch.randn(*TOKENS, in_features, requires_grad=True)
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
    rows = run(args.repeats, args.max_wait)
    info = machine()
    lines = [
        "# PHM layer micro-benchmark", "",
        f"- Date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- Command: `{shlex.join(['python', '-m', 'experiments.phm_microbench', *argv])}` "
        "(`make bench` runs it without arguments)",
        f"- Machine: {info['cpu']}; {info['os']}; torch {info['torch']}, {threads} threads, CPU",
        f"- Input: {TOKENS[0]} × {TOKENS[1]} tokens; times in ms, median of `repeats` after 2 warm-up calls "
        "(none at 4096 → 4096): forward + backward (input and weight gradients; bias left out but in the layer), "
        "except the last time column (eval forward only). glibc keeps freed memory for reuse, as in the "
        "bench's timed phase. `other_load`: cores used by other processes during the case (times are "
        "inflated where it is not ≈ 0).", "",
        tabulate([list(row.values()) for row in rows], headers=list(rows[0]), tablefmt="github", floatfmt=".3g"), "",
        "**Which path `PHMLinear` uses:** " + verdict(rows), ""]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "phm_microbench.md").write_text("\n".join(lines))
    print(f"[phm_microbench] wrote {args.out / 'phm_microbench.md'}", file=sys.stderr)


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
