"""Bottleneck adapters (Houlsby et al., 2019) and the module wrapper that inserts them.

An adapter maps a sublayer's output ``h`` (…, d) to ``h + up(act(down(h)))`` with a
bottleneck of ``d / reduction_factor``. Its two projections are plain linear layers
(`adapter`, `pfeiffer`, `adapterdrop`), rank-one (`lowrank`) or PHM layers (`phm`,
`compacter`, `compacterpp`): the only thing the methods of the adapter family change.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from transformers.activations import get_activation

from compacter.phm import LowRankLinear, PHMLinear, SharedPHMRules

ProjectionFactory = Callable[[int, int], nn.Module]


def linear_projection(in_features: int, out_features: int) -> nn.Module:
    """Plain linear projection, initialised near zero so a new adapter starts near the identity."""
    layer = nn.Linear(in_features, out_features)
    nn.init.normal_(layer.weight, std=1e-2)
    nn.init.zeros_(layer.bias)
    return layer


def lowrank_projection(in_features: int, out_features: int) -> nn.Module:
    return LowRankLinear(in_features, out_features, rank=1)


def phm_projection(n: int, rank_one: bool, shared_rules: SharedPHMRules | None) -> ProjectionFactory:
    def make(in_features: int, out_features: int) -> nn.Module:
        return PHMLinear(in_features, out_features, n, rank_one=rank_one, shared_rules=shared_rules)

    return make


def activation_module(name: str) -> nn.Module:
    """The activation ``name`` (a ``transformers`` activation name). ``gelu_new`` — GELU's tanh
    approximation, the adapters' default — as torch's own kernel (``approximate="tanh"``): the same
    function to float rounding (≤ 5e-7), where transformers' ``NewGELUActivation`` spells it in five
    element-wise ops, each a pass over the bottleneck: on a (64, 30, 12) activation it took 9× as long,
    6% of a Compacter run on MiniLM. The name stays what AdapterHub's configs call it."""
    if name == "gelu_new":
        return nn.GELU(approximate="tanh")
    return get_activation(name)


class BottleneckAdapter(nn.Module):
    """``h + up(act(down(h)))`` (Houlsby adapter, paper Eq. 1). h: (…, hidden)."""

    def __init__(self, hidden_size: int, bottleneck: int, projection: ProjectionFactory, activation: str) -> None:
        super().__init__()
        self.down = projection(hidden_size, bottleneck)
        self.activation = activation_module(activation)
        self.up = projection(bottleneck, hidden_size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden + self.up(self.activation(self.down(hidden)))


class AdapterWrapped(nn.Module):
    """Runs ``base_layer`` unchanged, then the adapter on its output.

    Sublayers that return a tuple (T5 attention: output, position bias, weights) get the
    adapter on the first element only, so the wrapped model's control flow is untouched.
    """

    def __init__(self, base_layer: nn.Module, adapter: BottleneckAdapter) -> None:
        super().__init__()
        self.base_layer = base_layer
        self.adapter = adapter

    def forward(self, *args, **kwargs):
        return on_output(self.base_layer(*args, **kwargs), self.adapter)


def on_output(out: torch.Tensor | tuple, adapter: nn.Module) -> torch.Tensor | tuple:
    """``adapter`` applied to a sublayer's output, or to the first element of a tuple output."""
    if isinstance(out, tuple):
        return (adapter(out[0]),) + out[1:]
    return adapter(out)
