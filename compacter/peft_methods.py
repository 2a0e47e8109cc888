"""Any Hugging Face ``peft`` tuner as a method of the suite: ``compacter.apply(model, "peft",
peft_config={"peft_type": "IA3", ...})`` — LoRA, DoRA, (IA)³, LoHa, VeRA, OFT, FourierFT, …

The options *are* peft's config (a method YAML writes ``method: peft`` and
``method_options: {peft_config: {peft_type: IA3, ...}}``); nothing of a method is re-implemented.
``compacter.configs.PeftMethodConfig`` resolves them into peft's complete config (its defaults
filled, JSON-plain, without ``peft_version``), which is what enters the run's identity; the
record's provenance holds the peft version.

One path for every tuner: ``peft.get_peft_model`` injects its layers into the model *in place*
(so module names, ``model.base_model`` — where the suite finds the task head — and counting
stay the backbone's), and the ``PeftModel`` it returns is kept beside the model by plain
reference. Shared-state tuners (VeRA's projections, VB-LoRA's vector bank), which peft's
``inject_adapter_in_model`` refuses, work the same way: their layers hold the shared tensors
by reference. Checkpoints go through peft's own ``get_peft_model_state_dict`` /
``set_peft_model_state_dict`` on that ``PeftModel`` (buffers such as VeRA's ``vera_A`` /
``vera_B`` included; a save of "tensors that require grad" would drop them), plus the task
head, which the suite trains itself.

Refused, each with the reason: ``task_type`` / ``modules_to_save`` (peft would train its own
copy of the head the suite already trains), prompt-learning methods (prefix tuning, P-tuning:
they change the forward through the ``PeftModel`` wrapper, which the suite's model does not
go through; prefix tuning is broken under transformers 5 besides), and inits that change the backbone's weights (PiSSA, OLoRA, …: a checkpoint of
the adapter alone would rebuild the wrong model on a fresh backbone).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from compacter.configs import PeftMethodConfig

PEFT_KEY = "base_model."  # peft's checkpoint keys all start so; the suite's own names never do


@dataclass(frozen=True)
class PeftState:
    """Kept on the adapted model as a plain attribute (not a submodule: the ``PeftModel`` contains
    the model, a submodule would make a cycle)."""

    peft_model: Any
    adapter_names: frozenset[str]  # the model's parameters peft trains


def apply_peft(model: nn.Module, config: PeftMethodConfig) -> list[nn.Parameter]:
    """Inject the peft method in place; returns the parameters peft made trainable."""
    from peft import get_peft_config, get_peft_model

    before = {id(p): _fingerprint(p) for p in model.parameters()}  # by object: injection renames them
    peft_model = get_peft_model(model, get_peft_config(dict(config.peft_config)),  # a fresh one: peft mutates it
                                autocast_adapter_dtype=False)
    changed = [name for name, p in model.named_parameters() if id(p) in before and _fingerprint(p) != before[id(p)]]
    if changed:
        init = {k: v for k, v in config.peft_config.items() if k.startswith("init")}
        raise ValueError(f"{config.peft_config['peft_type']} with {init} changed the backbone's own weights "
                         f"({changed[0]} and {len(changed) - 1} more): a checkpoint of the adapter would rebuild the "
                         "wrong model on a fresh backbone. Use an init that leaves the backbone as it is (the default)")
    trained = [p for p in model.parameters() if p.requires_grad]
    names = frozenset(name for name, p in model.named_parameters() if p.requires_grad)
    object.__setattr__(model, "compacter_peft", PeftState(peft_model, names))
    return trained


def peft_checkpoint(model: nn.Module, trained: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """peft's state dict of the adapter (its keys start with ``base_model.``) and the task head."""
    from peft import get_peft_model_state_dict

    state = _state(model)
    head = {name: t for name, t in trained.items() if name not in state.adapter_names}
    return {**head, **get_peft_model_state_dict(state.peft_model)}


def load_peft_checkpoint(model: nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    from peft import set_peft_model_state_dict

    adapter = {k: v for k, v in tensors.items() if k.startswith(PEFT_KEY)}
    result = set_peft_model_state_dict(_state(model).peft_model, adapter)
    if result.unexpected_keys:
        raise ValueError(f"saved peft weights do not fit this model: unexpected {result.unexpected_keys[:5]}")
    model.load_state_dict({k: v for k, v in tensors.items() if k not in adapter}, strict=False)


def _fingerprint(p: torch.Tensor) -> tuple:
    """Changes when the tensor's storage is replaced or written in place (meta tensors: never written)."""
    return (p.data_ptr(), p._version)


def _state(model: nn.Module) -> PeftState:
    return model.__dict__["compacter_peft"]
