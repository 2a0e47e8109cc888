"""compacter: parameter-efficient fine-tuning methods of the Compacter paper, injected
into unmodified Hugging Face T5 and BERT-family models. Pure torch + transformers.

The API (``compacter.api``) is loaded on first use of one of its names, so that
``compacter.configs``, every method's options, imports without torch: a sweep completes its
runs' options before anything trains."""

__all__ = [
    "METHODS",
    "Applied",
    "ParameterCount",
    "apply",
    "count_parameters",
    "load_trained",
    "make_config",
    "mark_new_weights",
    "save_trained",
    "trained_state_dict",
]


def __getattr__(name: str):
    if name not in __all__:
        raise AttributeError(f"module 'compacter' has no attribute {name!r}")
    from compacter import api

    return getattr(api, name)
