"""Every spaCy token gets a vector, whatever the whitespace and script; windows stitch back."""

import numpy
import pytest
import spacy
import torch
from spacy_transformers.layers.trfs2arrays import trfs2arrays
from thinc.api import reduce_mean

from spacy_lsllama.layers.alignment import batch_pieces, best_window, encode_docs, window_starts
from spacy_lsllama.layers.transformer_model import get_encoder
from spacy_lsllama.testing import encoder_nlp, tiny_tokenizer

TEXTS = [
    "  leading spaces",
    "trailing spaces   ",
    "several    spaces between",
    "new\nlines\n\nand\ttabs",
    "emoji 🙂🙂 and 👍🏽 here",
    "accents: café crème brûlée Zürich",
    "CJK 北京は東京より大きい。",
    " ",
    "\n",
    "x",
]


@pytest.fixture(scope="module")
def nlp(tiny_model_dir):
    return encoder_nlp(tiny_model_dir)


def token_piece_rows(doc) -> list[numpy.ndarray]:
    """The piece rows each spaCy token is aligned to."""
    align = doc._.trf_data.align
    return numpy.split(align.dataXd, numpy.cumsum(align.lengths)[:-1])


@pytest.mark.parametrize("text", TEXTS)
def test_every_token_gets_the_pieces_that_spell_it(nlp, text):
    doc = nlp(text)
    assert len(doc._.trf_data.align.lengths) == len(doc)
    tokenizer = get_encoder(nlp.get_pipe("llm").model).tokenizer
    ids = doc._.trf_data.wordpieces.input_ids.reshape(-1)
    for token, rows in zip(doc, token_piece_rows(doc), strict=True):
        assert len(rows) >= 1, token.text
        spelled = tokenizer.decode([int(ids[row]) for row in rows])
        if not token.is_space:  # a whitespace token borrows the nearest piece
            assert token.text in spelled, (token.text, spelled)


def test_listener_gives_each_token_the_mean_of_its_pieces(nlp):
    pool = trfs2arrays(reduce_mean(), 1.0)
    docs = list(nlp.pipe(TEXTS))
    vectors = pool.predict([doc._.trf_data for doc in docs])
    for doc, array in zip(docs, vectors, strict=True):
        states = doc._.trf_data.model_output.last_hidden_state.reshape(-1, 64)
        expected = [states[rows].mean(axis=0) for rows in token_piece_rows(doc)]
        numpy.testing.assert_allclose(array, numpy.stack(expected), rtol=1e-5, atol=1e-6)


def test_tokens_align_to_overlapping_pieces_not_the_next_word():
    tokenizer = tiny_tokenizer()
    doc = spacy.blank("en")("Obama visited Paris")
    (pieces,) = encode_docs(tokenizer, [doc])
    for token, aligned in zip(doc, pieces.token_pieces):
        text = "".join(pieces.strings[i] for i in aligned).replace("Ġ", " ").strip()
        assert text == token.text


@pytest.mark.parametrize("length,window,stride", [(5, 8, 6), (20, 8, 6), (20, 8, 4), (33, 16, 12)])
def test_windows_cover_every_piece_and_stitch_to_the_same_piece(length, window, stride):
    starts = window_starts(length, window, stride)
    assert starts[0] == 0 and starts[-1] + window >= length
    owner = best_window(length, starts, window)
    positions = numpy.arange(length)
    assert (positions >= numpy.asarray(starts)[owner]).all()
    assert (positions < numpy.asarray(starts)[owner] + window).all()
    tokenizer = tiny_tokenizer()
    doc = spacy.blank("en")(" ".join(["Paris"] * length))
    docs = encode_docs(tokenizer, [doc, spacy.blank("en")("London")])
    batch = batch_pieces(docs, window=window, stride=stride, pad_id=0)
    flat_ids = batch.window_ids.reshape(-1)
    for d, pieces in enumerate(docs):
        n = len(pieces.ids)
        assert (flat_ids[batch.gather[d, :n]] == pieces.ids).all()
        assert (batch.keep[d, :n] == 1).all() and (batch.keep[d, n:] == 0).all()


def test_best_window_of_a_causal_encoder_has_most_left_context():
    starts = window_starts(20, 8, 6)  # [0, 6, 12]
    assert best_window(20, starts, 8).tolist() == [0] * 7 + [1] * 6 + [2] * 7
    assert best_window(20, starts, 8, causal=True).tolist() == [0] * 8 + [1] * 6 + [2] * 6


def test_long_document_pieces_get_the_states_of_their_best_window(tiny_model_dir):
    """Causal, so each window's states are the decoder's own on that window's pieces, and
    each piece's best window is the first that holds it: the one with most left context."""
    window, stride = 16, 12
    nlp = encoder_nlp(tiny_model_dir, window=window, stride=stride, bidirectional=False)
    doc = nlp(" ".join(["Barack Obama visited Paris and Berlin."] * 20))
    states = doc._.trf_data.model_output.last_hidden_state[0]
    ids = doc._.trf_data.wordpieces.input_ids[0]
    n = len(states)
    assert n > 3 * window and (doc._.trf_data.align.lengths >= 1).all()
    starts = window_starts(n, window, stride)
    owner = numpy.asarray(
        [next(w for w, s in enumerate(starts) if p < s + window) for p in range(n)]
    )
    decoder = get_encoder(nlp.get_pipe("llm").model).model
    with torch.no_grad():
        for w, start in enumerate(starts):
            pieces = torch.as_tensor(ids[start : start + window], dtype=torch.long)[None]
            expected = decoder(input_ids=pieces).last_hidden_state[0].numpy()
            mine = numpy.flatnonzero(owner == w)
            assert len(mine), f"window {w} owns no piece"
            numpy.testing.assert_allclose(states[mine], expected[mine - start], atol=1e-5)


@pytest.mark.parametrize("bidirectional", [True, False])
def test_length_sorted_chunks_give_the_same_states_as_one_doc_at_a_time(
    tiny_model_dir, bidirectional
):
    nlp = encoder_nlp(tiny_model_dir, bidirectional=bidirectional, rows_per_forward=2)
    texts = ["Paris", "Obama visited Paris and Berlin.", "x y", "Apple opened offices in Tokyo."]
    together = [doc._.trf_data.model_output.last_hidden_state[0] for doc in nlp.pipe(texts)]
    for text, states in zip(texts, together):
        alone = nlp(text)._.trf_data.model_output.last_hidden_state[0]
        numpy.testing.assert_allclose(states[: len(alone)], alone, atol=1e-5)
