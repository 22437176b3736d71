"""Tokenizer fixes: a pad token and right padding whatever the checkpoint says."""

from spacy_lsllama.nn.tokenization import ensure_padding
from spacy_lsllama.testing import tiny_tokenizer


def test_missing_pad_token_falls_back_to_eos_and_pads_right():
    tokenizer = tiny_tokenizer()
    tokenizer.padding_side = "left"
    assert tokenizer.pad_token is None
    ensure_padding(tokenizer)
    assert tokenizer.pad_token == tokenizer.eos_token
    assert tokenizer.padding_side == "right"
    texts = ["Paris", "Obama visited Paris"]
    batch = tokenizer(texts, padding=True)
    n_short, n_long = (len(tokenizer(text)["input_ids"]) for text in texts)
    assert n_short < n_long
    padding = n_long - n_short
    assert batch["attention_mask"][0] == [1] * n_short + [0] * padding
    assert batch["input_ids"][0][n_short:] == [tokenizer.eos_token_id] * padding
