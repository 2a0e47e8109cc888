"""LoRA (Hu et al., ICLR 2022, "LoRA: Low-Rank Adaptation of Large Language Models", §4.1):
a frozen linear layer ``W x`` becomes ``W x + (alpha / r) · B A x`` with A: (r, in), B: (out, r),
B = 0 at start so the model starts as the backbone.

Not in the Compacter paper; here because it is what users compare against today. The
layers come from Hugging Face ``peft`` (``inject_adapter_in_model`` wraps the target
``nn.Linear`` modules in place) — nothing is re-implemented. Defaults follow the LoRA
paper's GLUE setup: rank 8, alpha 8, on peft's default targets per architecture
(``TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING``): the attention query and value
projections — ``query``/``value`` in BERT-family encoders, ``q``/``v`` in T5, where that means
the encoder and decoder self-attention *and* the decoder cross-attention.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from compacter.sites import model_type


@dataclass(frozen=True)
class LoraMethodConfig:
    method: str = "lora"
    r: int = 8                                   # rank
    lora_alpha: int = 8                          # scale alpha / r (an int, as in peft's LoraConfig)
    lora_dropout: float = 0.0                    # dropout on the LoRA branch's input
    target_modules: tuple[str, ...] | None = None  # module-name suffixes; None = peft's default for the architecture

    def __post_init__(self) -> None:
        if self.method != "lora":
            raise ValueError(f"LoraMethodConfig is for method 'lora', got {self.method!r}")
        if self.r < 1:
            raise ValueError(f"r must be a positive integer, got {self.r}")
        if self.lora_alpha <= 0:
            raise ValueError(f"lora_alpha must be positive, got {self.lora_alpha}")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise ValueError(f"lora_dropout must be in [0, 1), got {self.lora_dropout}")
        if self.target_modules is not None:
            if isinstance(self.target_modules, str) or not self.target_modules:
                raise ValueError(f"target_modules must be a non-empty list of module names, got {self.target_modules!r}")
            # Saved configs are JSON, which turns tuples into lists: compare equal after a round trip.
            object.__setattr__(self, "target_modules", tuple(self.target_modules))


def apply_lora(model: nn.Module, config: LoraMethodConfig) -> list[nn.Module]:
    """Inject peft LoRA layers in place; returns their A and B matrices (the trained set)."""
    # Imported here: peft takes seconds to import, and only this method needs it.
    from peft import LoraConfig, inject_adapter_in_model
    from peft.tuners.lora import LoraLayer
    from peft.utils import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as PEFT_DEFAULT_TARGETS

    kind = model_type(model)
    targets = config.target_modules or PEFT_DEFAULT_TARGETS.get(kind)
    if not targets:
        raise ValueError(f"peft has no default LoRA target modules for model type {kind!r}; "
                         "set target_modules (e.g. ['query', 'value'])")
    peft_config = LoraConfig(r=config.r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                             target_modules=list(targets), bias="none")
    inject_adapter_in_model(peft_config, model)  # raises if no module matches the targets
    layers = [m for m in model.modules() if isinstance(m, LoraLayer)]
    return [matrices for layer in layers for matrices in (layer.lora_A, layer.lora_B)]
