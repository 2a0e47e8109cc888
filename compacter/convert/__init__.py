"""AdapterHub adapters in and out: a folder written by AdapterHub's ``save_adapter`` (``adapters``
1.3: ``adapter_config.json`` + ``pytorch_adapter.bin`` or ``adapter.safetensors``) to this
library's method and trained tensors, and back.

    conversion = compacter.convert.load_adapterhub(model, "hub/")   # apply + load, any BERT model with a head or none
    compacter.convert.from_adapterhub("hub/", "ours/")   # save_trained's folder for the bare backbone (AutoModel)
    compacter.convert.to_adapterhub("ours/", "hub/", name="sst2")   # AdapterHub's folder from save_trained's
    python -m compacter.convert from-adapterhub hub/ ours/  |  to-adapterhub ours/ hub/ --name sst2

Mapped: Compacter, Compacter++, the PHM-adapter, the Houlsby adapter (``adapter``) and
Pfeiffer, on BERT-family encoders; what AdapterHub computes differently is refused with the
difference named (``hub_config``), what differs in training only is listed in ``notes``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from compacter.api import apply, method_options, read_saved, write_saved
from compacter.configs import AdapterConfig
from compacter.convert.hub_config import MODEL_TYPE, TRAINING_NOTES, from_hub_config, to_hub_config
from compacter.convert.hub_weights import SHARED_RULES, hub_to_ours, ours_to_hub

CONFIG_NAME = "adapter_config.json"
WEIGHTS_NAME = "pytorch_adapter.bin"        # what load_adapter reads by default
SAFE_WEIGHTS_NAME = "adapter.safetensors"   # save_adapter(..., use_safetensors=True)
HUB_VERSION = "adapters.1.3.0"  # the format written; without a version AdapterHub renames "gelu" to gelu_new


@dataclass(frozen=True)
class Conversion:
    config: AdapterConfig          # our method config of the adapter
    name: str                      # the adapter's name in AdapterHub
    notes: tuple[str, ...]         # what differs in training only, and what was left behind


def read_adapterhub(directory: str | Path) -> tuple[Conversion, dict[str, torch.Tensor]]:
    """The conversion and the tensors by their names in the bare backbone, of AdapterHub's folder."""
    directory = Path(directory)
    if not (directory / CONFIG_NAME).is_file():
        raise FileNotFoundError(f"{directory / CONFIG_NAME} not found; expected a folder written by "
                                "AdapterHub's save_adapter")
    saved = json.loads((directory / CONFIG_NAME).read_text())
    config, notes = from_hub_config(saved)
    if (directory / SAFE_WEIGHTS_NAME).is_file():
        tensors = load_file(str(directory / SAFE_WEIGHTS_NAME))
    elif (directory / WEIGHTS_NAME).is_file():
        tensors = torch.load(directory / WEIGHTS_NAME, map_location="cpu", weights_only=True)
    else:
        raise FileNotFoundError(f"no {SAFE_WEIGHTS_NAME} or {WEIGHTS_NAME} in {directory}")
    ours = hub_to_ours(tensors, saved["name"], phm=config.projection != "linear")
    if config.projection == "compacter" and SHARED_RULES not in ours:
        raise ValueError(f"{directory} has no shared_parameters.{saved['name']}.phm_rule: AdapterHub's "
                         "save_adapter drops Compacter's shared A when saved from a bare model with "
                         "adapters.init (its filter wants a prefix); save it from AutoAdapterModel")
    return Conversion(config, saved["name"], notes), ours


def from_adapterhub(directory: str | Path, out: str | Path) -> Conversion:
    """Write AdapterHub's adapter in ``directory`` as ``save_trained`` does for the bare backbone:
    ``compacter.load_trained(AutoModel.from_pretrained(base), out)`` loads it."""
    conversion, tensors = read_adapterhub(directory)
    write_saved(out, conversion.config, tensors)
    return conversion


def load_adapterhub(model: nn.Module, directory: str | Path) -> Conversion:
    """Apply AdapterHub's adapter in ``directory`` to ``model`` (a BERT-family backbone, bare or
    with a head, which stays as it is) and load its tensors; the model's dropout must be in eval
    mode for outputs equal to AdapterHub's."""
    conversion, tensors = read_adapterhub(directory)
    apply(model, conversion.config.method, **method_options(conversion.config))
    prefix = "" if getattr(model, "base_model", model) is model else f"{model.base_model_prefix}."
    named = {key if key == SHARED_RULES else prefix + key: t for key, t in tensors.items()}
    expected = {key for key in model.compacter_applied.trained if key == SHARED_RULES or ".adapter." in key}
    if set(named) != expected:
        raise ValueError(f"{directory} does not fit this model: missing {sorted(expected - set(named))[:5]}, "
                         f"unexpected {sorted(set(named) - expected)[:5]}")
    model.load_state_dict(named, strict=False)
    return conversion


def to_adapterhub(directory: str | Path, out: str | Path, *, name: str, model_name: str | None = None,
                  drop_head: bool = False) -> Conversion:
    """Write the adapter ``save_trained`` wrote in ``directory`` as AdapterHub's ``save_adapter`` does
    (``model.load_adapter(out)`` in AdapterHub, as ``name``). ``drop_head``: leave the task head's
    tensors behind (AdapterHub's heads are its own modules); layer norms trained here cannot go."""
    config, tensors = read_saved(directory)
    hub_config = to_hub_config(config)
    hub, rest = ours_to_hub(tensors, name, phm=config.projection != "linear")
    if config.train_layer_norms:
        raise ValueError(f"{directory} trained the backbone's layer norms (train_layer_norms=True): AdapterHub "
                         "freezes them and its folder cannot carry them, so outputs would change. Train with "
                         "train_layer_norms=False to export")
    outside = [key for key in rest if ".adapter." in key or key.startswith(SHARED_RULES)]
    if outside:
        raise ValueError(f"adapter tensors outside BERT's layout ({', '.join(outside[:2])}): only BERT-family "
                         f"encoders ({MODEL_TYPE}) are mapped to AdapterHub")
    if rest and not drop_head:
        raise ValueError(f"{directory} holds tensors that are not adapter weights ({', '.join(rest[:3])}): a task "
                         "head, which AdapterHub keeps in its own head modules; pass drop_head=True "
                         "(--drop-head) to export the adapter without it")
    up_bias = next(t for key, t in tensors.items() if key.endswith("adapter.up.bias"))
    saved = {"config": hub_config, "hidden_size": up_bias.shape[0], "model_class": "BertAdapterModel",
             "model_name": model_name, "model_type": MODEL_TYPE, "name": name, "version": HUB_VERSION}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / CONFIG_NAME).write_text(json.dumps(saved, indent=2, sort_keys=True))
    torch.save({key: t.contiguous() for key, t in hub.items()}, out / WEIGHTS_NAME)
    return Conversion(config, name, TRAINING_NOTES + tuple(f"left behind: {key}" for key in rest))
