"""Prompt tuning, Intrinsic-SAID (with its Fastfood transform) and LoRA (through peft) on tiny T5 / BERT.

Gradient placement and the save/load round trip run for these methods in the shared
table of tests/test_methods.py; this file checks what is particular to each.
"""

import pytest
import torch

import compacter
from compacter.fastfood import FastfoodProjection, walsh_hadamard
from tests.tiny_models import HIDDEN, logits, tiny_bert, tiny_inputs, tiny_t5

BERT_HEAD = HIDDEN * 3 + 3          # tiny_bert's new classifier (3 labels), trained by every method
T5_TENSORS = 1 + (2 * 9 - 1 + 1) + (2 * 14 - 1 + 1)  # shared (tied to lm_head) + encoder + decoder tensors
BERT_TENSORS = 5 + 2 * 16 + 2       # embeddings (3 tables, LN w/b) + 2 layers x 16 + pooler w/b


def sylvester_hadamard(length: int) -> torch.Tensor:
    h = torch.ones(1, 1, dtype=torch.float64)
    while h.shape[0] < length:
        h = torch.kron(torch.tensor([[1.0, 1.0], [1.0, -1.0]], dtype=torch.float64), h)
    return h


# --- Fastfood / Walsh-Hadamard -------------------------------------------------------------

@pytest.mark.parametrize("length", [1, 2, 4, 64, 128, 2048])  # 2048 = 2^6 x 2^5: two blocks
def test_walsh_hadamard_equals_explicit_hadamard_matrix(length):
    x = torch.randn(3, length, dtype=torch.float64)
    torch.testing.assert_close(walsh_hadamard(x), x @ sylvester_hadamard(length))


def test_walsh_hadamard_gradient_is_the_transform_itself():
    x = torch.randn(16, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(walsh_hadamard, (x,))


def test_walsh_hadamard_rejects_non_power_of_two():
    with pytest.raises(ValueError, match="power-of-two length, got 12"):
        walsh_hadamard(torch.zeros(12))


@pytest.mark.parametrize("out_features, dim", [(20, 7), (20, 40), (64, 64)])  # pad, crop, exact
def test_fastfood_equals_its_explicit_matrix(out_features, dim):
    proj = FastfoodProjection(out_features, torch.Generator().manual_seed(0)).double()
    length = proj.length                                                    # 32, 32, 64
    signs, gaussian = proj.signs.double(), proj.gaussian.double()
    h = sylvester_hadamard(length)
    perm = torch.eye(length, dtype=torch.float64)[proj.permutation.long()]  # (Π v)_i = v_{π(i)}
    dense = proj.scale * (h @ torch.diag(gaussian) @ perm @ h @ torch.diag(signs))[:out_features]  # (D, L)
    x = torch.randn(dim, dtype=torch.float64)
    padded = torch.nn.functional.pad(x, (0, length - dim)) if dim < length else x[:length]
    torch.testing.assert_close(proj(x), dense @ padded)


def test_fastfood_stores_three_vectors_not_a_dense_matrix():
    proj = FastfoodProjection(1000, torch.Generator().manual_seed(0))
    assert sum(b.numel() for b in proj.buffers()) == 3 * 1024 + 1
    assert not list(proj.parameters()) and not proj.state_dict()  # regenerated from the seed, never saved


# --- Intrinsic-SAID --------------------------------------------------------------------------

@pytest.mark.parametrize("build", [tiny_t5, tiny_bert])
def test_intrinsic_model_starts_exactly_as_the_backbone(build):
    inputs = tiny_inputs(build())
    adapted = compacter.apply(build(), "intrinsic", intrinsic_dim=300)
    torch.testing.assert_close(logits(adapted, inputs), logits(build(), inputs), rtol=0, atol=0)


def test_intrinsic_counts_equal_hand_computed_numbers():
    t5 = compacter.apply(tiny_t5(), "intrinsic", intrinsic_dim=300)
    assert t5.compacter_intrinsic.scales.numel() == T5_TENSORS == 47
    assert t5.compacter_intrinsic.theta.numel() == 300 - 47
    count = compacter.count_parameters(t5)
    backbone = sum(p.numel() for p in tiny_t5().parameters())
    assert (count.trainable, count.backbone, count.total) == (300, backbone, backbone + 300)  # θ_0 counted once

    did = compacter.count_parameters(compacter.apply(tiny_t5(), "intrinsic", intrinsic_dim=300, said=False))
    assert did.trainable == 300

    bert = compacter.apply(tiny_bert(), "intrinsic", intrinsic_dim=300)
    assert bert.compacter_intrinsic.scales.numel() == BERT_TENSORS == 39
    assert compacter.count_parameters(bert).trainable == 300 + BERT_HEAD
    assert not any(isinstance(m, torch.nn.Linear) and hasattr(m, "parametrizations") for m in bert.classifier.modules())


def test_intrinsic_keeps_t5_embeddings_and_lm_head_tied():
    model = compacter.apply(tiny_t5(), "intrinsic", intrinsic_dim=300)
    with torch.no_grad():
        model.compacter_intrinsic.theta.normal_()
    assert model.lm_head.parametrizations.weight.original is model.shared.parametrizations.weight.original
    torch.testing.assert_close(model.lm_head.weight, model.shared.weight)
    assert not torch.equal(model.shared.weight, model.shared.parametrizations.weight.original)


def test_intrinsic_training_moves_every_weight_but_not_the_stored_originals():
    model = compacter.apply(tiny_bert(), "intrinsic", intrinsic_dim=300).train()
    original = model.bert.encoder.layer[0].attention.self.query.parametrizations.weight.original.clone()
    before = model.bert.encoder.layer[0].attention.self.query.weight.detach().clone()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1.0)
    model(**tiny_inputs(model), labels=torch.tensor([0, 2])).loss.backward()
    optimizer.step()
    query = model.bert.encoder.layer[0].attention.self.query
    assert not torch.equal(query.weight, before)
    assert torch.equal(query.parametrizations.weight.original, original)


def test_intrinsic_eval_cache_follows_in_place_updates():
    model = compacter.apply(tiny_t5(), "intrinsic", intrinsic_dim=300)
    inputs = tiny_inputs(model)
    first = logits(model, inputs)
    torch.testing.assert_close(logits(model, inputs), first, rtol=0, atol=0)  # served from the cache
    with torch.no_grad():
        model.compacter_intrinsic.theta.add_(0.5)
    assert not torch.allclose(logits(model, inputs), first)


def test_intrinsic_projection_is_reproducible_from_its_seed():
    def signs(seed):
        model = compacter.apply(tiny_t5(), "intrinsic", intrinsic_dim=300, projection_seed=seed)
        return model.encoder.block[0].layer[0].SelfAttention.q.parametrizations.weight[0].projection.signs
    assert torch.equal(signs(3), signs(3)) and not torch.equal(signs(3), signs(4))


def test_intrinsic_dim_too_small_for_said_says_why():
    with pytest.raises(ValueError, match="one scale on each of the model's 47 weight tensors"):
        compacter.apply(tiny_t5(), "intrinsic", intrinsic_dim=47)


# --- Prompt tuning ---------------------------------------------------------------------------

def test_prompt_counts_equal_hand_computed_numbers():
    assert compacter.count_parameters(compacter.apply(tiny_t5(), "prompt", num_tokens=5)).trainable == 5 * HIDDEN
    bert = compacter.count_parameters(compacter.apply(tiny_bert(), "prompt", num_tokens=5))
    assert bert.trainable == 5 * HIDDEN + BERT_HEAD


def test_prompt_inits_copy_the_first_vocabulary_rows_or_draw_uniform():
    tokens = compacter.apply(tiny_t5(), "prompt", num_tokens=5, init="tokens")
    torch.testing.assert_close(tokens.compacter_prompt.embeddings, tiny_t5().shared.weight[:5])
    random = compacter.apply(tiny_t5(), "prompt", num_tokens=50, init="random").compacter_prompt.embeddings
    assert random.abs().max() <= 0.5 and random.std() > 0.2  # U(-0.5, 0.5): std 0.29


def test_prompt_tokens_init_needs_that_many_vocabulary_rows():
    with pytest.raises(ValueError, match="vocabulary has only 100"):
        compacter.apply(tiny_t5(), "prompt", num_tokens=101)


def test_t5_generate_equals_greedy_decoding_through_forward():
    model = compacter.apply(tiny_t5(), "prompt", num_tokens=5, init="random")
    inputs = {k: v for k, v in tiny_inputs(model).items() if k != "decoder_input_ids"}
    generated = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    decoded = torch.zeros(2, 1, dtype=torch.long)  # decoder_start_token_id
    with torch.no_grad():
        for _ in range(4):
            step = model(**inputs, decoder_input_ids=decoded).logits[:, -1].argmax(-1, keepdim=True)
            decoded = torch.cat([decoded, step], dim=1)
    assert torch.equal(generated, decoded)


@pytest.mark.parametrize("build", [tiny_t5, tiny_bert])
def test_prompt_padding_stays_masked(build):
    """Right padding must not change the output: the masks are extended in step with the prompts."""
    model = compacter.apply(build(), "prompt", num_tokens=5, init="random")
    short = tiny_inputs(model, batch=1, length=4)
    padded = dict(short, input_ids=torch.cat([short["input_ids"], torch.zeros(1, 3, dtype=torch.long)], 1),
                  attention_mask=torch.cat([short["attention_mask"], torch.zeros(1, 3, dtype=torch.long)], 1))
    torch.testing.assert_close(logits(model, padded), logits(model, short))
    if build is tiny_t5:
        del short["decoder_input_ids"], padded["decoder_input_ids"]
        assert torch.equal(model.generate(**padded, max_new_tokens=3), model.generate(**short, max_new_tokens=3))


def test_bert_prompts_follow_cls_so_the_head_reads_cls():
    model = compacter.apply(tiny_bert(), "prompt", num_tokens=5, init="random")
    seen = {}
    model.bert.embeddings.register_forward_pre_hook(lambda m, a, kw: seen.update(kw), with_kwargs=True)
    inputs = dict(tiny_inputs(model), token_type_ids=torch.ones(2, 7, dtype=torch.long))
    logits(model, inputs)
    words = model.bert.embeddings.word_embeddings(inputs["input_ids"])
    expected = torch.cat([words[:, :1], model.compacter_prompt.embeddings.expand(2, -1, -1), words[:, 1:]], 1)
    torch.testing.assert_close(seen["inputs_embeds"], expected)  # [CLS], p_1..p_5, rest: pooler reads [CLS]
    assert seen["token_type_ids"][0].tolist() == [1] + [0] * 5 + [1] * 6


def test_bert_prompt_too_long_input_says_how_long_it_may_be():
    model = compacter.apply(tiny_bert(), "prompt", num_tokens=5)
    with pytest.raises(ValueError, match="truncate inputs to 59 tokens"):
        model(input_ids=torch.ones(1, 60, dtype=torch.long))


# --- LoRA, through the peft method -----------------------------------------------------------

def lora(model, **options):
    return compacter.apply(model, "peft", peft_config={"peft_type": "LORA", "r": 8, "lora_alpha": 8, **options})


def lora_wrapped(model) -> list[str]:
    return [name for name, m in model.named_modules() if hasattr(m, "lora_A")]


def test_lora_wraps_query_and_value_and_counts_match():
    bert = lora(tiny_bert())
    assert lora_wrapped(bert) == [f"bert.encoder.layer.{i}.attention.self.{p}" for i in (0, 1) for p in ("query", "value")]
    assert compacter.count_parameters(bert).trainable == 4 * 8 * (HIDDEN + HIDDEN) + BERT_HEAD
    t5 = lora(tiny_t5())
    attentions = [f"encoder.block.{i}.layer.0.SelfAttention" for i in (0, 1)] + [
        f"decoder.block.{i}.layer.{j}.{a}" for i in (0, 1) for j, a in ((0, "SelfAttention"), (1, "EncDecAttention"))]
    assert sorted(lora_wrapped(t5)) == sorted(f"{a}.{p}" for a in attentions for p in "qv")
    assert compacter.count_parameters(t5).trainable == 12 * 8 * (HIDDEN + HIDDEN)


@pytest.mark.parametrize("build", [tiny_t5, tiny_bert])
def test_lora_starts_as_the_backbone(build):
    inputs = tiny_inputs(build())
    torch.testing.assert_close(logits(lora(build()), inputs), logits(build(), inputs))


def test_lora_custom_targets_survive_the_json_round_trip(tmp_path):
    model = lora(tiny_bert(), r=2, target_modules=["key"])
    compacter.save_trained(model, tmp_path)
    fresh = compacter.load_trained(tiny_bert(), tmp_path)
    assert fresh.compacter_applied.config == model.compacter_applied.config
    assert fresh.compacter_applied.config.peft_config["target_modules"] == ["key"]
    assert lora_wrapped(fresh) == [f"bert.encoder.layer.{i}.attention.self.key" for i in (0, 1)]


def test_lora_without_a_peft_default_for_the_architecture_asks_for_targets():
    from transformers import CamembertConfig, CamembertForSequenceClassification

    config = CamembertConfig(vocab_size=100, hidden_size=HIDDEN, num_hidden_layers=1, num_attention_heads=4,
                             intermediate_size=64, max_position_embeddings=64)
    with pytest.raises(ValueError, match="specify `target_modules`"):
        lora(CamembertForSequenceClassification(config))
    model = lora(CamembertForSequenceClassification(config), target_modules=["query", "value"])
    assert lora_wrapped(model) == [f"roberta.encoder.layer.0.attention.self.{p}" for p in ("query", "value")]


def test_lora_target_that_matches_nothing_fails_loudly():
    with pytest.raises(ValueError, match="nonexistent"):
        lora(tiny_bert(), target_modules=["nonexistent"])


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
