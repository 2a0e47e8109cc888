"""The backbones a run can name and how an encoder head may pool, without torch: a sweep checks
its profile's runs with these before anything loads (``experiments.run.backbones`` loads them)."""

from __future__ import annotations

KNOWN_BACKBONES = ("minilm", "t5-base")  # besides any Hugging Face T5/BERT-family checkpoint or path
POOLINGS = ("auto", "mean", "cls")


def check_pooling(pooling: str) -> None:
    if pooling not in POOLINGS:
        raise ValueError(f"unknown pooling {pooling!r}; choose one of: {', '.join(POOLINGS)} "
                         "(auto: mean pooling where the checkpoint was trained with it, else [CLS])")
