"""Where methods attach inside unmodified Hugging Face models.

A *site* is one sublayer output an adapter can follow: the self-attention or the
feed-forward block of one transformer layer. Sites are found structurally, from module
names and classes of the stock `transformers` implementation — no forked modeling file:

* T5 (encoder and decoder): ``T5LayerSelfAttention.SelfAttention`` and
  ``T5LayerFF.DenseReluDense``; the adapter runs on their output before dropout and the
  residual add, as in the paper's code. Cross-attention is never a site.
* BERT family (BERT, RoBERTa, MiniLM, …): ``layer.i.attention.output.dense`` and
  ``layer.i.output.dense``; the adapter runs before dropout and the residual LayerNorm.

Layer norms (trained by the adapter family, given biases by BitFit) are recognised by type:
``nn.LayerNorm`` and T5's RMS-style ``T5LayerNorm``, which is not an ``nn.LayerNorm``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from torch import nn
from transformers.models.t5.modeling_t5 import T5LayerNorm

SUPPORTED_MODEL_TYPES = ("t5", "bert", "roberta", "xlm-roberta", "electra", "camembert")

LAYER_NORM_TYPES = (nn.LayerNorm, T5LayerNorm)  # T5's RMS norm is not an nn.LayerNorm

_BERT_SITE = re.compile(r"^(?:.*\.)?layer\.(\d+)\.(attention\.output|output)$")
_T5_SITE = re.compile(r"^(?:.*\.)?(encoder|decoder)\.block\.(\d+)\.layer\.\d+$")


@dataclass(frozen=True)
class Site:
    """One sublayer output: ``getattr(parent, attr)`` is the module to wrap."""

    name: str       # dotted path of the wrapped module
    stack: str      # "encoder" | "decoder"
    layer: int      # 0-based layer index within its stack
    kind: str       # "attention" | "feedforward"
    parent: nn.Module
    attr: str


def model_type(model: nn.Module) -> str:
    """The backbone's ``config.model_type``; an error naming the supported ones otherwise."""
    kind = getattr(getattr(model, "config", None), "model_type", None)
    if kind not in SUPPORTED_MODEL_TYPES:
        raise ValueError(
            f"unsupported architecture {kind!r} ({type(model).__name__}); "
            f"supported model types: {', '.join(SUPPORTED_MODEL_TYPES)}"
        )
    return kind


def find_sites(model: nn.Module) -> list[Site]:
    """All attention and feed-forward sites of the model, in module order."""
    sites = _t5_sites(model) if model_type(model) == "t5" else _bert_sites(model)
    if not sites:
        raise ValueError(f"found no transformer layers to adapt in {type(model).__name__}")
    return sites


def _t5_sites(model: nn.Module) -> list[Site]:
    sites = []
    for name, module in model.named_modules():
        match = _T5_SITE.match(name)
        if not match:
            continue
        stack, layer = match.group(1), int(match.group(2))
        cls = type(module).__name__
        if cls == "T5LayerSelfAttention":
            sites.append(Site(f"{name}.SelfAttention", stack, layer, "attention", module, "SelfAttention"))
        elif cls == "T5LayerFF":
            sites.append(Site(f"{name}.DenseReluDense", stack, layer, "feedforward", module, "DenseReluDense"))
    return sites


def _bert_sites(model: nn.Module) -> list[Site]:
    sites = []
    for name, module in model.named_modules():
        match = _BERT_SITE.match(name)
        if match and isinstance(getattr(module, "dense", None), nn.Module) and hasattr(module, "LayerNorm"):
            kind = "attention" if match.group(2) == "attention.output" else "feedforward"
            sites.append(Site(f"{name}.dense", "encoder", int(match.group(1)), kind, module, "dense"))
    return sites


def num_layers(sites: list[Site], stack: str) -> int:
    return 1 + max(site.layer for site in sites if site.stack == stack)


def is_layer_norm(module: nn.Module) -> bool:
    return isinstance(module, LAYER_NORM_TYPES)


def output_width(module: nn.Module, name: str) -> int:
    """The feature size of what ``module`` returns, which an adapter after it must match: an
    ``nn.Linear``'s ``out_features``; for a block (T5's attention, its feed-forward), that of its
    last linear layer, the block's output projection (``o``, ``wo``)."""
    linears = [module] if isinstance(module, nn.Linear) else [m for m in module.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"cannot adapt {name}: {type(module).__name__} has no nn.Linear to read its output width from")
    return linears[-1].out_features
