"""Every method on tiny T5 and BERT: placement, sharing, freezing, counting, save/load."""

import pytest
import torch
from transformers.activations import get_activation

import compacter
from compacter.adapters import AdapterWrapped, BottleneckAdapter, linear_projection
from compacter.phm import PHMLinear
from tests.tiny_models import BUILDERS, HIDDEN, logits, perturbed, tiny_bert, tiny_inputs, tiny_t5

ADAPTER_FAMILY = ["adapter", "pfeiffer", "adapterdrop", "lowrank", "phm", "compacter", "compacterpp"]
ALL_METHODS = list(compacter.METHODS)  # a method registered there joins every test of this table
SMALL = {"reduction_factor": 8}  # tiny models: hidden 32 -> bottleneck 4
OPTIONS = {m: ({**SMALL, "n": 2} if m in ("phm", "compacter", "compacterpp") else SMALL) if m in ADAPTER_FAMILY else {}
           for m in ALL_METHODS}
OPTIONS.update(prompt={"num_tokens": 5}, intrinsic={"intrinsic_dim": 300},  # tiny vocab (100), ~50 tensors
               peft={"peft_config": {"peft_type": "LORA", "r": 4}})


def adapted(arch: str, method: str, seed: int = 0):
    return compacter.apply(BUILDERS[arch](seed), method, **OPTIONS[method])


def wrapped(model) -> list[str]:
    return [name for name, m in model.named_modules() if isinstance(m, AdapterWrapped)]


@pytest.mark.parametrize("arch", BUILDERS)
@pytest.mark.parametrize("method", ALL_METHODS)
def test_gradients_reach_exactly_the_trainable_parameters(arch, method):
    model = adapted(arch, method).train()
    frozen_before = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    inputs = tiny_inputs(model)
    labels = {"labels": inputs["decoder_input_ids"]} if arch == "t5" else {"labels": torch.tensor([0, 2])}
    model(**inputs, **labels).loss.backward()
    for name, p in model.named_parameters():
        assert (p.grad is not None) == p.requires_grad, name
    optimizer.step()
    for name, p in model.named_parameters():
        if name in frozen_before:
            assert torch.equal(p, frozen_before[name]), f"frozen {name} changed"
    assert compacter.count_parameters(model).trainable > 0


@pytest.mark.parametrize("arch", BUILDERS)
@pytest.mark.parametrize("method", ALL_METHODS)
def test_save_load_round_trip_gives_identical_logits(arch, method, tmp_path):
    model = perturbed(adapted(arch, method, seed=0))
    compacter.save_trained(model, tmp_path)
    fresh = compacter.load_trained(BUILDERS[arch](seed=0), tmp_path)
    inputs = tiny_inputs(model)
    torch.testing.assert_close(logits(fresh, inputs), logits(model, inputs), rtol=0, atol=0)
    trained_bytes = 4 * compacter.count_parameters(model).trainable
    size = (tmp_path / "trained.safetensors").stat().st_size
    assert trained_bytes <= size <= trained_bytes + 64 * 1024


def test_compacter_shares_one_A_across_layers():
    model = adapted("t5", "compacter")
    phm_layers = [m for m in model.modules() if isinstance(m, PHMLinear)]
    assert len(phm_layers) == 2 * 2 * 4  # (down, up) x 2 sites x 4 layers (2 encoder + 2 decoder)
    assert all(layer.rule is model.compacter_shared_rules.rules for layer in phm_layers)
    assert all(layer.rank_one for layer in phm_layers)


def test_phm_layers_each_have_their_own_A():
    model = adapted("bert", "phm")
    rules = [m.rule for m in model.modules() if isinstance(m, PHMLinear)]
    assert len({id(r) for r in rules}) == len(rules) == 2 * 2 * 2
    assert not any(m.rank_one for m in model.modules() if isinstance(m, PHMLinear))


@pytest.mark.parametrize("method, expected", [
    ("adapter", ["encoder.block.0.layer.0.SelfAttention", "encoder.block.0.layer.1.DenseReluDense",
                 "encoder.block.1.layer.0.SelfAttention", "encoder.block.1.layer.1.DenseReluDense",
                 "decoder.block.0.layer.0.SelfAttention", "decoder.block.0.layer.2.DenseReluDense",
                 "decoder.block.1.layer.0.SelfAttention", "decoder.block.1.layer.2.DenseReluDense"]),
    ("pfeiffer", ["encoder.block.0.layer.0.SelfAttention", "encoder.block.1.layer.0.SelfAttention",
                  "decoder.block.0.layer.0.SelfAttention", "decoder.block.1.layer.0.SelfAttention"]),
    ("compacterpp", ["encoder.block.0.layer.1.DenseReluDense", "encoder.block.1.layer.1.DenseReluDense",
                     "decoder.block.0.layer.2.DenseReluDense", "decoder.block.1.layer.2.DenseReluDense"]),
    ("adapterdrop", ["encoder.block.1.layer.0.SelfAttention", "encoder.block.1.layer.1.DenseReluDense",
                     "decoder.block.1.layer.0.SelfAttention", "decoder.block.1.layer.2.DenseReluDense"]),
])
def test_t5_placement_follows_the_papers_code_and_skips_cross_attention(method, expected):
    assert wrapped(adapted("t5", method)) == expected


def test_bert_adapters_sit_after_attention_output_and_feedforward_output():
    assert wrapped(adapted("bert", "adapter")) == [
        "bert.encoder.layer.0.attention.output.dense", "bert.encoder.layer.0.output.dense",
        "bert.encoder.layer.1.attention.output.dense", "bert.encoder.layer.1.output.dense"]


def test_adapters_start_near_identity():
    base, model = tiny_bert(), adapted("bert", "adapter")
    inputs = tiny_inputs(model)
    base_out = base.bert(**inputs).last_hidden_state
    out = model.bert(**inputs).last_hidden_state
    assert (out - base_out).abs().max() < 0.1


def bottleneck_adapter_params(hidden, bottleneck):
    return hidden * bottleneck + bottleneck + bottleneck * hidden + hidden


def test_counts_equal_hand_computed_numbers_on_tiny_t5():
    base = sum(p.numel() for p in tiny_t5().parameters())
    layer_norms = (2 * 2 + 1 + 2 * 3 + 1) * HIDDEN  # enc 2 per block + final; dec 3 per block + final
    b = HIDDEN // 8
    cases = {
        "adapter": 8 * bottleneck_adapter_params(HIDDEN, b) + layer_norms,
        "pfeiffer": 4 * bottleneck_adapter_params(HIDDEN, b) + layer_norms,
        "lowrank": 8 * ((HIDDEN + b + b) + (b + HIDDEN + HIDDEN)) + layer_norms,
        # n=2: down B_i = s(16) t(2), up s(2) t(16); shared A = 2*2*2 counted once
        "compacter": 8 * (2 * (16 + 2) + b + 2 * (2 + 16) + HIDDEN) + 2 ** 3 + layer_norms,
        "compacterpp": 4 * (2 * (16 + 2) + b + 2 * (2 + 16) + HIDDEN) + 2 ** 3 + layer_norms,
        # n=2: own A (8) and full B (2 x 16x2) per projection
        "phm": 8 * ((8 + 2 * 16 * 2 + b) + (8 + 2 * 2 * 16 + HIDDEN)) + layer_norms,
        # q,k,v,o: 2 enc + 4 dec attentions x 2 layers... as counted below; ff wi(64)+wo(32); the blocks' LNs
        # (not the stacks' final_layer_norm, as the paper's T5); lm head (100)
        "bitfit": (2 * 4 * HIDDEN + 2 * 8 * HIDDEN) + 4 * (64 + HIDDEN) + (layer_norms - 2 * HIDDEN) + 100,
    }
    for method, trainable in cases.items():
        count = compacter.count_parameters(adapted("t5", method))
        assert (count.trainable, count.backbone) == (trainable, base), method
        assert count.total == base + trainable - (layer_norms if method != "bitfit" else 0), method


def test_encoder_head_is_trained_and_counted():
    model = adapted("bert", "compacter")
    head = sum(p.numel() for p in model.classifier.parameters())
    assert all(p.requires_grad for p in model.classifier.parameters())
    assert not model.bert.pooler.dense.weight.requires_grad
    layer_norms = (1 + 2 * 2) * 2 * HIDDEN
    b = HIDDEN // 8
    adapters = 4 * (2 * (16 + 2) + b + 2 * (2 + 16) + HIDDEN) + 8
    assert compacter.count_parameters(model).trainable == adapters + layer_norms + head


def test_bitfit_leaves_t5_outputs_unchanged_until_trained():
    inputs = tiny_inputs(tiny_t5())
    torch.testing.assert_close(logits(adapted("t5", "bitfit"), inputs), logits(tiny_t5(), inputs))


def test_unknown_method_names_the_valid_ones():
    with pytest.raises(ValueError, match="unknown method 'compactor'.*compacterpp"):
        compacter.apply(tiny_bert(), "compactor")


def test_unknown_option_names_the_valid_ones():
    with pytest.raises(ValueError, match="no option.*reduction"):
        compacter.apply(tiny_bert(), "compacter", reduction=8)


def test_unsupported_architecture_names_the_supported_ones():
    from transformers import GPT2Config, GPT2LMHeadModel
    model = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=50))
    with pytest.raises(ValueError, match="unsupported architecture 'gpt2'.*t5, bert"):
        compacter.apply(model, "adapter")


def test_hidden_not_divisible_by_n_says_how_to_fix():
    with pytest.raises(ValueError, match=r"n=3 must divide.*not divisible by n: hidden size 32, bottleneck 4. Use n in \[1, 2, 4\]"):
        compacter.apply(tiny_bert(), "compacter", reduction_factor=8, n=3)


def test_reduction_factor_not_dividing_hidden_is_an_error():
    with pytest.raises(ValueError, match="not divisible by reduction_factor=5"):
        compacter.apply(tiny_bert(), "adapter", reduction_factor=5)


def test_applying_twice_is_an_error():
    model = adapted("bert", "adapter")
    with pytest.raises(ValueError, match="already has method 'adapter' applied"):
        compacter.apply(model, "compacter", **OPTIONS["compacter"])


def test_loading_weights_of_another_method_is_an_error(tmp_path):
    compacter.save_trained(adapted("bert", "adapter"), tmp_path)
    with pytest.raises(ValueError, match="saved weights are for"):
        compacter.load_trained(adapted("bert", "lowrank"), tmp_path)


def test_the_record_names_what_the_method_wrapped_and_added():
    applied = adapted("bert", "compacter").compacter_applied
    assert applied.wrapped == tuple(f"bert.encoder.layer.{i}.{where}.dense" for i in (0, 1)
                                    for where in ("attention.output", "output"))
    assert applied.added == ("compacter_shared_rules",)  # the adapters live inside the wrappers
    bitfit = adapted("t5", "bitfit").compacter_applied
    assert bitfit.wrapped == tuple(f"{stack}.block.{b}.layer.{i}.layer_norm" for stack, layers in
                                   (("encoder", 2), ("decoder", 3)) for b in (0, 1) for i in range(layers))
    assert "lm_head.bias" in bitfit.added and "encoder.block.0.layer.0.SelfAttention.q.bias" in bitfit.added
    with pytest.raises(ValueError, match=r"already has method 'compacter' applied \(4 modules wrapped, 1 added\)"):
        compacter.apply(adapted("bert", "compacter"), "adapter", **SMALL)


def test_save_writes_the_recorded_trained_set_whatever_requires_grad_says_later(tmp_path):
    model = adapted("bert", "adapter")
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.1)
    model.requires_grad_(False)  # e.g. frozen for inference after training
    compacter.save_trained(model, tmp_path)
    fresh = compacter.load_trained(tiny_bert(), tmp_path)
    inputs = tiny_inputs(model)
    torch.testing.assert_close(logits(fresh, inputs), logits(model, inputs), rtol=0, atol=0)


def test_the_new_head_is_what_the_checkpoint_lacked():
    # a checkpoint without a pooler: from_pretrained would report it missing, so it is trained too
    new = ["classifier.weight", "classifier.bias", "bert.pooler.dense.weight", "bert.pooler.dense.bias"]
    model = compacter.apply(compacter.mark_new_weights(tiny_bert(), new), "adapter", **SMALL)
    assert set(new) <= set(model.compacter_applied.trained) and model.bert.pooler.dense.weight.requires_grad
    with pytest.raises(ValueError, match=r"has no parameter\(s\) \['head.weight'\]"):
        compacter.mark_new_weights(tiny_bert(), ["head.weight"])


def test_the_task_head_is_trained_even_when_the_checkpoint_carried_one():
    # a checkpoint saved with a classifier (another task's, or a random one): nothing is missing,
    # yet the head is the task's and must train with every method
    model = compacter.apply(compacter.mark_new_weights(tiny_bert(), []), "compacter", **SMALL)
    assert {"classifier.weight", "classifier.bias"} <= set(model.compacter_applied.trained)
    assert model.classifier.weight.requires_grad and not model.bert.pooler.dense.weight.requires_grad


def test_load_model_marks_the_weights_from_pretrained_initialised(tiny_checkpoints):
    from experiments.run.backbones import load_model, resolve

    assert load_model(resolve(tiny_checkpoints["bert"]), "classification").compacter_new_weights == (
        "classifier.bias", "classifier.weight")
    assert load_model(resolve(tiny_checkpoints["t5"])).compacter_new_weights == ()


def test_bitfit_trains_the_biases_of_linear_and_norm_modules_not_whatever_is_named_bias():
    model = tiny_bert()
    model.bert.embeddings.scale = torch.nn.Module()
    model.bert.embeddings.scale.bias = torch.nn.Parameter(torch.zeros(3))  # a "bias" of no linear map
    compacter.apply(model, "bitfit")
    assert not model.bert.embeddings.scale.bias.requires_grad
    assert model.bert.embeddings.LayerNorm.bias.requires_grad and model.classifier.bias.requires_grad


# --- the paper's table, T5-base from its config (meta device: no weights, no memory) -------

@pytest.mark.parametrize("method, options, trainable, paper_percent", [
    ("prompt", {}, 100 * 768, 0.034),
    ("intrinsic", {}, 20000, 0.009),
    ("peft", {"peft_config": {"peft_type": "LORA", "r": 8}},  # LoRA: q, v of 36 attentions; not in the paper
     12 * 3 * 2 * 8 * (768 + 768), None),
])
def test_t5_base_trainable_share_matches_the_paper(method, options, trainable, paper_percent):
    from experiments.run.backbones import t5_base_from_config
    count = compacter.count_parameters(compacter.apply(t5_base_from_config("meta"), method, **options))
    assert count.trainable == trainable
    if paper_percent is not None:
        assert round(count.trainable_percent, 3) == paper_percent


def test_the_adapters_gelu_new_is_transformers_gelu_new_to_float_rounding_and_not_exact_gelu():
    # torch's tanh-approximation kernel stands in for transformers' NewGELUActivation (speed only)
    x = torch.linspace(-12, 12, 200_001)
    adapter = BottleneckAdapter(384, 12, linear_projection, "gelu_new")
    reference = get_activation("gelu_new")(x)
    assert (adapter.activation(x) - reference).abs().max().item() <= 5e-7
    assert (torch.nn.functional.gelu(x) - reference).abs().max().item() > 1e-4  # exact GELU differs: the test sees it
