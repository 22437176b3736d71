"""Pool each doc's piece states into one vector: the sequence representation of LS-LLaMA.

The paper pools the decoder's final-layer states over the doc's *pieces*, not spaCy tokens,
so these layers read the `TransformerData` list that spacy-transformers' `TransformerListener`
yields. The wordpieces' attention mask marks the real pieces: padding never enters a max or
mean, and `last` is the last real piece whichever side was padded. The gradient goes back as
`TransformerData` shaped like `last_hidden_state` and zero at padding, the protocol of
spacy-transformers' `trfs2arrays`, so the encoder's LoRA weights train through the pooling.
"""

from collections.abc import Callable

from spacy_transformers.data_classes import TransformerData
from thinc.api import Model, reduce_first, reduce_last, reduce_max, reduce_mean
from thinc.types import Floats2d, Ints1d, Ragged
from transformers.modeling_outputs import BaseModelOutput

REDUCTIONS: dict[str, Callable[[], Model[Ragged, Floats2d]]] = {
    "last": reduce_last,
    "max": reduce_max,
    "mean": reduce_mean,
    "first": reduce_first,
}

Backprop = Callable[[Floats2d], list[TransformerData]]


def pieces2vec(pooling: str = "max") -> Model[list[TransformerData], Floats2d]:
    """Pool each doc's real pieces into one row: "last", "max", "mean" or "first".

    Docs without pieces (empty docs) get a zero row and send no gradient.
    """
    if pooling not in REDUCTIONS:
        raise ValueError(f"Unknown pooling '{pooling}': use one of {', '.join(REDUCTIONS)}.")
    return Model(
        f"pieces2vec_{pooling}",
        forward,
        init=init,
        layers=[REDUCTIONS[pooling]()],
        dims={"nO": None},
        attrs={"pooling": pooling},
    )


def init(
    model: Model[list[TransformerData], Floats2d],
    X: list[TransformerData] | None = None,
    Y: Floats2d | None = None,
) -> Model[list[TransformerData], Floats2d]:
    widths = [trf_data.width for trf_data in X or [] if _has_states(trf_data)]
    if widths:
        model.set_dim("nO", widths[0])
    return model


def forward(
    model: Model[list[TransformerData], Floats2d], trf_datas: list[TransformerData], is_train: bool
) -> tuple[Floats2d, Backprop]:
    width = model.get_dim("nO")
    positions = [_real_positions(model, trf_data) for trf_data in trf_datas]
    pooled = [i for i, doc_positions in enumerate(positions) if len(doc_positions)]
    Y = model.ops.alloc2f(len(trf_datas), width)
    if not pooled:
        return Y, lambda dY: _scatter(model, trf_datas, positions, [])
    X = Ragged(
        model.ops.xp.concatenate([_rows(trf_datas[i])[positions[i]] for i in pooled]),
        model.ops.asarray1i([len(positions[i]) for i in pooled]),
    )
    Y_pooled, backprop_reduce = model.layers[0](X, is_train)
    Y[pooled] = Y_pooled

    def backprop(dY: Floats2d) -> list[TransformerData]:
        dX = backprop_reduce(dY[pooled])
        d_rows = model.ops.xp.split(dX.dataXd, model.ops.xp.cumsum(X.lengths)[:-1].tolist())
        return _scatter(model, trf_datas, positions, d_rows)

    return Y, backprop


def _scatter(
    model: Model,
    trf_datas: list[TransformerData],
    positions: list[Ints1d],
    d_rows: list[Floats2d],
) -> list[TransformerData]:
    """Gradients shaped like each doc's states: pooled rows in place, zeros elsewhere.

    Like `trfs2arrays`, docs without states (empty docs) get no entry: the encoder produced
    no rows for them.
    """
    d_rows_iter = iter(d_rows)
    d_trf_datas = []
    for trf_data, doc_positions in zip(trf_datas, positions):
        if not _has_states(trf_data):
            continue
        states = trf_data.model_output["last_hidden_state"]
        d_states = model.ops.alloc(states.shape, dtype=states.dtype)
        if len(doc_positions):
            d_states.reshape(-1, states.shape[-1])[doc_positions] = next(d_rows_iter)
        d_trf_datas.append(
            TransformerData(
                wordpieces=trf_data.wordpieces,
                model_output=BaseModelOutput(last_hidden_state=d_states),
                align=trf_data.align,
            )
        )
    return d_trf_datas


def _real_positions(model: Model, trf_data: TransformerData) -> Ints1d:
    """Flat row indices of the doc's real pieces, in order, from the attention mask."""
    if not _has_states(trf_data):
        return model.ops.alloc1i(0)
    mask = model.ops.asarray(trf_data.wordpieces.attention_mask).ravel()
    return model.ops.xp.flatnonzero(mask)


def _rows(trf_data: TransformerData) -> Floats2d:
    states = trf_data.model_output["last_hidden_state"]
    return states.reshape(-1, states.shape[-1])


def _has_states(trf_data: TransformerData) -> bool:
    return "last_hidden_state" in trf_data.model_output
