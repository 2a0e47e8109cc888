"""The public API: apply a method, count parameters, save and load only the trained weights.

    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
    compacter.apply(model, "compacter", reduction_factor=32, n=4)
    compacter.count_parameters(model)         # ParameterCount(trainable=…, total=…, backbone=…)
    compacter.save_trained(model, "run/")     # kilobytes: trained tensors + method config
    compacter.load_trained(fresh_model, "run/")

Every method is a (config dataclass, apply function) pair in ``METHODS``. The apply
function changes the model in place and returns what it made trainable; this module
then freezes everything else. Freezing is by object, never by parameter-name patterns.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from compacter.adapter_methods import ADAPTER_VARIANTS, AdapterConfig, apply_adapters
from compacter.bitfit import BitFitConfig, apply_bitfit
from compacter.intrinsic import IntrinsicConfig, apply_intrinsic
from compacter.lora import LoraMethodConfig, apply_lora
from compacter.prompt import PromptConfig, apply_prompt

TRAINED_WEIGHTS = "trained.safetensors"
METHOD_CONFIG = "method_config.json"


@dataclass(frozen=True)
class FinetuneConfig:
    method: str = "finetune"


def apply_finetune(model: nn.Module, config: FinetuneConfig) -> list[nn.Module]:
    return [model]


Trainable = Iterable[nn.Module | nn.Parameter]
METHODS: dict[str, tuple[type, Callable[[nn.Module, Any], Trainable]]] = {
    "finetune": (FinetuneConfig, apply_finetune),
    **{name: (AdapterConfig, apply_adapters) for name in ADAPTER_VARIANTS},
    "bitfit": (BitFitConfig, apply_bitfit),
    "prompt": (PromptConfig, apply_prompt),
    "intrinsic": (IntrinsicConfig, apply_intrinsic),
    "lora": (LoraMethodConfig, apply_lora),
}


@dataclass(frozen=True)
class ParameterCount:
    trainable: int
    total: int      # every parameter of the adapted model, shared ones once
    backbone: int   # parameters before the method was applied

    @property
    def trainable_percent(self) -> float:
        """Trainable share of the *backbone's* parameters — the paper's convention."""
        return 100.0 * self.trainable / self.backbone


def make_config(method: str, **options: Any):
    """The method's config dataclass; unknown methods or options name the valid ones."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of: {', '.join(METHODS)}")
    config_cls = METHODS[method][0]
    valid = [f.name for f in dataclasses.fields(config_cls) if f.name != "method"]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(f"method {method!r} has no option(s) {unknown}; valid options: {valid or 'none'}")
    return config_cls(method=method, **options)


def apply(model: nn.Module, method: str, **options: Any) -> nn.Module:
    """Apply ``method`` to ``model`` in place, freeze everything it does not train; returns the model."""
    config = make_config(method, **options)
    if hasattr(model, "compacter_config"):
        raise ValueError(
            f"{type(model).__name__} already has method {model.compacter_config.method!r} applied; "
            "apply a method to a fresh backbone (applying twice would stack a second set of parameters)"
        )
    backbone = _numel(model.parameters())
    trainable = list(METHODS[method][1](model, config))
    model.requires_grad_(False)
    for item in [*trainable, *_new_task_head(model)]:
        item.requires_grad_(True)
    model.compacter_config = config
    model.compacter_backbone_params = backbone
    return model


def _new_task_head(model: nn.Module) -> list[nn.Module]:
    """Modules outside the pretrained base model (e.g. BERT's ``classifier``): always trained.

    For T5ForConditionalGeneration the base model is the model itself, so nothing is
    added here and the (tied) LM head stays frozen, as in the paper.
    """
    base = getattr(model, "base_model", model)
    if base is model:
        return []
    return [child for child in model.children() if child is not base]


def count_parameters(model: nn.Module) -> ParameterCount:
    params = list(model.parameters())  # de-duplicated: a shared or tied tensor counts once
    total = _numel(params)
    return ParameterCount(
        trainable=_numel(p for p in params if p.requires_grad),
        total=total,
        backbone=getattr(model, "compacter_backbone_params", total),
    )


def _numel(params: Iterable[torch.Tensor]) -> int:
    return sum(p.numel() for p in params)


def trained_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Only the trained tensors, by their names in ``model`` (shared ones once)."""
    return {name: p.detach() for name, p in model.named_parameters() if p.requires_grad}


def save_trained(model: nn.Module, directory: str | Path) -> Path:
    """Write the trained tensors (safetensors) and the method config (JSON) to ``directory``."""
    config = _applied_config(model)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {name: t.contiguous().cpu() for name, t in trained_state_dict(model).items()}
    save_file(tensors, str(directory / TRAINED_WEIGHTS))
    (directory / METHOD_CONFIG).write_text(json.dumps(dataclasses.asdict(config), indent=2) + "\n")
    return directory


def load_trained(model: nn.Module, directory: str | Path) -> nn.Module:
    """Apply the saved method to a fresh backbone (if not applied yet) and load its trained tensors."""
    directory = Path(directory)
    for needed in (TRAINED_WEIGHTS, METHOD_CONFIG):
        if not (directory / needed).is_file():
            raise FileNotFoundError(f"{directory / needed} not found; expected a directory written by save_trained")
    options = json.loads((directory / METHOD_CONFIG).read_text())
    method = options.pop("method")
    if not hasattr(model, "compacter_config"):
        apply(model, method, **options)
    elif model.compacter_config != make_config(method, **options):
        raise ValueError(f"model has {model.compacter_config}, the saved weights are for {make_config(method, **options)}")
    tensors = load_file(str(directory / TRAINED_WEIGHTS))
    expected = set(trained_state_dict(model))
    if set(tensors) != expected:
        missing, unexpected = sorted(expected - set(tensors)), sorted(set(tensors) - expected)
        raise ValueError(f"saved weights do not fit this model: missing {missing[:5]}, unexpected {unexpected[:5]}")
    model.load_state_dict(tensors, strict=False)
    return model


def _applied_config(model: nn.Module):
    if not hasattr(model, "compacter_config"):
        raise ValueError("no method applied to this model; call compacter.apply(model, method) first")
    return model.compacter_config
