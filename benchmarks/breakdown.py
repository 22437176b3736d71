"""Inside the lsllama pipeline (a): real pieces, padding, and where the time goes.

Nothing is monkeypatched: the components are called batch by batch as nlp.pipe calls them
(spacy-transformers' `batch_by_length` sub-batches for the encoder, outer batches for ner),
the library's `encode_docs` / `batch_pieces` are timed on the same batches, and the encoder
forward is timed with torch forward hooks on the `LlamaEncoder` module.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from common import chunks, timer


def _llm(nlp: Any) -> tuple[Any, Any, Any]:
    """The llm component, its LlamaEncoder and its EncoderSettings."""
    from spacy_lsllama.layers.transformer_model import get_encoder

    llm = nlp.get_pipe("llm")
    encoder = get_encoder(llm.model)
    return llm, encoder, encoder.settings


def sub_batches(llm: Any, docs: list[Any]) -> list[list[Any]]:
    """The encoder's sub-batches of one outer batch, as spacy-transformers' Transformer.pipe."""
    from spacy_transformers.util import batch_by_length

    return [[docs[i] for i in batch] for batch in batch_by_length(docs, llm.cfg["max_batch_items"])]


def windows(encoder: Any, settings: Any, docs: list[Any]) -> Any:
    """The library's PieceBatch for docs: windows of piece ids, padded."""
    from spacy_lsllama.layers.alignment import batch_pieces, encode_docs

    pieces = encode_docs(encoder.tokenizer, [doc for doc in docs if len(doc)])
    return batch_pieces(
        pieces,
        window=settings.window,
        stride=settings.stride,
        pad_id=encoder.tokenizer.pad_token_id,
        causal=not encoder.unmasked,
    )


def piece_lengths(nlp: Any, texts: Sequence[str]) -> list[int]:
    """Real pieces per text under the encoder's tokenizer, aligned as the library does."""
    from spacy_lsllama.layers.alignment import encode_docs

    _, encoder, _ = _llm(nlp)
    return [len(d.ids) for d in encode_docs(encoder.tokenizer, [nlp.make_doc(t) for t in texts])]


@dataclass
class Padding:
    """Real pieces and the width of every sequence row the model computes."""

    real: int = 0
    widths: list[int] = field(default_factory=list)

    def add(self, real: int, rows: int, width: int) -> None:
        self.real += real
        self.widths += [width] * rows

    def add_windows(self, batch: Any, rows_per_forward: int) -> None:
        """A PieceBatch as the encoder runs it: packed, in chunks cut to their fullest row."""
        import torch

        from spacy_lsllama.nn.packing import pack_windows

        packed = pack_windows(
            torch.as_tensor(batch.window_ids), torch.as_tensor(batch.window_mask.sum(axis=1))
        )
        self.real += int(sum(batch.lengths))
        for rows, width in packed.chunks(rows_per_forward):
            self.widths += [width] * len(rows)

    def counts(self) -> dict[str, int]:
        return {"real_pieces": self.real, "computed_pieces": sum(self.widths)}


def padding(nlp: Any, texts: Sequence[str], batch_size: int) -> Padding:
    """What the encoder computes for the texts, batched as nlp.pipe and the encoder do.

    Each sub-batch's windows are packed into rows and run in chunks as the encoder does
    (`spacy_lsllama.nn.packing`), each cut to its fullest row.
    """
    llm, encoder, settings = _llm(nlp)
    result = Padding()
    for outer in chunks(texts, batch_size):
        for docs in sub_batches(llm, [nlp.make_doc(text) for text in outer]):
            result.add_windows(windows(encoder, settings, docs), settings.rows_per_forward)
    return result


def padding_fraction(counts: dict[str, Any]) -> float | None:
    """Share of computed pieces that are padding."""
    if not counts.get("computed_pieces"):
        return None
    return 1 - counts["real_pieces"] / counts["computed_pieces"]


class ForwardTimer:
    """Total time spent in a torch module's forward, from forward hooks."""

    def __init__(self, module: Any) -> None:
        self.seconds = 0.0
        self._start = 0.0
        self._hooks = [
            module.register_forward_pre_hook(self._before),
            module.register_forward_hook(self._after),
        ]

    def _before(self, *_: Any) -> None:
        self._start = time.perf_counter()

    def _after(self, *_: Any) -> None:
        self.seconds += time.perf_counter() - self._start

    def remove(self) -> None:
        for hook in self._hooks:
            hook.remove()


def breakdown(nlp: Any, texts: Sequence[str], batch_size: int) -> dict[str, float]:
    """Seconds per disjoint stage of (a) over the texts."""
    llm, encoder, settings = _llm(nlp)
    ner = nlp.get_pipe("ner")
    times: dict[str, float] = {}
    forward = ForwardTimer(encoder)
    try:
        for outer in chunks(texts, batch_size):
            with timer(times, "make_doc"):
                docs = [nlp.make_doc(text) for text in outer]
            for sub in sub_batches(llm, docs):
                with timer(times, "pieces"):
                    windows(encoder, settings, sub)
                with timer(times, "llm_predict"):
                    predicted = llm.predict(sub)
                with timer(times, "llm_set"):
                    llm.set_annotations(sub, predicted)
            with timer(times, "ner_predict"):
                scores = ner.predict(docs)
            with timer(times, "ner_set"):
                ner.set_annotations(docs, scores)
    finally:
        forward.remove()
    rest = times["llm_predict"] - forward.seconds - times["pieces"]
    return {
        "spaCy tokenizer (make_doc)": times["make_doc"],
        "tokenize + align + windows (encode_docs, batch_pieces)": times["pieces"],
        "encoder forward (LlamaEncoder)": forward.seconds,
        "llm other (tensors, FullTransformerBatch)": max(rest, 0.0),
        "llm.set_annotations (trf_data)": times["llm_set"],
        "ner.predict (listener pooling + head)": times["ner_predict"],
        "ner.set_annotations (Viterbi, spans)": times["ner_set"],
    }
