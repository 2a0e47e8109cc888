"""The machine a run ran on, as its record says (the benchmarks' reports say more: ``experiments.bench.measure``)."""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any


def machine_info() -> dict[str, Any]:
    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    return {"host": platform.node(), "cpu": _cpu_model(), "threads": torch.get_num_threads(), "device": device,
            "python": platform.python_version(), "torch": torch.__version__}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()

