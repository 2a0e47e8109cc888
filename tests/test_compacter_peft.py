"""Compacter and the adapter family as a peft method (compacter.peft) on tiny T5 and BERT."""

import re

import peft
import pytest
import torch
from safetensors.torch import load_file

import compacter
from compacter.peft import CompacterConfig
from compacter.phm import PHMLinear
from tests.tiny_models import BUILDERS, logits, perturbed, tiny_bert, tiny_inputs, tiny_t5

# tiny models: hidden 32 -> bottleneck 4; n = 2 divides both
OPTIONS = {"compacter": dict(reduction_factor=8, n=2), "compacterpp": dict(reduction_factor=8, n=2),
           "phm": dict(reduction_factor=8, n=2), "adapter": dict(reduction_factor=8),
           "pfeiffer": dict(reduction_factor=8)}
HEAD = {"t5": {}, "bert": {"modules_to_save": ["classifier"]}}  # BERT's new head, as compacter.apply trains it


def peft_model(arch, method="compacter", seed=0):
    config = CompacterConfig(method=method, **OPTIONS[method], **HEAD[arch])
    return peft.get_peft_model(BUILDERS[arch](seed), config)


def peft_name(name: str, wrapped: set[str]) -> str:
    """compacter.apply's name of a trained tensor -> its name in the PeftModel (adapter "default")."""
    if name == "compacter_shared_rules.rules":
        return "base_model.compacter_shared_rules.default.rules"
    site = re.match(r"(.+)\.adapter\.(.+)", name)
    if site:
        return f"base_model.model.{site[1]}.compacter_adapter.default.{site[2]}"
    module, _, tensor = name.rpartition(".")
    kind = "modules_to_save" if module == "classifier" else "compacter_layer_norm"
    assert module in wrapped or module == "classifier", name
    return f"base_model.model.{module}.{kind}.default.{tensor}"


@pytest.mark.parametrize("arch", BUILDERS)
@pytest.mark.parametrize("method", OPTIONS)
def test_same_weights_give_the_same_logits_through_peft_and_compacter_apply(arch, method):
    applied = perturbed(compacter.apply(BUILDERS[arch](), method, **OPTIONS[method]))
    model = peft_model(arch, method)
    wrapped = {name for name, m in model.base_model.model.named_modules() if hasattr(m, "compacter_layer_norm")}
    weights = {peft_name(name, wrapped): t for name, t in compacter.trained_state_dict(applied).items()}
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert set(weights) == trainable  # the same tensors are trained, no more, no fewer
    model.load_state_dict(weights, strict=False)
    inputs = tiny_inputs(applied)
    torch.testing.assert_close(logits(model, inputs), logits(applied, inputs), rtol=0, atol=0)


@pytest.mark.parametrize("arch", BUILDERS)
def test_save_pretrained_and_from_pretrained_round_trip_exactly_with_A_saved_once(arch, tmp_path):
    model = perturbed(peft_model(arch))
    model.save_pretrained(tmp_path)
    saved = load_file(str(tmp_path / "adapter_model.safetensors"))
    assert [k for k in saved if "shared_rules" in k] == ["base_model.compacter_shared_rules.rules"]
    assert sum(t.numel() for t in saved.values()) == sum(p.numel() for p in model.parameters() if p.requires_grad)
    fresh = peft.PeftModel.from_pretrained(BUILDERS[arch](), tmp_path)
    assert fresh.peft_config["default"].peft_type == "COMPACTER"
    inputs = tiny_inputs(model)
    torch.testing.assert_close(logits(fresh, inputs), logits(model, inputs), rtol=0, atol=0)


def test_every_compacter_layer_references_the_tuners_one_A():
    model = peft_model("t5")
    layers = [m for m in model.modules() if isinstance(m, PHMLinear)]
    assert len(layers) == 2 * 2 * 4  # (down, up) x 2 sites x 4 blocks
    shared = model.base_model.compacter_shared_rules["default"].rules
    assert all(layer.rule is shared for layer in layers)


def test_t5_targets_are_the_papers_sites_and_layer_norms_never_cross_attention():
    model = peft_model("t5")
    targeted = model.base_model.targeted_module_names
    assert not [name for name in targeted if "EncDecAttention" in name]
    sites = [name for name in targeted if name.endswith(("SelfAttention", "DenseReluDense"))]
    assert len(sites) == 8  # self-attention + feed-forward of 2 encoder and 2 decoder blocks
    norms = [name for name in targeted if name.endswith("layer_norm")]
    assert len(norms) == 2 * 2 + 1 + 2 * 3 + 1  # encoder 2 per block + final, decoder 3 per block + final
    assert len(targeted) == len(sites) + len(norms)
    pp = peft_model("t5", "compacterpp").base_model.targeted_module_names
    assert [name for name in pp if not name.endswith("layer_norm")] == [s for s in sites if "DenseReluDense" in s]


@pytest.mark.parametrize("arch", BUILDERS)
def test_merge_and_unload_is_refused_and_unload_gives_back_the_untouched_backbone(arch):
    model = perturbed(peft_model(arch))
    inputs = tiny_inputs(model)
    adapted = logits(model, inputs)
    with pytest.raises(ValueError, match="cannot be merged into the backbone: .*non-linearity"):
        model.merge_and_unload()
    torch.testing.assert_close(logits(model, inputs), adapted, rtol=0, atol=0)  # the refusal changed nothing
    backbone = model.unload()
    if arch == "bert":  # modules_to_save keeps the trained head copy in place: compare the encoders
        torch.testing.assert_close(backbone.bert(**inputs).last_hidden_state,
                                   tiny_bert().bert(**inputs).last_hidden_state, rtol=0, atol=0)
    else:
        torch.testing.assert_close(logits(backbone, inputs), logits(tiny_t5(), inputs), rtol=0, atol=0)


def test_invalid_options_fail_when_the_config_is_made():
    with pytest.raises(ValueError, match="unknown adapter method 'houlsby'"):
        CompacterConfig(method="houlsby")
    with pytest.raises(ValueError, match="reduction_factor must be a positive integer"):
        CompacterConfig(reduction_factor=0)


def test_sizes_that_do_not_fit_the_model_fail_before_anything_is_wrapped():
    model = tiny_bert()
    with pytest.raises(ValueError, match="not divisible by reduction_factor=5"):
        peft.get_peft_model(model, CompacterConfig(reduction_factor=5))
    assert not [name for name, m in model.named_modules() if hasattr(m, "compacter_layer_norm")]
