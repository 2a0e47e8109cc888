"""Intrinsic-SAID (compacter.intrinsic) on tiny T5 / BERT: what is particular to it (gradient placement
and the save/load round trip run in the shared table of tests/test_methods.py)."""

import pytest
import torch

import compacter
from tests.tiny_models import BERT_HEAD, logits, tiny_bert, tiny_inputs, tiny_t5

T5_TENSORS = 1 + (2 * 9 - 1 + 1) + (2 * 14 - 1 + 1)  # shared (tied to lm_head) + encoder + decoder tensors
BERT_TENSORS = 5 + 2 * 16 + 2       # embeddings (3 tables, LN w/b) + 2 layers x 16 + pooler w/b


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
