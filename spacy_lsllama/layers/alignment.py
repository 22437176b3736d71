"""Wordpieces for a batch of docs: encoding, windows over pieces, stitching, token alignment.

spacy-transformers aligns by matching piece strings or offsets that assume BERT-style
pieces; byte-level BPE puts the leading space inside a piece (`' the'` spans the space), which
makes it align each token to the next word's first piece as well. Here a token is aligned to
the pieces whose character spans overlap it, so the leading space belongs to no token, and a
token that overlaps no piece (a whitespace token the tokenizer merged away) borrows the
nearest piece: every spaCy token gets at least one piece, hence exactly one vector.
"""

from dataclasses import dataclass
from typing import cast

import numpy
from spacy.tokens import Doc
from thinc.api import NumpyOps
from thinc.types import Ragged
from transformers.tokenization_utils_fast import PreTrainedTokenizerFast


@dataclass
class DocPieces:
    """The pieces of one doc and, per spaCy token, the pieces it aligns to."""

    ids: list[int]
    strings: list[str]
    token_pieces: list[numpy.ndarray]


@dataclass
class PieceBatch:
    """A batch ready for the model: windows of pieces in, stitched per-doc pieces out.

    `gather[d, p]` is the row of the flattened (window, position) model output that holds
    piece p of doc d (in the window where that piece has most context); `keep` is 1 for real
    pieces and 0 for padding. `align` maps every spaCy token to rows of the flattened
    (doc, piece) output, in the layout spacy-transformers' TransformerData expects.
    """

    docs: list[DocPieces]
    window_ids: numpy.ndarray
    window_mask: numpy.ndarray
    gather: numpy.ndarray
    keep: numpy.ndarray
    align: Ragged

    @property
    def lengths(self) -> list[int]:
        return [len(doc.ids) for doc in self.docs]


def encode_docs(tokenizer: PreTrainedTokenizerFast, docs: list[Doc]) -> list[DocPieces]:
    """Tokenize each doc's text once and align its pieces to its spaCy tokens."""
    encodings = tokenizer([doc.text for doc in docs], return_offsets_mapping=True)
    fallback_id = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
    return [
        _doc_pieces(doc, ids, offsets, tokenizer, fallback_id)
        for doc, ids, offsets in zip(docs, encodings["input_ids"], encodings["offset_mapping"])
    ]


def _doc_pieces(
    doc: Doc,
    ids: list[int],
    offsets: list[tuple[int, int]],
    tokenizer: PreTrainedTokenizerFast,
    fallback_id: int,
) -> DocPieces:
    spans = numpy.asarray(offsets, dtype="int64").reshape(-1, 2)
    if not len(ids):
        # Text the tokenizer maps to nothing: one stand-in piece covering it all.
        ids, spans = [fallback_id], numpy.asarray([[0, len(doc.text)]], dtype="int64")
    real = numpy.flatnonzero(spans[:, 1] > spans[:, 0])
    if not len(real):
        real = numpy.arange(len(ids))
    starts = numpy.asarray([token.idx for token in doc], dtype="int64")
    ends = starts + numpy.asarray([len(token.text) for token in doc], dtype="int64")
    first = numpy.searchsorted(spans[real, 1], starts, side="right")
    last = numpy.searchsorted(spans[real, 0], ends, side="left")
    token_pieces = []
    for lo, hi in zip(first, last):
        if hi <= lo:
            lo = min(lo, len(real) - 1)
            hi = lo + 1
        token_pieces.append(real[lo:hi])
    # A list of ids gives a list of strings (transformers types it as `str | list[str]`).
    strings = cast(list[str], tokenizer.convert_ids_to_tokens(list(ids)))
    return DocPieces(ids=list(ids), strings=strings, token_pieces=token_pieces)


def window_starts(length: int, window: int, stride: int) -> list[int]:
    """Start offsets of windows of `window` pieces every `stride` pieces covering `length`."""
    if length <= window:
        return [0]
    starts = list(range(0, length - window + 1, stride))
    if starts[-1] + window < length:
        starts.append(length - window)
    return starts


def best_window(
    length: int, starts: list[int], window: int, *, causal: bool = False
) -> numpy.ndarray:
    """For each piece, the window in which it has most context: farthest from an edge, or,
    for a `causal` encoder, which sees only the left context, farthest from the start."""
    positions = numpy.arange(length)
    best = numpy.zeros(length, dtype="int64")
    best_margin = numpy.full(length, -1, dtype="int64")
    for k, start in enumerate(starts):
        inside = (positions >= start) & (positions < start + window)
        margin = positions - start
        if not causal:
            margin = numpy.minimum(margin, start + window - 1 - positions)
        better = inside & (margin > best_margin)
        best[better] = k
        best_margin[better] = margin[better]
    return best


def batch_pieces(
    docs: list[DocPieces], *, window: int, stride: int, pad_id: int, causal: bool = False
) -> PieceBatch:
    """Cut every doc into overlapping windows and record how to stitch the outputs back:
    each piece from its `best_window` (`causal`: the encoder has no unmasked layer)."""
    layouts = []
    for doc in docs:
        starts = window_starts(len(doc.ids), window, stride)
        layouts.append((starts, best_window(len(doc.ids), starts, window, causal=causal)))
    width = min(window, max(len(doc.ids) for doc in docs))
    n_windows = sum(len(starts) for starts, _ in layouts)
    window_ids = numpy.full((n_windows, width), pad_id, dtype="int64")
    window_mask = numpy.zeros((n_windows, width), dtype="int64")
    max_len = max(len(doc.ids) for doc in docs)
    gather = numpy.zeros((len(docs), max_len), dtype="int64")
    keep = numpy.zeros((len(docs), max_len), dtype="float32")
    row = 0
    for d, (doc, (starts, owner)) in enumerate(zip(docs, layouts)):
        ids = numpy.asarray(doc.ids, dtype="int64")
        for start in starts:
            piece_ids = ids[start : start + width]
            window_ids[row, : len(piece_ids)] = piece_ids
            window_mask[row, : len(piece_ids)] = 1
            row += 1
        positions = numpy.arange(len(ids))
        first_row = row - len(starts)
        owner_starts = numpy.asarray(starts, dtype="int64")[owner]
        gather[d, : len(ids)] = (first_row + owner) * width + positions - owner_starts
        keep[d, : len(ids)] = 1.0
    return PieceBatch(
        docs=docs,
        window_ids=window_ids,
        window_mask=window_mask,
        gather=gather,
        keep=keep,
        align=token_alignment(docs, max_len),
    )


def token_alignment(docs: list[DocPieces], max_len: int) -> Ragged:
    """Ragged token → piece rows over the flattened (doc, piece) grid of width max_len."""
    data, lengths = [], []
    for d, doc in enumerate(docs):
        for pieces in doc.token_pieces:
            data.append(pieces + d * max_len)
            lengths.append(len(pieces))
    flat = numpy.concatenate(data) if data else numpy.zeros((0,), dtype="int64")
    ops = NumpyOps()
    return Ragged(ops.asarray1i(flat), ops.asarray1i(lengths))
