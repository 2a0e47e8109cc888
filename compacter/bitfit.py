"""BitFit (Ben Zaken et al., 2021): train bias terms only.

T5 has no biases, so — as the paper's code does — zero-initialised biases are added to
every attention projection (q, k, v, o; self- and cross-attention), the feed-forward
projections, every layer norm inside the blocks and the LM head, and only those are
trained — selected by module type (``nn.Linear``, layer norms), never by parameter name. The
two stacks' own final layer norms get none: the paper's T5 builds them without its BitFit
option (0.126% of T5-base trained, its Table 1). Adding a zero bias leaves the model's
outputs unchanged until training moves it.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.models.t5.modeling_t5 import T5Stack

from compacter.configs import BitFitConfig
from compacter.sites import is_layer_norm


class BiasAdded(nn.Module):
    """``base_layer(x) + bias`` for modules with no bias slot of their own (T5LayerNorm)."""

    def __init__(self, base_layer: nn.Module, size: int) -> None:
        super().__init__()
        self.base_layer = base_layer
        self.bias = nn.Parameter(torch.zeros(size))

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.base_layer(hidden) + self.bias


def apply_bitfit(model: nn.Module, config: BitFitConfig) -> list[nn.Parameter]:
    """Adds the missing biases; returns the bias of every linear layer and layer norm (the trainable set)."""
    like = next(model.parameters())
    for parent in list(model.modules()):
        for attr, child in list(parent.named_children()):
            if isinstance(child, nn.Linear) and child.bias is None:
                child.bias = nn.Parameter(torch.zeros(child.out_features, dtype=like.dtype, device=like.device))
            # T5Stack's own (final) layer norm stays without: the blocks' norms sit deeper
            elif is_layer_norm(child) and getattr(child, "bias", None) is None and not isinstance(parent, T5Stack):
                setattr(parent, attr, BiasAdded(child, child.weight.shape[0]).to(like.device, like.dtype))
    with_bias = [m for m in model.modules() if isinstance(m, (nn.Linear, BiasAdded)) or is_layer_norm(m)]
    return [m.bias for m in with_bias if getattr(m, "bias", None) is not None]
