import pytest
from spacy.scorer import Scorer, get_ner_prf
from spacy.tokens import Doc, Span
from spacy.training import Example
from spacy.vocab import Vocab

from spacy_lsllama.pipeline.scorers import ner_scores, textcat_scores

WORDS = "John Smith works for Acme Corp in New York City today".split()


def _ner_doc(vocab: Vocab, words: list[str], ents: list[tuple[int, int, str]]) -> Doc:
    doc = Doc(vocab, words=words)
    doc.set_ents([Span(doc, start, end, label=label) for start, end, label in ents])
    return doc


def _ner_example(words, gold, pred) -> Example:
    vocab = Vocab()
    return Example(_ner_doc(vocab, words, pred), _ner_doc(vocab, words, gold))


@pytest.fixture
def ner_examples() -> list[Example]:
    """Hit, boundary error, wrong type, spurious, merged neighbours and missed entities."""
    return [
        _ner_example(
            WORDS,
            [(0, 2, "PER"), (3, 5, "ORG"), (7, 10, "LOC")],
            [(0, 2, "PER"), (3, 4, "ORG"), (7, 10, "ORG"), (10, 11, "MISC")],
        ),
        _ner_example(["Alice", "Bob", "met"], [(0, 1, "PER"), (1, 2, "PER")], [(0, 2, "PER")]),
        _ner_example(["Nothing", "here", "."], [], [(0, 1, "MISC"), (1, 2, "MISC")]),
        _ner_example(["Paris", "and", "IBM", "."], [(0, 1, "LOC"), (2, 3, "ORG")], [(0, 1, "LOC")]),
    ]


def test_ner_scores_count_entities_exactly(ner_examples):
    scores = ner_scores(ner_examples)
    assert scores["precision"] == pytest.approx(2 / 8)
    assert scores["recall"] == pytest.approx(2 / 7)
    assert scores["f1"] == pytest.approx(4 / 15)
    assert scores["per_type"] == {
        "LOC": {"p": 1.0, "r": 0.5, "f": pytest.approx(2 / 3), "support": 2},
        "MISC": {"p": 0.0, "r": 0.0, "f": 0.0, "support": 0},
        "ORG": {"p": 0.0, "r": 0.0, "f": 0.0, "support": 2},
        "PER": {"p": 0.5, "r": pytest.approx(1 / 3), "f": 0.4, "support": 3},
    }


@pytest.mark.parametrize("spacy_scores", ["score_spans", "get_ner_prf"])
def test_ner_scores_agree_with_spacy_scorer(ner_examples, spacy_scores):
    if spacy_scores == "score_spans":
        expected = Scorer.score_spans(ner_examples, "ents")
    else:
        expected = get_ner_prf(ner_examples)
    scores = ner_scores(ner_examples)
    assert scores["precision"] == pytest.approx(expected["ents_p"])
    assert scores["recall"] == pytest.approx(expected["ents_r"])
    assert scores["f1"] == pytest.approx(expected["ents_f"])
    assert set(scores["per_type"]) == set(expected["ents_per_type"])
    for label, prf in expected["ents_per_type"].items():
        ours = scores["per_type"][label]
        assert (ours["p"], ours["r"], ours["f"]) == pytest.approx((prf["p"], prf["r"], prf["f"]))


def test_ner_scores_ignore_predictions_on_unannotated_tokens():
    vocab = Vocab()
    words = ["Ann", "saw", "Big", "Corp", "."]
    gold = Doc(vocab, words=words)
    gold.set_ents([Span(gold, 0, 1, label="PER")], missing=[Span(gold, 2, 4)], default="outside")
    pred = _ner_doc(vocab, words, [(0, 1, "PER"), (2, 4, "ORG")])
    examples = [Example(pred, gold)]
    assert ner_scores(examples)["precision"] == 1.0
    assert get_ner_prf(examples)["ents_p"] == pytest.approx(1.0)


def test_ner_scores_skip_references_without_entity_annotation():
    vocab = Vocab()
    unannotated = Example(_ner_doc(vocab, ["Ann"], [(0, 1, "PER")]), Doc(vocab, words=["Ann"]))
    scores = ner_scores([unannotated, _ner_example(["Bo"], [(0, 1, "PER")], [(0, 1, "PER")])])
    assert (scores["precision"], scores["recall"]) == (1.0, 1.0)


def test_ner_scores_without_entities_are_zero():
    scores = ner_scores([_ner_example(["a", "b"], [], [])])
    assert scores == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "per_type": {}}
    assert ner_scores([]) == scores


def _cats_example(gold: dict[str, float], pred: dict[str, float]) -> Example:
    vocab = Vocab()
    predicted, reference = Doc(vocab, words=["text"]), Doc(vocab, words=["text"])
    predicted.cats, reference.cats = pred, gold
    return Example(predicted, reference)


def _one_hot(label: str) -> dict[str, float]:
    return {name: float(name == label) for name in "ABC"}


@pytest.fixture
def single_label_examples() -> list[Example]:
    pairs = [("A", {"A": 0.6, "B": 0.3, "C": 0.1}), ("A", {"A": 0.2, "B": 0.5, "C": 0.3})]
    pairs += [("B", {"A": 0.1, "B": 0.8, "C": 0.1}), ("C", {"A": 0.4, "B": 0.3, "C": 0.3})]
    return [_cats_example(_one_hot(gold), pred) for gold, pred in pairs]


def test_textcat_scores_single_label(single_label_examples):
    scores = textcat_scores(single_label_examples)
    assert scores["accuracy"] == 0.5
    assert scores["per_label"] == {
        "A": {"p": 0.5, "r": 0.5, "f": 0.5, "support": 2},
        "B": {"p": 0.5, "r": 1.0, "f": pytest.approx(2 / 3), "support": 1},
        "C": {"p": 0.0, "r": 0.0, "f": 0.0, "support": 1},
    }
    assert scores["macro_f1"] == pytest.approx((0.5 + 2 / 3) / 3)
    spacy_scores = Scorer.score_cats(single_label_examples, "cats", labels="ABC", multi_label=False)
    assert scores["macro_f1"] == pytest.approx(spacy_scores["cats_macro_f"])
    assert scores["macro_precision"] == pytest.approx(spacy_scores["cats_macro_p"])
    assert scores["macro_recall"] == pytest.approx(spacy_scores["cats_macro_r"])


def test_textcat_scores_multilabel_threshold():
    examples = [
        _cats_example({"A": 1.0, "B": 1.0, "C": 0.0}, {"A": 0.9, "B": 0.35, "C": 0.1}),
        _cats_example({"A": 0.0, "B": 0.0, "C": 1.0}, {"A": 0.2, "B": 0.1, "C": 0.3}),
        _cats_example({"A": 0.0, "B": 1.0, "C": 0.0}, {"A": 0.5, "B": 0.9, "C": 0.0}),
    ]
    at_half = textcat_scores(examples, multilabel=True, threshold=0.5)
    at_third = textcat_scores(examples, multilabel=True, threshold=0.3)
    assert at_half["accuracy"] == 0.0
    assert at_third["accuracy"] == pytest.approx(2 / 3)
    assert at_third["per_label"]["B"] == {"p": 1.0, "r": 1.0, "f": 1.0, "support": 2}
    assert at_half["per_label"]["B"] == {
        "p": 1.0,
        "r": 0.5,
        "f": pytest.approx(2 / 3),
        "support": 2,
    }
    for threshold, ours in ((0.5, at_half), (0.3, at_third)):
        spacy_scores = Scorer.score_cats(
            examples, "cats", labels="ABC", multi_label=True, threshold=threshold
        )
        assert ours["macro_f1"] == pytest.approx(spacy_scores["cats_macro_f"])
        for label, prf in spacy_scores["cats_f_per_type"].items():
            assert ours["per_label"][label]["f"] == pytest.approx(prf["f"])


def test_textcat_scores_skip_examples_without_gold_cats(single_label_examples):
    unlabelled = _cats_example({}, {"A": 0.1, "B": 0.1, "C": 0.8})
    with_unlabelled = textcat_scores([*single_label_examples, unlabelled])
    assert with_unlabelled == textcat_scores(single_label_examples)
