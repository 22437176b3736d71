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
    batch = tokenizer(["Paris", "Obama visited Paris"], padding=True)
    assert batch["attention_mask"][0][0] == 1
