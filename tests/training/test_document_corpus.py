"""The document-context training corpus: chunks of consecutive sentences of a document."""

import random

import pytest
import spacy
from spacy.tokens import Doc, DocBin, Span

from spacy_lsllama.corpora.conll import DOCUMENT_KEY
from spacy_lsllama.training.document_corpus import (
    DocumentCorpus,
    chunk_sentences,
    documents,
    join_sentences,
)

NLP = spacy.blank("en")


def sentence(words: list[str], document: int | None, entity: tuple[int, int, str] | None = None):
    doc = Doc(NLP.vocab, words=words, spaces=[True] * (len(words) - 1) + [False])
    if entity is not None:
        doc.ents = [Span(doc, entity[0], entity[1], label=entity[2])]
    if document is not None:
        doc.user_data[DOCUMENT_KEY] = document
    return doc


def corpus_docs() -> list[Doc]:
    return [
        sentence(["Ann", "met", "Bob", "."], 0, (0, 1, "PER")),
        sentence(["They", "left", "Rome", "."], 0, (2, 3, "LOC")),
        sentence(["Acme", "grew", "."], 0, (0, 1, "ORG")),
        sentence(["Oslo", "is", "cold", "."], 1, (0, 1, "LOC")),
        sentence(["A", "tweet"], None),
        sentence(["Another", "tweet"], None),
    ]


def test_documents_group_consecutive_sentences_and_leave_unmarked_ones_alone():
    groups = documents(corpus_docs())
    assert [[doc.text for doc in group] for group in groups] == [
        ["Ann met Bob .", "They left Rome .", "Acme grew ."],
        ["Oslo is cold ."],
        ["A tweet"],
        ["Another tweet"],
    ]


def test_joined_sentences_keep_entities_and_sentence_starts():
    doc = join_sentences(corpus_docs()[:3])
    assert doc.text == "Ann met Bob . They left Rome . Acme grew ."
    assert [(ent.text, ent.label_) for ent in doc.ents] == [
        ("Ann", "PER"),
        ("Rome", "LOC"),
        ("Acme", "ORG"),
    ]
    assert [sent.text for sent in doc.sents] == ["Ann met Bob .", "They left Rome .", "Acme grew ."]


@pytest.mark.parametrize("seed", range(5))
def test_chunks_cover_every_sentence_once_in_order_within_the_limit(seed):
    sentences = [sentence(["w"] * n, 0) for n in (3, 9, 1, 4, 12, 2, 2, 7)]
    chunks = list(
        chunk_sentences(sentences, max_words=10, single_ratio=0.3, rng=random.Random(seed))
    )
    assert [s for chunk in chunks for s in chunk] == sentences
    for chunk in chunks:
        assert len(chunk) == 1 or sum(len(s) for s in chunk) <= 10


def test_single_ratio_one_gives_single_sentences_and_zero_joins_them():
    sentences = [sentence(["w"] * 2, 0) for _ in range(20)]
    singles = chunk_sentences(sentences, max_words=50, single_ratio=1.0, rng=random.Random(0))
    assert all(len(chunk) == 1 for chunk in singles)
    joined = list(chunk_sentences(sentences, max_words=50, single_ratio=0.0, rng=random.Random(0)))
    assert max(len(chunk) for chunk in joined) > 1


def test_the_reader_yields_every_entity_once_per_epoch_cut_differently(tmp_path):
    DocBin(docs=corpus_docs() * 5, store_user_data=True).to_disk(tmp_path / "train.spacy")
    corpus = DocumentCorpus(
        tmp_path / "train.spacy", max_words=12, single_ratio=0.25, seed=0, limit=0
    )
    epochs = [list(corpus(NLP)) for _ in range(3)]
    for examples in epochs:
        assert sum(len(eg.reference.ents) for eg in examples) == 4 * 5
        assert sum(len(eg.predicted) for eg in examples) == sum(len(d) for d in corpus_docs()) * 5
    cuts = {tuple(len(eg.reference) for eg in examples) for examples in epochs}
    assert len(cuts) > 1


def test_the_reader_is_registered_and_checks_its_settings(tmp_path):
    make = spacy.registry.readers.get("spacy-lsllama.DocumentCorpus.v1")
    with pytest.raises(ValueError, match="max_words"):
        make(tmp_path / "train.spacy", max_words=0)
    with pytest.raises(ValueError, match="single_ratio"):
        make(tmp_path / "train.spacy", single_ratio=1.5)
    with pytest.raises(ValueError, match="not found"):
        list(make(tmp_path / "missing.spacy")(NLP))
