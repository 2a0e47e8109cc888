"""compacter: parameter-efficient fine-tuning methods of the Compacter paper, injected
into unmodified Hugging Face T5 and BERT-family models. Pure torch + transformers."""

from compacter.api import (
    METHODS,
    ParameterCount,
    apply,
    count_parameters,
    load_trained,
    make_config,
    save_trained,
    trained_state_dict,
)

__all__ = [
    "METHODS",
    "ParameterCount",
    "apply",
    "count_parameters",
    "load_trained",
    "make_config",
    "save_trained",
    "trained_state_dict",
]
