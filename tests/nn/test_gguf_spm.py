"""SentencePiece GGUF tokenizers rebuilt to tokenize as llama.cpp does (a tiny GGUF written
here; the real Gemma 3 vocabulary is checked in tests/test_real_gemma3.py)."""

from pathlib import Path

import gguf
import pytest
from spm_reference import SpmReference
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

from spacy_lsllama.nn.gguf_spm import build_spm_tokenizer, gguf_tokenizer_fields
from spacy_lsllama.nn.tokenization import load_tokenizer

CORPUS = [
    "Barack Obama visited Paris in the spring .",
    "Obama and Merkel met the press in Berlin .",
    "the president visited the capital , then Paris again .",
] * 20
TEXTS = [
    "Barack Obama visited Paris.",
    "Obama visited Berlin then Paris",
    "  two leading spaces and two  inside",
    "new\nlines\n\nand a tab\there",
    "unseen: café 🙂 Zürich",
    "xyz",
    "",
]
SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>"]
USER_DEFINED = ["\n", "\n\n", "  "]


def write_spm_gguf(path: Path, *, space_prefix: bool) -> Path:
    """A GGUF holding only an SPM vocabulary laid out as Gemma's: specials, user-defined
    tokens, byte tokens, then BPE pieces by merge order (score -rank), single characters last."""
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=[], show_progress=False)
    bpe = Tokenizer(models.BPE())
    bpe.normalizer = normalizers.Replace(" ", "▁")
    bpe.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme="never")
    bpe.train_from_iterator(CORPUS, trainer)
    vocab = sorted(bpe.get_vocab().items(), key=lambda item: item[1])
    chars = [token for token, _ in vocab if len(token) == 1]
    merged = [token for token, _ in vocab if len(token) > 1]
    tokens = SPECIALS + USER_DEFINED + [f"<0x{b:02X}>" for b in range(256)] + merged + chars
    kinds = [3] * len(SPECIALS) + [4] * len(USER_DEFINED) + [6] * 256
    kinds += [1] * (len(merged) + len(chars))
    scores = [-1000.0] * (len(SPECIALS) + len(USER_DEFINED)) + [0.0] * 256
    scores += [-float(rank) for rank in range(len(merged) + len(chars))]
    writer = gguf.GGUFWriter(path, arch="gemma3")
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(kinds)
    writer.add_bos_token_id(2)
    writer.add_eos_token_id(1)
    writer.add_unk_token_id(3)
    writer.add_pad_token_id(0)
    writer.add_add_bos_token(True)
    writer.add_add_space_prefix(space_prefix)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture(scope="module", params=[False, True], ids=["no-space-prefix", "space-prefix"])
def fields(request, tmp_path_factory):
    path = tmp_path_factory.mktemp("spm") / "vocab.gguf"
    return gguf_tokenizer_fields(write_spm_gguf(path, space_prefix=request.param))


@pytest.mark.parametrize("text", TEXTS)
def test_ids_are_llama_cpps(fields, text):
    assert build_spm_tokenizer(fields)(text)["input_ids"] == SpmReference(fields).encode(text)


def test_whole_words_in_the_vocabulary_stay_whole(fields):
    tokenizer = build_spm_tokenizer(fields)
    pieces = tokenizer.tokenize("Barack Obama visited Paris.")
    assert {"▁Obama", "▁visited", "▁Paris"} <= set(pieces)


def test_bos_first_pad_right_and_offsets_that_spell_the_text(fields, tmp_path):
    tokenizer = build_spm_tokenizer(fields)
    text = "Obama visited  Zürich\n"
    encoding = tokenizer(text, return_offsets_mapping=True)
    assert encoding["input_ids"][0] == tokenizer.bos_token_id == 2
    assert encoding["offset_mapping"][0] == (0, 0)
    spans = encoding["offset_mapping"][1:]
    assert spans[0][0] == 0 and spans[-1][1] == len(text)
    assert all(a[0] <= b[0] and a[1] <= b[1] for a, b in zip(spans, spans[1:]))
    # (a space prefix, when the file asks for one, also follows "  " and is decoded as such)
    plain = "Obama visited Zürich"
    assert tokenizer.decode(tokenizer(plain)["input_ids"], skip_special_tokens=True) == plain


def test_load_tokenizer_rebuilds_spm_ggufs_and_saves_them(tmp_path):
    path = write_spm_gguf(tmp_path / "vocab.gguf", space_prefix=False)
    tokenizer = load_tokenizer(tmp_path, gguf_file=path.name)
    assert tokenizer.pad_token == "<pad>" and tokenizer.padding_side == "right"
    assert tokenizer.eos_token == "<eos>" and tokenizer.unk_token == "<unk>"
    tokenizer.save_pretrained(tmp_path / "saved")
    reloaded = load_tokenizer(tmp_path / "saved")
    for text in TEXTS:
        assert reloaded(text)["input_ids"] == tokenizer(text)["input_ids"]
    assert reloaded(["a", "Obama visited"], padding=True)["input_ids"][0][-1] == 0
