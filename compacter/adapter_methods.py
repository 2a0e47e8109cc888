"""The adapter family: adapter, pfeiffer, adapterdrop, lowrank, phm, compacter, compacterpp.

They differ in two things only — *where* adapters go and *what* their projections are —
so one config and one injection routine serve all seven (paper §2-3, Table 1).
"""

from __future__ import annotations

import math
from typing import Callable

from torch import nn

from compacter.adapters import (
    AdapterWrapped,
    BottleneckAdapter,
    ProjectionFactory,
    linear_projection,
    lowrank_projection,
    phm_projection,
)
from compacter.configs import AdapterConfig
from compacter.phm import SharedPHMRules, indivisible
from compacter.sites import Site, find_sites, is_layer_norm, num_layers
# AdapterDrop on T5-base keeps layers 5-11 of 12: the upper 7/12 of each stack.
ADAPTERDROP_KEPT_SHARE = 7 / 12


def apply_adapters(model: nn.Module, config: AdapterConfig) -> list[nn.Module]:
    """Wrap the chosen sublayers of ``model`` with adapters; returns the trainable modules."""
    shared_rules = new_shared_rules(config)
    make_adapter = adapter_maker(model.config.hidden_size, config, shared_rules)
    trainable: list[nn.Module] = []
    if shared_rules is not None:
        model.compacter_shared_rules = shared_rules  # owned once, by the model root
        trainable.append(shared_rules)
    for site in chosen_sites(find_sites(model), config.placement):
        adapter = make_adapter()
        setattr(site.parent, site.attr, AdapterWrapped(getattr(site.parent, site.attr), adapter))
        trainable.append(adapter)
    if config.train_layer_norms:
        trainable.extend(m for m in model.modules() if is_layer_norm(m))
    return trainable


def new_shared_rules(config: AdapterConfig) -> SharedPHMRules | None:
    """Compacter's model-wide A (n, n, n), to be owned by one module; None for the other variants."""
    if config.projection != "compacter":
        return None
    return SharedPHMRules(config.hypercomplex_n, config.shared_rules_init_std)


def adapter_maker(hidden: int, config: AdapterConfig,
                  shared_rules: SharedPHMRules | None) -> Callable[[], BottleneckAdapter]:
    """A function building one adapter of ``config`` for a model of width ``hidden``, once the
    sizes are checked (so that a message can name the reduction factor)."""
    bottleneck = hidden // config.reduction_factor
    if bottleneck < 1 or hidden % config.reduction_factor:
        raise ValueError(
            f"hidden size {hidden} is not divisible by reduction_factor={config.reduction_factor}; "
            f"pick a reduction factor that divides {hidden}"
        )
    if config.projection in ("phm", "compacter"):
        problem = indivisible(config.hypercomplex_n, {"hidden size": hidden, "bottleneck": bottleneck})
        if problem:
            raise ValueError(
                f"{config.method}: n={config.hypercomplex_n} must divide the hidden size and the bottleneck "
                f"(hidden {hidden} / reduction_factor {config.reduction_factor} = {bottleneck}); {problem} "
                "or another reduction_factor.")
    projection = _projection_factory(config, shared_rules)
    return lambda: BottleneckAdapter(hidden, bottleneck, projection, config.activation)


def _projection_factory(config: AdapterConfig, shared_rules: SharedPHMRules | None) -> ProjectionFactory:
    if config.projection == "linear":
        return linear_projection
    if config.projection == "lowrank":
        return lowrank_projection
    if config.projection == "phm":  # own A per layer, full B
        return phm_projection(config.hypercomplex_n, rank_one=False, shared_rules=None)
    return phm_projection(config.hypercomplex_n, rank_one=True, shared_rules=shared_rules)


def chosen_sites(sites: list[Site], placement: str) -> list[Site]:
    if placement == "all":
        return sites
    if placement in ("attention", "feedforward"):
        return [s for s in sites if s.kind == placement]
    # kept layers = the upper 7/12 of each stack, rounded half up (T5-base: 7 of 12, MiniLM: 4 of 6)
    first_kept = {stack: num_layers(sites, stack) - math.floor(num_layers(sites, stack) * ADAPTERDROP_KEPT_SHARE + 0.5)
                  for stack in {s.stack for s in sites}}
    return [s for s in sites if s.layer >= first_kept[s.stack]]
