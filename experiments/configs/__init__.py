"""YAML configs: one per method (`methods/<name>.yaml`) and one per profile (`profiles/<name>.yaml`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

CONFIG_DIR = Path(__file__).parent


def method_config(method: str) -> dict[str, Any]:
    """The method's YAML config (method, method_options, learning_rate, ...)."""
    path = CONFIG_DIR / "methods" / f"{method}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in (CONFIG_DIR / "methods").glob("*.yaml"))
        raise ValueError(f"no method config {path}; known method configs: {', '.join(known)}")
    return yaml.safe_load(path.read_text())


def method_options(method: str) -> dict[str, Any]:
    return dict(method_config(method).get("method_options") or {})
