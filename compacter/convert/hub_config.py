"""AdapterHub's bottleneck-adapter config (``adapters`` 1.3 ``BnConfig``, the ``config`` of its
``adapter_config.json``) to this library's ``AdapterConfig`` and back.

Both libraries compute, for a BERT sublayer with input ``x`` and output ``h``, ``LN(x + h + A(h))``
with ``A(h) = up(act(down(h)))`` — AdapterHub with ``original_ln_before=False`` (then its
``residual_before_ln`` makes no difference), ``original_ln_after=True`` and no extra parts
(``adapter_residual_before_ln`` acts only with ``ln_after``). Where an AdapterHub
config computes something else, the conversion is refused with the difference named (ours is
the paper's code, and a second variant of its forward would be a different method); where the
two differ only in training (dropout's position, frozen layer norms, initialisation) it converts
and says so in its notes.
"""

from __future__ import annotations

from typing import Any

from transformers.activations import ACT2CLS

from compacter.configs import AdapterConfig

MODEL_TYPE = "bert"  # the one layout whose weight names were read from AdapterHub's own files
# Fields of a trained AdapterHub bottleneck adapter whose value changes its forward: each must
# hold the value ours computes, else the conversion is refused with the reason.
SAME_FORWARD = {
    "is_parallel": (False, "a parallel adapter adds A(x) beside the sublayer (He et al.); ours follows it"),
    "original_ln_before": (False, "AdapterHub then applies the sublayer's residual and layer norm before the adapter "
                                  "as well as after it, LN(x + h + A(LN(x + h))) (SeqBnConfig's default); ours is "
                                  "the paper's LN(x + h + A(h)): set original_ln_before=False"),
    "original_ln_after": (True, "without it the sublayer's residual and layer norm are skipped; ours keeps them"),
    "ln_before": (False, "a new layer norm before the adapter's down projection; ours has none"),
    "ln_after": (False, "a new layer norm after the adapter; ours has none"),
    "scaling": (1.0, "the adapter's output is scaled; ours adds it unscaled"),
    "use_gating": (False, "a learned gate scales the adapter (UniPELT); ours has none"),
    "inv_adapter": (None, "invertible adapters on the embeddings (MAD-X); ours has none"),
    "leave_out": ([], "layers without adapters; ours adapts every layer (adapterdrop: a fixed upper share)"),
}
PHM_SAME_FORWARD = {
    "phm_bias": (True, "PHM projections without bias; ours have one"),
    "factorized_phm_rule": (False, "A factored into two rank-one matrices; ours is a full (n, n, n) tensor"),
    "shared_W_phm": (False, "B shared by every layer; ours is per layer"),
}
# (phm_layer, shared_phm_rule, factorized_phm_W, phm_rank) -> our projection
PHM_KINDS = {(False, None, None, None): "linear", (True, True, True, 1): "compacter", (True, False, False, None): "phm"}
# (mh_adapter, output_adapter), projection -> our method
METHODS = {((True, True), "linear"): "adapter", ((True, False), "linear"): "pfeiffer",
           ((True, True), "compacter"): "compacter", ((False, True), "compacter"): "compacterpp",
           ((True, True), "phm"): "phm"}
PLACEMENTS = {(True, True): "after attention and after the feed-forward block", (True, False): "after attention only",
              (False, True): "after the feed-forward block only", (False, False): "nowhere"}
TRAINING_NOTES = (
    "AdapterHub freezes the backbone's layer norms: the adapter is ours with train_layer_norms=False "
    "(the paper's setting, ours by default, trains them)",
    "AdapterHub runs the sublayer's dropout before the adapter, ours after it: equal outputs in eval mode, "
    "different noise in training",
)
# every BnConfig field as adapters 1.3 writes it for a sequential bottleneck adapter (its defaults)
BN_DEFAULTS = {
    "adapter_residual_before_ln": False, "cross_adapter": False, "dropout": 0.0, "factorized_phm_W": True,
    "factorized_phm_rule": False, "hypercomplex_nonlinearity": "glorot-uniform", "init_weights": "bert",
    "init_weights_seed": None, "inv_adapter": None, "inv_adapter_reduction_factor": None, "is_parallel": False,
    "learn_phm": True, "leave_out": [], "ln_after": False, "ln_before": False, "original_ln_after": True,
    "original_ln_before": False, "phm_bias": True, "phm_c_init": "normal", "phm_dim": 4, "phm_init_range": 0.0001,
    "phm_layer": False, "phm_rank": 1, "residual_before_ln": True, "scaling": 1.0, "shared_W_phm": False,
    "shared_phm_rule": True, "stochastic_depth": 0.0, "use_gating": False,
}
# adapter-transformers before its "version" key read "gelu" as the tanh approximation (adapters' ACTIVATION_RENAME)
LEGACY_ACTIVATIONS = {"gelu": "gelu_new", "gelu_orig": "gelu"}


def from_hub_config(saved: dict[str, Any]) -> tuple[AdapterConfig, tuple[str, ...]]:
    """Our config for an ``adapter_config.json`` (its whole content) and the training notes;
    ValueError naming every difference where the forward passes would differ."""
    hub = {**BN_DEFAULTS, **(saved.get("config") or {})}  # as AdapterHub's from_dict fills what an older file lacks
    if saved.get("model_type") != MODEL_TYPE:
        raise ValueError(f"AdapterHub adapter for model type {saved.get('model_type')!r}: only {MODEL_TYPE!r} "
                         "(BERT-family encoders such as MiniLM) is mapped")
    if hub.get("architecture") is not None:
        raise ValueError(f"AdapterHub {hub['architecture']!r} adapter: only bottleneck adapters (Compacter, "
                         "Compacter++, PHM, Houlsby, Pfeiffer) have a counterpart here")
    differences = [f"{key}={hub.get(key)!r} ({why})" for key, (ours, why) in _rules(hub).items()
                   if hub.get(key) != ours]
    method = _method(hub, differences)
    activation = _activation(hub, "version" in saved, differences)
    reduction = hub.get("reduction_factor")
    if not isinstance(reduction, (int, float)) or reduction != int(reduction):
        differences.append(f"reduction_factor={reduction!r} (ours is one integer for every layer)")
    if differences:
        raise ValueError("this AdapterHub adapter computes something other than any method here: "
                         + "; ".join(differences))
    options = {"reduction_factor": int(reduction), "activation": activation, "train_layer_norms": False}
    if method in ("compacter", "compacterpp", "phm"):
        options["n"] = hub["phm_dim"]
    if method in ("compacter", "compacterpp"):
        options["shared_rules_init_std"] = hub["phm_init_range"]
    notes = list(TRAINING_NOTES)
    notes += [f"AdapterHub's {key}={hub[key]} has no counterpart here (training only)"
              for key in ("dropout", "stochastic_depth") if hub.get(key)]
    if hub.get("phm_layer") and hub.get("learn_phm") is False:
        notes.append("AdapterHub kept A fixed (learn_phm=False); training here trains it")
    return AdapterConfig(method=method, **options), tuple(notes)


def to_hub_config(config: AdapterConfig) -> dict[str, Any]:
    """AdapterHub's BnConfig fields for our adapter config; ValueError where none computes the same."""
    if not isinstance(config, AdapterConfig) or config.method not in METHODS.values():
        raise ValueError(f"method {config.method!r} has no AdapterHub counterpart; exportable: "
                         f"{', '.join(METHODS.values())} (lowrank and adapterdrop are not mapped)")
    placement, projection = next(key for key, method in METHODS.items() if method == config.method)
    hub = {**BN_DEFAULTS, "mh_adapter": placement[0], "output_adapter": placement[1],
           "reduction_factor": config.reduction_factor, "non_linearity": config.activation}
    if projection != "linear":
        hub.update(phm_layer=True, phm_dim=config.hypercomplex_n)
    if projection == "compacter":
        hub["phm_init_range"] = config.shared_rules_init_std
    if projection == "phm":
        hub.update(shared_phm_rule=False, factorized_phm_W=False)
    return hub


def _rules(hub: dict[str, Any]) -> dict[str, tuple[Any, str]]:
    return {**SAME_FORWARD, **(PHM_SAME_FORWARD if hub.get("phm_layer") else {})}


def _method(hub: dict[str, Any], differences: list[str]) -> str | None:
    phm = bool(hub.get("phm_layer"))
    kind = (phm, hub.get("shared_phm_rule"), hub.get("factorized_phm_W"),
            hub.get("phm_rank") if hub.get("factorized_phm_W") else None) if phm else (False, None, None, None)
    projection = PHM_KINDS.get(kind)
    if projection is None:
        differences.append(f"PHM with shared_phm_rule={kind[1]}, factorized_phm_W={kind[2]}, phm_rank={kind[3]} "
                           "(ours: Compacter's shared A with rank-one B, or the PHM-adapter's own A with full B)")
        return None
    placement = (bool(hub.get("mh_adapter")), bool(hub.get("output_adapter")))
    method = METHODS.get((placement, projection))
    if method is None:
        ours = [f"{m} {PLACEMENTS[p]}" for (p, proj), m in METHODS.items() if proj == projection]
        differences.append(f"mh_adapter={placement[0]}, output_adapter={placement[1]}: a {projection} adapter "
                           f"{PLACEMENTS[placement]} (ours: {', '.join(ours)}"
                           + ("; AdapterHub's Pfeiffer sits after the feed-forward block, the paper's code's "
                              "after attention" if projection == "linear" else "") + ")")
    return method


def _activation(hub: dict[str, Any], versioned: bool, differences: list[str]) -> str:
    name = str(hub.get("non_linearity")).lower()
    name = name if versioned else LEGACY_ACTIVATIONS.get(name, name)
    if name not in ACT2CLS:
        differences.append(f"non_linearity={hub.get('non_linearity')!r} (ours takes transformers' activations: "
                           f"{', '.join(sorted(ACT2CLS))})")
    return name
