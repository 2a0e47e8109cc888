"""Compacter and the adapter family as a Hugging Face ``peft`` method.

    import compacter.peft                      # registers "COMPACTER" with peft
    from compacter.peft import CompacterConfig
    model = peft.get_peft_model(model, CompacterConfig())            # Compacter, the paper's defaults
    model = peft.get_peft_model(model, CompacterConfig(method="compacterpp"))
    model.save_pretrained("out/")                                     # adapter_config.json + weights, A once
    model = peft.PeftModel.from_pretrained(fresh_backbone, "out/")    # after ``import compacter.peft``

``method`` picks one of ``compacter.configs.ADAPTER_VARIANTS`` (``compacter``,
``compacterpp``, ``phm``, ``adapter`` = Houlsby, ``pfeiffer``, ``lowrank``, ``adapterdrop``); the
layers and their math are the ones ``compacter.apply`` injects, so the same weights give the
same logits either way (tests/test_compacter_peft.py).

peft's ``register_peft_method`` accepts only names of its own ``PeftType`` enum; string keys
in its three mappings are supported since peft PR #2635, and saving an out-of-tree type needs
peft >= 0.21 (state-dict selection moved to the tuners). Compacter's A is shared by every
layer: like VB-LoRA's vector bank it lives on the tuner (``uses_shared_state``: peft's
``inject_adapter_in_model``, which returns only the wrapped model, refuses it) in a
``ModuleDict`` keyed by adapter name, and each PHM layer holds it by plain reference, so the
checkpoint stores it once. Targets default to the placement's sites (``compacter/sites.py``:
T5 self-attention and feed-forward, never cross-attention) and, with ``train_layer_norms``,
every layer norm, which the paper trains too; each is wrapped as a tuner layer holding a
trained copy, so ``unload`` gives back the untouched backbone.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable

import torch
from peft.config import PeftConfig
from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING, PEFT_TYPE_TO_PREFIX_MAPPING, PEFT_TYPE_TO_TUNER_MAPPING
from peft.tuners.tuners_utils import BaseTuner, BaseTunerLayer
from torch import nn

from compacter.adapter_methods import adapter_maker, chosen_sites, new_shared_rules
from compacter.configs import ADAPTER_VARIANTS, AdapterConfig
from compacter.adapters import on_output
from compacter.sites import find_sites, is_layer_norm

PEFT_TYPE = "COMPACTER"
PREFIX = "compacter_"
NOT_MERGEABLE = ("{method} adapters cannot be merged into the backbone: an adapter computes h + up(act(down(h))) "
                 "with a non-linearity between its two projections, which no single weight matrix equals; use "
                 "unload() to get the backbone back, or keep the adapters at inference")


@dataclass
class CompacterConfig(PeftConfig):
    """The adapter family's options (``compacter.adapter_methods.AdapterConfig``, which
    validates them) plus peft's targeting: ``target_modules`` None = the placement's sites and,
    with ``train_layer_norms``, every layer norm, resolved on the model when injecting."""

    method: str = field(default="compacter", metadata={"help": f"one of {', '.join(ADAPTER_VARIANTS)}"})
    reduction_factor: int = 32
    activation: str = "gelu_new"
    n: int | None = field(default=None, metadata={"help": "hypercomplex dimension; None = the method's default"})
    shared_rules_init_std: float = 1e-4
    train_layer_norms: bool = True
    target_modules: list[str] | str | None = None
    modules_to_save: list[str] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        self.peft_type = PEFT_TYPE
        self.adapter_config  # validates the options now, not at injection

    @property
    def adapter_config(self) -> AdapterConfig:
        return AdapterConfig(method=self.method, reduction_factor=self.reduction_factor, activation=self.activation,
                             n=self.n, shared_rules_init_std=self.shared_rules_init_std,
                             train_layer_norms=self.train_layer_norms)


class CompacterTunerLayer(BaseTunerLayer):
    """What every layer of this tuner shares: nothing of it merges into the backbone."""

    def merge(self, safe_merge: bool = False, adapter_names: list[str] | None = None) -> None:
        raise ValueError(NOT_MERGEABLE.format(method="Compacter-family"))

    def unmerge(self) -> None:
        raise ValueError(NOT_MERGEABLE.format(method="Compacter-family"))

    def active_modules(self, container: nn.ModuleDict) -> list[nn.Module]:
        if self.disable_adapters:
            return []
        return [container[name] for name in self.active_adapters if name in container]


class AdapterLayer(nn.Module, CompacterTunerLayer):
    """A sublayer followed by its bottleneck adapter(s), as ``compacter.adapters.AdapterWrapped``."""

    adapter_layer_names = ("compacter_adapter",)

    def __init__(self, base_layer: nn.Module, adapter_name: str, adapter: nn.Module, inference_mode: bool) -> None:
        super().__init__()
        self.base_layer = base_layer
        self.compacter_adapter = nn.ModuleDict()
        self.merged_adapters: list[str] = []
        self._active_adapter = adapter_name
        self.update_layer(adapter_name, adapter, inference_mode)

    def update_layer(self, adapter_name: str, adapter: nn.Module, inference_mode: bool) -> None:
        # as peft's LoRA: a second adapter is added inactive; set_adapter switches
        self.compacter_adapter[adapter_name] = adapter
        self.set_adapter(self.active_adapters, inference_mode=inference_mode)

    def forward(self, *args, **kwargs):
        out = self.base_layer(*args, **kwargs)
        for adapter in self.active_modules(self.compacter_adapter):
            out = on_output(out, adapter)
        return out


class LayerNormLayer(nn.Module, CompacterTunerLayer):
    """A layer norm replaced, while the adapter is active, by a trained copy of itself."""

    adapter_layer_names = ("compacter_layer_norm",)

    def __init__(self, base_layer: nn.Module, adapter_name: str, inference_mode: bool) -> None:
        super().__init__()
        self.base_layer = base_layer
        self.compacter_layer_norm = nn.ModuleDict()
        self.merged_adapters: list[str] = []
        self._active_adapter = adapter_name
        self.update_layer(adapter_name, inference_mode)

    def update_layer(self, adapter_name: str, inference_mode: bool) -> None:
        self.compacter_layer_norm[adapter_name] = copy.deepcopy(self.base_layer)
        self.set_adapter(self.active_adapters, inference_mode=inference_mode)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        active = self.active_modules(self.compacter_layer_norm)
        if len(active) > 1:
            raise ValueError(f"{len(active)} adapters active on one layer norm; activate one at a time")
        return (active[0] if active else self.base_layer)(hidden)


class CompacterModel(BaseTuner):
    """peft's tuner for ``CompacterConfig``: wraps the configured sites and layer norms."""

    prefix = PREFIX
    tuner_layer_cls = CompacterTunerLayer
    target_module_mapping: dict[str, list[str]] = {}  # targets come from the model's structure instead
    uses_shared_state = True  # Compacter's A, on this tuner

    def _pre_injection_hook(self, model: nn.Module, config: CompacterConfig, adapter_name: str) -> None:
        if not hasattr(self, "compacter_shared_rules"):
            self.compacter_shared_rules = nn.ModuleDict()
            self.make_adapter: dict[str, Callable[[], nn.Module]] = {}
        shared = new_shared_rules(config.adapter_config)
        if shared is not None:
            self.compacter_shared_rules[adapter_name] = shared
        # sizes checked here, before any module is replaced: a bad reduction factor leaves the model as it was
        self.make_adapter[adapter_name] = adapter_maker(model.config.hidden_size, config.adapter_config, shared)
        if config.target_modules is None:
            sites = [site.name for site in chosen_sites(find_sites(model), config.adapter_config.placement)]
            norms = [name for name, module in model.named_modules() if is_layer_norm(module)]
            config.target_modules = sites + (norms if config.train_layer_norms else [])

    def _create_and_replace(self, config: CompacterConfig, adapter_name: str, target: nn.Module, target_name: str,
                            parent: nn.Module, current_key: str, parameter_name: str | None = None) -> None:
        frozen = config.inference_mode
        if isinstance(target, LayerNormLayer):
            target.update_layer(adapter_name, frozen)
        elif is_layer_norm(target):
            self._replace_module(parent, target_name, LayerNormLayer(target, adapter_name, frozen), target)
        else:
            adapter = self.make_adapter[adapter_name]()
            if isinstance(target, AdapterLayer):
                target.update_layer(adapter_name, adapter, frozen)
            else:
                self._replace_module(parent, target_name, AdapterLayer(target, adapter_name, adapter, frozen), target)

    def _replace_module(self, parent: nn.Module, child_name: str, new_module: nn.Module, child: nn.Module) -> None:
        # peft's version ties ``child.weight`` onto an unwrapped module, which T5's attention block lacks
        setattr(parent, child_name, new_module)
        weight = next(child.parameters(), None)
        if weight is not None:
            new_module.to(weight.device)

    def _check_merge_allowed(self) -> None:
        methods = sorted({config.method for config in self.peft_config.values()})
        raise ValueError(NOT_MERGEABLE.format(method="/".join(methods)))


def register() -> None:
    """Put Compacter into peft's string-keyed mappings (idempotent; done on import)."""
    PEFT_TYPE_TO_CONFIG_MAPPING[PEFT_TYPE] = CompacterConfig
    PEFT_TYPE_TO_TUNER_MAPPING[PEFT_TYPE] = CompacterModel
    PEFT_TYPE_TO_PREFIX_MAPPING[PEFT_TYPE] = PREFIX


register()
