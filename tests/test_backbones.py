"""Encoder heads pool as the checkpoint was trained: mean pooling for sentence-transformers
checkpoints that say so (all-MiniLM-L6-v2), BERT's [CLS] pooler otherwise."""

import json
import shutil

import pytest
import torch

import compacter
from experiments.run.config import RunConfig, make_run_config
from experiments.run.backbones import MeanPooling, head_pooling, load_model, pool_mean, resolve
from tests.tiny_models import tiny_bert


def test_auto_pooling_follows_the_checkpoints_sentence_transformers_config(tiny_checkpoints, tmp_path):
    assert head_pooling(resolve("minilm")) == "mean"  # its 1_Pooling/config.json: pooling_mode_mean_tokens
    assert head_pooling(resolve(tiny_checkpoints["bert"])) == "cls"  # no pooling config: the model's own head
    assert head_pooling(resolve(tiny_checkpoints["t5"])) == "none"  # generates its answers
    for flag, expected in ((True, "mean"), (False, "cls")):
        checkpoint = tmp_path / str(flag)
        shutil.copytree(tiny_checkpoints["bert"], checkpoint)
        (checkpoint / "1_Pooling").mkdir()
        (checkpoint / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_mean_tokens": flag,
                                                                         "pooling_mode_cls_token": not flag}))
        assert head_pooling(resolve(str(checkpoint))) == expected
        assert head_pooling(resolve(str(checkpoint)), "cls") == "cls"  # a stated choice wins


def test_pooling_choices_are_checked_with_the_valid_ones_named(tiny_checkpoints):
    with pytest.raises(ValueError, match="unknown pooling 'max'; choose one of: auto, mean, cls"):
        RunConfig(pooling="max")
    with pytest.raises(ValueError, match="seq2seq"):
        head_pooling(resolve(tiny_checkpoints["t5"]), "mean")


def test_mean_pooling_averages_the_unmasked_tokens_so_padding_changes_nothing():
    model = pool_mean(tiny_bert(num_labels=2))
    assert isinstance(model.bert.pooler, MeanPooling) and not hasattr(model.bert.pooler, "dense")
    ids = torch.tensor([[5, 17, 23, 42]])
    short = model(input_ids=ids, attention_mask=torch.ones_like(ids), output_hidden_states=True)
    hidden = short.hidden_states[-1][0]  # (length, hidden)
    expected = model.classifier(hidden.mean(dim=0))
    torch.testing.assert_close(short.logits[0], expected)
    padded_ids = torch.cat([ids, torch.zeros(1, 3, dtype=ids.dtype)], dim=1)
    padded = model(input_ids=padded_ids, attention_mask=torch.tensor([[1, 1, 1, 1, 0, 0, 0]]))
    torch.testing.assert_close(padded.logits, short.logits, atol=1e-5, rtol=0)


def test_mean_pooling_sees_the_prompted_mask_of_prompt_tuning():
    model = compacter.apply(pool_mean(tiny_bert(num_labels=2)), "prompt", num_tokens=3)
    ids = torch.tensor([[5, 17, 23, 0]])
    model(input_ids=ids, attention_mask=torch.tensor([[1, 1, 1, 0]]))
    # the prompt hook ran first: 3 prompt positions inserted after [CLS], all kept
    assert model.bert.pooler.attention_mask.tolist() == [[1, 1, 1, 1, 1, 1, 0]]


def test_load_model_pools_minilm_by_the_mean_and_tiny_bert_by_its_cls_pooler(tiny_checkpoints):
    assert isinstance(load_model(resolve("minilm"), "classification").bert.pooler, MeanPooling)
    assert not isinstance(load_model(resolve(tiny_checkpoints["bert"]), "classification").bert.pooler, MeanPooling)
    forced = load_model(resolve(tiny_checkpoints["bert"]), "multiple_choice", pooling="mean")
    assert isinstance(forced.bert.pooler, MeanPooling)


def test_pooling_is_part_of_the_run_identity():
    ids = {make_run_config("compacter", pooling=pooling).run_id for pooling in ("auto", "mean", "cls")}
    assert len(ids) == 3
