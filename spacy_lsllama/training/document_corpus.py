"""Training on document context: a document's consecutive sentences joined into chunks.

CoNLL-style corpora are sentence lists, and a model trained on single sentences fails on the
paragraphs and articles users tag (it never saw a sentence with neighbours). This reader
rejoins the sentences of each document (the number `lsllama convert` keeps for files that mark
documents, `corpora.conll.DOCUMENT_KEY`) into chunks of consecutive sentences, mixed with
single sentences, as FLERT (Schweter & Akbik 2020) trains transformer taggers with context.

Every sentence is in exactly one chunk per epoch; how they are cut changes each epoch (seeded),
so a model sees each sentence alone and within different neighbours over a run.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from itertools import groupby
from pathlib import Path

import spacy
from spacy.language import Language
from spacy.tokens import Doc, DocBin
from spacy.training import Example

from ..corpora.conll import DOCUMENT_KEY


def chunk_sentences(
    sentences: Sequence[Doc], *, max_words: int, single_ratio: float, rng: random.Random
) -> Iterator[list[Doc]]:
    """Cut one document's sentences into runs of consecutive sentences.

    With probability `single_ratio` a chunk is one sentence; otherwise it takes sentences while
    it stays within a length drawn uniformly from 1..max_words words (at least one sentence,
    so a sentence longer than max_words stands alone).
    """
    start = 0
    while start < len(sentences):
        limit = 0 if rng.random() < single_ratio else rng.randint(1, max_words)
        end, words = start + 1, len(sentences[start])
        while end < len(sentences) and words + len(sentences[end]) <= limit:
            words += len(sentences[end])
            end += 1
        yield list(sentences[start:end])
        start = end


def join_sentences(sentences: Sequence[Doc]) -> Doc:
    """One Doc of the sentences, each starting a sentence, entities kept (user_data is not)."""
    for sentence in sentences:
        sentence.user_data.clear()
    doc = Doc.from_docs(list(sentences), ensure_whitespace=True)
    offset = 0
    for sentence in sentences:
        doc[offset].is_sent_start = True
        for token in doc[offset + 1 : offset + len(sentence)]:
            token.is_sent_start = False
        offset += len(sentence)
    return doc


def documents(docs: Sequence[Doc]) -> list[list[Doc]]:
    """Consecutive sentences grouped by their document number; unmarked ones stand alone."""
    grouped = groupby(enumerate(docs), key=lambda item: _document(*item))
    return [[doc for _, doc in group] for _, group in grouped]


def _document(index: int, doc: Doc) -> tuple[str, int]:
    number = doc.user_data.get(DOCUMENT_KEY)
    return ("sentence", index) if number is None else ("document", number)


class DocumentCorpus:
    """Examples of chunks of consecutive sentences from a DocBin of sentences (see module)."""

    def __init__(
        self, path: str | Path, *, max_words: int, single_ratio: float, seed: int, limit: int
    ) -> None:
        if max_words < 1:
            raise ValueError(f"max_words must be at least 1, not {max_words}")
        if not 0.0 <= single_ratio <= 1.0:
            raise ValueError(f"single_ratio must be between 0 and 1, not {single_ratio}")
        self.path = Path(path)
        self.max_words = max_words
        self.single_ratio = single_ratio
        self.limit = limit
        self.rng = random.Random(seed)

    def __call__(self, nlp: Language) -> Iterator[Example]:
        if not self.path.exists():
            raise ValueError(f"training corpus not found: {self.path}")
        docs = list(DocBin().from_disk(self.path).get_docs(nlp.vocab))
        if self.limit:
            docs = docs[: self.limit]
        for sentences in documents(docs):
            for chunk in chunk_sentences(
                sentences, max_words=self.max_words, single_ratio=self.single_ratio, rng=self.rng
            ):
                reference = join_sentences(chunk)
                yield Example(nlp.make_doc(reference.text), reference)


@spacy.registry.readers("spacy-lsllama.DocumentCorpus.v1")
def document_corpus_v1(
    path: Path, max_words: int = 150, single_ratio: float = 0.25, seed: int = 0, limit: int = 0
) -> DocumentCorpus:
    """A training corpus of document chunks (see the module docstring).

    max_words: the longest chunk drawn, in words; keep its pieces within the encoder's window.
    single_ratio: the share of chunks that are a single sentence.
    limit: read only the first N sentences (0: all).
    """
    return DocumentCorpus(
        path, max_words=max_words, single_ratio=single_ratio, seed=seed, limit=limit
    )
