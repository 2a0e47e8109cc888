"""The public API: apply a method, count parameters, save and load only the trained weights.

    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
    compacter.apply(model, "compacter", reduction_factor=32, n=4)
    compacter.count_parameters(model)         # ParameterCount(trainable=…, total=…, backbone=…)
    compacter.save_trained(model, "run/")     # kilobytes: trained tensors + method config
    compacter.load_trained(fresh_model, "run/")

Every method is a (config dataclass, apply function) pair in ``METHODS``, the configs
``compacter.configs`` declares (importable without torch) and the functions here. The apply
function changes the model in place and returns what it made trainable; this module
then freezes everything else (by object, never by parameter-name patterns) and records
on the model what changed (``model.compacter_applied``: modules wrapped and added, the
trained parameters), which save/load and the applied-twice check read. A new task head
is trained with every method: what lies outside ``model.base_model``, and the weights
``mark_new_weights`` declared (from_pretrained's missing keys).
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

from compacter.adapter_methods import apply_adapters
from compacter.bitfit import apply_bitfit
from compacter.configs import (CONFIGS, AdapterConfig, BitFitConfig, FinetuneConfig, IntrinsicConfig,
                               PeftMethodConfig, PromptConfig)
from compacter.intrinsic import apply_intrinsic
from compacter.peft_methods import apply_peft, load_peft_checkpoint, peft_checkpoint
from compacter.prompt import apply_prompt

TRAINED_WEIGHTS = "trained.safetensors"
METHOD_CONFIG = "method_config.json"


def apply_finetune(model: nn.Module, config: FinetuneConfig) -> list[nn.Module]:
    return [model]


Trainable = Iterable[nn.Module | nn.Parameter]
APPLY: dict[type, Callable[[nn.Module, Any], Trainable]] = {
    FinetuneConfig: apply_finetune,
    AdapterConfig: apply_adapters,
    BitFitConfig: apply_bitfit,
    PromptConfig: apply_prompt,
    IntrinsicConfig: apply_intrinsic,
    PeftMethodConfig: apply_peft,
}
METHODS: dict[str, tuple[type, Callable[[nn.Module, Any], Trainable]]] = {
    name: (config, APPLY[config]) for name, config in CONFIGS.items()}
# a method whose checkpoint is more than its trained parameters (peft's: fixed random buffers, its
# own key names): (what to save given the trained tensors, how to load it back)
CHECKPOINTS = {PeftMethodConfig: (peft_checkpoint, load_peft_checkpoint)}


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


@dataclass(frozen=True)
class Applied:
    """What ``apply`` did to a model, kept on it as ``model.compacter_applied``.

    Names are dotted paths in the adapted model: ``wrapped`` — backbone modules a method
    replaced by a wrapper around them (adapters, LoRA, BitFit's added norm bias) —, ``added``
    — new modules and parameters (shared rules, prompt, BitFit's new biases, …) —, ``trained``
    — every parameter the method trains, new task head included: what ``save_trained`` writes.
    """

    config: Any
    backbone_params: int
    wrapped: tuple[str, ...]
    added: tuple[str, ...]
    trained: tuple[str, ...]


def mark_new_weights(model: nn.Module, names: Iterable[str]) -> nn.Module:
    """Declare the parameters that are not pretrained — ``missing_keys`` of
    ``from_pretrained(..., output_loading_info=True)``, i.e. a new task head; ``apply`` trains
    them with every method, besides what lies outside ``model.base_model``."""
    known = dict(model.named_parameters())
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise ValueError(f"{type(model).__name__} has no parameter(s) {unknown[:5]}")
    model.compacter_new_weights = tuple(sorted(names))
    return model


def apply(model: nn.Module, method: str, **options: Any) -> nn.Module:
    """Apply ``method`` to ``model`` in place, freeze everything it does not train; returns the model."""
    config = make_config(method, **options)
    if hasattr(model, "compacter_applied"):
        applied = model.compacter_applied
        raise ValueError(
            f"{type(model).__name__} already has method {applied.config.method!r} applied ({len(applied.wrapped)} "
            f"modules wrapped, {len(applied.added)} added); apply a method to a fresh backbone "
            "(applying twice would stack a second set of parameters)"
        )
    head = _new_weights(model)  # before the method runs: nothing it adds is mistaken for a head
    modules_before = {id(m): name for name, m in model.named_modules()}
    params_before = {id(p) for p in model.parameters()}
    backbone = _numel(model.parameters())
    trainable = list(METHODS[method][1](model, config))
    model.requires_grad_(False)
    for item in [*trainable, *head]:
        item.requires_grad_(True)
    names = {id(p): name for name, p in model.named_parameters()}
    trained = {names[id(p)]: None for item in [*trainable, *head] for p in _parameters(item)}
    wrapped, added = _changes(model, modules_before, params_before)
    model.compacter_applied = Applied(config, backbone, wrapped, added, tuple(trained))
    return model


def _new_weights(model: nn.Module) -> list[nn.Parameter]:
    """The task head and whatever else is not pretrained: the parameters outside the base
    model (BERT's ``classifier``, trained for every task even when a checkpoint carries one
    from another task) and the weights ``mark_new_weights`` declared (from_pretrained's
    missing keys, e.g. a pooler the checkpoint lacks). For T5ForConditionalGeneration the base
    model is the model itself: nothing, and the (tied) LM head stays frozen, as in the paper."""
    base = getattr(model, "base_model", model)
    inside = {id(p) for p in base.parameters()}
    params = dict(model.named_parameters())
    new = {id(p): p for p in params.values() if id(p) not in inside}
    new.update({id(params[name]): params[name] for name in getattr(model, "compacter_new_weights", ())})
    return list(new.values())


def _parameters(item: nn.Module | nn.Parameter) -> Iterable[nn.Parameter]:
    return [item] if isinstance(item, nn.Parameter) else item.parameters()


def _changes(model: nn.Module, modules_before: dict[int, str], params_before: set[int]) -> tuple[tuple, tuple]:
    """(wrapped, added): new modules standing where a backbone module stood, other new modules
    (outermost only) and new parameters of backbone modules."""
    wrapped, added, new, before_names = [], [], set(), set(modules_before.values())
    for name, module in model.named_modules():
        if id(module) in modules_before:
            continue
        inside_new = name.rpartition(".")[0] in new
        new.add(name)
        if not inside_new:
            (wrapped if name in before_names else added).append(name)
    for name, p in model.named_parameters():
        if id(p) not in params_before and name.rpartition(".")[0] not in new:  # new in an old module
            added.append(name)
    return tuple(wrapped), tuple(added)


def count_parameters(model: nn.Module) -> ParameterCount:
    params = list(model.parameters())  # de-duplicated: a shared or tied tensor counts once
    total = _numel(params)
    return ParameterCount(
        trainable=_numel(p for p in params if p.requires_grad),
        total=total,
        backbone=model.compacter_applied.backbone_params if hasattr(model, "compacter_applied") else total,
    )


def _numel(params: Iterable[torch.Tensor]) -> int:
    return sum(p.numel() for p in params)


def trained_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Only the tensors the applied method trains, by their names in ``model`` (shared ones once),
    or what the method's entry in ``CHECKPOINTS`` saves instead."""
    config = _applied(model).config
    params = dict(model.named_parameters())
    trained = {name: params[name].detach() for name in _applied(model).trained}
    return CHECKPOINTS[type(config)][0](model, trained) if type(config) in CHECKPOINTS else trained


def save_trained(model: nn.Module, directory: str | Path) -> Path:
    """Write the trained tensors (safetensors) and the method config (JSON) to ``directory``."""
    return write_saved(directory, _applied(model).config, trained_state_dict(model))


def write_saved(directory: str | Path, config: Any, tensors: dict[str, torch.Tensor]) -> Path:
    """The folder ``save_trained`` writes, from a method config and the tensors by their names in the
    model (``compacter.convert`` writes converted adapters with it)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_file({name: t.contiguous().cpu() for name, t in tensors.items()}, str(directory / TRAINED_WEIGHTS))
    (directory / METHOD_CONFIG).write_text(json.dumps(dataclasses.asdict(config), indent=2) + "\n")
    return directory


def read_saved(directory: str | Path) -> tuple[Any, dict[str, torch.Tensor]]:
    """(method config, tensors) of a folder ``save_trained`` wrote."""
    directory = Path(directory)
    for needed in (TRAINED_WEIGHTS, METHOD_CONFIG):
        if not (directory / needed).is_file():
            raise FileNotFoundError(f"{directory / needed} not found; expected a directory written by save_trained")
    options = json.loads((directory / METHOD_CONFIG).read_text())
    return make_config(options.pop("method"), **options), load_file(str(directory / TRAINED_WEIGHTS))


def load_trained(model: nn.Module, directory: str | Path) -> nn.Module:
    """Apply the saved method to a fresh backbone (if not applied yet) and load its trained tensors."""
    saved, tensors = read_saved(directory)
    if not hasattr(model, "compacter_applied"):
        apply(model, saved.method, **method_options(saved))
    elif model.compacter_applied.config != saved:
        raise ValueError(f"model has {model.compacter_applied.config}, the saved weights are for {saved}")
    expected = set(trained_state_dict(model))
    if set(tensors) != expected:
        missing, unexpected = sorted(expected - set(tensors)), sorted(set(tensors) - expected)
        raise ValueError(f"saved weights do not fit this model: missing {missing[:5]}, unexpected {unexpected[:5]}")
    config = model.compacter_applied.config
    if type(config) in CHECKPOINTS:
        CHECKPOINTS[type(config)][1](model, tensors)
    else:
        model.load_state_dict(tensors, strict=False)
    return model


def method_options(config: Any) -> dict[str, Any]:
    """The options ``make_config`` takes to rebuild ``config``."""
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config) if f.name != "method"}


def _applied(model: nn.Module) -> Applied:
    if not hasattr(model, "compacter_applied"):
        raise ValueError("no method applied to this model; call compacter.apply(model, method) first")
    return model.compacter_applied
