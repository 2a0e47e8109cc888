"""Prompt tuning (compacter.prompt) on tiny T5 / BERT: what is particular to it (gradient placement
and the save/load round trip run in the shared table of tests/test_methods.py)."""

import pytest
import torch

import compacter
from tests.tiny_models import BERT_HEAD, HIDDEN, logits, tiny_bert, tiny_inputs, tiny_t5


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
