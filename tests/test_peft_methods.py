"""Any peft tuner as a suite method (compacter.peft_methods): the rows beyond the paper on tiny T5 / BERT."""

import pytest
import torch
from safetensors.torch import load_file

import compacter
from catalog.methods import method_options
from tests.tiny_models import BUILDERS, logits, perturbed, tiny_bert, tiny_inputs, tiny_t5

# the rows' own method YAMLs (experiments/configs/methods/), on the tiny models
ROWS = ["lora", "dora", "ia3", "loha", "vera"]


def applied(arch, row, seed=0):
    return compacter.apply(BUILDERS[arch](seed), "peft", **method_options(row))


@pytest.mark.parametrize("arch", BUILDERS)
@pytest.mark.parametrize("row", ROWS)
def test_peft_row_round_trips_through_peft_state_dict_onto_a_fresh_backbone(arch, row, tmp_path):
    model = perturbed(applied(arch, row))
    compacter.save_trained(model, tmp_path)
    fresh = compacter.load_trained(BUILDERS[arch](seed=0), tmp_path)
    inputs = tiny_inputs(model)
    torch.testing.assert_close(logits(fresh, inputs), logits(model, inputs), rtol=0, atol=0)
    assert not torch.equal(logits(fresh, inputs), logits(BUILDERS[arch](seed=0), inputs))


@pytest.mark.parametrize("arch", BUILDERS)
def test_vera_checkpoint_holds_its_fixed_random_projections(arch, tmp_path):
    model = applied(arch, "vera")
    compacter.save_trained(model, tmp_path)
    saved = load_file(str(tmp_path / compacter.api.TRAINED_WEIGHTS))
    assert {"base_model.vera_A", "base_model.vera_B"} <= set(saved)  # buffers, not trained: saved once each
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert sum(t.numel() for t in saved.values()) == trainable + saved["base_model.vera_A"].numel() + \
        saved["base_model.vera_B"].numel()


def test_vera_layers_share_one_projection_pair():
    model = applied("bert", "vera")
    layers = [m for m in model.modules() if hasattr(m, "vera_lambda_b")]
    assert len(layers) == 4 and len({id(m.vera_A) for m in layers}) == 1


def test_identity_is_peft_resolved_config_without_its_version():
    options = method_options("ia3")
    resolved = compacter.make_config("peft", **options).peft_config
    assert "peft_version" not in resolved
    assert resolved["peft_type"] == "IA3" and "init_ia3_weights" in resolved  # peft's own default filled in
    assert compacter.make_config("peft", peft_config={**options["peft_config"], "peft_type": "ia3"}).peft_config \
        == resolved


@pytest.mark.parametrize("peft_config, message", [
    ({"peft_type": "PREFIX_TUNING", "num_virtual_tokens": 4}, "prompt-learning method"),
    ({"peft_type": "LORA", "task_type": "SEQ_CLS"}, "task_type"),
    ({"peft_type": "LORA", "modules_to_save": ["classifier"]}, "trains the new task head itself"),
    ({"peft_type": "NOPE"}, "must name a peft"),
])
def test_unsupported_peft_configs_are_refused_with_the_reason(peft_config, message):
    with pytest.raises(ValueError, match=message):
        compacter.make_config("peft", peft_config=peft_config)


def test_an_init_that_changes_the_backbone_weights_is_refused():
    with pytest.raises(ValueError, match="changed the backbone's own weights"):
        compacter.apply(tiny_bert(), "peft", peft_config={"peft_type": "LORA", "init_lora_weights": "pissa"})


def test_peft_row_trains_only_its_layers_and_the_new_head():
    model = applied("bert", "ia3")
    trained = {name for name, p in model.named_parameters() if p.requires_grad}
    assert {n for n in trained if not n.startswith("classifier.")} == {
        n for n, _ in model.named_parameters() if "ia3_l" in n}
    assert "ia3_l" not in str([n for n, _ in tiny_t5().named_parameters()])


def test_prefix_tuning_cannot_be_a_row_under_transformers_5_peft_drops_or_refuses_the_prefix():
    """Why there is no ``prefix`` row (peft 0.21, transformers 5): T5's generate ignores the prefix
    that its forward uses, and BERT refuses it. Red once peft fixes it: then add the row."""
    import peft

    inputs = tiny_inputs(tiny_t5())
    source = dict(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
    model = peft.get_peft_model(tiny_t5(), peft.PrefixTuningConfig(task_type="SEQ_2_SEQ_LM", num_virtual_tokens=5))
    with torch.no_grad():
        model.prompt_encoder["default"].embedding.weight.mul_(50)  # a prefix that must change the output
        assert not torch.allclose(model(**source, decoder_input_ids=inputs["decoder_input_ids"]).logits,
                                  tiny_t5()(**inputs).logits)
    generated = model.generate(**source, max_new_tokens=4, do_sample=False)
    assert torch.equal(generated, tiny_t5().generate(**source, max_new_tokens=4, do_sample=False))
    bert = peft.get_peft_model(tiny_bert(), peft.PrefixTuningConfig(task_type="SEQ_CLS", num_virtual_tokens=5))
    with pytest.raises(ValueError, match="does not support past key values"):
        bert(**tiny_inputs(tiny_bert()))
