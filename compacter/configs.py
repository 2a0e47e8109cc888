"""Every method's options, one frozen dataclass per method, with no torch, transformers or peft
imported: a sweep checks and completes the options of each of its runs (every option is part of
a run's identity) before anything trains. The layers and the injection each config drives live
in the method's own module (``adapter_methods``, ``bitfit``, ``intrinsic``, ``prompt``,
``peft_methods``), as a peft tuner keeps its ``config.py`` beside its ``layer.py``.

``CONFIGS`` names every method ``compacter.apply`` accepts.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass(frozen=True)
class FinetuneConfig:
    method: str = "finetune"


# The adapter family (``compacter.adapter_methods``): one config for the seven methods, which
# differ only in where adapters go and what their projections are.
ADAPTER_VARIANTS = {  # method -> (placement, projection)
    "adapter": ("all", "linear"),
    "pfeiffer": ("attention", "linear"),      # the paper's code: one adapter, after self-attention
    "adapterdrop": ("upper", "linear"),
    "lowrank": ("all", "lowrank"),
    "phm": ("all", "phm"),
    "compacter": ("all", "compacter"),
    "compacterpp": ("feedforward", "compacter"),
}
DEFAULT_N = {"phm": 12}  # the paper's PHM-Adapter row uses n = 12; Compacter uses 4


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


# BitFit (``compacter.bitfit``): no options.
@dataclass(frozen=True)
class BitFitConfig:
    method: str = "bitfit"


# Intrinsic-SAID (``compacter.intrinsic``).
@dataclass(frozen=True)
class IntrinsicConfig:
    method: str = "intrinsic"
    intrinsic_dim: int = 20000   # trained numbers in all: θ_d plus, with SAID, one λ per tensor
    said: bool = True            # structure-aware (SAID): train one scale per tensor; False = DID
    projection_seed: int = 0     # seeds B, Π, G of every Fastfood map: a saved task needs only θ_d, λ

    def __post_init__(self) -> None:
        if self.method != "intrinsic":
            raise ValueError(f"IntrinsicConfig is for method 'intrinsic', got {self.method!r}")
        if self.intrinsic_dim < 1:
            raise ValueError(f"intrinsic_dim must be a positive integer, got {self.intrinsic_dim}")


# Prompt tuning (``compacter.prompt``).
INITS = ("tokens", "random")


@dataclass(frozen=True)
class PromptConfig:
    method: str = "prompt"
    num_tokens: int = 100   # P, the paper's prefix_dim
    init: str = "tokens"    # "tokens" (prompt-t) or "random" (prompt-r)

    def __post_init__(self) -> None:
        if self.method != "prompt":
            raise ValueError(f"PromptConfig is for method 'prompt', got {self.method!r}")
        if self.num_tokens < 1:
            raise ValueError(f"num_tokens must be a positive integer, got {self.num_tokens}")
        if self.init not in INITS:
            raise ValueError(f"init must be one of {', '.join(INITS)} (prompt-t, prompt-r), got {self.init!r}")


# Any peft tuner (``compacter.peft_methods``): its options are peft's config, completed by peft.
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




CONFIGS: dict[str, type] = {
    "finetune": FinetuneConfig,
    **dict.fromkeys(ADAPTER_VARIANTS, AdapterConfig),
    "bitfit": BitFitConfig,
    "prompt": PromptConfig,
    "intrinsic": IntrinsicConfig,
    "peft": PeftMethodConfig,  # any peft tuner; its options are peft's config (lora, ia3, …)
}
