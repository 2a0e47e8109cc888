"""The adapter family: adapter, pfeiffer, adapterdrop, lowrank, phm, compacter, compacterpp.

They differ in two things only — *where* adapters go and *what* their projections are —
so one config and one injection routine serve all seven (paper §2-3, Table 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import nn

from compacter.adapters import (
    AdapterWrapped,
    BottleneckAdapter,
    ProjectionFactory,
    linear_projection,
    lowrank_projection,
    phm_projection,
)
from compacter.phm import SharedPHMRules
from compacter.sites import Site, find_sites, num_layers

# method -> (placement, projection)
ADAPTER_VARIANTS = {
    "adapter": ("all", "linear"),
    "pfeiffer": ("attention", "linear"),      # the paper's code: one adapter, after self-attention
    "adapterdrop": ("upper", "linear"),
    "lowrank": ("all", "lowrank"),
    "phm": ("all", "phm"),
    "compacter": ("all", "compacter"),
    "compacterpp": ("feedforward", "compacter"),
}
DEFAULT_N = {"phm": 12}  # the paper's PHM-Adapter row uses n = 12; Compacter uses 4

# AdapterDrop on T5-base keeps layers 5-11 of 12: the upper 7/12 of each stack.
ADAPTERDROP_KEPT_SHARE = 7 / 12


@dataclass(frozen=True)
class AdapterConfig:
    method: str = "adapter"
    reduction_factor: int = 32
    activation: str = "gelu_new"
    n: int | None = None                 # hypercomplex dimension; None = the method's paper default
    shared_rules_init_std: float = 1e-4  # Compacter's shared A ~ N(0, 1e-4), as the paper's code
    train_layer_norms: bool = True       # the paper trains the backbone's layer norms too

    def __post_init__(self) -> None:
        if self.method not in ADAPTER_VARIANTS:
            raise ValueError(f"unknown adapter method {self.method!r}; choose one of {', '.join(ADAPTER_VARIANTS)}")
        if self.reduction_factor < 1:
            raise ValueError(f"reduction_factor must be a positive integer, got {self.reduction_factor}")
        if self.n is not None and self.n < 1:
            raise ValueError(f"n must be a positive integer, got {self.n}")

    @property
    def placement(self) -> str:
        return ADAPTER_VARIANTS[self.method][0]

    @property
    def projection(self) -> str:
        return ADAPTER_VARIANTS[self.method][1]

    @property
    def hypercomplex_n(self) -> int:
        return self.n if self.n is not None else DEFAULT_N.get(self.method, 4)


def apply_adapters(model: nn.Module, config: AdapterConfig) -> list[nn.Module]:
    """Wrap the chosen sublayers of ``model`` with adapters; returns the trainable modules."""
    hidden = model.config.hidden_size  # T5Config maps hidden_size to d_model
    bottleneck = hidden // config.reduction_factor
    if bottleneck < 1 or hidden % config.reduction_factor:
        raise ValueError(
            f"hidden size {hidden} is not divisible by reduction_factor={config.reduction_factor}; "
            f"pick a reduction factor that divides {hidden}"
        )
    trainable: list[nn.Module] = []
    shared_rules = None
    if config.projection in ("phm", "compacter"):
        _check_n_divides(hidden, bottleneck, config)
    if config.projection == "compacter":
        shared_rules = SharedPHMRules(config.hypercomplex_n, config.shared_rules_init_std)
        model.compacter_shared_rules = shared_rules  # owned once, by the model root
        trainable.append(shared_rules)
    projection = _projection_factory(config, shared_rules)
    for site in _chosen_sites(find_sites(model), config.placement):
        adapter = BottleneckAdapter(hidden, bottleneck, projection, config.activation)
        setattr(site.parent, site.attr, AdapterWrapped(getattr(site.parent, site.attr), adapter))
        trainable.append(adapter)
    if config.train_layer_norms:
        trainable.extend(m for m in model.modules() if is_layer_norm(m))
    return trainable


def _check_n_divides(hidden: int, bottleneck: int, config: AdapterConfig) -> None:
    n = config.hypercomplex_n
    bad = [f"{what} {size}" for what, size in (("hidden size", hidden), ("bottleneck", bottleneck)) if size % n]
    if bad:
        fits = [d for d in range(1, bottleneck + 1) if hidden % d == 0 and bottleneck % d == 0]
        raise ValueError(
            f"{config.method}: n={n} must divide the hidden size and the bottleneck "
            f"(hidden {hidden} / reduction_factor {config.reduction_factor} = {bottleneck}); "
            f"not divisible by n: {', '.join(bad)}. Use n in {fits} or another reduction_factor."
        )


def _projection_factory(config: AdapterConfig, shared_rules: SharedPHMRules | None) -> ProjectionFactory:
    if config.projection == "linear":
        return linear_projection
    if config.projection == "lowrank":
        return lowrank_projection
    if config.projection == "phm":  # own A per layer, full B
        return phm_projection(config.hypercomplex_n, rank_one=False, shared_rules=None)
    return phm_projection(config.hypercomplex_n, rank_one=True, shared_rules=shared_rules)


def _chosen_sites(sites: list[Site], placement: str) -> list[Site]:
    if placement == "all":
        return sites
    if placement in ("attention", "feedforward"):
        return [s for s in sites if s.kind == placement]
    # kept layers = the upper 7/12 of each stack, rounded half up (T5-base: 7 of 12, MiniLM: 4 of 6)
    first_kept = {stack: num_layers(sites, stack) - math.floor(num_layers(sites, stack) * ADAPTERDROP_KEPT_SHARE + 0.5)
                  for stack in {s.stack for s in sites}}
    return [s for s in sites if s.layer >= first_kept[s.stack]]


def is_layer_norm(module: nn.Module) -> bool:
    """nn.LayerNorm and T5's RMS-style T5LayerNorm (which is not an nn.LayerNorm)."""
    return isinstance(module, nn.LayerNorm) or type(module).__name__.endswith("LayerNorm")
