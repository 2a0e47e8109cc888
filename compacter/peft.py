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
trained copy, so ``unload`` gives back the untouched backbone. Any ``nn.Linear`` (or block
ending in one) can be targeted: an adapter's width is the targeted module's output width.

As peft's own tuners: any number of adapters (each with its own A), checkpoint keys without
the adapter name, adapters on the base layer's device and dtype (peft's autocast keeps
half-precision models' adapters in float32; each layer computes in its adapter's dtype), and
meta-device adapters under ``low_cpu_mem_usage`` (tests/test_peft_citizenship.py).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from functools import partial

import torch
from peft.config import PeftConfig
from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING, PEFT_TYPE_TO_PREFIX_MAPPING, PEFT_TYPE_TO_TUNER_MAPPING
from peft.tuners.tuners_utils import BaseTuner, BaseTunerLayer
from torch import nn

from compacter.adapter_methods import adapter_maker, chosen_sites, new_shared_rules
from compacter.configs import ADAPTER_VARIANTS, AdapterConfig
from compacter.adapters import on_output
from compacter.sites import find_sites, is_layer_norm, output_width

PEFT_TYPE = "COMPACTER"
PREFIX = "compacter_"
NOT_MERGEABLE = ("{method} adapters cannot be merged into the backbone: an adapter computes h + up(act(down(h))) "
                 "with a non-linearity between its two projections, which no single weight matrix equals; use "
                 "unload() to get the backbone back, or keep the adapters at inference")
# an adapter with init_weights=False: every tensor ~ N(0, RANDOM_INIT_STD²), far enough from the
# identity that a test sees each adapter change the output
RANDOM_INIT_STD = 0.5


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
    init_weights: bool = field(default=True, metadata={
        "help": "the paper's init (a new adapter is the identity to ~1e-9); False: every adapter tensor random, "
                "for tests that need a fresh adapter to change the output (as LoRA's init_lora_weights=False)"})
    target_modules: set[str] | str | None = None
    modules_to_save: list[str] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        self.peft_type = PEFT_TYPE
        if isinstance(self.target_modules, list):  # adapter_config.json holds a list; peft's configs a set
            self.target_modules = set(self.target_modules)
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

    def _get_base_layer_device_and_dtype(self, base_layer: nn.Module):
        # peft's reads ``base_layer.weight``, which T5's attention and feed-forward blocks lack
        weight = next(base_layer.parameters(), None)
        return (None, None) if weight is None else (weight.device, weight.dtype)


def in_own_dtype(module: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    """``module(hidden)`` computed in the module's dtype, returned in ``hidden``'s (float32
    adapters on a bfloat16 model: peft's default autocast)."""
    dtype = next(module.parameters()).dtype
    return module(hidden.to(dtype)).to(hidden.dtype)


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
        self._move_adapter_to_device_of_base_layer(adapter_name)  # meta tensors (low_cpu_mem_usage) stay
        self.set_adapter(self.active_adapters, inference_mode=inference_mode)

    def forward(self, *args, **kwargs):
        out = self.base_layer(*args, **kwargs)
        for adapter in self.active_modules(self.compacter_adapter):
            out = on_output(out, partial(in_own_dtype, adapter))
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
        return in_own_dtype(active[0], hidden) if active else self.base_layer(hidden)


class CompacterModel(BaseTuner):
    """peft's tuner for ``CompacterConfig``: wraps the configured sites and layer norms.

    Each adapter's A lives in ``compacter_shared_rules[adapter_name]`` (Compacter only)."""

    prefix = PREFIX
    tuner_layer_cls = CompacterTunerLayer
    target_module_mapping: dict[str, list[str]] = {}  # targets come from the model's structure instead
    uses_shared_state = True  # Compacter's A, on this tuner

    def inject_adapter(self, model: nn.Module, adapter_name: str, **kwargs) -> None:
        # peft calls _pre_injection_hook for the first adapter only; add_adapter and load_adapter
        # come straight here, so every adapter's targets and A are made here
        config = self.peft_config[adapter_name]
        if "compacter_shared_rules" not in self._modules:
            self.compacter_shared_rules = nn.ModuleDict()
        trainable_before = {name: rules.rules.requires_grad for name, rules in self.compacter_shared_rules.items()}
        if config.target_modules is None:
            config.target_modules = default_targets(model, config)
        shared = new_shared_rules(config.adapter_config)
        if shared is not None:
            self.compacter_shared_rules[adapter_name] = _initialised(shared, config)
            if shared.rules.device.type != "meta":  # low_cpu_mem_usage: left empty, for a checkpoint to fill
                first = next(p for p in model.parameters() if p.is_floating_point())
                shared.to(first.device, first.dtype)
        try:
            self._check_widths(model, config, adapter_name)  # before any module is replaced
            super().inject_adapter(model, adapter_name, **kwargs)
        except Exception:
            if adapter_name in self.compacter_shared_rules:
                del self.compacter_shared_rules[adapter_name]
            raise
        # A is no tuner layer: peft's trainability bookkeeping passes it by; ours, as peft's for layers:
        # adding an adapter leaves the others as they were, and the new one trains only if active
        for name, rules in self.compacter_shared_rules.items():
            rules.requires_grad_(trainable_before.get(name, name in self.active_adapters and not config.inference_mode))

    def _check_widths(self, model: nn.Module, config: CompacterConfig, adapter_name: str) -> None:
        """An error naming the first targeted module whose width the method cannot fit."""
        named = list(model.named_modules())
        inside_layers = tuple(f"{key}." for key, module in named if isinstance(module, BaseTunerLayer))
        for key, module in named:
            if key and not key.startswith(inside_layers) and self._check_target_module_exists(config, key):
                base = module.get_base_layer() if isinstance(module, BaseTunerLayer) else module
                if not is_layer_norm(base):
                    self._adapter_maker(config, adapter_name, key, base)

    def _adapter_maker(self, config: CompacterConfig, adapter_name: str, key: str, target: nn.Module):
        shared = self.compacter_shared_rules[adapter_name] if adapter_name in self.compacter_shared_rules else None
        width = output_width(target, key)
        try:
            return adapter_maker(width, config.adapter_config, shared)
        except ValueError as error:
            raise ValueError(f"{config.method} cannot adapt {key} (output width {width}): {error}") from None

    def _create_and_replace(self, config: CompacterConfig, adapter_name: str, target: nn.Module, target_name: str,
                            parent: nn.Module, current_key: str, parameter_name: str | None = None) -> None:
        frozen = config.inference_mode
        if isinstance(target, LayerNormLayer):
            target.update_layer(adapter_name, frozen)
        elif is_layer_norm(target):
            self._replace_module(parent, target_name, LayerNormLayer(target, adapter_name, frozen), target)
        else:
            base = target.get_base_layer() if isinstance(target, AdapterLayer) else target
            adapter = _initialised(self._adapter_maker(config, adapter_name, current_key, base)(), config)
            if isinstance(target, AdapterLayer):
                target.update_layer(adapter_name, adapter, frozen)
            else:
                self._replace_module(parent, target_name, AdapterLayer(target, adapter_name, adapter, frozen), target)

    def _replace_module(self, parent: nn.Module, child_name: str, new_module: nn.Module, child: nn.Module) -> None:
        # peft's ties ``child.weight`` onto an unwrapped module (unload), which T5's blocks lack, and moves
        # the adapter's device only: update_layer puts each adapter on its base layer's device and dtype
        setattr(parent, child_name, new_module)

    def set_adapter(self, adapter_name: str | list[str], inference_mode: bool = False) -> None:
        super().set_adapter(adapter_name, inference_mode)
        active = {adapter_name} if isinstance(adapter_name, str) else set(adapter_name)
        for name, rules in self.compacter_shared_rules.items():
            rules.requires_grad_(name in active and not inference_mode)

    def delete_adapter(self, adapter_name: str) -> None:
        super().delete_adapter(adapter_name)
        if adapter_name in self.compacter_shared_rules:
            del self.compacter_shared_rules[adapter_name]

    def _cast_adapter_dtype(self, adapter_name: str, autocast_adapter_dtype: bool = True) -> None:
        # peft upcasts the half-precision adapters of tuner layers to float32; their A, on the tuner, goes along
        super()._cast_adapter_dtype(adapter_name, autocast_adapter_dtype)
        if autocast_adapter_dtype and adapter_name in self.compacter_shared_rules:
            rules = self.compacter_shared_rules[adapter_name]
            if rules.rules.dtype in (torch.float16, torch.bfloat16):
                rules.float()

    @classmethod
    def _remove_adapter_name_from_key(cls, key: str, adapter_name: str) -> str:
        # peft strips the name where it is the second-to-last part (``lora_A.<name>.weight``); ours sits
        # right after the container, before the adapter's own path: ``compacter_adapter.<name>.down.s``
        stripped = re.sub(rf"(^|\.)({PREFIX}\w+)\.{re.escape(adapter_name)}(?=\.)", r"\1\2", key)
        return stripped if stripped != key else super()._remove_adapter_name_from_key(key, adapter_name)

    def _check_merge_allowed(self) -> None:
        methods = sorted({config.method for config in self.peft_config.values()})
        raise ValueError(NOT_MERGEABLE.format(method="/".join(methods)))


def default_targets(model: nn.Module, config: CompacterConfig) -> set[str]:
    """The placement's sites and, with ``train_layer_norms``, every layer norm (the paper trains them)."""
    try:
        found = find_sites(model)
    except ValueError as error:
        raise ValueError(f"{error}; for another model, name the modules to adapt in target_modules") from None
    sites = [site.name for site in chosen_sites(found, config.adapter_config.placement)]
    norms = [name for name, module in model.named_modules() if is_layer_norm(module)]
    return set(sites + (norms if config.train_layer_norms else []))


def _initialised(module: nn.Module, config: CompacterConfig) -> nn.Module:
    """``module`` as built (the paper's init), or with every tensor random (``init_weights=False``)."""
    if not config.init_weights:
        for p in module.parameters():
            nn.init.normal_(p, std=RANDOM_INIT_STD)
    return module


def register() -> None:
    """Put Compacter into peft's string-keyed mappings (idempotent; done on import)."""
    PEFT_TYPE_TO_CONFIG_MAPPING[PEFT_TYPE] = CompacterConfig
    PEFT_TYPE_TO_TUNER_MAPPING[PEFT_TYPE] = CompacterModel
    PEFT_TYPE_TO_PREFIX_MAPPING[PEFT_TYPE] = PREFIX


register()
