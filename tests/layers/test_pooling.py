"""Pooling over pieces: padding never leaks into the pooled vector or the gradient."""

import numpy
import pytest
from spacy_transformers.data_classes import TransformerData, WordpieceBatch
from thinc.types import Ragged
from transformers.modeling_outputs import BaseModelOutput

from spacy_lsllama.layers.pooling import REDUCTIONS, pieces2vec

POOLINGS = sorted(REDUCTIONS)
WIDTH = 4
PAD_VALUE = 1e4


def doc_states(n_pieces: int, seed: int) -> numpy.ndarray:
    return numpy.random.default_rng(seed).normal(size=(n_pieces, WIDTH)).astype("f")


def trf_data(states: numpy.ndarray, padded_to: int, side: str) -> TransformerData:
    """One doc's states as the encoder hands them over: one row, padded to the batch."""
    n_pieces, pad = len(states), padded_to - len(states)
    padding = numpy.full((pad, WIDTH), PAD_VALUE, dtype="f")
    rows = [padding, states] if side == "left" else [states, padding]
    mask = numpy.ones((padded_to,), dtype="f")
    mask[slice(0, pad) if side == "left" else slice(n_pieces, None)] = 0.0
    return TransformerData(
        wordpieces=WordpieceBatch(
            strings=[["x"] * padded_to],
            input_ids=numpy.zeros((1, padded_to), dtype="i"),
            attention_mask=mask[None],
            lengths=[n_pieces],
            token_type_ids=None,
        ),
        model_output=BaseModelOutput(last_hidden_state=numpy.concatenate(rows)[None]),
        align=Ragged(numpy.arange(n_pieces, dtype="i"), numpy.ones(n_pieces, dtype="i")),
    )


def pool(pooling: str, trf_datas: list[TransformerData], is_train: bool = False):
    model = pieces2vec(pooling)
    model.initialize(X=trf_datas)
    return model(trf_datas, is_train)


def batch(lengths: list[int], side: str) -> tuple[list[numpy.ndarray], list[TransformerData]]:
    states = [doc_states(n, seed) for seed, n in enumerate(lengths)]
    return states, [trf_data(s, max(lengths), side) for s in states]


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("pooling", POOLINGS)
def test_padded_batch_equals_each_doc_alone(pooling, side):
    states, padded = batch([3, 7, 1], side)
    Y, _ = pool(pooling, padded)
    for row, doc in zip(Y, states):
        alone, _ = pool(pooling, [trf_data(doc, len(doc), side)])
        numpy.testing.assert_allclose(row, alone[0], rtol=1e-6)


@pytest.mark.parametrize("side", ["right", "left"])
def test_poolings_read_only_the_real_pieces(side):
    """Padding is 1e4: any leak into max, mean or last would dominate the result."""
    states, padded = batch([2, 5], side)
    expected = {
        "last": [s[-1] for s in states],
        "first": [s[0] for s in states],
        "max": [s.max(axis=0) for s in states],
        "mean": [s.mean(axis=0) for s in states],
    }
    for pooling in POOLINGS:
        Y, _ = pool(pooling, padded)
        numpy.testing.assert_allclose(Y, numpy.stack(expected[pooling]), rtol=1e-6)


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("pooling", POOLINGS)
def test_gradient_matches_states_and_is_zero_at_padding(pooling, side):
    _, padded = batch([2, 5], side)
    Y, backprop = pool(pooling, padded, is_train=True)
    d_trf_datas = backprop(numpy.ones_like(Y))
    assert len(d_trf_datas) == len(padded)
    for trf, d_trf in zip(padded, d_trf_datas):
        d_states = d_trf.model_output.last_hidden_state
        assert d_states.shape == trf.model_output.last_hidden_state.shape
        real = trf.wordpieces.attention_mask[0] > 0
        assert not d_states[0, ~real].any()
        d_real = d_states[0, real]
        # Each output unit receives its gradient of 1 once, spread over the real pieces.
        numpy.testing.assert_allclose(d_real.sum(axis=0), numpy.ones(WIDTH), rtol=1e-6)
        if pooling == "last":
            assert d_real[-1].all() and not d_real[:-1].any()
        if pooling == "first":
            assert d_real[0].all() and not d_real[1:].any()


def test_max_gradient_goes_to_the_maximum_pieces():
    states, padded = batch([4], "right")
    _, backprop = pool("max", padded, is_train=True)
    d_states = backprop(numpy.ones((1, WIDTH), dtype="f"))[0].model_output.last_hidden_state
    winners = states[0].argmax(axis=0)
    assert (d_states[0, winners, numpy.arange(WIDTH)] == 1).all()
    assert d_states.sum() == WIDTH


@pytest.mark.parametrize("pooling", POOLINGS)
def test_empty_doc_gets_a_zero_row_and_no_gradient(pooling):
    states, padded = batch([3], "right")
    Y, backprop = pool(pooling, [TransformerData.empty(), *padded], is_train=True)
    assert not Y[0].any() and Y[1].any()
    d_trf_datas = backprop(numpy.ones_like(Y))
    assert len(d_trf_datas) == 1
    assert d_trf_datas[0].model_output.last_hidden_state.shape == (1, 3, WIDTH)


def test_unknown_pooling_names_the_choices():
    with pytest.raises(ValueError, match="last, max, mean, first"):
        pieces2vec("cls")
