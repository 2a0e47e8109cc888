"""A method's config: ``catalog/configs/methods/<name>.yaml``, read here, where training and
analysis both can (this module needs no training code)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

METHOD_DIR = Path(__file__).resolve().parent / "configs" / "methods"


def method_config(method: str) -> dict[str, Any]:
    """The method's YAML config (method, method_options, learning_rate, ...), read by OmegaConf's
    loader, so ``3e-3`` is a number."""
    path = METHOD_DIR / f"{method}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in METHOD_DIR.glob("*.yaml"))
        raise ValueError(f"no method config {path}; known method configs: {', '.join(known)}")
    return OmegaConf.to_container(OmegaConf.load(path))


def method_options(method: str) -> dict[str, Any]:
    return dict(method_config(method).get("method_options") or {})
