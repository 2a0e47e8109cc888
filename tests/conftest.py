"""Shared fixtures. The real GLUE/SuperGLUE files live outside the repo (../shared/data,
never copied in); a run that lacks them skips those tests locally but fails in CI, where
a silent skip would hide that nothing was checked."""

import os
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

from lightning_modules.backbones import minilm_path

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of the shared real data (env ``COMPACTER_SHARED_DATA`` overrides ../shared/data)."""
    path = Path(os.environ.get("COMPACTER_SHARED_DATA", REPO.parent / "shared" / "data"))
    if not (path / "glue").is_dir() or not (path / "superglue").is_dir():
        message = f"shared GLUE/SuperGLUE data not found at {path} (set COMPACTER_SHARED_DATA)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """Tiny task files written for this project, in the original release formats."""
    return FIXTURES


@pytest.fixture(scope="session")
def tiny_berts(tmp_path_factory):
    """Tiny random BERTs with BERT's dropout (resume must restore its RNG) and without (so devices=1
    and devices=2 compute the same gradients)."""
    root, paths = tmp_path_factory.mktemp("backbones"), {}
    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    for name, dropout in {"dropout": 0.1, "no_dropout": 0.0}.items():
        torch.manual_seed(0)
        BertForSequenceClassification(BertConfig(
            vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
            intermediate_size=64, hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout,
        )).save_pretrained(root / name)
        tokenizer.save_pretrained(root / name)
        paths[name] = str(root / name)
    return paths
