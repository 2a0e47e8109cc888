"""AdapterHub's adapter weight names (``adapters`` 1.3, BERT) to this library's and back.

Every tensor keeps its shape and values; only names change (both libraries' PHM layers
compute ``x @ sum_i kron(A_i, B_i) + b`` with B_i = W_left_i @ W_right_i, ours s_i @ t_i, and
both keep ``nn.Linear``'s (out, in) weights)::

    bert.shared_parameters.<name>.phm_rule                        compacter_shared_rules.rules
    bert.encoder.layer.<i>.<site>.adapters.<name>.adapter_down.0.P   encoder.layer.<i>.<site>.dense.adapter.down.Q
    bert.encoder.layer.<i>.<site>.adapters.<name>.adapter_up.P       encoder.layer.<i>.<site>.dense.adapter.up.Q

with <site> ``attention.output`` or ``output`` and (P, Q) in ``PARAMETERS``. Ours are the names
in the bare backbone (``AutoModel``); AdapterHub writes its model's prefix (``bert.``, what
``AutoAdapterModel`` saves) and loads either form.
"""

from __future__ import annotations

import re

import torch

HUB_PREFIX = "bert."
SHARED_RULES = "compacter_shared_rules.rules"
# AdapterHub's parameter -> ours: PHM's W_left / W_right (rank-one B), W (full B), phm_rule (a
# layer's own A), b; nn.Linear's weight and bias
PARAMETERS = {"W_left": "s", "W_right": "t", "W": "fast", "phm_rule": "rules", "b": "bias",
              "weight": "weight", "bias": "bias"}
PROJECTIONS = {"adapter_down.0": "down", "adapter_up": "up"}
_SITE = r"encoder\.layer\.(\d+)\.(attention\.output|output)"
_OURS = re.compile(rf"^(?:.*\.)?{_SITE}\.dense\.adapter\.(down|up)\.(s|t|fast|rules|bias|weight)$")


def hub_to_ours(tensors: dict[str, torch.Tensor], name: str, phm: bool) -> dict[str, torch.Tensor]:
    """Our names for AdapterHub's tensors of adapter ``name`` (``phm``: its projections are PHM
    layers, whose bias AdapterHub calls ``b``); ValueError naming any tensor that has no place here."""
    adapter = re.compile(rf"^(?:\w+\.)?{_SITE}\.adapters\.{re.escape(name)}\.(adapter_down\.0|adapter_up)\."
                         rf"({'W_left|W_right|W|phm_rule|b' if phm else 'weight|bias'})$")
    shared = re.compile(rf"^(?:\w+\.)?shared_parameters\.{re.escape(name)}\.phm_rule$")
    ours, unknown = {}, []
    for key, tensor in tensors.items():
        if shared.match(key):
            ours[SHARED_RULES] = tensor
        elif match := adapter.match(key):
            layer, site, projection, parameter = match.groups()
            ours[f"encoder.layer.{layer}.{site}.dense.adapter.{PROJECTIONS[projection]}.{PARAMETERS[parameter]}"] = (
                tensor)
        else:
            unknown.append(key)
    if unknown:
        raise ValueError(f"AdapterHub tensors with no counterpart here (a head, fusion, or another adapter "
                         f"than {name!r}?): {sorted(unknown)[:5]}")
    return ours


def ours_to_hub(tensors: dict[str, torch.Tensor], name: str, phm: bool) -> tuple[dict[str, torch.Tensor], list[str]]:
    """(AdapterHub's names for our adapter tensors, our names that are not adapter tensors)."""
    to_hub = {ours: hub for hub, ours in PARAMETERS.items() if (hub in ("weight", "bias")) != phm}
    hub, rest = {}, []
    for key, tensor in tensors.items():
        match = _OURS.match(key)
        if key == SHARED_RULES:
            hub[f"{HUB_PREFIX}shared_parameters.{name}.phm_rule"] = tensor
        elif match and match.group(4) in to_hub:
            layer, site, projection, parameter = match.groups()
            hub_projection = next(h for h, o in PROJECTIONS.items() if o == projection)
            hub[f"{HUB_PREFIX}encoder.layer.{layer}.{site}.adapters.{name}.{hub_projection}.{to_hub[parameter]}"] = (
                tensor)
        else:
            rest.append(key)
    return hub, rest
