"""Any Hugging Face ``peft`` tuner as a method of the suite: ``compacter.apply(model, "peft",
peft_config={"peft_type": "IA3", ...})`` — LoRA, DoRA, (IA)³, LoHa, VeRA, OFT, FourierFT, …

The options *are* peft's config (a method YAML writes ``method: peft`` and
``method_options: {peft_config: {peft_type: IA3, ...}}``); nothing of a method is re-implemented.
``PeftMethodConfig`` resolves them into peft's complete config (its defaults filled, JSON-plain,
without ``peft_version``), which is what enters the run's identity; the record's provenance
holds the peft version.

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

import enum
from dataclasses import dataclass, field
from typing import Any, Mapping

import torch
from torch import nn

PEFT_KEY = "base_model."  # peft's checkpoint keys all start so; the suite's own names never do
REFUSED_OPTIONS = {
    "task_type": "the suite builds the task's model and head itself; leave task_type out",
    "modules_to_save": "the suite trains the new task head itself (peft would train a second copy of it)",
}


@dataclass(frozen=True)
class PeftMethodConfig:
    method: str = "peft"
    peft_config: dict = field(default_factory=dict)  # peft's config, e.g. {peft_type: IA3, target_modules: [...]}

    def __post_init__(self) -> None:
        if self.method != "peft":
            raise ValueError(f"PeftMethodConfig is for method 'peft', got {self.method!r}")
        object.__setattr__(self, "peft_config", resolve_peft_config(self.peft_config))

    def peft(self):
        """A fresh peft config object (peft mutates it while injecting: targets get resolved)."""
        from peft import get_peft_config

        return get_peft_config(dict(self.peft_config))

    def checkpoint(self, model: nn.Module, trained: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """peft's state dict of the adapter (its keys start with ``base_model.``) and the task head."""
        from peft import get_peft_model_state_dict

        state = _state(model)
        head = {name: t for name, t in trained.items() if name not in state.adapter_names}
        return {**head, **get_peft_model_state_dict(state.peft_model)}

    def load_checkpoint(self, model: nn.Module, tensors: dict[str, torch.Tensor]) -> None:
        from peft import set_peft_model_state_dict

        adapter = {k: v for k, v in tensors.items() if k.startswith(PEFT_KEY)}
        result = set_peft_model_state_dict(_state(model).peft_model, adapter)
        if result.unexpected_keys:
            raise ValueError(f"saved peft weights do not fit this model: unexpected {result.unexpected_keys[:5]}")
        model.load_state_dict({k: v for k, v in tensors.items() if k not in adapter}, strict=False)


@dataclass(frozen=True)
class PeftState:
    """Kept on the adapted model as a plain attribute (not a submodule: the ``PeftModel`` contains
    the model, a submodule would make a cycle)."""

    peft_model: Any
    adapter_names: frozenset[str]  # the model's parameters peft trains


def resolve_peft_config(options: Mapping[str, Any]) -> dict[str, Any]:
    """peft's complete config for ``options`` as plain JSON values, without ``peft_version``."""
    import peft
    from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING

    options = dict(options)
    kind = str(options.get("peft_type") or "").upper()
    if kind not in PEFT_TYPE_TO_CONFIG_MAPPING:
        known = ", ".join(sorted(str(k) for k in PEFT_TYPE_TO_CONFIG_MAPPING))
        raise ValueError(f"peft_config.peft_type must name a peft {peft.__version__} method, got "
                         f"{options.get('peft_type')!r}; one of: {known}")
    for key, why in REFUSED_OPTIONS.items():
        if options.get(key):
            raise ValueError(f"peft_config.{key}={options[key]!r} is not supported: {why}")
    config = PEFT_TYPE_TO_CONFIG_MAPPING[kind](**{**options, "peft_type": kind})
    if config.is_prompt_learning or config.is_adaption_prompt:
        raise ValueError(f"{kind} is a prompt-learning method: peft applies it in the forward of its PeftModel "
                         "wrapper, not by layers injected into the model, and the suite does not train through "
                         "that wrapper. Prefix tuning cannot be a row with transformers 5 in any case: peft's "
                         "BERT path refuses ('Model does not support past key values') and T5's generate drops "
                         "the prefix (tests/test_peft_methods.py)")
    resolved = _plain(config.to_dict())
    del resolved["peft_version"]  # provenance holds the version; the run is the same run under another peft
    return resolved


def _plain(value: Any) -> Any:
    """JSON-plain and deterministic: enums by value, sets as sorted lists."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted(_plain(v) for v in value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def apply_peft(model: nn.Module, config: PeftMethodConfig) -> list[nn.Parameter]:
    """Inject the peft method in place; returns the parameters peft made trainable."""
    from peft import get_peft_model

    before = {id(p): _fingerprint(p) for p in model.parameters()}  # by object: injection renames them
    peft_model = get_peft_model(model, config.peft(), autocast_adapter_dtype=False)
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


def _fingerprint(p: torch.Tensor) -> tuple:
    """Changes when the tensor's storage is replaced or written in place (meta tensors: never written)."""
    return (p.data_ptr(), p._version)


def _state(model: nn.Module) -> PeftState:
    return model.__dict__["compacter_peft"]
