"""The machine a run ran on, as its record says (the benchmarks' reports say more: ``experiments.bench.measure``)."""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any


def machine_info() -> dict[str, Any]:
    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    # the vector instructions torch's CPU kernels dispatch to (AVX512, AVX2, ...): a regression score's last
    # digits differ between them, so a record says which ran it
    return {"host": platform.node(), "cpu": _cpu_model(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "threads": torch.get_num_threads(), "device": device,
            "python": platform.python_version(), "torch": torch.__version__}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()

